package main

import (
	"io"
	"net"
	"net/http"
	"runtime"
	"sync/atomic"
	"testing"
	"time"
)

// TestBenchAgainstAWatchdog drives a real one-node watchdog for a second:
// every heartbeat is answered 200, and every service it beat now exists.
func TestBenchAgainstAWatchdog(t *testing.T) {
	c := newTestCluster(t, 1, fileConfig(t, ""))
	a := c.leader(1)
	for _, route := range []string{routeV1, routeQuery} {
		// Two clients, ten services: client 0 sends the even ids, client 1
		// the odd ones, so five requests each cover them all.
		cfg := &benchConfig{Addrs: []string{a.Addr}, Services: 10, Clients: 2, Duration: time.Second,
			Route: route, Timeout: 5 * time.Second}
		res := mustRun(t, cfg)
		if res.Requests == 0 || res.OK != res.Requests {
			t.Fatalf("%s: %d requests, %d ok, errors %v", route, res.Requests, res.OK, res.Errors)
		}
		for i := range cfg.Services {
			id := benchServiceID(i)
			if s, ok := serviceOn(a, id); !ok || s.LastSeen == 0 {
				t.Errorf("%s: after %d heartbeats, service %s: %+v, exists %v", route, res.Requests, id, s, ok)
			}
		}
	}
	if _, ok := serviceOn(a, benchServiceID(10)); ok {
		t.Errorf("%s exists: the bench sent more than its 10 services", benchServiceID(10))
	}
}

// BenchmarkHeartbeatThreeNodes posts heartbeats round-robin over the three
// nodes of an in-process cluster, 64 at a time, each answered once
// committed. Compare req/s with BenchmarkNoopHTTPRoundRobin.
func BenchmarkHeartbeatThreeNodes(b *testing.B) {
	file, err := ParseConfig(nil, "defaults")
	if err != nil {
		b.Fatal(err)
	}
	c := newTestCluster(b, 3, file)
	c.leader(3)
	var addrs []string
	for _, a := range c.running() {
		addrs = append(addrs, a.Addr)
	}
	// The cluster is set up once; only the sub-benchmark is run b.N times.
	b.Run("roundrobin", func(b *testing.B) { benchRoundRobin(b, addrs) })
}

// BenchmarkNoopHTTPRoundRobin is the baseline: three net/http servers whose
// handler does nothing, driven exactly as BenchmarkHeartbeatThreeNodes.
func BenchmarkNoopHTTPRoundRobin(b *testing.B) {
	var addrs []string
	for range 3 {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			b.Fatal(err)
		}
		srv := newNoopServer()
		go srv.Serve(ln)
		b.Cleanup(func() { srv.Close() })
		addrs = append(addrs, ln.Addr().String())
	}
	b.Run("roundrobin", func(b *testing.B) { benchRoundRobin(b, addrs) })
}

const benchParallelClients = 64

func benchRoundRobin(b *testing.B, addrs []string) {
	urls := make([]string, 0, 10000)
	for i := range cap(urls) { // as many services as the bench default
		urls = append(urls, "http://"+addrs[i%len(addrs)]+"/v1/heartbeat/"+benchServiceID(i))
	}
	tr := &http.Transport{Proxy: nil, MaxIdleConnsPerHost: benchParallelClients, DisableCompression: true}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, Timeout: 10 * time.Second}
	var next, failed atomic.Uint64
	b.SetParallelism((benchParallelClients + runtime.GOMAXPROCS(0) - 1) / runtime.GOMAXPROCS(0))
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			resp, err := client.Post(urls[next.Add(1)%uint64(len(urls))], "", nil)
			if err != nil {
				failed.Add(1)
				continue
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				failed.Add(1)
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "req/s")
	if n := failed.Load(); n > 0 {
		b.Errorf("%d of %d heartbeats failed", n, b.N)
	}
}
