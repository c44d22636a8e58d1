package cluster

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
)

func TestRaftLogLinesReadWell(t *testing.T) {
	var buf bytes.Buffer
	l := logger{slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))}
	h := l.hclog("raft")
	line := func(do func()) string {
		buf.Reset()
		do()
		return buf.String()
	}
	if got := line(func() { h.Info("initial configuration", "servers", hclog.Fmt("%+v", []string{"n1", "n2"})) }); !strings.Contains(got, "servers=\"[n1 n2]\"") {
		t.Errorf("hclog.Fmt not formatted: %s", got)
	}
	if got := line(func() { h.Error("failed to get log", "index", 7, "error", raft.ErrLogNotFound) }); !strings.Contains(got, "level=INFO") {
		t.Errorf("a log entry a snapshot replaced is routine: %s", got)
	}
	if got := line(func() {
		h.Warn("heartbeat timeout reached, starting election", "last-leader-addr", "", "last-leader-id", "")
	}); !strings.Contains(got, "level=INFO") {
		t.Errorf("the first election: %s", got)
	}
	if got := line(func() {
		h.Warn("heartbeat timeout reached, starting election", "last-leader-addr", "x:1", "last-leader-id", "n1")
	}); !strings.Contains(got, "level=WARN") {
		t.Errorf("a leader lost must stay a warning: %s", got)
	}
	if got := line(func() { h.Error("failed to get log", "index", 7, "error", errors.New("disk I/O")) }); !strings.Contains(got, "level=ERROR") {
		t.Errorf("a real failure must stay an error: %s", got)
	}
}

func TestOneLine(t *testing.T) {
	err := fmt.Errorf("2 errors occurred:\n\t* dial a: refused\n\t* dial b: refused\n\n")
	if got := oneLine(err); strings.Contains(got, "\n") || got != "2 errors occurred: * dial a: refused * dial b: refused" {
		t.Fatalf("oneLine = %q", got)
	}
	if oneLine(nil) != "" {
		t.Fatal("nil")
	}
}
