package client_test

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/watchdog-ha/watchdog/client"
	"github.com/watchdog-ha/watchdog/cluster"
	"github.com/watchdog-ha/watchdog/fsm"
	"github.com/watchdog-ha/watchdog/httpapi"
	"github.com/watchdog-ha/watchdog/internal/testnet"
)

// singleNode serves the API of a real one-node cluster, built as
// httpapi/api_test.go builds it.
func singleNode(t *testing.T, opts ...httpapi.Option) (*httptest.Server, *fsm.FSM) {
	t.Helper()
	srv := httptest.NewUnstartedServer(nil)
	f := fsm.New()
	node, err := cluster.New(cluster.Config{NodeID: "solo", RaftAddr: "127.0.0.1:0", GossipAddr: "127.0.0.1:0",
		HTTPAddr: srv.Listener.Addr().String(), DataDir: t.TempDir(), BootstrapExpect: 1, FSM: f})
	if err != nil {
		t.Fatal(err)
	}
	led := make(chan struct{})
	var once sync.Once
	node.Start(func(context.Context, time.Time) { once.Do(func() { close(led) }) })
	// The agent always knows its built-in log action; restores and
	// definitions that name it are checked against that list.
	opts = append([]httpapi.Option{httpapi.WithActions([]string{"log"})}, opts...)
	srv.Config.Handler = httpapi.New(node, f, slog.New(slog.DiscardHandler), opts...)
	srv.Start()
	t.Cleanup(func() {
		srv.Close()
		node.Close()
	})
	deadline := time.Now().Add(10 * time.Second)
	for node.Ready() != nil {
		if time.Now().After(deadline) {
			t.Fatalf("single node never ready: %v", node.Ready())
		}
		time.Sleep(20 * time.Millisecond)
	}
	select {
	case <-led:
	case <-time.After(10 * time.Second):
		t.Fatal("single node never established its leadership")
	}
	return srv, f
}

// unavailable is a node that answers every request 503 as a node without a
// leader does, counting them.
func unavailable(t *testing.T, retryAfter string) (*httptest.Server, *atomic.Int64) {
	t.Helper()
	var hits atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Retry-After", retryAfter)
		w.WriteHeader(http.StatusServiceUnavailable)
		_, _ = w.Write([]byte(`{"error":"no leader"}` + "\n"))
	}))
	t.Cleanup(srv.Close)
	return srv, &hits
}

