package watcher

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/watchdog-ha/watchdog/fsm"
)

// userAgent names us to receivers, which see it in their access logs.
const userAgent = "watchdog"

// Secret is a string that must never reach a log: a password, a routing
// key, a webhook URL that is its own credential. It prints as [redacted].
type Secret string

// String implements fmt.Stringer, so %v and %s never show the value.
func (Secret) String() string { return "[redacted]" }

// GoString implements fmt.GoStringer, for %#v.
func (Secret) GoString() string { return `"[redacted]"` }

// LogValue implements slog.LogValuer.
func (Secret) LogValue() slog.Value { return slog.StringValue("[redacted]") }

// newHTTPClient is the client notifiers use when given none. It does not
// follow redirects: a redirected POST may turn into a GET or carry our
// headers to another host, so a redirect is reported for the operator to fix.
func newHTTPClient() *http.Client {
	return &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

// postJSON sends body as JSON and classifies the outcome for RetryPolicy:
// nil for any 2xx; retryable for connection errors, 429 and 5xx (carrying
// Retry-After when given); Permanent for every other status.
//
// A refusal is reported by its status code and the standard text for it,
// never by what the receiver sent: a receiver's answer (its body, even its
// reason phrase) may quote the request, and with it the URL's secret path,
// a header or a routing key, and the error is committed and shown by every
// read route. reasons lists the answers worth naming (Slack's
// "invalid_payload"): a body that is exactly one of them is added.
func postJSON(ctx context.Context, client *http.Client, target string, header http.Header, body any, reasons ...string) error {
	where := endpoint(target)
	payload, err := json.Marshal(body)
	if err != nil {
		return Permanent(fmt.Errorf("encode payload for %s: %w", where, err))
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, target, bytes.NewReader(payload))
	if err != nil {
		// Not %w: url.Parse's errors quote the whole URL, which may be a credential.
		return Permanent(fmt.Errorf("POST %s: invalid request", where))
	}
	for k, vs := range header {
		req.Header[k] = vs
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", userAgent)
	if client == nil {
		client = newHTTPClient()
	}
	resp, err := client.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // its message quotes the URL
		}
		return fmt.Errorf("POST %s: %w", where, err)
	}
	defer resp.Body.Close()
	reason := knownReason(resp.Body, reasons)
	code := resp.StatusCode
	if code >= 200 && code < 300 {
		return nil
	}
	err = fmt.Errorf("POST %s: %d %s", where, code, http.StatusText(code))
	if reason != "" {
		err = fmt.Errorf("%w: %s", err, reason)
	}
	switch {
	case code == http.StatusTooManyRequests || code >= 500:
		if d, ok := parseRetryAfter(resp.Header.Get("Retry-After"), time.Now()); ok {
			return RetryAfter(err, d)
		}
		return err
	case code >= 300 && code < 400:
		return Permanent(fmt.Errorf("%w (a redirect: configure the URL it points to)", err))
	}
	return Permanent(err)
}

// endpoint names a receiver in errors and logs by scheme and host only: the
// path or query of a webhook URL is often the secret that authorises it.
func endpoint(target string) string {
	u, err := url.Parse(target)
	if err != nil || u.Host == "" {
		return "(invalid URL)"
	}
	return u.Scheme + "://" + u.Host
}

// maxReason bounds how much of an answer is read to recognise a reason.
const maxReason = 64

// knownReason reads the start of a response and returns it if it is
// exactly one of reasons (our own words, then, not the receiver's), and
// drains the rest so that the connection can be reused.
func knownReason(r io.Reader, reasons []string) string {
	b, _ := io.ReadAll(io.LimitReader(r, maxReason))
	_, _ = io.Copy(io.Discard, io.LimitReader(r, 64<<10))
	got := strings.TrimSpace(string(b))
	if i := slices.Index(reasons, got); i >= 0 {
		return reasons[i]
	}
	return ""
}

// reasonLabel names why the service went down, shortly: "timeout",
// "fail", "exit status 23"; empty when not known.
func reasonLabel(ev Event) string {
	if ev.Reason == fsm.ReasonExitStatus {
		return fmt.Sprintf("exit status %d", ev.ExitStatus)
	}
	return ev.Reason
}

// why says in words why the service went down; empty when not known.
func why(ev Event) string {
	switch ev.Reason {
	case fsm.ReasonTimeout:
		if ev.Schedule != "" {
			return fmt.Sprintf("no success within the grace after a tick of its schedule %s, the last at %s", ev.Schedule, stamp(ev.LastSeen))
		}
		return fmt.Sprintf("no heartbeat within its timeout of %s, the last at %s", ev.Timeout, stamp(ev.LastSeen))
	case fsm.ReasonFail:
		return fmt.Sprintf("it reported a failure at %s", stamp(ev.LastSeen))
	case fsm.ReasonExitStatus:
		return fmt.Sprintf("it reported exit status %d at %s", ev.ExitStatus, stamp(ev.LastSeen))
	}
	return ""
}

// limit says what the service is held to: "timeout 10s", or its schedule.
func limit(ev Event) string {
	if ev.Schedule != "" {
		return "schedule " + ev.Schedule
	}
	return "timeout " + ev.Timeout.String()
}

// since formats how long ago t was at now, to the second.
func since(now, t time.Time) string {
	return max(now.Sub(t), 0).Round(time.Second).String()
}

// stamp formats a time for people and machines alike.
func stamp(t time.Time) string { return t.UTC().Format(time.RFC3339) }
