package main

import (
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestHostileLoad is a measurement, not a pass/fail check of timing: a
// three-node cluster with max_services (WATCHDOG_HOSTILE_LOAD_MAX, default
// 10000) takes 100 000 heartbeats for random ids through all its nodes, and
// slowloris clients, while a legitimate service beats every 50 ms. It prints
// the heap of the process (the three nodes) and the legitimate heartbeats'
// latency before and during the attack. Run it with
//
//	WATCHDOG_HOSTILE_LOAD=1 go test -run TestHostileLoad -v ./cmd/watchdog
//
// It fails only if the cap is not held or the legitimate heartbeats fail.
func TestHostileLoad(t *testing.T) {
	if os.Getenv("WATCHDOG_HOSTILE_LOAD") == "" {
		t.Skip("a measurement: set WATCHDOG_HOSTILE_LOAD=1 to run it")
	}
	capacity := 10000
	if v := os.Getenv("WATCHDOG_HOSTILE_LOAD_MAX"); v != "" {
		capacity, _ = strconv.Atoi(v)
	}
	file := fileConfig(t, fmt.Sprintf("max_services: %d\nhttp_read_header_timeout: 2s\n", capacity))
	c := newTestCluster(t, 3, file)
	leader := c.leader(3)
	nodes := c.running()
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}, Timeout: 15 * time.Second}
	beat := func(a *Agent, id string) (int, time.Duration) {
		start := time.Now()
		resp, err := client.Post("http://"+a.Addr+"/v1/heartbeat/"+id, "text/plain", nil)
		if err != nil {
			return 0, time.Since(start)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode, time.Since(start)
	}
	legit := func(stop <-chan struct{}) (lat []time.Duration, failed int) {
		tick := time.NewTicker(50 * time.Millisecond)
		defer tick.Stop()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return lat, failed
			case <-tick.C:
			}
			code, d := beat(nodes[i%len(nodes)], "legit")
			if code != http.StatusOK {
				failed++
			}
			lat = append(lat, d)
		}
	}
	heap := func() uint64 {
		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		return ms.HeapInuse
	}

	stop := make(chan struct{})
	time.AfterFunc(3*time.Second, func() { close(stop) })
	before, _ := legit(stop)
	heapBefore := heap()

	// The attack: slowloris connections and 100 000 random ids.
	var loris atomic.Int64
	for range 50 {
		conn, err := net.Dial("tcp", nodes[rand.IntN(len(nodes))].Addr)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { conn.Close() })
		go func() {
			if dribble(conn, "GET /v1/services HTTP/1.1\r\nX-Slow: "+strings.Repeat("z", 1000), 200*time.Millisecond) {
				loris.Add(1)
			}
		}()
	}
	var peak atomic.Uint64
	sampling := make(chan struct{})
	go func() {
		for {
			select {
			case <-sampling:
				return
			case <-time.After(100 * time.Millisecond):
			}
			var ms runtime.MemStats
			runtime.ReadMemStats(&ms)
			if ms.HeapInuse > peak.Load() {
				peak.Store(ms.HeapInuse)
			}
		}
	}()
	stopLegit := make(chan struct{})
	var during []time.Duration
	var legitFailed int
	var legitDone sync.WaitGroup
	legitDone.Go(func() { during, legitFailed = legit(stopLegit) })
	codes := make(map[int]int)
	var mu sync.Mutex
	ids := make(chan string)
	var attackers sync.WaitGroup
	start := time.Now()
	for range 32 {
		attackers.Go(func() {
			for id := range ids {
				code, _ := beat(nodes[rand.IntN(len(nodes))], id)
				mu.Lock()
				codes[code]++
				mu.Unlock()
			}
		})
	}
	for i := range 100_000 {
		ids <- fmt.Sprintf("rnd-%016x-%d", rand.Uint64(), i)
	}
	close(ids)
	attackers.Wait()
	attack := time.Since(start)
	close(stopLegit)
	legitDone.Wait()
	close(sampling)
	heapAfter := heap()

	for _, a := range nodes {
		waitFor(t, 30*time.Second, "every node caught up", func() bool { return a.FSM.Len() == leader.FSM.Len() })
	}
	t.Logf("max_services %d: 100000 random ids in %s: answers %v; services held: %d", capacity, attack.Round(time.Millisecond), codes, leader.FSM.Len())
	t.Logf("slowloris connections cut off: %d of 50", loris.Load())
	t.Logf("heap in use (3 nodes, one process): before %.1f MiB, after %.1f MiB (after GC), peak %.1f MiB",
		mib(heapBefore), mib(heapAfter), mib(peak.Load()))
	t.Logf("legit heartbeat latency before: %s", latencies(before))
	t.Logf("legit heartbeat latency during: %s (%d failed)", latencies(during), legitFailed)
	if capacity > 0 && leader.FSM.Len() > capacity {
		t.Errorf("the cluster holds %d services, over max_services %d", leader.FSM.Len(), capacity)
	}
	if legitFailed > 0 {
		t.Errorf("%d legitimate heartbeats failed during the attack", legitFailed)
	}
}

func mib(b uint64) float64 { return float64(b) / (1 << 20) }

func latencies(d []time.Duration) string {
	if len(d) == 0 {
		return "none"
	}
	s := slices.Clone(d)
	slices.Sort(s)
	q := func(p float64) time.Duration {
		return s[min(len(s)-1, int(p*float64(len(s))))].Round(100 * time.Microsecond)
	}
	return fmt.Sprintf("n=%d p50 %s p90 %s p99 %s max %s", len(s), q(0.5), q(0.9), q(0.99), s[len(s)-1].Round(100*time.Microsecond))
}