func newClient(t *testing.T, addrs []string, opts ...client.Option) *client.Client {
	t.Helper()
	c, err := client.New(addrs, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func find(svcs []client.Service, id string) (client.Service, bool) {
	for _, s := range svcs {
		if s.ID == id {
			return s, true
		}
	}
	return client.Service{}, false
}

func TestPingCommitsAndServicesShowsIt(t *testing.T) {
	srv, f := singleNode(t)
	c := newClient(t, []string{srv.Listener.Addr().String()}) // host:port form
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	before := time.Now().Add(-time.Second)
	if err := c.Ping(ctx, "backup-job"); err != nil {
		t.Fatalf("Ping: %v", err)
	}
	if _, ok := f.Service("backup-job"); !ok {
		t.Fatal("Ping returned nil but the heartbeat is not committed")
	}
	svcs, err := c.Services(ctx)
	if err != nil {
		t.Fatalf("Services: %v", err)
	}
	s, ok := find(svcs, "backup-job")
	if !ok {
		t.Fatalf("backup-job not in %+v", svcs)
	}
	if s.Status != client.StatusUp || s.Source != "heartbeat" || s.LastSeen == nil || s.LastSeen.Before(before) ||
		s.Timeout <= 0 || s.NextDeadline == nil || s.Incident != nil {
		t.Fatalf("service as listed: %+v", s)
	}
	one, err := c.Service(ctx, "backup-job")
	if err != nil || one.ID != "backup-job" || one.Status != client.StatusUp || one.Timeout != s.Timeout {
		t.Fatalf("Service: %+v, %v", one, err)
	}
	var apiErr *client.APIError
	if _, err := c.Service(ctx, "nobody"); !errors.As(err, &apiErr) || apiErr.Status != http.StatusNotFound {
		t.Fatalf("Service of an unknown id: %v, want an APIError 404", err)
	}
}

func TestServiceDurationsAndPolicyAreParsed(t *testing.T) {
	srv, _ := singleNode(t)
	body := `{"timeout":"30s","grace":"10s","repeat":"5m","max_repeats":3,"flap_threshold":4,"flap_window":"10m",` +
		`"tags":["nightly"],"description":"db backup"}`
	req, _ := http.NewRequest(http.MethodPut, srv.URL+"/v1/services/defined", strings.NewReader(body))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("PUT: %d", resp.StatusCode)
	}
	s, err := newClient(t, []string{srv.URL}).Service(context.Background(), "defined")
	if err != nil {
		t.Fatal(err)
	}
	if s.Source != "api" || s.Timeout != 30*time.Second || s.Grace != 10*time.Second || s.Repeat != 5*time.Minute ||
		s.MaxRepeats != 3 || s.FlapThreshold != 4 || s.FlapWindow != 10*time.Minute ||
		len(s.Tags) != 1 || s.Tags[0] != "nightly" || s.Description != "db backup" {
		t.Fatalf("defined service read back as %+v", s)
	}
}

func TestPingGoesPastADeadNodeAndA503(t *testing.T) {
	srv, f := singleNode(t)
	busy, hits := unavailable(t, "1")
	c := newClient(t, []string{testnet.DeadAddr(t), busy.URL, srv.URL})
	start := time.Now()
	if err := c.Ping(context.Background(), "past-the-dead"); err != nil {
		t.Fatalf("Ping: %v", err)
	}
	if _, ok := f.Service("past-the-dead"); !ok {
		t.Fatal("not committed")
	}
	if hits.Load() != 1 {
		t.Fatalf("the 503 node was asked %d times, want 1", hits.Load())
	}
	// A live node later in the same round is tried at once: no Retry-After
	// wait within a round.
	if d := time.Since(start); d > 900*time.Millisecond {
		t.Fatalf("took %v: waited within a round", d)
	}
}

func TestRetryAfterIsHonouredBriefly(t *testing.T) {
	srv, f := singleNode(t)
	target, _ := url.Parse(srv.URL)
	proxy := httputil.NewSingleHostReverseProxy(target)
	var hits atomic.Int64
	// The only node answers 503 with a long Retry-After once, then serves.
	flaky := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if hits.Add(1) == 1 {
			w.Header().Set("Retry-After", "120")
			http.Error(w, `{"error":"leader changed"}`, http.StatusServiceUnavailable)
			return
		}
		proxy.ServeHTTP(w, r)
	}))
	defer flaky.Close()
	c := newClient(t, []string{flaky.URL})
	start := time.Now()
	if err := c.Ping(context.Background(), "after-a-pause"); err != nil {
		t.Fatalf("Ping: %v", err)
	}
	d := time.Since(start)
	if _, ok := f.Service("after-a-pause"); !ok || hits.Load() != 2 {
		t.Fatalf("committed %v after %d requests, want 2", ok, hits.Load())
	}
	// Retry-After is honoured, capped at a second: not 120 s, nor the
	// quarter second of a round without one.
	if d < 900*time.Millisecond || d > 3*time.Second {
		t.Fatalf("second try after %v, want about 1s", d)
	}
}

