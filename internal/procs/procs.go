package procs

import (
	"context"
	"log/slog"
	"math"
	"runtime"
	"time"
)

// Policy is when the runtime gets more cores, and when it gives them back.
type Policy struct {
	Every time.Duration // how often the process's CPU use is read
	Up    float64       // cores used over a reading at which every core is taken
	Down  float64       // cores used below which, Hold readings in a row, one is enough
	Hold  int
	Max   int // cores when busy
}

// DefaultPolicy takes every core within a second of the node using three
// quarters of one, and goes back to one after ten seconds under a third:
// the gap keeps a load near either bound from switching back and forth
// (on more cores the same load reads higher: their threads spin for work).
func DefaultPolicy() Policy {
	return Policy{Every: time.Second, Up: 0.75, Down: 0.35, Hold: 10, Max: runtime.NumCPU()}
}

// Adapt runs DefaultPolicy on this process until ctx ends, starting on one
// core, unless the operator set GOMAXPROCS (getenv), there is only one core
// or the process's CPU use cannot be read here; it reports whether it runs.
// Why: on more cores, each goroutine woken (a request, a Raft message, a
// timer) wakes an idle thread that spins looking for work; at the rates a
// watchdog mostly sees, that spinning was a quarter of the node's CPU.
func Adapt(ctx context.Context, getenv func(string) string, log *slog.Logger) bool {
	p := DefaultPolicy()
	if _, ok := cpuTime(); !ok || getenv("GOMAXPROCS") != "" || p.Max < 2 {
		log.Debug("cores: left as they are", "GOMAXPROCS", getenv("GOMAXPROCS"), "cores", p.Max)
		return false
	}
	go run(ctx, p, log)
	return true
}

// run is Adapt's loop.
func run(ctx context.Context, p Policy, log *slog.Logger) {
	used, _ := cpuTime() // Adapt has read it once
	runtime.GOMAXPROCS(1)
	tick := time.NewTicker(p.Every)
	defer tick.Stop()
	at, low := time.Now(), 0
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-tick.C:
			cpu, ok := cpuTime()
			if !ok {
				continue // a reading missed: the next one covers both
			}
			cores := float64(cpu-used) / float64(now.Sub(at))
			used, at = cpu, now
			low = step(p, cores, low, log)
		}
	}
}

// step applies one reading of cores used; low counts the readings in a row
// under p.Down while busy.
func step(p Policy, cores float64, low int, log *slog.Logger) int {
	switch busy := runtime.GOMAXPROCS(0) > 1; {
	case !busy && cores >= p.Up:
		runtime.GOMAXPROCS(p.Max)
		log.Info("cores: busy, using every core", "cores", p.Max, "used", round(cores))
		return 0
	case busy && cores < p.Down:
		if low+1 < p.Hold {
			return low + 1
		}
		runtime.GOMAXPROCS(1)
		log.Info("cores: quiet again, using one core", "used", round(cores))
	}
	return 0
}

func round(f float64) float64 { return math.Round(f*100) / 100 }
