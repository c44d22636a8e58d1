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
	"strings"
	"time"
	"unicode"
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
func postJSON(ctx context.Context, client *http.Client, target string, header http.Header, body any) error {
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
	snippet := readSnippet(resp.Body)
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		return nil
	}
	err = fmt.Errorf("POST %s: %s", where, resp.Status)
	if snippet != "" {
		err = fmt.Errorf("%w: %s", err, snippet)
	}
	switch code := resp.StatusCode; {
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

// maxSnippet bounds how much of a receiver's answer goes into the error
// that is committed and logged.
const maxSnippet = 200

// readSnippet reads the start of a response (whose reason, such as Slack's
// "invalid_payload", helps the operator), drains the rest so the connection
// can be reused, and keeps only printable characters.
func readSnippet(r io.Reader) string {
	b, _ := io.ReadAll(io.LimitReader(r, maxSnippet))
	_, _ = io.Copy(io.Discard, io.LimitReader(r, 64<<10))
	s := strings.Map(func(c rune) rune {
		if unicode.IsPrint(c) {
			return c
		}
		return ' '
	}, string(b))
	return strings.TrimSpace(s)
}

// since formats how long ago t was at now, to the second.
func since(now, t time.Time) string {
	return max(now.Sub(t), 0).Round(time.Second).String()
}

// stamp formats a time for people and machines alike.
func stamp(t time.Time) string { return t.UTC().Format(time.RFC3339) }
