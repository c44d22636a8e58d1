package watcher

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"
)

// fast is a policy whose waits are short enough for tests.
func fast(retries int) RetryPolicy {
	return RetryPolicy{Retries: retries, Base: 10 * time.Millisecond, Max: 40 * time.Millisecond, Timeout: 5 * time.Second}
}

func TestRetryUntilSuccess(t *testing.T) {
	r := newReceiver(t, reply{status: 503}, reply{status: 503}, reply{status: 200})
	hook := Webhook{URL: r.URL}
	n, err := fast(3).Do(context.Background(), func(ctx context.Context) error { return hook.Run(ctx, testEvent()) })
	if err != nil || n != 3 {
		t.Fatalf("Do = %d, %v; want 3 attempts and success", n, err)
	}
	reqs := r.requests()
	if len(reqs) != 3 {
		t.Fatalf("receiver got %d requests, want 3", len(reqs))
	}
	for _, req := range reqs {
		if req.Header.Get("Idempotency-Key") != "12-0:down" {
			t.Errorf("a retry carried Idempotency-Key %q", req.Header.Get("Idempotency-Key"))
		}
	}
}

func TestRetryGivesUpWithTheLastError(t *testing.T) {
	r := newReceiver(t, reply{status: 500, body: "first"}, reply{status: 502, body: "last"})
	hook := Webhook{URL: r.URL}
	n, err := fast(2).Do(context.Background(), func(ctx context.Context) error { return hook.Run(ctx, testEvent()) })
	if n != 3 || err == nil || !strings.HasSuffix(err.Error(), "502 Bad Gateway") {
		t.Fatalf("Do = %d, %v; want 3 attempts and the last error", n, err)
	}
	if got := len(r.requests()); got != 3 {
		t.Errorf("receiver got %d requests, want 3", got)
	}
}

func TestRetryNeverRepeatsAPermanentFailure(t *testing.T) {
	r := newReceiver(t, reply{status: 400})
	hook := Webhook{URL: r.URL}
	n, err := fast(5).Do(context.Background(), func(ctx context.Context) error { return hook.Run(ctx, testEvent()) })
	if n != 1 || !IsPermanent(err) {
		t.Fatalf("Do = %d, %v; want one attempt and a permanent error", n, err)
	}
	if got := len(r.requests()); got != 1 {
		t.Errorf("receiver got %d requests, want 1", got)
	}
}

func TestRetryHonoursRetryAfter(t *testing.T) {
	r := newReceiver(t, reply{status: 429, header: map[string]string{"Retry-After": "1"}}, reply{status: 200})
	hook := Webhook{URL: r.URL}
	n, err := fast(3).Do(context.Background(), func(ctx context.Context) error { return hook.Run(ctx, testEvent()) })
	if n != 2 || err != nil {
		t.Fatalf("Do = %d, %v; want success on the second attempt", n, err)
	}
	reqs := r.requests()
	// The backoff alone is at most 40ms; the receiver asked for a second.
	if gap := reqs[1].At.Sub(reqs[0].At); gap < 900*time.Millisecond {
		t.Errorf("retried %v after a 429 with Retry-After: 1", gap)
	}
}

func TestRetryStopsWhenCancelled(t *testing.T) {
	r := newReceiver(t, reply{status: 503})
	hook := Webhook{URL: r.URL}
	ctx, cancel := context.WithCancel(context.Background())
	p := RetryPolicy{Retries: 1000, Base: 20 * time.Millisecond, Max: 20 * time.Millisecond}
	done := make(chan struct{})
	var n int
	var err error
	go func() {
		defer close(done)
		n, err = p.Do(ctx, func(ctx context.Context) error { return hook.Run(ctx, testEvent()) })
	}()
	waitFor(t, 5*time.Second, "two attempts", func() bool { return len(r.requests()) >= 2 })
	cancel()
	<-done
	if !errors.Is(err, context.Canceled) {
		t.Errorf("Do error = %v, want it to wrap context.Canceled", err)
	}
	// Do has returned. The attempt cancelled in flight may or may not have
	// reached the receiver (and may be recorded a moment later), so the
	// receiver ends with n or n-1 requests, never more.
	if n >= 1000 {
		t.Errorf("Do reported %d attempts; want it stopped well short of 1001", n)
	}
	if got := len(r.requests()); got > n || got < n-1 {
		t.Errorf("Do reported %d attempts, receiver got %d", n, got)
	}
}

func TestRetryBoundsEachAttempt(t *testing.T) {
	p := RetryPolicy{Retries: 1, Timeout: 20 * time.Millisecond, Base: time.Millisecond}
	n, err := p.Do(context.Background(), func(ctx context.Context) error {
		<-ctx.Done()
		return ctx.Err()
	})
	if n != 2 || err == nil || !strings.Contains(err.Error(), "timed out after 20ms") {
		t.Fatalf("Do = %d, %v; want two timed-out attempts", n, err)
	}
}

func TestRetryWaitIsJitteredBelowTheExponentialCap(t *testing.T) {
	p := RetryPolicy{Base: 100 * time.Millisecond, Max: time.Second}
	transient := errors.New("503")
	for n, ceiling := range map[int]time.Duration{1: 100 * time.Millisecond, 2: 200 * time.Millisecond,
		4: 800 * time.Millisecond, 5: time.Second, 60: time.Second} {
		var lo, hi time.Duration = ceiling, 0
		for range 200 {
			d := p.wait(n, transient)
			lo, hi = min(lo, d), max(hi, d)
		}
		if lo < 0 || hi > ceiling || hi == lo {
			t.Errorf("after attempt %d: waits in [%v, %v], want spread within [0, %v]", n, lo, hi, ceiling)
		}
	}
	if d := p.wait(1, RetryAfter(transient, 3*time.Second)); d != 3*time.Second {
		t.Errorf("wait with Retry-After 3s = %v", d)
	}
	if d := p.wait(1, RetryAfter(transient, 24*time.Hour)); d != maxRetryAfter {
		t.Errorf("wait with Retry-After 24h = %v, want the bound %v", d, maxRetryAfter)
	}
	if d := (RetryPolicy{}).wait(1, transient); d > DefaultRetryBase {
		t.Errorf("default policy's first wait = %v, want at most %v", d, DefaultRetryBase)
	}
}

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		in   string
		want time.Duration
		ok   bool
	}{
		{"0", 0, true},
		{" 120 ", 2 * time.Minute, true},
		{"Wed, 25 Nov 2026 10:00:30 GMT", 30 * time.Second, true},
		{"Wed, 25 Nov 2026 09:00:00 GMT", 0, true}, // in the past: now
		{"", 0, false},
		{"-5", 0, false},
		{"1.5", 0, false},
		{"tomorrow", 0, false},
	} {
		got, ok := parseRetryAfter(tc.in, now)
		if got != tc.want || ok != tc.ok {
			t.Errorf("parseRetryAfter(%q) = %v, %v; want %v, %v", tc.in, got, ok, tc.want, tc.ok)
		}
	}
}
