package cli

import (
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/watchdog-ha/watchdog/fsm"
	"github.com/watchdog-ha/watchdog/internal/testnet"
)

func TestCLIRunUsage(t *testing.T) {
	for _, args := range [][]string{{"--", "true"}, {"-id", "x"}, {"-id", "..", "--", "true"}} {
		if _, errOut, code := cli(t, nil, runRun, args...); code != ExitUsage {
			t.Fatalf("%v: exit %d, want %d: %s", args, code, ExitUsage, errOut)
		}
	}
}

func TestTailBufferKeepsWholeLastLines(t *testing.T) {
	tb := &tailBuffer{max: 10}
	tb.Write([]byte("first line\nab\ncd\n"))
	if got := string(tb.lines()); got != "ab\ncd\n" {
		t.Fatalf("tail = %q", got)
	}
	big := &tailBuffer{max: fsm.MaxPingNote}
	big.Write([]byte(strings.Repeat("x\n", fsm.MaxPingNote)))
	if n := len(big.lines()); n > fsm.MaxPingNote || n == 0 {
		t.Fatalf("tail of %d bytes", n)
	}
}

// silentAddr is a loopback address that accepts connections and never
// answers, as a node cut off mid-request does.
func silentAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var held []net.Conn
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			held = append(held, conn)
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		<-done
		for _, c := range held {
			c.Close()
		}
	})
	return ln.Addr().String()
}

// A monitoring outage must never become a job outage: without a cluster the
// command still runs, its status is the exit status, and the failed pings
// are on stderr.
func TestCLIRunWithoutClusterStillRunsTheCommand(t *testing.T) {
	for _, tc := range []struct {
		name string
		env  map[string]string
		args []string
	}{
		{"nobody listens", map[string]string{"WATCHDOG_ADDR": testnet.DeadAddr(t)}, []string{"-ping-timeout", "300ms"}},
		{"never answers", map[string]string{"WATCHDOG_ADDR": silentAddr(t), "WATCHDOG_PING_TIMEOUT": "300ms"}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			begin := time.Now()
			args := append(append([]string{"-id", "offline"}, tc.args...), "--", "/bin/sh", "-c", "echo job-ran; exit 7")
			out, errOut, code := cli(t, tc.env, runRun, args...)
			if out != "job-ran\n" || code != 7 {
				t.Fatalf("stdout %q, exit %d: want the command run and its status 7\nstderr:\n%s", out, code, errOut)
			}
			for _, want := range []string{"ping offline/start: cluster unavailable", "running the command anyway", "ping offline/7: cluster unavailable"} {
				if !strings.Contains(errOut, want) {
					t.Fatalf("stderr lacks %q:\n%s", want, errOut)
				}
			}
			// Two pings, each bounded: far less than the 10s of -timeout's default.
			if took := time.Since(begin); took > 8*time.Second {
				t.Fatalf("took %s: the pings are not bounded by the ping timeout", took)
			}
		})
	}
	t.Run("success", func(t *testing.T) {
		env := map[string]string{"WATCHDOG_ADDR": testnet.DeadAddr(t)}
		out, errOut, code := cli(t, env, runRun, "-id", "offline", "-ping-timeout", "200ms", "--", "true")
		if code != 0 {
			t.Fatalf("exit %d, stdout %q, stderr %q", code, out, errOut)
		}
	})
}

func TestCLIRunPingTimeoutSources(t *testing.T) {
	for _, tc := range []struct {
		args []string
		env  string
		want time.Duration
	}{
		{nil, "", defaultPingTimeout},
		{nil, "2s", 2 * time.Second},
		{[]string{"-timeout", "3s"}, "2s", 3 * time.Second},
		{[]string{"-ping-timeout", "1s", "-timeout", "3s"}, "2s", time.Second},
	} {
		f := newCLIFlags(Env{Stderr: io.Discard, Getenv: func(string) string { return tc.env }}, "run", "", "")
		pt := f.Duration("ping-timeout", 0, "")
		if err := f.Parse(tc.args); err != nil {
			t.Fatal(err)
		}
		if err := f.setPingTimeout(*pt); err != nil || f.timeout != tc.want {
			t.Fatalf("%v env %q: %v, %s; want %s", tc.args, tc.env, err, f.timeout, tc.want)
		}
	}
	if _, _, code := cli(t, map[string]string{"WATCHDOG_PING_TIMEOUT": "soon"}, runRun, "-id", "x", "--", "true"); code != ExitUsage {
		t.Fatalf("bad $WATCHDOG_PING_TIMEOUT: exit %d, want %d", code, ExitUsage)
	}
}
