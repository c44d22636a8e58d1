package main

import (
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/watchdog-ha/watchdog/cli"
	"github.com/watchdog-ha/watchdog/cluster"
	"github.com/watchdog-ha/watchdog/config"
	"github.com/watchdog-ha/watchdog/fsm"
)

// Issue 16.6: outside -dev, with no api_token configured, no mutating route
// is open. The cluster generates one token, the same on every node, and
// each node keeps it in its data dir (mode 0600), where the CLI finds it
// through WATCHDOG_TOKEN_FILE. Heartbeats, pings and reads need nothing.
func TestMutatingRoutesAreNeverOpenOutsideDev(t *testing.T) {
	c := newSecureTestCluster(t, 3, fileConfig(t, "{}"))
	leader := c.leader(3)
	var follower *Agent
	for _, a := range c.running() {
		if a != leader {
			follower = a
		}
	}
	token := apiToken(t, leader)
	for _, a := range c.running() {
		path := filepath.Join(a.dataDir, cluster.APITokenFile)
		fi, err := os.Stat(path)
		if err != nil || fi.Mode().Perm() != 0o600 {
			t.Fatalf("%s: %s: %v, mode %v; want mode 0600", a.Node.ID(), path, err, fi.Mode())
		}
		if got := apiToken(t, a); got != token || len(token) < 32 {
			t.Fatalf("%s holds token %q, the leader %q", a.Node.ID(), got, token)
		}
	}
	base := "http://" + follower.Addr
	if code := heartbeat(t, follower, "job"); code != http.StatusOK {
		t.Fatalf("heartbeat without a token: %d", code)
	}
	if code, body := call(t, "POST", base+"/ping/job/start", "", ""); code != http.StatusOK {
		t.Fatalf("ping without a token: %d %s", code, body)
	}
	// The follower's replica applies the commit a moment after it is acknowledged.
	waitFor(t, 10*time.Second, "job on "+follower.Node.ID(), func() bool { _, ok := serviceOn(follower, "job"); return ok })
	for _, path := range []string{"/v1/services", "/v1/services/job", "/v1/cluster", "/v1/events", "/metrics", "/"} {
		if code, body := call(t, "GET", base+path, "", ""); code != http.StatusOK {
			t.Fatalf("GET %s without a token: %d %s", path, code, body)
		}
	}
	writes := []struct{ method, path, body string }{
		{"PUT", "/v1/services/job", `{"timeout": "1m"}`},
		{"PUT", "/v1/services/new", `{}`},
		{"DELETE", "/v1/services/job", ""},
		{"POST", "/v1/services/job/pause", ""},
		{"POST", "/v1/services/job/resume", ""},
		{"GET", "/v1/snapshot", ""},
		{"PUT", "/v1/snapshot", "not a backup"},
		{"DELETE", "/v1/cluster/members/" + leader.Node.ID(), ""},
		{"POST", "/v1/cluster/leave", ""},
	}
	before := leader.Node.AppliedIndex()
	for _, tok := range []string{"", "wrong", token + "x"} {
		for _, w := range writes {
			if code, body := call(t, w.method, base+w.path, w.body, tok); code != http.StatusUnauthorized {
				t.Fatalf("%s %s with token %q: %d %s, want 401", w.method, w.path, tok, code, body)
			}
		}
	}
	if s, _ := serviceOn(leader, "job"); s.Status == fsm.StatusPaused || leader.Node.AppliedIndex() != before || len(leader.Node.Members()) != 3 {
		t.Fatal("a refused request changed something")
	}
	if _, ok := serviceOn(leader, "new"); ok {
		t.Fatal("a refused PUT defined a service")
	}
	// The generated token, as the CLI reads it from the data dir.
	env := map[string]string{"WATCHDOG_TOKEN_FILE": filepath.Join(follower.dataDir, cluster.APITokenFile)}
	if _, errOut, code := runCLI(t, nil, "pause", "-addr", follower.Addr, "job"); code != cli.ExitFailed || !strings.Contains(errOut, "401") {
		t.Fatalf("pause without a token: exit %d %s", code, errOut)
	}
	if out, errOut, code := runCLI(t, env, "pause", "-addr", follower.Addr, "job"); code != cli.ExitOK {
		t.Fatalf("pause with WATCHDOG_TOKEN_FILE: exit %d %s %s", code, out, errOut)
	}
	if code, body := call(t, "PUT", base+"/v1/services/new", `{"timeout": "1m"}`, token); code != http.StatusCreated {
		t.Fatalf("PUT with the token: %d %s", code, body)
	}
	env["WATCHDOG_TOKEN_FILE"] = filepath.Join(t.TempDir(), "missing")
	if _, errOut, code := runCLI(t, env, "resume", "-addr", follower.Addr, "job"); code == cli.ExitOK || !strings.Contains(errOut, "WATCHDOG_TOKEN_FILE") {
		t.Fatalf("resume with a missing token file: exit %d %s", code, errOut)
	}
}

