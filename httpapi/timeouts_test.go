package httpapi_test

import (
	"net/http"
	"testing"
	"time"

	"github.com/watchdog-ha/watchdog/httpapi"
)

// The per-request deadlines must not reach the event stream: it outlives
// both the read and the write timeout and still delivers changes. (A read
// deadline on a request without a body cancels its context once it passes;
// a write deadline not lifted by the stream fails its next write.)
func TestStreamOutlivesTheReadAndWriteTimeouts(t *testing.T) {
	const timeout = 200 * time.Millisecond
	srv, _, _ := singleNode(t, httpapi.WithTimeouts(timeout, timeout))
	s := openStream(t, srv.URL)
	s.next(t, 10*time.Second)
	// Long past both deadlines (the stream sends nothing meanwhile:
	// nothing changed), a change must still arrive.
	time.Sleep(8 * timeout) // the condition under test is elapsed time itself
	if resp, body := do(t, "POST", srv.URL+"/v1/heartbeat/later", "a body, read in time"); resp.StatusCode != http.StatusOK {
		t.Fatalf("heartbeat: %d %s", resp.StatusCode, body)
	}
	for {
		snap := s.next(t, 10*time.Second)
		if statusOf(snap, "later") == "up" {
			return
		}
	}
}
