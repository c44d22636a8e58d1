package sdnotify

import (
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/watchdog-ha/watchdog/internal/sdnotify/sdnotifytest"
)

// Start says READY=1 at once, WATCHDOG=1 every half of $WATCHDOG_USEC
// while /healthz answers 200, and STOPPING=1 when stopped.
func TestStartPingsWhileHealthyAndSaysStopping(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "notify.sock")
	msgs := sdnotifytest.Listen(t, sock)
	healthz := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/healthz" {
			http.NotFound(w, r)
		}
	}))
	defer healthz.Close()
	env := map[string]string{"NOTIFY_SOCKET": sock, "WATCHDOG_USEC": "100000"}
	stop := Start(healthz.Listener.Addr().String(), nil, func(k string) string { return env[k] }, slog.New(slog.DiscardHandler))
	sdnotifytest.Await(t, msgs, "READY=1", 5*time.Second)
	for range 3 {
		sdnotifytest.Await(t, msgs, "WATCHDOG=1", 2*time.Second)
	}
	stop()
	sdnotifytest.Await(t, msgs, "STOPPING=1", 5*time.Second)
}

// An abstract socket ("@name") is reached too, and no pings are sent when
// WATCHDOG_USEC is unset or meant for another process.
func TestNotifyAbstractSocketAndInterval(t *testing.T) {
	name := fmt.Sprintf("watchdog-test-%d-%d", os.Getpid(), time.Now().UnixNano())
	msgs := sdnotifytest.Listen(t, "\x00"+name)
	env := map[string]string{"NOTIFY_SOCKET": "@" + name}
	n, err := newNotifier(func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	defer n.close()
	if err := n.send("READY=1"); err != nil {
		t.Fatal(err)
	}
	sdnotifytest.Await(t, msgs, "READY=1", 5*time.Second)

	for _, c := range []struct {
		usec, pid string
		want      time.Duration
	}{
		{"", "", 0},
		{"junk", "", 0},
		{"30000000", "", 15 * time.Second},
		{"30000000", fmt.Sprint(os.Getpid()), 15 * time.Second},
		{"30000000", "1", 0},
	} {
		e := map[string]string{"WATCHDOG_USEC": c.usec, "WATCHDOG_PID": c.pid}
		if got := watchdogInterval(func(k string) string { return e[k] }); got != c.want {
			t.Errorf("WATCHDOG_USEC=%q WATCHDOG_PID=%q: interval %v, want %v", c.usec, c.pid, got, c.want)
		}
	}
	none, err := newNotifier(func(string) string { return "" })
	if none != nil || err != nil || none.send("READY=1") != nil {
		t.Errorf("without NOTIFY_SOCKET: %v, %v", none, err)
	}
}
