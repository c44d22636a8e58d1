package procs

import (
	"context"
	"log/slog"
	"runtime"
	"sync/atomic"
	"testing"
	"time"
)

func quiet() *slog.Logger { return slog.New(slog.DiscardHandler) }

// waitProcs polls until the runtime has want cores.
func waitProcs(t *testing.T, want int, what string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for runtime.GOMAXPROCS(0) != want {
		if time.Now().After(deadline) {
			t.Fatalf("%s: GOMAXPROCS is %d after 30s, want %d", what, runtime.GOMAXPROCS(0), want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// The runtime starts on one core, takes every core while the process
// burns CPU, and gives them back once it is quiet: the real process's CPU
// use, read as Adapt reads it (bounds low enough for a loaded machine).
func TestOneCoreWhenQuietEveryCoreWhenBusy(t *testing.T) {
	if runtime.NumCPU() < 2 {
		t.Skip("one core: nothing to adapt")
	}
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(0))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	p := Policy{Every: 100 * time.Millisecond, Up: 0.3, Down: 0.1, Hold: 3, Max: 2}
	go run(ctx, p, quiet())
	waitProcs(t, 1, "at the start")

	var stop atomic.Bool
	defer stop.Store(true)
	go func() {
		for n := 0; !stop.Load(); n++ {
			_ = n * n
		}
	}()
	waitProcs(t, 2, "while burning a core")
	stop.Store(true)
	waitProcs(t, 1, "once quiet")
}

// An operator's GOMAXPROCS is left alone.
func TestAnOperatorsGOMAXPROCSIsKept(t *testing.T) {
	before := runtime.GOMAXPROCS(0)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	started := Adapt(ctx, func(k string) string {
		if k == "GOMAXPROCS" {
			return "2"
		}
		return ""
	}, quiet())
	if started {
		t.Fatal("Adapt runs though the environment sets GOMAXPROCS")
	}
	if got := runtime.GOMAXPROCS(0); got != before {
		t.Fatalf("GOMAXPROCS went from %d to %d though the environment set it", before, got)
	}
}

// A load between the bounds changes nothing; a quiet spell must last Hold
// readings before one core is enough again.
func TestStepHoldsBetweenTheBounds(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(0))
	p := Policy{Up: 0.75, Down: 0.35, Hold: 3, Max: 2}
	runtime.GOMAXPROCS(1)
	if step(p, 0.5, 0, quiet()); runtime.GOMAXPROCS(0) != 1 {
		t.Fatal("0.5 cores on one took more")
	}
	step(p, 0.8, 0, quiet())
	if runtime.GOMAXPROCS(0) != 2 {
		t.Fatal("0.8 cores on one did not take every core")
	}
	low := 0
	for i := range 2 {
		if low = step(p, 0.1, low, quiet()); runtime.GOMAXPROCS(0) != 2 {
			t.Fatalf("gave the cores back after %d quiet readings, want %d", i+1, p.Hold)
		}
	}
	if low = step(p, 0.5, low, quiet()); low != 0 {
		t.Fatal("a busy reading did not restart the quiet count")
	}
	for range 3 {
		low = step(p, 0.1, low, quiet())
	}
	if runtime.GOMAXPROCS(0) != 1 {
		t.Fatal("still on every core after Hold quiet readings")
	}
}
