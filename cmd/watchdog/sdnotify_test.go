package main

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// listenNotify listens on a unix datagram socket as systemd does and returns
// the messages it receives.
func listenNotify(t *testing.T, name string) <-chan string {
	t.Helper()
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: name, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	msgs := make(chan string, 100)
	go func() {
		buf := make([]byte, 4096)
		for {
			n, err := conn.Read(buf)
			if err != nil {
				close(msgs)
				return
			}
			msgs <- string(buf[:n])
		}
	}()
	return msgs
}

// await reads messages until one starts with want.
func await(t *testing.T, msgs <-chan string, want string, within time.Duration) {
	t.Helper()
	deadline := time.After(within)
	for {
		select {
		case m, ok := <-msgs:
			if !ok {
				t.Fatalf("notify socket closed before %q", want)
			}
			if strings.HasPrefix(m, want) {
				return
			}
		case <-deadline:
			t.Fatalf("no %q within %v", want, within)
		}
	}
}

// The real agent, started as "watchdog agent" is, under a fake systemd:
// READY=1, then WATCHDOG=1 pings at half of WATCHDOG_USEC, then STOPPING=1.
func TestAgentNotifiesSystemd(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "notify.sock")
	msgs := listenNotify(t, sock)
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
		await(t, msgs, "WATCHDOG=1", 2*time.Second)
	}
	cancel()
	await(t, msgs, "STOPPING=1", 20*time.Second)
	if err := <-done; err != nil {
		t.Fatalf("agent: %v", err)
	}
}