func TestContextDeadlineIsRespected(t *testing.T) {
	busy, hits := unavailable(t, "1")
	// A node that takes the request and never answers.
	hang := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		<-r.Context().Done()
	}))
	defer hang.Close()
	for _, tc := range []struct {
		name  string
		addrs []string
	}{
		{"refused and 503", []string{testnet.DeadAddr(t), busy.URL}},
		{"hanging node", []string{hang.URL, busy.URL}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := newClient(t, tc.addrs)
			ctx, cancel := context.WithTimeout(context.Background(), 400*time.Millisecond)
			defer cancel()
			start := time.Now()
			err := c.Ping(ctx, "never")
			d := time.Since(start)
			if !errors.Is(err, client.ErrUnavailable) || !errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("err = %v, want ErrUnavailable and DeadlineExceeded", err)
			}
			if d < 350*time.Millisecond || d > 1500*time.Millisecond {
				t.Fatalf("returned after %v, want about the 400ms deadline", d)
			}
		})
	}
	if hits.Load() < 1 {
		t.Fatal("the 503 node was never tried")
	}
	// The client's own timeout bounds a call whose context has none.
	c := newClient(t, []string{busy.URL}, client.WithTimeout(300*time.Millisecond))
	start := time.Now()
	if err := c.Ping(context.Background(), "never"); !errors.Is(err, client.ErrUnavailable) {
		t.Fatalf("err = %v", err)
	}
	if d := time.Since(start); d > 1500*time.Millisecond {
		t.Fatalf("WithTimeout(300ms) returned after %v", d)
	}
}

func TestBadIDIsRefusedBeforeSending(t *testing.T) {
	var hits atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { hits.Add(1) }))
	defer srv.Close()
	c := newClient(t, []string{srv.URL})
	ctx := context.Background()
	for _, id := range []string{"", ".", "..", "a/b", "../x", "with space", "é", "a?b", strings.Repeat("x", 129)} {
		for name, call := range map[string]func() error{
			"Ping":    func() error { return c.Ping(ctx, id) },
			"Start":   func() error { return c.Start(ctx, id) },
			"Fail":    func() error { return c.Fail(ctx, id) },
			"Service": func() error { _, err := c.Service(ctx, id); return err },
		} {
			err := call()
			if !errors.Is(err, client.ErrInvalidID) || !strings.Contains(err.Error(), "A-Za-z0-9._-") {
				t.Errorf("%s(%q) = %v, want ErrInvalidID naming the rule", name, id, err)
			}
		}
	}
	if hits.Load() != 0 {
		t.Fatalf("%d requests sent for bad ids", hits.Load())
	}
}

// The client's id rule is the nodes' rule.
func TestValidIDMatchesTheServer(t *testing.T) {
	for _, id := range []string{"", ".", "..", "...", "a", "A-Z_0.9", "a/b", "a b", "é", "%2e", strings.Repeat("x", 128),
		strings.Repeat("x", 129), "-", "_", ".hidden"} {
		if client.ValidID(id) != fsm.ValidID(id) {
			t.Errorf("ValidID(%q): client %v, server %v", id, client.ValidID(id), fsm.ValidID(id))
		}
	}
}

func TestTokens(t *testing.T) {
	srv, _ := singleNode(t, httpapi.WithPingToken("ping-secret"), httpapi.WithAPIToken("api-secret"))
	ctx := context.Background()
	var apiErr *client.APIError
	if err := newClient(t, []string{srv.URL}).Ping(ctx, "guarded"); !errors.As(err, &apiErr) || apiErr.Status != http.StatusUnauthorized {
		t.Fatalf("Ping without the token: %v, want an APIError 401", err)
	}
	// The API token is not the ping token.
	wrong := newClient(t, []string{srv.URL}, client.WithPingToken("api-secret"))
	if err := wrong.Ping(ctx, "guarded"); !errors.As(err, &apiErr) || apiErr.Status != http.StatusUnauthorized {
		t.Fatalf("Ping with the wrong token: %v, want 401", err)
	}
	c := newClient(t, []string{srv.URL}, client.WithPingToken("ping-secret"), client.WithAPIToken("api-secret"))
	if err := c.Ping(ctx, "guarded"); err != nil {
		t.Fatalf("Ping with the ping token: %v", err)
	}
	if svcs, err := c.Services(ctx); err != nil || len(svcs) != 1 {
		t.Fatalf("Services: %v, %v", svcs, err)
	}
}

