package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/watchdog-ha/watchdog/watcher"
)

// payloadHook is a webhook receiver that keeps every payload, by event.
type payloadHook struct {
	mu   sync.Mutex
	byEv map[string]watcher.WebhookPayload
}

func (h *payloadHook) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var p watcher.WebhookPayload
	if err := json.NewDecoder(r.Body).Decode(&p); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	h.mu.Lock()
	h.byEv[p.Event] = p
	h.mu.Unlock()
}

func (h *payloadHook) got(event string) (watcher.WebhookPayload, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	p, ok := h.byEv[event]
	return p, ok
}

// ping sends a healthchecks-style ping with a body, as curl --data-raw does.
func ping(t *testing.T, a *Agent, path, body string) {
	t.Helper()
	resp, err := http.Post("http://"+a.Addr+"/ping/"+path, "text/plain", strings.NewReader(body))
	if err != nil {
		t.Fatalf("ping %s: %v", path, err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("ping %s: %s %s", path, resp.Status, b)
	}
}

// readEnv reads a file of NAME=value lines, as env prints them.
func readEnv(path string) (map[string]string, bool) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, false
	}
	out := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		k, v, _ := strings.Cut(line, "=")
		out[k] = v
	}
	return out, true
}

// TestAlertsSayWhyAndExecSeesOnlyTheEvent: a job reports exit status 23
// with a note through the ping API of a follower; the webhook and the exec
// action are told the reason, the note and, on its recovery, the downtime
// and what the recovering ping said. The exec action sees none of the
// agent's own environment.
func TestAlertsSayWhyAndExecSeesOnlyTheEvent(t *testing.T) {
	t.Setenv("SECRET_X", "operator-secret-value")
	t.Setenv("WATCHDOG_CONFIG", "/etc/watchdog/config.yaml")
	hook := &payloadHook{byEv: map[string]watcher.WebhookPayload{}}
	srv := httptest.NewServer(hook)
	t.Cleanup(srv.Close)
	dir := t.TempDir()
	// The script writes the file whole, then renames it: the test never
	// reads one that env is still writing.
	script := filepath.Join(dir, "dump.sh")
	if err := os.WriteFile(script, []byte("#!/bin/sh\nenv > \""+dir+"/$WATCHDOG_EVENT.tmp\" && mv \""+dir+"/$WATCHDOG_EVENT.tmp\" \""+dir+"/$WATCHDOG_EVENT.env\"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	file := fileConfig(t, fmt.Sprintf(`
check_interval: 100ms
actions:
  hook: {webhook: {url: %q}}
  dump: {exec: [%q]}
services:
  worker-1: {timeout: 1h, actions: [hook, dump], on_recovered: [hook, dump]}
`, srv.URL, script))
	c := newTestCluster(t, 3, file)
	leader := c.leader(3)
	var follower *Agent
	for _, a := range c.running() {
		if a != leader {
			follower = a
		}
	}
	c.replicated("worker-1")

	ping(t, follower, "worker-1/23", "rsync: disk full (exit 23)\n")
	var env map[string]string
	waitFor(t, 15*time.Second, "the down notifications", func() bool {
		_, hooked := hook.got("down")
		var ok bool
		env, ok = readEnv(filepath.Join(dir, "down.env"))
		return hooked && ok
	})
	down, _ := hook.got("down")
	if down.Reason != "exit_status" || down.ExitStatus != 23 || down.Note != "rsync: disk full (exit 23)" || down.DownSince == "" {
		t.Errorf("webhook, down: %+v", down)
	}
	for k, want := range map[string]string{"WATCHDOG_REASON": "exit_status", "WATCHDOG_EXIT_STATUS": "23",
		"WATCHDOG_NOTE": "rsync: disk full (exit 23)", "WATCHDOG_EVENT": "down", "WATCHDOG_SERVICE_ID": "worker-1",
		"PATH": watcher.ExecPath} {
		if env[k] != want {
			t.Errorf("exec, down: %s = %q, want %q", k, env[k], want)
		}
	}
	if _, err := time.Parse(time.RFC3339Nano, env["WATCHDOG_LAST_SEEN"]); err != nil || !strings.Contains(env["WATCHDOG_LAST_SEEN"], ".") {
		t.Errorf("exec: WATCHDOG_LAST_SEEN = %q, want RFC 3339 with its fraction of a second", env["WATCHDOG_LAST_SEEN"])
	}
	for k, v := range env {
		if k != "PATH" && k != "PWD" && k != "SHLVL" && k != "_" && !strings.HasPrefix(k, "WATCHDOG_") ||
			k == "WATCHDOG_CONFIG" || strings.Contains(v, "operator-secret-value") {
			t.Errorf("exec: the agent's environment leaked into the action: %s=%q", k, v)
		}
	}
	var view struct {
		Incident struct {
			Reason     string `json:"reason"`
			ExitStatus int    `json:"exit_status"`
			Note       string `json:"note"`
		} `json:"incident"`
	}
	// The follower shows the incident once it has applied it: polled.
	waitFor(t, 15*time.Second, "the follower's view of the incident", func() bool {
		getJSON(t, "http://"+follower.Addr+"/v1/services/worker-1", &view)
		return view.Incident.Reason != ""
	})
	if view.Incident.Reason != "exit_status" || view.Incident.ExitStatus != 23 || view.Incident.Note != "rsync: disk full (exit 23)" {
		t.Errorf("GET /v1/services/worker-1: incident %+v", view.Incident)
	}

	ping(t, follower, "worker-1", "rsync: 3 GB sent")
	waitFor(t, 15*time.Second, "the recovery notifications", func() bool {
		_, hooked := hook.got("recovered")
		var ok bool
		env, ok = readEnv(filepath.Join(dir, "recovered.env"))
		return hooked && ok
	})
	up, _ := hook.got("recovered")
	downFor, err := time.ParseDuration(up.DownFor)
	if err != nil || downFor <= 0 || up.RecoveredAt != up.Time || up.RecoveryNote != "rsync: 3 GB sent" || up.Reason != "exit_status" {
		t.Errorf("webhook, recovered: %+v", up)
	}
	if env["WATCHDOG_RECOVERY_NOTE"] != "rsync: 3 GB sent" || env["WATCHDOG_DOWN_FOR"] != up.DownFor ||
		env["WATCHDOG_RECOVERED_AT"] != up.RecoveredAt {
		t.Errorf("exec, recovered: %v; webhook said %+v", env, up)
	}
}
