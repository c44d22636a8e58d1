package httpapi_test

import (
	"net/http"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/watchdog-ha/watchdog/httpapi"
	"github.com/watchdog-ha/watchdog/internal/promtest"
)

func TestMetricsAreServedOnlyWhenAsked(t *testing.T) {
	srv, _, _ := singleNode(t)
	if resp, body := do(t, "GET", srv.URL+"/metrics", ""); resp.StatusCode != http.StatusNotFound {
		t.Fatalf("GET /metrics without WithMetrics: %d %s, want 404", resp.StatusCode, body)
	}
}

func TestMetricsOfASingleNode(t *testing.T) {
	reg := prometheus.NewRegistry()
	srv, node, _ := singleNode(t, httpapi.WithMetrics(reg))
	reg.MustRegister(node.Collector(), srv.Config.Handler.(*httpapi.Server).Collector())

	sent := map[string]int{}
	for _, hb := range []struct{ form, method, path string }{
		{"query", "GET", "/heartbeat?id=q-1"},
		{"query", "HEAD", "/heartbeat?id=q-2"},
		{"v1", "POST", "/v1/heartbeat/v-1"},
		{"v1", "POST", "/v1/heartbeat/v-2"},
		{"v1", "POST", "/v1/heartbeat/v-1"},
	} {
		if resp, body := do(t, hb.method, srv.URL+hb.path, ""); resp.StatusCode != http.StatusOK {
			t.Fatalf("%s %s: %d %s", hb.method, hb.path, resp.StatusCode, body)
		}
		sent[hb.form]++
	}
	// Refused before any commit: not a heartbeat received.
	do(t, "POST", srv.URL+"/v1/heartbeat/..", "")

	mfs, err := promtest.Scrape(srv.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	want := func(name string, want float64, labels ...string) {
		t.Helper()
		if got, ok := mfs.Value(name, labels...); !ok || got != want {
			t.Errorf("%s%q = %v (present %v), want %v", name, labels, got, ok, want)
		}
	}
	want("watchdog_heartbeats_received_total", float64(sent["query"]), "form", "query")
	want("watchdog_heartbeats_received_total", float64(sent["v1"]), "form", "v1")
	want("watchdog_heartbeats_committed_total", 5)
	want("watchdog_heartbeats_forwarded_total", 0)
	want("watchdog_heartbeat_batches_failed_total", 0, "path", "commit")
	want("watchdog_is_leader", 1)
	want("watchdog_raft_last_contact_seconds", 0)
	want("watchdog_raft_leader_changes_total", 1)
	want("watchdog_gossip_members", 1, "state", "alive")
	want("watchdog_gossip_members", 0, "state", "dead")

	// Each request waited for its commit, so each went in an entry of its
	// own; the apply histogram saw the same entries.
	entries := mfs.Series("watchdog_heartbeats_per_entry").GetHistogram()
	if entries.GetSampleSum() != 5 || entries.GetSampleCount() != 5 {
		t.Errorf("heartbeats per entry: %d entries, %v heartbeats; want 5 and 5", entries.GetSampleCount(), entries.GetSampleSum())
	}
	want("watchdog_raft_apply_duration_seconds", 5, "command", "heartbeat")
	applied, _ := mfs.Value("watchdog_raft_applied_index")
	commit, _ := mfs.Value("watchdog_raft_commit_index")
	if term, _ := mfs.Value("watchdog_raft_term"); term < 1 || applied < 5 || commit < applied {
		t.Errorf("raft term %v, commit index %v, applied index %v: want term >= 1 and commit >= applied >= 5", term, commit, applied)
	}

	for _, method := range []string{"HEAD", "POST", "DELETE"} {
		if resp, _ := do(t, method, srv.URL+"/metrics", ""); resp.StatusCode != http.StatusMethodNotAllowed {
			t.Errorf("%s /metrics: %d, want 405", method, resp.StatusCode)
		}
	}
}

// Pings of the healthchecks routes are heartbeats received too, whatever
// their signal; refused ones are not.
func TestPingsAreCountedAsReceived(t *testing.T) {
	reg := prometheus.NewRegistry()
	srv, node, _ := singleNode(t, httpapi.WithMetrics(reg))
	reg.MustRegister(node.Collector(), srv.Config.Handler.(*httpapi.Server).Collector())
	for _, p := range []string{"/ping/p-1?create=1", "/ping/p-1/start", "/ping/p-1/0", "/ping/p-1/fail", "/ping/p-1"} {
		if resp, body := do(t, "POST", srv.URL+p, ""); resp.StatusCode/100 != 2 {
			t.Fatalf("%s: %d %s", p, resp.StatusCode, body)
		}
	}
	do(t, "GET", srv.URL+"/ping/..", "")
	do(t, "GET", srv.URL+"/ping/p-1/999", "")
	mfs, err := promtest.Scrape(srv.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	if got, ok := mfs.Value("watchdog_heartbeats_received_total", "form", "ping"); !ok || got != 5 {
		t.Fatalf("received{form=ping} = %v (present %v), want 5", got, ok)
	}
}
