package loadgen

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"
)

// What a heartbeat costs the servers that take it: `watchdog bench -cpu-pids`
// reads the CPU time (user + system) of each server process from
// /proc/<pid>/stat at the start and at the end of the measured window, and
// reports it in cores and per acknowledged request. The generator's own
// CPU is not counted: it is what a user's services would spend anyway.

// clockTicks is the unit of /proc/<pid>/stat's times (USER_HZ), which Linux
// fixes at 100 for user space on every architecture Go supports.
const clockTicks = 100

// cpuFlag is the -cpu-pids flag: process ids, comma-separated.
type cpuFlag []int

func (f *cpuFlag) String() string {
	parts := make([]string, len(*f))
	for i, p := range *f {
		parts[i] = strconv.Itoa(p)
	}
	return strings.Join(parts, ",")
}

func (f *cpuFlag) Set(s string) error {
	*f = nil
	for _, p := range strings.Split(s, ",") {
		pid, err := strconv.Atoi(strings.TrimSpace(p))
		if err != nil || pid < 1 {
			return fmt.Errorf("%q: want process ids, comma-separated", s)
		}
		*f = append(*f, pid)
	}
	return nil
}

func addCPUFlag(fs *flag.FlagSet, f *cpuFlag) {
	fs.Var(f, "cpu-pids", "`pids` of the server processes (comma-separated) whose CPU time over the\n"+
		"measured window is reported, in cores and per ok answer (Linux /proc)")
}

// procCPU is the CPU time pid has used so far: utime + stime.
func procCPU(pid int) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, fmt.Errorf("cpu of pid %d: %w", pid, err)
	}
	// The command name, in parentheses, may hold spaces: fields count
	// from the last ')'. utime and stime are fields 14 and 15.
	end := bytes.LastIndexByte(b, ')')
	if end < 0 {
		return 0, fmt.Errorf("cpu of pid %d: unreadable /proc stat", pid)
	}
	fields := strings.Fields(string(b[end+1:]))
	if len(fields) < 13 {
		return 0, fmt.Errorf("cpu of pid %d: unreadable /proc stat", pid)
	}
	var ticks int64
	for _, f := range fields[11:13] {
		n, err := strconv.ParseInt(f, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("cpu of pid %d: %w", pid, err)
		}
		ticks += n
	}
	return time.Duration(ticks) * time.Second / clockTicks, nil
}

func procsCPU(pids []int) (time.Duration, error) {
	var total time.Duration
	for _, pid := range pids {
		d, err := procCPU(pid)
		if err != nil {
			return 0, err
		}
		total += d
	}
	return total, nil
}

// cpuWindow measures the processes' CPU over [from, from+d).
type cpuWindow struct {
	done chan struct{}
	used time.Duration
	err  error
	d    time.Duration
}

func watchCPU(ctx context.Context, pids []int, from time.Time, d time.Duration) *cpuWindow {
	w := &cpuWindow{done: make(chan struct{}), d: d}
	go func() {
		defer close(w.done)
		wait := func(until time.Time) bool {
			t := time.NewTimer(time.Until(until))
			defer t.Stop()
			select {
			case <-t.C:
				return true
			case <-ctx.Done():
				return false
			}
		}
		if !wait(from) {
			w.err = ctx.Err()
			return
		}
		start, err := procsCPU(pids)
		if err != nil {
			w.err = err
			return
		}
		if !wait(from.Add(d)) {
			w.err = ctx.Err()
			return
		}
		end, err := procsCPU(pids)
		w.used, w.err = end-start, err
	}()
	return w
}

// cpuJSON is what -json adds with -cpu-pids.
type cpuJSON struct {
	CPUCores   float64 `json:"cpu_cores"`
	CPUMsPerOK float64 `json:"cpu_ms_per_ok"`
}

// result waits for the window to close; ok is the acknowledged requests in it.
func (w *cpuWindow) result(ok uint64) (cpuJSON, error) {
	<-w.done
	if w.err != nil {
		return cpuJSON{}, w.err
	}
	out := cpuJSON{CPUCores: w.used.Seconds() / w.d.Seconds()}
	if ok > 0 {
		out.CPUMsPerOK = ms(w.used) / float64(ok)
	}
	return out, nil
}

// runBenchCPU is a run of the load with the servers' CPU measured beside it.
func runBenchCPU(ctx context.Context, opts *benchOptions, stdout io.Writer) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	cpu := watchCPU(ctx, opts.CPUPids, time.Now().Add(opts.Warmup), opts.Duration)
	res, err := runLoad(ctx, &opts.benchConfig)
	if err != nil {
		return err
	}
	c, err := cpu.result(res.OK)
	if err != nil && !errors.Is(err, context.Canceled) {
		return err
	}
	if opts.JSON {
		return json.NewEncoder(stdout).Encode(struct {
			benchJSON
			cpuJSON
		}{benchReport(&opts.benchConfig, res), c})
	}
	printBench(stdout, &opts.benchConfig, res, ctx.Err() != nil)
	fmt.Fprintf(stdout, "server cpu  %.3f cores, %.3f ms per ok answer (pids %s)\n", c.CPUCores, c.CPUMsPerOK, opts.CPUPids.String())
	return nil
}
