package watcher

import (
	"context"
	"errors"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/watchdog-ha/watchdog/fsm"
)

func TestWebhookPayloadAndHeaders(t *testing.T) {
	r := newReceiver(t)
	ev := testEvent()
	hook := Webhook{URL: r.URL + "/hook/secret-token", Header: map[string]Secret{
		"X-Team": "infra", "Authorization": "Bearer s3cret",
		"Idempotency-Key": "mine", // ours wins: receivers rely on it
	}}
	if err := hook.Run(context.Background(), ev); err != nil {
		t.Fatalf("Run: %v", err)
	}
	got := r.only(t)
	if got.Method != http.MethodPost || got.Path != "/hook/secret-token" {
		t.Errorf("request = %s %s", got.Method, got.Path)
	}
	for k, want := range map[string]string{
		"Content-Type":    "application/json",
		"User-Agent":      "watchdog",
		"Idempotency-Key": "12-0:down",
		"X-Team":          "infra",
		"Authorization":   "Bearer s3cret",
	} {
		if v := got.Header.Values(k); len(v) != 1 || v[0] != want {
			t.Errorf("header %s = %q, want [%q]", k, v, want)
		}
	}
	var p WebhookPayload
	decodeStrict(t, got.Body, &p)
	want := WebhookPayload{
		Service: "worker-1", Event: "down", IncidentID: "12-0",
		LastSeen: "2026-11-25T10:00:00.123Z", Timeout: "30s", Node: "n2",
		Time: "2026-11-25T10:00:30.127Z",
	}
	if p != want {
		t.Errorf("payload = %+v\nwant      %+v", p, want)
	}
}

func TestWebhookIdempotencyKeyPerEvent(t *testing.T) {
	r := newReceiver(t)
	ev := testEvent()
	hook := Webhook{URL: r.URL}
	for _, kind := range []string{"down", "recovered", "down"} {
		ev.Kind = fsm.Event(kind)
		if err := hook.Run(context.Background(), ev); err != nil {
			t.Fatal(err)
		}
	}
	reqs := r.requests()
	keys := []string{reqs[0].Header.Get("Idempotency-Key"), reqs[1].Header.Get("Idempotency-Key"), reqs[2].Header.Get("Idempotency-Key")}
	if keys[0] != "12-0:down" || keys[1] != "12-0:recovered" || keys[2] != keys[0] {
		t.Errorf("keys = %q: want one per incident and event, the same on a repeated delivery", keys)
	}
}

func TestHTTPFailuresAreClassified(t *testing.T) {
	cases := []struct {
		name       string
		reply      reply
		permanent  bool
		retryAfter time.Duration // 0: none carried
		inError    string
	}{
		{"503", reply{status: 503, body: "overloaded\x00\n"}, false, 0, "503 Service Unavailable"},
		{"503 with Retry-After", reply{status: 503, header: map[string]string{"Retry-After": "7"}}, false, 7 * time.Second, "503"},
		{"429 with Retry-After", reply{status: 429, header: map[string]string{"Retry-After": "2"}}, false, 2 * time.Second, "429 Too Many Requests"},
		{"429 with a bad Retry-After", reply{status: 429, header: map[string]string{"Retry-After": "soon"}}, false, 0, "429"},
		{"400", reply{status: 400, body: "invalid_payload"}, true, 0, "400 Bad Request"},
		{"404", reply{status: 404}, true, 0, "404"},
		{"redirect", reply{status: 302, header: map[string]string{"Location": "/elsewhere"}}, true, 0, "a redirect"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := newReceiver(t, tc.reply)
			err := Webhook{URL: r.URL + "/path-is-secret?token=abc"}.Run(context.Background(), testEvent())
			if err == nil {
				t.Fatal("Run succeeded")
			}
			if IsPermanent(err) != tc.permanent {
				t.Errorf("IsPermanent(%v) = %v, want %v", err, IsPermanent(err), tc.permanent)
			}
			var ra *retryAfterError
			if got := errors.As(err, &ra); got != (tc.retryAfter > 0) || (got && ra.after != tc.retryAfter) {
				t.Errorf("error %v: carries Retry-After %v, want %v", err, got, tc.retryAfter)
			}
			if !strings.Contains(err.Error(), tc.inError) || strings.Contains(err.Error(), "secret") ||
				strings.Contains(err.Error(), "token") || tc.reply.body != "" && strings.Contains(err.Error(), strings.TrimSpace(tc.reply.body)) {
				t.Errorf("error = %q, want it to contain %q and neither the URL's path or query nor the answer", err, tc.inError)
			}
			if len(r.requests()) != 1 {
				t.Errorf("got %d requests: Run must make exactly one attempt", len(r.requests()))
			}
		})
	}
}

func TestWebhookUnreachableIsRetryable(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens there now: connection refused
	err = Webhook{URL: "http://" + addr + "/secret-path"}.Run(context.Background(), testEvent())
	if err == nil || IsPermanent(err) {
		t.Fatalf("Run = %v, want a retryable error", err)
	}
	if strings.Contains(err.Error(), "secret-path") {
		t.Errorf("error %q reveals the URL's path", err)
	}
}
