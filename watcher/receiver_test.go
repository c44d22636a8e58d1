package watcher

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"
)

// received is one request a receiver got.
type received struct {
	At     time.Time
	Method string
	Path   string
	Header http.Header
	Body   []byte
}

// reply is how a receiver answers one request.
type reply struct {
	status int
	header map[string]string
	body   string
}

// receiver is a real HTTP server that records every request and answers
// them with its replies in turn, repeating the last one.
type receiver struct {
	*httptest.Server
	mu      sync.Mutex
	reqs    []received
	replies []reply
	offset  int // requests before the current replies were set
}

func newReceiver(t *testing.T, replies ...reply) *receiver {
	t.Helper()
	if len(replies) == 0 {
		replies = []reply{{status: http.StatusOK}}
	}
	r := &receiver{replies: replies}
	r.Server = httptest.NewServer(http.HandlerFunc(r.serve))
	t.Cleanup(r.Close)
	return r
}

func (r *receiver) serve(w http.ResponseWriter, req *http.Request) {
	body, _ := io.ReadAll(req.Body)
	r.mu.Lock()
	n := len(r.reqs)
	r.reqs = append(r.reqs, received{At: time.Now(), Method: req.Method, Path: req.URL.Path,
		Header: req.Header.Clone(), Body: body})
	rep := r.replies[min(n-r.offset, len(r.replies)-1)]
	r.mu.Unlock()
	for k, v := range rep.header {
		w.Header().Set(k, v)
	}
	w.WriteHeader(rep.status)
	io.WriteString(w, rep.body)
}

// answer makes the next requests get replies, in turn.
func (r *receiver) answer(replies ...reply) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.replies, r.offset = replies, len(r.reqs)
}

func (r *receiver) requests() []received {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]received(nil), r.reqs...)
}

// only returns the single request the receiver got, failing otherwise.
func (r *receiver) only(t *testing.T) received {
	t.Helper()
	reqs := r.requests()
	if len(reqs) != 1 {
		t.Fatalf("receiver got %d requests, want 1", len(reqs))
	}
	return reqs[0]
}

// decodeStrict parses a JSON body into v, refusing fields v does not name,
// so a payload that grows a field by mistake fails the test.
func decodeStrict(t *testing.T, body []byte, v any) {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		t.Fatalf("decode body: %v\n%s", err, body)
	}
}

// waitFor polls cond until it holds or timeout passes.
func waitFor(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// testEvent is a down event as perform would build it.
func testEvent() Event {
	last := time.Date(2026, 11, 25, 10, 0, 0, 123e6, time.UTC)
	return Event{Service: "worker-1", Incident: "12-0", Kind: "down", LastSeen: last,
		Timeout: 30 * time.Second, Node: "n2", Time: last.Add(30*time.Second + 4*time.Millisecond)}
}