func TestBeatKeepsAServiceUpThenStops(t *testing.T) {
	srv, f := singleNode(t)
	c := newClient(t, []string{srv.URL})
	var errs atomic.Int64
	ctx, cancel := context.WithCancel(context.Background())
	const interval = 100 * time.Millisecond
	start := time.Now()
	done := c.Beat(ctx, "beating", interval, func(err error) {
		errs.Add(1)
		t.Errorf("beat error: %v", err)
	})
	if time.Since(start) > 50*time.Millisecond {
		t.Fatal("Beat blocked its caller")
	}
	// Across several intervals the service stays up and its last-seen time
	// keeps moving.
	seen := map[time.Time]bool{}
	for range 8 {
		time.Sleep(interval)
		s, err := c.Service(context.Background(), "beating")
		if err != nil {
			t.Fatalf("Service: %v", err)
		}
		if s.Status != client.StatusUp || s.LastSeen == nil {
			t.Fatalf("while beating: %+v", s)
		}
		seen[*s.LastSeen] = true
	}
	if len(seen) < 5 {
		t.Fatalf("last-seen moved only %d times in 8 intervals", len(seen))
	}
	cancel()
	select {
	case <-done:
	case <-time.After(2 * time.Second):
		t.Fatal("Beat did not stop when its context ended")
	}
	// The heartbeat in flight when the context ended may still commit (a
	// cancelled request does not take back what the node was handed), so
	// one late change is allowed; after it, none. Absence can only be
	// watched for a while.
	lastSeen := func() int64 { svc, _ := f.Service("beating"); return svc.LastSeen }
	last, changes := lastSeen(), 0
	for range 2 {
		time.Sleep(3 * interval)
		if now := lastSeen(); now != last {
			last, changes = now, changes+1
		}
	}
	if changes > 1 || changes == 1 && lastSeen() != last {
		t.Fatalf("heartbeats after Beat stopped: last-seen changed %d times", changes)
	}
	if errs.Load() != 0 {
		t.Fatalf("%d errors reported", errs.Load())
	}
}

func TestBeatReportsErrorsAndNeverBlocks(t *testing.T) {
	busy, _ := unavailable(t, "0")
	c := newClient(t, []string{busy.URL})
	reported := make(chan error, 100)
	ctx, cancel := context.WithCancel(context.Background())
	done := c.Beat(ctx, "unlucky", 50*time.Millisecond, func(err error) {
		select {
		case reported <- err:
		default:
		}
	})
	select {
	case err := <-reported:
		if !errors.Is(err, client.ErrUnavailable) || !strings.Contains(err.Error(), `"unlucky"`) {
			t.Fatalf("reported %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no error reported")
	}
	cancel()
	<-done

	// Bad arguments: reported once, nothing sent, no panic; a nil callback
	// is fine.
	for _, tc := range []struct {
		id       string
		interval time.Duration
		want     string
	}{{"bad/id", time.Second, "invalid service id"}, {"ok", 0, "not positive"}, {"ok", -time.Second, "not positive"}} {
		var got []error
		<-c.Beat(context.Background(), tc.id, tc.interval, func(err error) { got = append(got, err) })
		if len(got) != 1 || !strings.Contains(got[0].Error(), tc.want) {
			t.Errorf("Beat(%q, %v) reported %v, want one error with %q", tc.id, tc.interval, got, tc.want)
		}
		<-c.Beat(context.Background(), tc.id, tc.interval, nil)
	}
}

func TestNewRefusesBadAddresses(t *testing.T) {
	for _, addrs := range [][]string{nil, {}, {" ", ""}, {"ftp://x:1"}, {"http://"}, {"http://h:1/?q=1"}, {"http://u:p@h:1"}} {
		if _, err := client.New(addrs); err == nil {
			t.Errorf("New(%q) accepted", addrs)
		}
	}
	if _, err := client.New([]string{"127.0.0.1:8081", " http://h:8082/ ", "https://h.example"}); err != nil {
		t.Fatal(err)
	}
}
