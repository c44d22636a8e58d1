package httpapi_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/watchdog-ha/watchdog/httpapi"
)

// BenchmarkHeartbeatRequestPath is the work of one heartbeat request on a
// real one-node cluster, from the handler to the committed answer, with
// many in flight so that commits are shared: what it shows per op is the
// request path (routing, hand-offs, timers, the reply), not the entries.
//
//	go test -run '^$' -bench HeartbeatRequestPath -benchmem ./httpapi
func BenchmarkHeartbeatRequestPath(b *testing.B) {
	srv, _, _ := singleNode(b)
	benchHeartbeatRequests(b, srv.Config.Handler)
}

// BenchmarkHeartbeatRequestPathWithTimeouts is BenchmarkHeartbeatRequestPath
// with per-request deadlines, as `watchdog agent` serves (setDeadlines).
// The recorder takes no deadline; the work of setting one is what counts.
func BenchmarkHeartbeatRequestPathWithTimeouts(b *testing.B) {
	srv, _, _ := singleNode(b, httpapi.WithTimeouts(10*time.Second, 10*time.Second))
	benchHeartbeatRequests(b, srv.Config.Handler)
}

func benchHeartbeatRequests(b *testing.B, h http.Handler) {
	paths := make([]string, 1000)
	for i := range paths {
		paths[i] = fmt.Sprintf("/v1/heartbeat/bench-%04d", i)
	}
	b.ReportAllocs()
	b.SetParallelism(32)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			w := httptest.NewRecorder()
			h.ServeHTTP(w, httptest.NewRequest(http.MethodPost, paths[i%len(paths)], nil))
			if w.Code != http.StatusOK {
				b.Errorf("status %d: %s", w.Code, w.Body)
				return
			}
			i++
		}
	})
}
