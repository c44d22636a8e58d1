package httpapi_test

import (
	"io"
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

// slowReader hands out its bytes a piece at a time, pausing before each:
// a client on a slow link.
type slowReader struct {
	data  []byte
	piece int
	pause time.Duration
}

func (r *slowReader) Read(p []byte) (int, error) {
	if len(r.data) == 0 {
		return 0, io.EOF
	}
	time.Sleep(r.pause) // the slowness under test
	n := copy(p[:min(len(p), r.piece)], r.data)
	r.data = r.data[n:]
	return n, nil
}

// TestABackupOutlivesTheReadAndWriteTimeouts restores a backup that takes
// several read timeouts to arrive: the snapshot routes lift the
// per-request deadlines for themselves, as a large backup on a slow link
// needs.
func TestABackupOutlivesTheReadAndWriteTimeouts(t *testing.T) {
	const timeout = 200 * time.Millisecond
	srv, _, _ := singleNode(t, httpapi.WithTimeouts(timeout, timeout), knownActions)
	backup := getBackup(t, srv.URL, "")
	body := &slowReader{data: backup, piece: max(len(backup)/6, 1), pause: timeout / 2}
	req, err := http.NewRequest("PUT", srv.URL+"/v1/snapshot", body)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	resp, out := send(t, req)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("slow restore after %s: %d %s", time.Since(start), resp.StatusCode, out)
	}
	if took := time.Since(start); took < 2*timeout {
		t.Fatalf("the body arrived in %s, within the timeout: the test proves nothing", took)
	}
}
