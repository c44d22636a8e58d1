package fsm

import (
	"bytes"
	"fmt"
	"io"
	"runtime"
	"testing"
	"time"

	"github.com/hashicorp/raft"
)

// populated returns an FSM with n services on the defaults, heartbeating in
// entries of 256 as group commit would produce them.
func populated(b *testing.B, n int) *FSM {
	b.Helper()
	f := New()
	ids := make([]string, 0, 256)
	index := uint64(0)
	flush := func() {
		data, _ := Encode(Heartbeat{At: time.Now().UnixNano(), IDs: ids})
		index++
		f.Apply(&raft.Log{Index: index, Type: raft.LogCommand, Data: data})
		ids = ids[:0]
	}
	for i := range n {
		ids = append(ids, fmt.Sprintf("service-%07d", i))
		if len(ids) == cap(ids) {
			flush()
		}
	}
	if len(ids) > 0 {
		flush()
	}
	return f
}

func heapInUse() uint64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

// BenchmarkHeapPerService reports the heap cost of each tracked service.
func BenchmarkHeapPerService(b *testing.B) {
	for _, n := range []int{100_000, 1_000_000} {
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			for range b.N {
				before := heapInUse()
				f := populated(b, n)
				after := heapInUse()
				b.ReportMetric(float64(after-before)/float64(n), "B/service")
				runtime.KeepAlive(f)
			}
		})
	}
}

// BenchmarkApplyHeartbeatBatch applies entries of 256 heartbeats to known
// services, the steady state under load.
func BenchmarkApplyHeartbeatBatch(b *testing.B) {
	const n = 100_000
	f := populated(b, n)
	var entries [][]byte
	for start := 0; start < n; start += 256 {
		ids := make([]string, 0, 256)
		for i := start; i < start+256 && i < n; i++ {
			ids = append(ids, fmt.Sprintf("service-%07d", i))
		}
		data, _ := Encode(Heartbeat{At: time.Now().UnixNano(), IDs: ids})
		entries = append(entries, data)
	}
	b.ResetTimer()
	for i := range b.N {
		f.Apply(&raft.Log{Index: uint64(i + 1e6), Type: raft.LogCommand, Data: entries[i%len(entries)]})
	}
	b.ReportMetric(float64(b.N*256)/b.Elapsed().Seconds(), "heartbeats/s")
}

// BenchmarkOverdueNothingDue is the watcher's tick at 100 000 services.
func BenchmarkOverdueNothingDue(b *testing.B) {
	f := populated(b, 100_000)
	now := time.Now()
	b.ResetTimer()
	for range b.N {
		if due, _ := f.Overdue(now, time.Time{}); len(due) != 0 {
			b.Fatal("something due")
		}
	}
}

// BenchmarkSnapshot1M persists and restores a million services.
func BenchmarkSnapshot1M(b *testing.B) {
	f := populated(b, 1_000_000)
	for range b.N {
		start := time.Now()
		snap, err := f.Snapshot()
		if err != nil {
			b.Fatal(err)
		}
		held := time.Since(start)
		sink := &memSink{}
		if err := snap.Persist(sink); err != nil {
			b.Fatal(err)
		}
		persisted := time.Since(start)
		size := sink.Len()
		start = time.Now()
		g := New()
		if err := g.Restore(io.NopCloser(bytes.NewReader(sink.Bytes()))); err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(float64(held.Milliseconds()), "ms-apply-held")
		b.ReportMetric(persisted.Seconds(), "s-persist")
		b.ReportMetric(time.Since(start).Seconds(), "s-restore")
		b.ReportMetric(float64(size)/1e6, "MB")
	}
}

// BenchmarkCommandProtocol is the leader's protocol gate, asked on every
// proposal: of a table built per call (the package function) and of one
// built once and held (KindTable, as cluster.Node does).
func BenchmarkCommandProtocol(b *testing.B) {
	var hb Command = Heartbeat{At: 1, IDs: []string{"a"}} // an interface already, as the gate is handed
	b.Run("per-call", func(b *testing.B) {
		b.ReportAllocs()
		for range b.N {
			CommandProtocol(hb)
		}
	})
	b.Run("held", func(b *testing.B) {
		t := NewKindTable()
		b.ReportAllocs()
		for range b.N {
			t.CommandProtocol(hb)
		}
	})
}

// BenchmarkDecodeHeartbeat reads an entry of 64 heartbeats, as every node
// does for every entry before applying it.
func BenchmarkDecodeHeartbeat(b *testing.B) {
	ids := make([]string, 64)
	for i := range ids {
		ids[i] = fmt.Sprintf("service-%07d", i)
	}
	data, err := Encode(Heartbeat{At: time.Now().UnixNano(), IDs: ids})
	if err != nil {
		b.Fatal(err)
	}
	t := commandKinds()
	b.ReportAllocs()
	for range b.N {
		if _, err := t.decode(data); err != nil {
			b.Fatal(err)
		}
	}
}
