package watcher

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/watchdog-ha/watchdog/cluster"
	"github.com/watchdog-ha/watchdog/fsm"
)

// BenchmarkDetection100k measures how late the leader notices deadlines at
// 100 000 services: from each service's deadline (last heartbeat + timeout)
// to the time stamped on its incident. The services are heartbeated in
// entries of 1000 as fast as they commit, which spreads their deadlines.
func BenchmarkDetection100k(b *testing.B) {
	const services, timeout = 100_000, 3 * time.Second
	for range b.N {
		f := fsm.New()
		node, err := cluster.New(cluster.Config{NodeID: "solo", RaftAddr: "127.0.0.1:0", GossipAddr: "127.0.0.1:0",
			HTTPAddr: "127.0.0.1:1", DataDir: b.TempDir(), BootstrapExpect: 1, FSM: f})
		if err != nil {
			b.Fatal(err)
		}
		node.Start(nil)
		waitFor(b, 10*time.Second, "the node to lead", func() bool { return node.Ready() == nil && node.IsLeader() })
		ctx := context.Background()
		if _, err := node.Apply(ctx, fsm.Configure{Defaults: fsm.Definition{Timeout: timeout}}); err != nil {
			b.Fatal(err)
		}
		w := New(Config{}, f, node) // the default check interval
		wctx, stop := context.WithCancel(ctx)
		done := make(chan struct{})
		go func() { defer close(done); w.Run(wctx, time.Now()) }()
		for start := 0; start < services; start += 1000 {
			ids := make([]string, 0, 1000)
			for i := start; i < start+1000; i++ {
				ids = append(ids, fmt.Sprintf("svc-%06d", i))
			}
			if _, err := node.Apply(ctx, fsm.Heartbeat{At: time.Now().UnixNano(), IDs: ids}); err != nil {
				b.Fatal(err)
			}
		}
		// Looking up the last service heartbeated until it is down, not
		// copying and sorting all 100 000 every 10 ms: that took a core and
		// the state's lock from the watcher it measures.
		last := fmt.Sprintf("svc-%06d", services-1)
		waitFor(b, time.Minute, "every service to be down", func() bool {
			if s, ok := f.Service(last); !ok || s.Status != fsm.StatusDown {
				return false
			}
			return len(f.PendingActions()) == 0 && allDown(f)
		})
		stop()
		<-done
		reportDelays(b, f, timeout)
		node.Close()
	}
}

func allDown(f *fsm.FSM) bool {
	for _, s := range f.Services() {
		if s.Status != fsm.StatusDown {
			return false
		}
	}
	return true
}

func reportDelays(b *testing.B, f *fsm.FSM, timeout time.Duration) {
	var delays []time.Duration
	early := 0
	for _, s := range f.Services() {
		inc := s.Current()
		d := time.Duration(inc.Opened - inc.LastSeen - int64(timeout))
		if d < 0 {
			early++
		}
		delays = append(delays, d)
	}
	slices.Sort(delays)
	at := func(q float64) float64 { return float64(delays[int(q*float64(len(delays)-1))].Microseconds()) / 1000 }
	b.ReportMetric(at(0.5), "p50-ms")
	b.ReportMetric(at(0.99), "p99-ms")
	b.ReportMetric(float64(delays[len(delays)-1].Microseconds())/1000, "max-ms")
	b.ReportMetric(float64(early), "early")
	if early > 0 {
		b.Errorf("%d services detected before their deadline", early)
	}
}
