package main

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/watchdog-ha/watchdog/fsm"
)

// slowHook is a webhook receiver that holds its first request until that
// request's client gives up, and accepts every later one at once.
type slowHook struct {
	mu      sync.Mutex
	keys    []string
	release chan struct{} // closed when the test ends
}

func (h *slowHook) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h.mu.Lock()
	h.keys = append(h.keys, r.Header.Get("Idempotency-Key"))
	first := len(h.keys) == 1
	h.mu.Unlock()
	if first {
		// Reading the body lets the server notice the client going away.
		io.Copy(io.Discard, r.Body)
		select {
		case <-r.Context().Done(): // the leader that sent it is gone
		case <-h.release:
		}
		return
	}
	w.WriteHeader(http.StatusOK)
}

func (h *slowHook) received() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]string(nil), h.keys...)
}

// TestLeaderDiesMidDeliveryAndTheNextDeliversWithTheSameKey: a leader dies
// after committing an incident but before its webhook is acknowledged; the
// new leader delivers it, under the same Idempotency-Key, and records it.
func TestLeaderDiesMidDeliveryAndTheNextDeliversWithTheSameKey(t *testing.T) {
	hook := &slowHook{release: make(chan struct{})}
	srv := httptest.NewServer(hook)
	t.Cleanup(srv.Close)
	t.Cleanup(func() { close(hook.release) })
	file := fileConfig(t, fmt.Sprintf(`
check_interval: 100ms
actions:
  hook: {webhook: {url: %q}, timeout: 1m}
services:
  hooked: {timeout: 1s, actions: [hook]}
`, srv.URL))
	c := newTestCluster(t, 3, file)
	old := c.leader(3)
	waitFor(t, 10*time.Second, "the first delivery to reach the receiver", func() bool { return len(hook.received()) == 1 })
	c.stop(old)
	leader := c.leader(3)
	var s fsm.Service
	waitFor(t, 15*time.Second, "the new leader to record the delivery", func() bool {
		s, _ = serviceOn(leader, "hooked")
		return s.Current() != nil && s.Current().Actions[0].State == fsm.ActionDone
	})
	keys := hook.received()
	want := s.Current().ID + ":down"
	if len(keys) != 2 || keys[0] != want || keys[1] != want {
		t.Fatalf("receiver saw keys %q, want %q twice (old leader, new leader)", keys, want)
	}
}
