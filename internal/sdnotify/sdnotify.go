package sdnotify

import (
	"context"
	"crypto/tls"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"
)

// sd_notify(3) without a dependency: a unix datagram to $NOTIFY_SOCKET
// ("@name" is a Linux abstract socket).
//
// READY comes when the node serves, not when it knows a leader: a node of a
// new cluster waits for -bootstrap-expect peers, and a restarted node for a
// quorum, so tying READY to a leader would make systemd fail (or order after)
// the first nodes started, each waiting for the others. Readiness for traffic
// is /readyz, which the load balancer checks.

// notifier sends sd_notify messages; a nil *notifier sends nothing.
type notifier struct {
	conn *net.UnixConn
}

// newNotifier connects to $NOTIFY_SOCKET, or returns nil when it is unset.
func newNotifier(getenv func(string) string) (*notifier, error) {
	path := getenv("NOTIFY_SOCKET")
	if path == "" {
		return nil, nil
	}
	if strings.HasPrefix(path, "@") {
		path = "\x00" + path[1:]
	}
	conn, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		return nil, err
	}
	return &notifier{conn: conn}, nil
}

func (n *notifier) send(state string) error {
	if n == nil {
		return nil
	}
	_, err := n.conn.Write([]byte(state))
	return err
}

func (n *notifier) close() {
	if n != nil {
		n.conn.Close()
	}
}

// watchdogInterval is half of $WATCHDOG_USEC, or 0 when systemd asks for no
// pings (unset, invalid, or meant for another process by $WATCHDOG_PID).
func watchdogInterval(getenv func(string) string) time.Duration {
	if pid := getenv("WATCHDOG_PID"); pid != "" && pid != strconv.Itoa(os.Getpid()) {
		return 0
	}
	usec, err := strconv.ParseInt(getenv("WATCHDOG_USEC"), 10, 64)
	if err != nil || usec <= 0 {
		return 0
	}
	return time.Duration(usec) * time.Microsecond / 2
}

// Start tells systemd the agent at addr is ready and keeps pinging its
// watchdog while GET /healthz on addr answers 200 within the interval
// (https with tlsConf, when given). The returned function sends STOPPING=1
// and stops the pings; call it when shutdown begins. Without
// $NOTIFY_SOCKET it does nothing.
func Start(addr string, tlsConf *tls.Config, getenv func(string) string, log *slog.Logger) (stop func()) {
	n, err := newNotifier(getenv)
	if err != nil {
		log.Warn("sd_notify: cannot reach $NOTIFY_SOCKET", "err", err)
		return func() {}
	}
	if n == nil {
		return func() {}
	}
	if err := n.send("READY=1\nSTATUS=serving on " + addr); err != nil {
		log.Warn("sd_notify READY", "err", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		every := watchdogInterval(getenv)
		if every <= 0 {
			<-ctx.Done()
			return
		}
		client := &http.Client{Timeout: every}
		url := "http://" + addr + "/healthz"
		if tlsConf != nil {
			client.Transport = &http.Transport{TLSClientConfig: tlsConf}
			url = "https://" + addr + "/healthz"
		}
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			if healthy(ctx, client, url) {
				if err := n.send("WATCHDOG=1"); err != nil {
					log.Warn("sd_notify WATCHDOG", "err", err)
				}
			} else {
				log.Warn("sd_notify: /healthz does not answer; no watchdog ping")
			}
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
		}
	}()
	return func() {
		cancel()
		<-done
		if err := n.send("STOPPING=1"); err != nil {
			log.Warn("sd_notify STOPPING", "err", err)
		}
		n.close()
	}
}

func healthy(ctx context.Context, client *http.Client, url string) bool {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return false
	}
	resp, err := client.Do(req)
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}
