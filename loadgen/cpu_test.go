package loadgen

import (
	"os"
	"testing"
	"time"
)

func TestCPUPidsFlag(t *testing.T) {
	var f cpuFlag
	if err := f.Set("12, 34,56"); err != nil || f.String() != "12,34,56" {
		t.Fatalf("Set: %v, %q", err, f.String())
	}
	for _, bad := range []string{"", "12,,3", "x", "0", "-4"} {
		if err := f.Set(bad); err == nil {
			t.Errorf("-cpu-pids %q accepted", bad)
		}
	}
}

// The CPU this process burns shows in what procCPU reads of it.
func TestProcCPUCountsWhatAProcessBurns(t *testing.T) {
	before, err := procCPU(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	x := 0
	for start := time.Now(); time.Since(start) < 300*time.Millisecond; {
		x++
	}
	after, err := procCPU(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if after-before < 10*time.Millisecond {
		t.Fatalf("300ms of busy loop (%d turns) read as %s of CPU", x, after-before)
	}
	if _, err := procCPU(1 << 30); err == nil {
		t.Fatal("a pid that does not exist has a CPU time")
	}
}
