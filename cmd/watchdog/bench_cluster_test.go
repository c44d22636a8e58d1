package main

import (
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/watchdog-ha/watchdog/config"
)

// TestBenchAgainstAWatchdog drives a real one-node watchdog for a second:
// every heartbeat is answered 200, and every service it beat exists.
func TestBenchAgainstAWatchdog(t *testing.T) {
	c := newTestCluster(t, 1, fileConfig(t, ""))
	a := c.leader(1)
	for _, route := range []string{routeV1, routeQuery} {
		// Two clients, ten services: client 0 sends the even ids, client 1
		// the odd ones, so five requests each cover them all.
		cfg := &benchConfig{Addrs: []string{a.Addr}, Services: 10, Prefix: "bench-" + route + "-", Clients: 2, Duration: time.Second,
			Route: route, Timeout: 5 * time.Second}
		res := mustRun(t, cfg)
		if res.Requests == 0 || res.OK != res.Requests {
			t.Fatalf("%s: %d requests, %d ok, errors %v", route, res.Requests, res.OK, res.Errors)
		}
		for i := range cfg.Services {
			id := cfg.serviceID(i)
			if s, ok := serviceOn(a, id); !ok || s.LastSeen == 0 {
				t.Errorf("%s: after %d heartbeats, service %s: %+v, exists %v", route, res.Requests, id, s, ok)
			}
		}
		if _, ok := serviceOn(a, cfg.serviceID(10)); ok {
			t.Errorf("%s exists: the bench sent more than its 10 services", cfg.serviceID(10))
		}
	}
}

// benchServices are the services of a with the prefix, and whether any of
// them has an action.
func benchServices(a *Agent, prefix string) (ids []string, withActions []string) {
	for _, s := range a.FSM.Services() {
		if strings.HasPrefix(s.ID, prefix) {
			ids = append(ids, s.ID)
			if len(s.Def.Actions)+len(s.Def.OnRecovered) > 0 {
				withActions = append(withActions, s.ID)
			}
		}
	}
	return ids, withActions
}

// TestBenchLeavesNothingBehind runs the whole command against a cluster
// whose defaults page (every service inherits the log action, and a short
// timeout): the bench's services are defined without actions, it warns
// that the cluster has actions, and its services are gone when it ends,
// also when it is interrupted (Ctrl-C cancels its context).
func TestBenchLeavesNothingBehind(t *testing.T) {
	c := newTestCluster(t, 3, fileConfig(t, "defaults: {timeout: 1s, actions: [log]}\nservices:\n  real-job: {timeout: 1h}\n"))
	leader := c.leader(3)
	c.allReady()
	c.replicated("real-job") // the config is committed
	addr := strings.Join(c.addrs(), ",")

	t.Run("to the end", func(t *testing.T) {
		var out, errOut bytes.Buffer
		err := runBench(t.Context(), []string{"-addr", addr, "-prefix", "b1-", "-services", "20", "-clients", "4",
			"-duration", "500ms", "-warmup", "0s"}, &out, &errOut)
		if err != nil {
			t.Fatalf("%v\n%s", err, errOut.String())
		}
		for _, want := range []string{"WARNING: this cluster runs actions for 1 services (real-job)", "defined 20 services b1-000000",
			"deleted its 20 services"} {
			if !strings.Contains(errOut.String(), want) {
				t.Fatalf("stderr lacks %q:\n%s", want, errOut.String())
			}
		}
		if !strings.Contains(out.String(), "20 services") || !strings.Contains(out.String(), "errors      0\n") {
			t.Fatalf("report:\n%s", out.String())
		}
		if ids, _ := benchServices(leader, "b1-"); len(ids) != 0 {
			t.Fatalf("left behind: %v", ids)
		}
	})

	t.Run("interrupted", func(t *testing.T) {
		ctx, cancel := context.WithCancel(t.Context())
		defer cancel()
		var out, errOut bytes.Buffer
		done := make(chan error, 1)
		go func() {
			done <- runBench(ctx, []string{"-addr", addr, "-prefix", "b2-", "-services", "20", "-clients", "4",
				"-duration", "1h", "-warmup", "0s"}, &out, &errOut)
		}()
		var definedAt int64
		waitFor(t, 30*time.Second, "the bench's services", func() bool {
			ids, _ := benchServices(leader, "b2-")
			s, _ := serviceOn(leader, "b2-000019")
			definedAt = s.LastSeen
			return len(ids) == 20
		})
		waitFor(t, 30*time.Second, "a heartbeat of the load", func() bool {
			s, _ := serviceOn(leader, "b2-000019")
			return s.LastSeen > definedAt
		})
		if _, paging := benchServices(leader, "b2-"); len(paging) > 0 {
			t.Fatalf("bench services with actions: %v", paging)
		}
		cancel() // Ctrl-C
		select {
		case err := <-done:
			if err != nil {
				t.Fatalf("%v\n%s", err, errOut.String())
			}
		case <-time.After(time.Minute):
			t.Fatal("the interrupted bench never returned")
		}
		if ids, _ := benchServices(leader, "b2-"); len(ids) != 0 {
			t.Fatalf("left behind after an interrupt: %v\n%s", ids, errOut.String())
		}
		if !strings.Contains(out.String(), "interrupted") {
			t.Fatalf("report:\n%s", out.String())
		}
	})
}

// BenchmarkHeartbeatThreeNodes posts heartbeats round-robin over the three
// nodes of an in-process cluster, 64 at a time, each answered once
// committed. Compare req/s with BenchmarkNoopHTTPRoundRobin.
func BenchmarkHeartbeatThreeNodes(b *testing.B) {
	file, err := config.ParseConfig(nil, "defaults")
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
