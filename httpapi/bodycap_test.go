package httpapi_test

import (
	"context"
	"io"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/watchdog-ha/watchdog/httpapi"
)

// endlessBody is a request body of n bytes that counts how many the
// server took.
type endlessBody struct {
	left int64
	read atomic.Int64
}

func (b *endlessBody) Read(p []byte) (int, error) {
	if b.left <= 0 {
		return 0, io.EOF
	}
	n := int(min(int64(len(p)), b.left))
	clear(p[:n])
	b.left -= int64(n)
	b.read.Add(int64(n))
	return n, nil
}

// TestNoRouteTakesAnUnboundedBody sends every route the documentation (README.md, docs/*.md) lists a
// body far larger than any cap and counts what the server takes: each must
// answer having read at most its cap (plus what sockets buffer and what
// net/http drains), so a client cannot make a node read, or hold, without
// bound. With the snapshot cap lowered, as an operator can, every route's
// cap is below the limit checked.
func TestNoRouteTakesAnUnboundedBody(t *testing.T) {
	const size, limit = 256 << 20, 64 << 20
	srv, _, _ := singleNode(t, httpapi.WithMaxSnapshotBody(8<<20))
	seen := map[route]bool{}
	for _, r := range readmeRoutes(t) {
		if seen[r] {
			continue
		}
		seen[r] = true
		body := &endlessBody{left: size}
		url := srv.URL + r.path
		if r.query != "" {
			url += "?" + r.query
		}
		// Cancelled once answered: the event stream would go on.
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		req, err := http.NewRequestWithContext(ctx, r.method, url, body)
		if err != nil {
			t.Fatal(err)
		}
		req.ContentLength = size
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			resp.Body.Close()
		}
		cancel()
		if got := body.read.Load(); got > limit {
			t.Errorf("%s %s took %d MiB of a %d MiB body (answer: %v)", r.method, r.path, got>>20, size>>20, answerOf(resp, err))
		}
	}
}

func answerOf(resp *http.Response, err error) string {
	if err != nil {
		return err.Error()
	}
	return resp.Status
}