// A configured api_token is the only one: the generated token does not
// pass, and no token file is left in the data dir to mislead.
func TestAConfiguredAPITokenReplacesTheGeneratedOne(t *testing.T) {
	c := newSecureTestCluster(t, 1, fileConfig(t, "api_token: configured-token"))
	a := c.leader(1)
	if _, err := os.Stat(filepath.Join(a.dataDir, cluster.APITokenFile)); err == nil {
		t.Fatal("a token file was written although api_token is set")
	}
	base := "http://" + a.Addr
	if code, body := call(t, "PUT", base+"/v1/services/x", "{}", a.Node.GeneratedAPIToken()); code != http.StatusUnauthorized {
		t.Fatalf("PUT with the generated token: %d %s", code, body)
	}
	if code, body := call(t, "PUT", base+"/v1/services/x", "{}", "configured-token"); code != http.StatusCreated {
		t.Fatalf("PUT with the configured token: %d %s", code, body)
	}
}

// Issue 16.8: the agent says at start what is open for lack of a token.
func TestAgentWarnsAtStartWhatIsOpen(t *testing.T) {
	start := func(yaml string, dev bool) string {
		var buf syncBuffer
		log := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelInfo}))
		cfg := &config.AgentConfig{NodeID: "n1", HTTPAddr: "127.0.0.1:0", RaftAddr: "127.0.0.1:0", GossipAddr: "127.0.0.1:0",
			DataDir: t.TempDir(), BootstrapExpect: 1, File: fileConfig(t, yaml), Dev: dev, OpenManagement: dev}
		a, err := StartAgent(cfg, log)
		if err != nil {
			t.Fatal(err)
		}
		a.Close()
		return buf.String()
	}
	warnings := func(log string) (out []string) {
		for _, l := range strings.Split(log, "\n") {
			if strings.Contains(l, "level=WARN") && strings.Contains(l, "token") {
				out = append(out, l)
			}
		}
		return out
	}
	dev := start("{}", true)
	if w := warnings(dev); len(w) != 2 || !strings.Contains(w[0], "no ping_token") || !strings.Contains(w[1], "no api_token (-dev)") ||
		!strings.Contains(w[1], "restore a backup") {
		t.Fatalf("-dev without tokens: warnings %q", w)
	}
	secure := start("{}", false)
	if w := warnings(secure); len(w) != 1 || !strings.Contains(w[0], "no ping_token") {
		t.Fatalf("without tokens: warnings %q", w)
	}
	if !strings.Contains(secure, "token_file=") || !strings.Contains(secure, "WATCHDOG_TOKEN_FILE=") {
		t.Fatalf("the log does not say where the generated token is:\n%s", secure)
	}
	if w := warnings(start("api_token: a-token\nping_token: p-token", true)); len(w) != 0 {
		t.Fatalf("with both tokens: warnings %q", w)
	}
}
