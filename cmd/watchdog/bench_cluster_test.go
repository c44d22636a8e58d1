package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/watchdog-ha/watchdog/config"
	"github.com/watchdog-ha/watchdog/loadgen"
)

// runningBench is `watchdog bench` running in the background until stop.
type runningBench struct {
	cancel      context.CancelFunc
	done        chan error
	out, errOut bytes.Buffer // read once done
}

func startBench(t *testing.T, args ...string) *runningBench {
	ctx, cancel := context.WithCancel(t.Context())
	t.Cleanup(cancel)
	b := &runningBench{cancel: cancel, done: make(chan error, 1)}
	go func() { b.done <- loadgen.Run(ctx, args, &b.out, &b.errOut) }()
	return b
}

// stop interrupts the bench, as Ctrl-C does, and returns its outputs once
// it has ended (deleting its services first).
func (b *runningBench) stop(t *testing.T) (stdout, stderr string) {
	t.Helper()
	b.cancel()
	select {
	case err := <-b.done:
		if err != nil {
			t.Fatalf("%v\n%s", err, b.errOut.String())
		}
	case <-time.After(time.Minute):
		t.Fatal("the interrupted bench never returned")
	}
	return b.out.String(), b.errOut.String()
}

// TestBenchAgainstAWatchdog drives a real one-node watchdog on each route
// until every service of the bench has taken a heartbeat of the load:
// every heartbeat is answered 200, and none is for a service beyond them.
func TestBenchAgainstAWatchdog(t *testing.T) {
	c := newTestCluster(t, 1, fileConfig(t, ""))
	a := c.leader(1)
	for _, route := range []string{"v1", "query"} {
		// Two clients, ten services: client 0 sends the even ids, client 1
		// the odd ones, so five requests each cover them all.
		prefix := "bench-" + route + "-"
		b := startBench(t, "-addr", a.Addr, "-route", route, "-prefix", prefix, "-services", "10", "-clients", "2",
			"-duration", "1h", "-warmup", "0s", "-json")
		for i := range 10 {
			id := fmt.Sprintf("%s%06d", prefix, i)
			var definedAt int64
			waitFor(t, 30*time.Second, id+" defined by the bench", func() bool {
				s, ok := serviceOn(a, id)
				definedAt = s.LastSeen
				return ok
			})
			waitFor(t, 30*time.Second, "a heartbeat of the load to "+id, func() bool {
				s, _ := serviceOn(a, id)
				return s.LastSeen > definedAt
			})
		}
		if _, ok := serviceOn(a, prefix+"000010"); ok {
			t.Errorf("%s000010 exists: the bench sent more than its 10 services", prefix)
		}
		out, errOut := b.stop(t)
		var rep struct {
			Requests    uint64            `json:"requests"`
			OK          uint64            `json:"ok"`
			ErrorsTotal uint64            `json:"errors_total"`
			Errors      map[string]uint64 `json:"errors"`
		}
		if err := json.Unmarshal([]byte(out), &rep); err != nil {
			t.Fatalf("%v in %s\n%s", err, out, errOut)
		}
		if rep.Requests == 0 || rep.OK != rep.Requests || rep.ErrorsTotal != 0 {
			t.Fatalf("%s: %d requests, %d ok, errors %v", route, rep.Requests, rep.OK, rep.Errors)
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
		err := loadgen.Run(t.Context(), []string{"-addr", addr, "-prefix", "b1-", "-services", "20", "-clients", "4",
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
		b := startBench(t, "-addr", addr, "-prefix", "b2-", "-services", "20", "-clients", "4",
			"-duration", "1h", "-warmup", "0s")
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
		out, errOut := b.stop(t) // Ctrl-C
		if ids, _ := benchServices(leader, "b2-"); len(ids) != 0 {
			t.Fatalf("left behind after an interrupt: %v\n%s", ids, errOut)
		}
		if !strings.Contains(out, "interrupted") {
			t.Fatalf("report:\n%s", out)
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
		addrs = append(addrs, startNoopServer(b))
	}
	b.Run("roundrobin", func(b *testing.B) { benchRoundRobin(b, addrs) })
}

// startNoopServer runs `watchdog bench -noop-server` on a free port until
// the benchmark ends, and returns its address.
func startNoopServer(b *testing.B) string {
	ctx, cancel := context.WithCancel(b.Context())
	listening := &lineWriter{ch: make(chan string, 1)}
	done := make(chan error, 1)
	go func() { done <- loadgen.Run(ctx, []string{"-noop-server", "127.0.0.1:0"}, io.Discard, listening) }()
	b.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			b.Errorf("noop server: %v", err)
		}
	})
	select {
	case line := <-listening.ch:
		return strings.TrimSpace(strings.TrimPrefix(line, "noop server listening on "))
	case err := <-done:
		done <- err // for the cleanup
		b.Fatalf("noop server ended before it listened: %v", err)
	}
	return ""
}

// lineWriter hands each write to a channel, so a test can wait for output.
type lineWriter struct{ ch chan string }

func (w *lineWriter) Write(p []byte) (int, error) {
	select {
	case w.ch <- string(p):
	default:
	}
	return len(p), nil
}

// benchServiceID is the id of service i of a benchmark.
func benchServiceID(i int) string { return fmt.Sprintf("bench-%06d", i) }

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
