package cli

import (
	"context"
	"errors"
	"flag"
	"io"
	"os"
	"time"

	"github.com/watchdog-ha/watchdog/client"
)

// Exit codes of the client commands, for scripts.
const (
	ExitOK          = 0
	ExitFailed      = 1 // the operation failed, or what it looked at is unhealthy
	ExitUsage       = 2
	ExitUnavailable = 3 // no node could serve the request within -timeout
)

// ErrUsage marks a command line that is wrong: it has been explained, with
// the usage, already.
var ErrUsage = errors.New("usage")

// errUnhealthy marks a command that worked but found its target unhealthy:
// a service down, a node not ready.
var errUnhealthy = errors.New("unhealthy")

// ExitCode maps what a command returned to the process's exit status.
func ExitCode(err error) int {
	var child childExit
	switch {
	case errors.As(err, &child):
		return int(child)
	case err == nil, errors.Is(err, flag.ErrHelp):
		return ExitOK
	case errors.Is(err, ErrUsage):
		return ExitUsage
	case errors.Is(err, client.ErrUnavailable):
		return ExitUnavailable
	default:
		return ExitFailed
	}
}

// Env is the outside world of a client command; tests give their own.
type Env struct {
	Stdout, Stderr io.Writer
	Getenv         func(string) string
	Now            func() time.Time
	Stdin          io.Reader // for a confirmation; nil: none
	Interactive    bool      // Stdin is a terminal, where a person can answer
}

// OSEnv is the process's own: its stdout, stdin and environment, and stderr.
func OSEnv(stderr io.Writer) Env {
	st, err := os.Stdin.Stat()
	tty := err == nil && st.Mode()&os.ModeCharDevice != 0
	return Env{Stdout: os.Stdout, Stderr: stderr, Getenv: os.Getenv, Now: time.Now, Stdin: os.Stdin, Interactive: tty}
}

// Command is one client command: it takes the arguments after its name.
type Command func(ctx context.Context, args []string, env Env) error

// Lookup is the client command called name, or nil if there is none.
func Lookup(name string) Command {
	switch name {
	case "ping":
		return runPing
	case "run":
		return runRun
	case "status":
		return runStatus
	case "services":
		return runServices
	case "service":
		return runService
	case "pause":
		return runPause
	case "resume":
		return runResume
	case "delete":
		return runDelete
	case "members":
		return runMembers
	case "leave":
		return runLeave
	case "snapshot":
		return runSnapshot
	case "config":
		return runConfig
	case "keygen":
		return runKeygen
	case "version", "-version", "--version":
		return runVersion
	}
	return nil
}
