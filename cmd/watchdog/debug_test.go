package main

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/watchdog-ha/watchdog/config"
)

// TestDebugRoutes: /debug/pprof/ does not exist unless enable_debug is
// set; when it is, it answers only with the API token (here the one the
// cluster generated, as on any node outside -dev).
func TestDebugRoutes(t *testing.T) {
	c := &testCluster{t: t, file: fileConfig(t, ""), secure: true}
	t.Cleanup(func() {
		for _, a := range c.running() {
			a.Close()
		}
	})
	start := func(id string, debug bool) *Agent {
		return c.launch(&config.AgentConfig{NodeID: id, HTTPAddr: "127.0.0.1:0", RaftAddr: "127.0.0.1:0",
			GossipAddr: "127.0.0.1:0", DataDir: t.TempDir(), BootstrapExpect: 2, File: c.file, EnableDebug: debug})
	}
	off, on := start("off", false), start("on", true)
	c.leader(2)
	token := apiToken(t, on)
	get := func(a *Agent, path, token string) (int, string) {
		req, err := http.NewRequest(http.MethodGet, a.URL()+path, nil)
		if err != nil {
			t.Fatal(err)
		}
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	for _, path := range []string{"/debug/pprof/", "/debug/pprof/goroutine?debug=1", "/debug/pprof/cmdline"} {
		if code, body := get(off, path, token); code != http.StatusNotFound {
			t.Errorf("GET %s without enable_debug: %d %s, want 404", path, code, body)
		}
		if code, body := get(on, path, ""); code != http.StatusUnauthorized {
			t.Errorf("GET %s without a token: %d %s, want 401", path, code, body)
		}
		if code, body := get(on, path, token+"x"); code != http.StatusUnauthorized {
			t.Errorf("GET %s with a wrong token: %d %s, want 401", path, code, body)
		}
		if code, body := get(on, path, token); code != http.StatusOK {
			t.Errorf("GET %s with the token: %d %s, want 200", path, code, body)
		}
	}
	// A real profile comes back: the heap, in pprof's format (gzip).
	code, body := get(on, "/debug/pprof/heap", token)
	if code != http.StatusOK || !strings.HasPrefix(body, "\x1f\x8b") {
		t.Errorf("heap profile: %d, %q..., want 200 and gzip", code, fmt.Sprintf("%.8s", body))
	}
}
