package watcher

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"os/exec"
	"strconv"
	"syscall"
	"time"

	"github.com/watchdog-ha/watchdog/fsm"
)

// Exec runs a program, directly and never through a shell: its argv comes
// from the operator's configuration only, and the event reaches it through
// environment variables, so nothing from the network becomes part of a command.
type Exec struct {
	Argv    []string
	Timeout time.Duration
	Log     *slog.Logger
}

// maxOutput bounds how much of an action's output is logged.
const maxOutput = 16 << 10

// Run implements Action.
func (e Exec) Run(ctx context.Context, ev Event) error {
	ctx, cancel := context.WithTimeout(ctx, e.Timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, e.Argv[0], e.Argv[1:]...)
	cmd.Env = ExecEnv(ev)
	// Its own process group, so a timeout kills whatever it started too.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = time.Second
	var out capped
	cmd.Stdout, cmd.Stderr = &out, &out
	start := time.Now()
	err := cmd.Run()
	e.Log.Info("ran exec action", "argv", e.Argv, "service", ev.Service, "event", ev.Kind,
		"took", time.Since(start).Round(time.Millisecond), "err", err, "output", out.String())
	if ctx.Err() == context.DeadlineExceeded {
		return fmt.Errorf("%s: timed out after %s", e.Argv[0], e.Timeout)
	}
	if err != nil {
		return fmt.Errorf("%s: %w", e.Argv[0], err)
	}
	return nil
}

// ExecPath is the PATH an exec action runs with: the system's directories,
// whatever the agent's own PATH holds.
const ExecPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// ExecEnv is the whole environment of an exec action: ExecPath and the
// event, nothing of the agent's own environment (which holds
// WATCHDOG_CONFIG, WATCHDOG_DATA and whatever else its operator set). Every
// variable is always set, empty when it does not apply. docs/configuration.md
// lists them; keep the two in step.
func ExecEnv(ev Event) []string {
	opt := func(set bool, v string) string {
		if !set {
			return ""
		}
		return v
	}
	recovered := ev.Kind == fsm.EventRecovered
	known := !ev.DownSince.IsZero()
	return []string{
		"PATH=" + ExecPath,
		"WATCHDOG_SERVICE_ID=" + ev.Service,
		"WATCHDOG_EVENT=" + string(ev.Kind),
		"WATCHDOG_REPEAT=" + opt(ev.Kind == fsm.EventRepeat, strconv.Itoa(ev.Repeat)),
		"WATCHDOG_INCIDENT_ID=" + ev.Incident,
		"WATCHDOG_EVENT_TIME=" + stampNano(ev.Time),
		"WATCHDOG_LAST_SEEN=" + stampNano(ev.LastSeen),
		"WATCHDOG_TIMEOUT=" + ev.Timeout.String(),
		"WATCHDOG_REASON=" + ev.Reason,
		"WATCHDOG_EXIT_STATUS=" + opt(ev.Reason == fsm.ReasonExitStatus, strconv.Itoa(ev.ExitStatus)),
		"WATCHDOG_NOTE=" + ev.Note,
		"WATCHDOG_DOWN_SINCE=" + opt(known, stampNano(ev.DownSince)),
		"WATCHDOG_DOWN_FOR=" + opt(known, ev.DownFor().String()),
		"WATCHDOG_RECOVERED_AT=" + opt(recovered, stampNano(ev.Time)),
		"WATCHDOG_RECOVERY_NOTE=" + opt(recovered, ev.RecoveryNote),
		"WATCHDOG_NODE=" + ev.Node,
	}
}

// capped keeps the first maxOutput bytes written to it.
type capped struct{ bytes.Buffer }

func (c *capped) Write(p []byte) (int, error) {
	if room := maxOutput - c.Len(); room > 0 {
		c.Buffer.Write(p[:min(len(p), room)])
	}
	return len(p), nil
}

// Log writes the event to the watchdog's log.
type Log struct{ Log *slog.Logger }

// Run implements Action.
func (l Log) Run(_ context.Context, ev Event) error {
	level := slog.LevelWarn
	if ev.Kind != "down" {
		level = slog.LevelInfo
	}
	l.Log.Log(context.Background(), level, "service "+string(ev.Kind), "service", ev.Service,
		"incident", ev.Incident, "last_seen", stampNano(ev.LastSeen), "reason", reasonLabel(ev), "note", ev.Note)
	return nil
}
