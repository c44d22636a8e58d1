package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/watchdog-ha/watchdog/fsm"
	"github.com/watchdog-ha/watchdog/internal/testnet"
)

// The secrets planted in the configuration, one of each kind.
const (
	pathSecret   = "PATHSECRET7f3a9c"    // a segment of a webhook URL's path
	querySecret  = "QUERYSECRET2b8e41"   // a value in a webhook URL's query
	headerSecret = "HEADERSECRET5d0c77"  // a webhook header's value
	slackSecret  = "SLACKSECRET9e1f03"   // the secret part of a Slack URL
	routingKey   = "ROUTINGSECRET4a6b28" // a PagerDuty routing key
	smtpPassword = "SMTPSECRET8c2d95"    // an SMTP password
)

func plantedSecrets() []string {
	return []string{pathSecret, querySecret, headerSecret, slackSecret, routingKey, smtpPassword}
}

// syncBuffer collects the logs of every node.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// echoingReceiver refuses every delivery with an answer that quotes the
// request whole (path, query, headers, body, as Express's "Cannot POST"
// page and many debug endpoints do) and, for good measure, the SMTP
// password too. It refuses webhooks with 503 (retried), Slack with 404,
// and PagerDuty with a raw 400 whose reason phrase is the routing key.
type echoingReceiver struct{ echoes syncBuffer }

func (e *echoingReceiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	var echo strings.Builder
	fmt.Fprintf(&echo, "<pre>Cannot POST %s</pre>", r.URL.RequestURI())
	keys := make([]string, 0, len(r.Header))
	for k := range r.Header {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		fmt.Fprintf(&echo, " %s: %s;", k, strings.Join(r.Header[k], ","))
	}
	fmt.Fprintf(&echo, " body: %s; password: %s", body, smtpPassword)
	e.echoes.Write([]byte(echo.String() + "\n"))
	switch {
	case strings.HasPrefix(r.URL.Path, "/hook/"):
		http.Error(w, echo.String(), http.StatusServiceUnavailable)
	case strings.HasPrefix(r.URL.Path, "/services/"):
		http.Error(w, echo.String(), http.StatusNotFound)
	default:
		conn, buf, err := http.NewResponseController(w).Hijack()
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		defer conn.Close()
		fmt.Fprintf(buf, "HTTP/1.1 400 %s %s\r\nContent-Type: text/plain\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s",
			routingKey, smtpPassword, echo.Len(), echo.String())
		buf.Flush()
	}
}

// TestReceiversCannotLeakSecrets: receivers that echo every configured
// secret in their refusals leave none of them in any read route, the
// event stream, a backup or any node's log; the errors recorded still say
// what happened.
func TestReceiversCannotLeakSecrets(t *testing.T) {
	// An exec action whose output (which the leader logs) quotes them too.
	tattler := filepath.Join(t.TempDir(), "tattle.sh")
	script := "#!/bin/sh\necho " + strings.Join(plantedSecrets(), " ") + "\nexit 1\n"
	if err := os.WriteFile(tattler, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	receiver := &echoingReceiver{}
	srv := httptest.NewServer(receiver)
	t.Cleanup(srv.Close)
	file := fileConfig(t, fmt.Sprintf(`
check_interval: 100ms
actions:
  hook:
    webhook:
      url: %q
      headers: {X-Api-Key: %q}
    retries: 1
  chat: {slack: {url: %q}}
  page: {pagerduty: {routing_key: %q, url: %q}}
  mail:
    email: {server: %q, from: watchdog@example.com, to: [oncall@example.com], username: watchdog, password: %q}
    retries: 0
  tattle: {exec: [%q]}
services:
  leaky: {timeout: 1s, actions: [hook, chat, page, mail, tattle]}
`, srv.URL+"/hook/"+pathSecret+"?key="+querySecret, headerSecret, srv.URL+"/services/T0/B0/"+slackSecret,
		routingKey, srv.URL+"/pd/enqueue", testnet.DeadAddr(t), smtpPassword, tattler))
	logs := &syncBuffer{}
	c := startTestCluster(&testCluster{t: t, file: file, logTo: logs}, 3)
	c.leader(3)
	waitFor(t, 30*time.Second, "every delivery to leaky to fail, on every node", func() bool {
		for _, a := range c.running() {
			s, _ := serviceOn(a, "leaky")
			cur := s.Current()
			if cur == nil || len(cur.Actions) != 5 {
				return false
			}
			for _, r := range cur.Actions {
				if r.State != fsm.ActionFailed {
					return false
				}
			}
		}
		return true
	})
	s, _ := serviceOn(c.running()[0], "leaky")
	for _, r := range s.Current().Actions {
		want := map[string]string{"hook": "503 Service Unavailable", "chat": "404 Not Found",
			"page": "400 Bad Request", "mail": "smtp", "tattle": "exit status 1"}[r.Action]
		if !strings.Contains(r.Error, want) {
			t.Errorf("action %s failed with %q: want the status, %q", r.Action, r.Error, want)
		}
	}

	var seen strings.Builder
	for _, a := range c.running() {
		base := "http://" + a.Addr
		for _, path := range []string{"/v1/services", "/v1/services/leaky", "/v1/services/leaky/events",
			"/v1/events", "/v1/cluster", "/metrics", "/", "/v1/snapshot"} {
			fmt.Fprintf(&seen, "\n== %s%s\n%s", a.Node.ID(), path, get(t, base+path))
		}
		fmt.Fprintf(&seen, "\n== %s/v1/stream\n%s", a.Node.ID(), readStream(t, base+"/v1/stream", "leaky"))
	}
	seen.WriteString("\n== logs\n" + logs.String())
	for _, secret := range plantedSecrets() {
		if i := strings.Index(seen.String(), secret); i >= 0 {
			t.Errorf("secret %s found: ...%s...", secret, excerpt(seen.String(), i))
		}
	}
	// The test proves something only if the receivers did echo them all,
	// and the logs were captured.
	for _, secret := range plantedSecrets() {
		if !strings.Contains(receiver.echoes.String(), secret) {
			t.Errorf("the receivers never echoed %s", secret)
		}
	}
	if !strings.Contains(logs.String(), "action failed") || !strings.Contains(logs.String(), "ran exec action") {
		t.Error("the failed actions and the exec action's output were not logged: the logs were not captured")
	}
}

// get returns the body of a GET, whatever its status.
func get(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.Status + "\n" + string(b)
}

// readStream reads an event stream until it has mentioned want (or a few
// seconds passed), and returns what it read.
func readStream(t *testing.T, url, want string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	var out strings.Builder
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(nil, 16<<20)
	for sc.Scan() {
		out.WriteString(sc.Text() + "\n")
		if strings.Contains(sc.Text(), want) {
			break
		}
	}
	if !strings.Contains(out.String(), want) {
		t.Errorf("stream %s never mentioned %q", url, want)
	}
	return out.String()
}

func excerpt(s string, i int) string {
	return s[max(i-200, 0):min(i+100, len(s))]
}
