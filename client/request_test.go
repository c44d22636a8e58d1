package client_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/watchdog-ha/watchdog/client"
	"github.com/watchdog-ha/watchdog/httpapi"
	"github.com/watchdog-ha/watchdog/internal/testnet"
)

// TestDoSendsAnyRouteAndSaysWhoAnswered: Do goes past a dead node and a
// node without a leader, as Ping does, sends each route the token it
// needs, and says which node answered; a refusal is an *APIError at once.
func TestDoSendsAnyRouteAndSaysWhoAnswered(t *testing.T) {
	srv, _ := singleNode(t, httpapi.WithPingToken("ping-secret"), httpapi.WithAPIToken("api-secret"))
	noLeader, _ := unavailable(t, "")
	c := newClient(t, []string{testnet.DeadAddr(t), noLeader.URL, srv.URL},
		client.WithPingToken("ping-secret"), client.WithAPIToken("api-secret"))
	if got := strings.Join(c.Nodes(), " "); !strings.HasSuffix(got, " "+noLeader.URL+" "+srv.URL) {
		t.Fatalf("Nodes = %q", got)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	// A heartbeat route carries the ping token...
	resp, err := c.Do(ctx, client.Request{Method: http.MethodPost, Path: "/ping/nightly/start?create=1"})
	if err != nil || resp.Node != srv.URL || resp.Status/100 != 2 {
		t.Fatalf("start: %+v, %v; want a 2xx from %s", resp, err, srv.URL)
	}
	// ...and any other the API token.
	resp, err = c.Do(ctx, client.Request{Method: http.MethodPost, Path: "/v1/services/nightly/pause"})
	var s client.Service
	if err != nil || json.Unmarshal(resp.Body, &s) != nil || s.Status != client.StatusPaused {
		t.Fatalf("pause: %+v, %v; want the paused service", resp, err)
	}
	var apiErr *client.APIError
	_, err = c.Do(ctx, client.Request{Path: "/v1/services/nowhere"})
	if !errors.As(err, &apiErr) || apiErr.Status != http.StatusNotFound || apiErr.Message == "" {
		t.Fatalf("unknown service: %v, want an APIError 404 with the node's text", err)
	}
}

// TestDoStreamsBodiesAndStartsAfreshAfterACut: a backup streams into the
// writer Into gives; a node that cuts the stream short is retried on the
// next node, with Into called again; the backup goes back whole as a
// request body from a ReaderAt, and the node restores it.
func TestDoStreamsBodiesAndStartsAfreshAfterACut(t *testing.T) {
	srv, _ := singleNode(t)
	cut := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", "100000")
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write([]byte("half a backup"))
		w.(http.Flusher).Flush()
		panic(http.ErrAbortHandler) // the connection closes mid-answer
	}))
	t.Cleanup(cut.Close)
	c := newClient(t, []string{cut.URL, srv.URL})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := c.Ping(ctx, "kept"); err != nil {
		t.Fatal(err)
	}
	var backup bytes.Buffer
	intos := 0
	resp, err := c.Do(ctx, client.Request{Path: "/v1/snapshot", Into: func() (io.Writer, error) {
		intos++
		backup.Reset()
		return &backup, nil
	}})
	if err != nil || resp.Node != srv.URL || len(resp.Body) != 0 {
		t.Fatalf("save: %+v, %v; want the backup from %s, streamed", resp, err, srv.URL)
	}
	if intos != 2 || backup.Len() == 0 || bytes.HasPrefix(backup.Bytes(), []byte("half")) {
		t.Fatalf("Into called %d times (want 2, once a node); backup %q…", intos, backup.Bytes()[:min(16, backup.Len())])
	}

	restore := newClient(t, []string{srv.URL})
	resp, err = restore.Do(ctx, client.Request{Method: http.MethodPut, Path: "/v1/snapshot",
		Body: bytes.NewReader(backup.Bytes()), BodySize: int64(backup.Len())})
	if err != nil || !bytes.Contains(resp.Body, []byte(`"restored":true`)) {
		t.Fatalf("restore: %+v, %v", resp, err)
	}

	// A failure of the output is the caller's, not a node's: not retried.
	_, err = c.Do(ctx, client.Request{Path: "/v1/snapshot", Into: func() (io.Writer, error) {
		return nil, errors.New("disk full")
	}})
	if err == nil || errors.Is(err, client.ErrUnavailable) || !strings.Contains(err.Error(), "disk full") {
		t.Fatalf("Into failing: %v; want its error, at once", err)
	}
}

// TestDoSendsTheWholeBodyToEveryNode: a node that read the body and then
// answered 503 does not leave the next node a body already read.
func TestDoSendsTheWholeBodyToEveryNode(t *testing.T) {
	var mu sync.Mutex
	var got []string
	record := func(status int) *httptest.Server {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			b, _ := io.ReadAll(r.Body)
			mu.Lock()
			got = append(got, string(b))
			mu.Unlock()
			w.WriteHeader(status)
		}))
		t.Cleanup(srv.Close)
		return srv
	}
	c := newClient(t, []string{record(http.StatusServiceUnavailable).URL, record(http.StatusOK).URL})
	body := "the end of the job's output\n"
	if _, err := c.Do(context.Background(), client.Request{Method: http.MethodPost, Path: "/ping/job/fail",
		Body: strings.NewReader(body), BodySize: int64(len(body))}); err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0] != body || got[1] != body {
		t.Fatalf("bodies received: %q; want %q twice", got, body)
	}
}

// TestDoAtAsksOneNodeOnce: DoAt reaches a node that is not one of the
// client's addresses, never tries another, and makes a 503 an *APIError.
func TestDoAtAsksOneNodeOnce(t *testing.T) {
	srv, _ := singleNode(t)
	noLeader, hits := unavailable(t, "1")
	c := newClient(t, []string{noLeader.URL}, client.WithTimeout(10*time.Second))
	ctx := context.Background()
	if _, err := c.DoAt(ctx, srv.Listener.Addr().String(), client.Request{Path: "/readyz"}); err != nil {
		t.Fatalf("readiness of a ready node: %v", err)
	}
	var apiErr *client.APIError
	_, err := c.DoAt(ctx, noLeader.URL, client.Request{Path: "/readyz"})
	if !errors.As(err, &apiErr) || apiErr.Status != http.StatusServiceUnavailable || apiErr.Message != "no leader" || hits.Load() != 1 {
		t.Fatalf("readiness of a node without a leader: %v after %d requests; want one APIError 503", err, hits.Load())
	}
	if _, err := c.DoAt(ctx, testnet.DeadAddr(t), client.Request{Path: "/readyz"}); err == nil || errors.As(err, &apiErr) {
		t.Fatalf("readiness of a dead node: %v; want the transport's error", err)
	}
	if _, err := c.DoAt(ctx, "ftp://x", client.Request{Path: "/readyz"}); err == nil {
		t.Fatal("DoAt took an ftp URL")
	}
}
