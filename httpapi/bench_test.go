package httpapi_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
)

// BenchmarkHeartbeatRequestPath is the work of one heartbeat request on a
// real one-node cluster, from the handler to the committed answer, with
// many in flight so that commits are shared: what it shows per op is the
// request path (routing, hand-offs, timers, the reply), not the entries.
//
//	go test -run '^$' -bench HeartbeatRequestPath -benchmem ./httpapi
func BenchmarkHeartbeatRequestPath(b *testing.B) {
	srv, _, _ := singleNode(b)
	h := srv.Config.Handler
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
