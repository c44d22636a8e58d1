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

// hostileLoad is an attack on a three-node cluster with max_services:
// random ids for services that do not exist, from many clients through all
// nodes, and slowloris connections, while a legitimate service beats every
// 50 ms.
type hostileLoad struct {
	capacity  int // max_services
	ids       int // random ids sent
	attackers int // clients sending them
	slow      int // slowloris connections
}

// TestHostileLoad is the measurement the figures of docs/configuration.md come from: 100 000
// random ids from 32 clients and 50 slowloris connections against
// max_services (WATCHDOG_HOSTILE_LOAD_MAX, default 10000). It prints the
// heap of the process (the three nodes) and the legitimate heartbeats'
// latency before and during the attack, and checks what docs/configuration.md states
// (hostileLoad.run). Run it with
//
//	WATCHDOG_HOSTILE_LOAD=1 go test -run TestHostileLoad -v ./cmd/watchdog
func TestHostileLoad(t *testing.T) {
	if os.Getenv("WATCHDOG_HOSTILE_LOAD") == "" {
		t.Skip("a measurement: set WATCHDOG_HOSTILE_LOAD=1 to run it (TestHostileLoadSmall checks the same at CI size)")
	}
	capacity := 10000
	if v := os.Getenv("WATCHDOG_HOSTILE_LOAD_MAX"); v != "" {
		capacity, _ = strconv.Atoi(v)
	}
	hostileLoad{capacity: capacity, ids: 100_000, attackers: 32, slow: 50}.run(t)
}

// TestHostileLoadSmall is TestHostileLoad at a size CI runs every time:
// the same attack, smaller, and the same checks.
func TestHostileLoadSmall(t *testing.T) {
	hostileLoad{capacity: 300, ids: 3000, attackers: 8, slow: 10}.run(t)
}

// run attacks and checks what docs/configuration.md states: the cluster lets in
// exactly max_services services (the legitimate one and max_services - 1
// random ids) and refuses every other id with 429, every slow client is cut
// off, and no legitimate heartbeat fails. The heap and the latencies are
// measured and printed, not judged.
func (h hostileLoad) run(t *testing.T) {
	file := fileConfig(t, fmt.Sprintf("max_services: %d\nhttp_read_header_timeout: 2s\n", h.capacity))
	c := newTestCluster(t, 3, file)
	leader := c.leader(3)
	nodes := c.running()
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}, Timeout: 15 * time.Second}
	t.Cleanup(client.CloseIdleConnections)
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
	before, failedBefore := legit(stop)
	if failedBefore > 0 {
		t.Fatalf("%d legitimate heartbeats failed before the attack", failedBefore)
	}
	heapBefore := heap()

	// The attack: slowloris connections and random ids.
	var loris atomic.Int64
	for range h.slow {
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
	for range h.attackers {
		attackers.Go(func() {
			for id := range ids {
				code, _ := beat(nodes[rand.IntN(len(nodes))], id)
				mu.Lock()
				codes[code]++
				mu.Unlock()
			}
		})
	}
	for i := range h.ids {
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
	// A slow client is cut off when its headers are late by
	// http_read_header_timeout; it learns so at its next byte.
	waitFor(t, 30*time.Second, "every slow client to be cut off", func() bool { return loris.Load() == int64(h.slow) })
	held := leader.FSM.Len()
	t.Logf("max_services %d: %d random ids in %s: answers %v; services held: %d", h.capacity, h.ids, attack.Round(time.Millisecond), codes, held)
	t.Logf("slowloris connections cut off: %d of %d", loris.Load(), h.slow)
	t.Logf("heap in use (3 nodes, one process): before %.1f MiB, after %.1f MiB (after GC), peak %.1f MiB",
		mib(heapBefore), mib(heapAfter), mib(peak.Load()))
	t.Logf("legit heartbeat latency before: %s", latencies(before))
	t.Logf("legit heartbeat latency during: %s (%d failed)", latencies(during), legitFailed)
	h.check(t, held, codes, legitFailed)
}

// check judges the outcome of run: exactly max_services held, the random
// ids let in answered 200 and every other one 429. An answer that is
// neither (a 503 while leadership moved) leaves its id's fate open, so it
// may stand for either, and is reported.
func (h hostileLoad) check(t *testing.T, held int, codes map[int]int, legitFailed int) {
	t.Helper()
	if held != h.capacity {
		t.Errorf("the cluster holds %d services, want exactly max_services, %d", held, h.capacity)
	}
	admitted := held - 1 // the legitimate service holds one place
	other := h.ids - codes[http.StatusOK] - codes[http.StatusTooManyRequests]
	if other > 0 {
		t.Logf("%d answers neither 200 nor 429: %v", other, codes)
	}
	if ok := codes[http.StatusOK]; ok > admitted || ok+other < admitted {
		t.Errorf("%d random ids answered 200, but %d were let in (%d answers unclear)", ok, admitted, other)
	}
	if refused := codes[http.StatusTooManyRequests]; refused > h.ids-admitted || refused+other < h.ids-admitted {
		t.Errorf("%d random ids refused with 429, want the %d not let in (%d answers unclear)", refused, h.ids-admitted, other)
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
