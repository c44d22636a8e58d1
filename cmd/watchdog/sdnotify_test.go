package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/watchdog-ha/watchdog/internal/sdnotify/sdnotifytest"
)

// The real agent, started as "watchdog agent" is, under a fake systemd:
// READY=1, then WATCHDOG=1 pings at half of WATCHDOG_USEC, then STOPPING=1.
func TestAgentNotifiesSystemd(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "notify.sock")
	msgs := sdnotifytest.Listen(t, sock)
	t.Setenv("NOTIFY_SOCKET", sock)
	t.Setenv("WATCHDOG_USEC", "200000") // pings every 100 ms
	t.Setenv("WATCHDOG_PID", "")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	addrs := freeAddrs(t, 3)
	go func() {
		done <- run(ctx, []string{"agent", "-dev", "-node-id", "n1", "-log-level", "error", "-http-addr", addrs[0],
			"-raft-addr", addrs[1], "-gossip-addr", addrs[2]}, os.Stderr)
	}()
	select {
	case m := <-msgs:
		if !strings.HasPrefix(m, "READY=1") {
			t.Fatalf("first message %q, want READY=1", m)
		}
	case err := <-done:
		t.Fatalf("agent stopped before READY=1: %v", err)
	case <-time.After(20 * time.Second):
		t.Fatal("no READY=1 within 20s")
	}
	for range 3 {
		sdnotifytest.Await(t, msgs, "WATCHDOG=1", 2*time.Second)
	}
	cancel()
	sdnotifytest.Await(t, msgs, "STOPPING=1", 20*time.Second)
	if err := <-done; err != nil {
		t.Fatalf("agent: %v", err)
	}
}
