package client_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/watchdog-ha/watchdog/client"
)

// pingContract is a server implementing just the healthchecks-compatible
// ping contract (/work/shared/notes/healthchecks-ping-contract.md, 3.2–3.4):
// /ping/{id}[/start|/fail], plain-text replies, 404 "not found" for an
// unknown check unless ?create=1, which answers 201 "Created".
type pingContract struct {
	token string
	mu    sync.Mutex
	known map[string]bool
	got   []string // "METHOD path signal"
}

func (p *pingContract) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	reply := func(status int, body string) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.WriteHeader(status)
		_, _ = io.WriteString(w, body)
	}
	if p.token != "" && r.Header.Get("Authorization") != "Bearer "+p.token {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusUnauthorized)
		_, _ = io.WriteString(w, `{"error":"missing or wrong ping token"}`)
		return
	}
	rest, ok := strings.CutPrefix(r.URL.Path, "/ping/")
	if !ok {
		reply(http.StatusNotFound, "not found")
		return
	}
	id, signal, _ := strings.Cut(rest, "/")
	if signal != "" && signal != "start" && signal != "fail" {
		reply(http.StatusNotFound, "not found")
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.got = append(p.got, r.Method+" "+id+" "+signal)
	switch {
	case p.known[id]:
		reply(http.StatusOK, "OK")
	case r.URL.Query().Get("create") == "1":
		p.known[id] = true
		reply(http.StatusCreated, "Created")
	default:
		reply(http.StatusNotFound, "not found")
	}
}

func (p *pingContract) requests() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.got...)
}

func TestStartAndFailFollowThePingContract(t *testing.T) {
	contract := &pingContract{token: "tok", known: map[string]bool{"known-job": true}}
	srv := httptest.NewServer(contract)
	defer srv.Close()
	c := newClient(t, []string{srv.URL}, client.WithPingToken("tok"))
	ctx := context.Background()
	if err := c.Start(ctx, "known-job"); err != nil {
		t.Fatalf("Start: %v", err)
	}
	if err := c.Fail(ctx, "known-job"); err != nil {
		t.Fatalf("Fail: %v", err)
	}
	// An unknown job is created, as Ping creates it: 201 is success.
	if err := c.Start(ctx, "new-job"); err != nil {
		t.Fatalf("Start of a new job: %v", err)
	}
	want := []string{"POST known-job start", "POST known-job fail", "POST new-job start"}
	if got := contract.requests(); strings.Join(got, ",") != strings.Join(want, ",") {
		t.Fatalf("requests %q, want %q", got, want)
	}
	// A plain-text refusal comes back as an APIError with the text.
	var apiErr *client.APIError
	nobody := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.WriteHeader(http.StatusNotFound)
		_, _ = io.WriteString(w, "not found")
	}))
	defer nobody.Close()
	if err := newClient(t, []string{nobody.URL}).Fail(ctx, "x"); !errors.As(err, &apiErr) ||
		apiErr.Status != 404 || apiErr.Message != "not found" {
		t.Fatalf("Fail against a 404: %v", err)
	}
	// Without the token: the node's 401, not retried.
	if err := newClient(t, []string{srv.URL}).Start(ctx, "known-job"); !errors.As(err, &apiErr) || apiErr.Status != 401 {
		t.Fatalf("Start without the token: %v", err)
	}
	// A 503 moves on to the next node, as for Ping.
	busy, hits := unavailable(t, "1")
	c = newClient(t, []string{busy.URL, srv.URL}, client.WithPingToken("tok"))
	if err := c.Fail(ctx, "known-job"); err != nil || hits.Load() != 1 {
		t.Fatalf("Fail past a 503: %v (503 node asked %d times)", err, hits.Load())
	}
}

// Against the node's own /ping routes: a regression there fails Start,
// Ping or Fail below; it is never skipped.
func TestStartAndFailOnARealNode(t *testing.T) {
	srv, _ := singleNode(t)
	c := newClient(t, []string{srv.URL})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := c.Start(ctx, "cron-job"); err != nil {
		t.Fatalf("Start of a new job: %v", err)
	}
	if _, err := c.Service(ctx, "cron-job"); err != nil {
		t.Fatalf("after Start: %v", err)
	}
	if err := c.Start(ctx, "cron-job"); err != nil {
		t.Fatalf("Start of a known job: %v", err)
	}
	if err := c.Ping(ctx, "cron-job"); err != nil {
		t.Fatalf("Ping: %v", err)
	}
	if err := c.Fail(ctx, "cron-job"); err != nil {
		t.Fatalf("Fail: %v", err)
	}
	s, err := c.Service(ctx, "cron-job")
	if err != nil || s.Status != client.StatusDown || s.Incident == nil {
		t.Fatalf("after Fail: %+v, %v; want down with an open incident", s, err)
	}
}
