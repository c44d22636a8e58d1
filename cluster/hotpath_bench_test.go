package cluster

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"

	"github.com/watchdog-ha/watchdog/fsm"
)

// The heartbeat path's own work in this package, per batch: what the
// profile of BenchmarkHeartbeatThreeNodes (cmd/watchdog) shows besides
// Raft and net/http. Allocations per op are the figures to compare; they do
// not depend on the load of the machine.
//
//	go test -run '^$' -bench 'FlushBatch|ForwardBody|FlushMetrics' -benchmem ./cluster

// benchIDs are n distinct service ids, as long as typical ones.
func benchIDs(n int) []string {
	ids := make([]string, n)
	for i := range ids {
		ids[i] = fmt.Sprintf("service-%07d", i)
	}
	return ids
}

// BenchmarkFlushBatch is a batch of 64 requests of one id each (one
// repeated), merged and answered, with a flush that does nothing.
func BenchmarkFlushBatch(b *testing.B) {
	ids := benchIDs(64)
	ids[63] = ids[0]
	batch := make([]*batchReq, len(ids))
	for i := range batch {
		batch[i] = &batchReq{ids: ids[i : i+1], done: make(chan error, 1)}
	}
	bt := newBatcher(batchPolicy{max: 4096, fill: 4096}, func(context.Context, []string) error { return nil })
	ctx := context.Background()
	b.ReportAllocs()
	for range b.N {
		bt.flushBatch(ctx, batch)
		for _, r := range batch {
			<-r.done
		}
	}
}

// BenchmarkForwardBody is a batch of 64 ids written by the follower and
// read by the leader.
func BenchmarkForwardBody(b *testing.B) {
	ids := benchIDs(64)
	b.Run("write", func(b *testing.B) {
		b.ReportAllocs()
		for range b.N {
			forwardBody(ids)
		}
	})
	b.Run("parse", func(b *testing.B) {
		body := []byte(forwardBody(ids))
		b.ReportAllocs()
		for range b.N {
			if _, err := parseForwardBody(body, 4096); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkFlushMetrics is the metrics' wrappers of a leader's and a
// follower's flush, around a flush that succeeds.
func BenchmarkFlushMetrics(b *testing.B) {
	m := newMetrics()
	ids := benchIDs(64)
	ctx := context.Background()
	nop := func(context.Context, []string) error { return nil }
	for name, f := range map[string]flushFunc{"committing": m.committing(nop), "forwarding": m.forwarding(nop)} {
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			for range b.N {
				f(ctx, ids)
			}
		})
	}
}

// parseForwardBodyBefore is parseForwardBody as it was before it sliced
// one string: what the leader accepts, and its errors, must not change.
func parseForwardBodyBefore(body []byte, maxIDs int) ([]string, error) {
	body = bytes.TrimSuffix(body, []byte("\n"))
	if len(body) == 0 {
		return nil, errors.New("no service ids")
	}
	if n := bytes.Count(body, []byte("\n")) + 1; n > maxIDs {
		return nil, fmt.Errorf("%w: %d ids, at most %d (batch_size)", errBatchTooLarge, n, maxIDs)
	}
	ids := make([]string, 0, bytes.Count(body, []byte("\n"))+1)
	for i, line := range bytes.Split(body, []byte("\n")) {
		id := string(bytes.TrimSuffix(line, []byte("\r")))
		if !fsm.ValidID(id) {
			return nil, fmt.Errorf("line %d: invalid service id %s", i+1, fsm.QuoteInput(id))
		}
		ids = append(ids, id)
	}
	return ids, nil
}

func FuzzParseForwardBody(f *testing.F) {
	for _, s := range []string{"a", "a\n", "a\nb", "a\r\nb\r\n", "a\n\nb", "\n", "", "a\nb\nc\nd", "a b", "a\r", "\r\n", "a\n\n", "..\nx"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		got, err := parseForwardBody(body, 3)
		want, wantErr := parseForwardBodyBefore(body, 3)
		if fmt.Sprint(err) != fmt.Sprint(wantErr) || errors.Is(err, errBatchTooLarge) != errors.Is(wantErr, errBatchTooLarge) ||
			!slices.Equal(got, want) {
			t.Fatalf("%q: %q, %v; before: %q, %v", body, got, err, want, wantErr)
		}
	})
}

// BenchmarkSubmitOne is one heartbeat's trip through a running batcher
// whose flush does nothing: the request's own allocations, and a batch's.
func BenchmarkSubmitOne(b *testing.B) {
	bt := newBatcher(batchPolicy{max: 4096, fill: 1}, func(context.Context, []string) error { return nil })
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { bt.run(ctx); close(done) }()
	defer func() { cancel(); <-done }()
	id := "service-0000001"
	b.ReportAllocs()
	for range b.N {
		if err := bt.submit(ctx, []string{id}); err != nil {
			b.Fatal(err)
		}
	}
}
