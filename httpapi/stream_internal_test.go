package httpapi

import (
	"bufio"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/watchdog-ha/watchdog/cluster"
	"github.com/watchdog-ha/watchdog/fsm"
)

// StartTestNode starts a real one-node cluster named name, advertising
// httpAddr, and waits until it is ready. Exported for the external tests.
func StartTestNode(t *testing.T, name, httpAddr string) (*cluster.Node, *fsm.FSM) {
	t.Helper()
	f := fsm.New()
	node, err := cluster.New(cluster.Config{NodeID: name, RaftAddr: "127.0.0.1:0", GossipAddr: "127.0.0.1:0",
		HTTPAddr: httpAddr, DataDir: t.TempDir(), BootstrapExpect: 1, FSM: f})
	if err != nil {
		t.Fatal(err)
	}
	node.Start(nil)
	t.Cleanup(func() { node.Close() })
	deadline := time.Now().Add(10 * time.Second)
	for node.Ready() != nil {
		if time.Now().After(deadline) {
			t.Fatalf("node never ready: %v", node.Ready())
		}
		time.Sleep(20 * time.Millisecond)
	}
	return node, f
}

// A quiet stream still carries a comment now and then, so that proxies
// between the page and the node do not close it for idleness.
func TestStreamKeepAlive(t *testing.T) {
	node, f := StartTestNode(t, "solo", "127.0.0.1:1")
	d := newDashboard(node, f)
	d.keepAliveEvery = 100 * time.Millisecond
	srv := httptest.NewServer(http.HandlerFunc(d.handleStream))
	defer srv.Close()
	resp, err := http.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	got := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(resp.Body)
		sc.Buffer(nil, 1<<20)
		var seen []string
		for sc.Scan() {
			seen = append(seen, sc.Text())
			if strings.HasPrefix(sc.Text(), ":") {
				break
			}
		}
		got <- strings.Join(seen, "\n")
	}()
	select {
	case lines := <-got:
		if !strings.HasSuffix(lines, ": keep-alive") || !strings.Contains(lines, "data: {") {
			t.Fatalf("stream began %q, want a snapshot, then a keep-alive comment", lines)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no keep-alive comment within 10s")
	}
}

func TestFormatAge(t *testing.T) {
	for d, want := range map[time.Duration]string{
		-time.Second:                   "0s",
		999 * time.Millisecond:         "0s",
		59 * time.Second:               "59s",
		3*time.Minute + 12*time.Second: "3m 12s",
		2*time.Hour + 5*time.Minute:    "2h 5m",
		97 * time.Hour:                 "4d 1h",
	} {
		if got := formatAge(d); got != want {
			t.Errorf("formatAge(%s) = %q, want %q", d, got, want)
		}
	}
}
