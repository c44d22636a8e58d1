package cli

import (
	"bytes"
	"context"
	"crypto/tls"
	"strings"
	"testing"
	"time"
)

// cli runs a client command as the binary would, with env as its
// environment, and returns its output and exit status.
func cli(t *testing.T, env map[string]string, cmd Command, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	var out, errOut bytes.Buffer
	e := Env{Stdout: &out, Stderr: &errOut, Getenv: func(k string) string { return env[k] }, Now: time.Now}
	err := cmd(context.Background(), args, e)
	if err != nil {
		errOut.WriteString("watchdog: " + err.Error() + "\n")
	}
	return out.String(), errOut.String(), ExitCode(err)
}

func TestLookupFindsEveryClientCommand(t *testing.T) {
	for _, name := range []string{"ping", "run", "status", "services", "service", "pause", "resume", "delete",
		"members", "leave", "snapshot", "config", "keygen", "version", "-version", "--version"} {
		if Lookup(name) == nil {
			t.Errorf("no command %q", name)
		}
	}
	for _, name := range []string{"agent", "bench", "help", ""} {
		if Lookup(name) != nil {
			t.Errorf("%q is not a client command", name)
		}
	}
}

func TestCLIUsage(t *testing.T) {
	for name, cmd := range map[string]Command{"ping": runPing, "pause": runPause, "resume": runResume,
		"service": runService, "services": runServices, "status": runStatus, "members": runMembers} {
		t.Run(name, func(t *testing.T) {
			_, errOut, code := cli(t, nil, cmd, "-h")
			if code != ExitOK || !strings.Contains(errOut, "Usage: watchdog "+name+" [flags]") ||
				!strings.Contains(errOut, "-addr nodes") || !strings.Contains(errOut, "Exit status:") {
				t.Fatalf("-h: exit %d\n%s", code, errOut)
			}
			for _, args := range [][]string{{"-no-such-flag"}, {"a", "b"}, {"-addr", "ftp://x", "a"}, {"-timeout", "0s", "a"}} {
				if _, errOut, code := cli(t, nil, cmd, args...); code != ExitUsage {
					t.Fatalf("%v: exit %d, want %d\n%s", args, code, ExitUsage, errOut)
				}
			}
		})
	}
	if _, _, code := cli(t, nil, runPing); code != ExitUsage {
		t.Fatalf("ping without an id: exit %d", code)
	}
	if _, _, code := cli(t, nil, runPing, "a b"); code != ExitUsage {
		t.Fatalf("ping with a bad id: exit %d", code)
	}
}

func TestClientAddrs(t *testing.T) {
	const list = " 127.0.0.1:8081, http://n2:8080/ ,,https://lb.example/watchdog/"
	nodes := func(tc *tls.Config) string {
		c, err := newAPIClient(list, tc, "", "")
		if err != nil {
			t.Fatalf("%q: %v", list, err)
		}
		return strings.Join(c.Nodes(), " ")
	}
	if got, want := nodes(nil), "http://127.0.0.1:8081 http://n2:8080 https://lb.example/watchdog"; got != want {
		t.Fatalf("nodes of %q: %q, want %q", list, got, want)
	}
	// With TLS, host:port means https; a URL keeps its scheme.
	if got, want := nodes(&tls.Config{}), "https://127.0.0.1:8081 http://n2:8080 https://lb.example/watchdog"; got != want {
		t.Fatalf("nodes of %q with TLS: %q, want %q", list, got, want)
	}
	for _, bad := range []string{"", " , ", "ftp://x", "http://", "http://h:1/?q=1", "%zz"} {
		c, err := newAPIClient(bad, nil, "", "")
		if err == nil {
			t.Errorf("%q: got %q, want an error", bad, c.Nodes())
		} else if strings.HasPrefix(err.Error(), "watchdog:") {
			t.Errorf("%q: %q: the CLI prints its own prefix", bad, err)
		}
	}
}

func TestShortDurations(t *testing.T) {
	now := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	at := func(d time.Duration) *time.Time { t := now.Add(d); return &t }
	for _, c := range []struct{ got, want string }{
		{ago(nil, now), "never"},
		{ago(at(-350*time.Millisecond), now), "350ms ago"},
		{ago(at(-42*time.Second), now), "42s ago"},
		{ago(at(-(5*time.Minute + 3*time.Second)), now), "5m03s ago"},
		{ago(at(-(3*time.Hour + 7*time.Minute)), now), "3h07m ago"},
		{ago(at(-72*time.Hour), now), "3d ago"},
		{dueIn(nil, now), "-"},
		{dueIn(at(7*time.Second), now), "in 7s"},
		{dueIn(at(-2*time.Second), now), "overdue 2s"},
	} {
		if c.got != c.want {
			t.Errorf("got %q, want %q", c.got, c.want)
		}
	}
}
