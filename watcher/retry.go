package watcher

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// The backoff a RetryPolicy uses when its own fields are zero. Like
// Alertmanager's: a receiver that is briefly down gets its message within
// seconds, one that is down for long is not hammered.
const (
	DefaultRetryBase = time.Second
	DefaultRetryMax  = time.Minute
	// maxRetryAfter bounds how long a receiver's Retry-After can hold a
	// delivery: a hostile or broken "Retry-After: 86400" must not silence
	// a page for a day.
	maxRetryAfter = 5 * time.Minute
)

// RetryPolicy says how one action's delivery is retried. The zero policy
// makes one attempt with no bound of its own (Exec bounds itself).
type RetryPolicy struct {
	Retries int           // attempts after the first
	Timeout time.Duration // bounds each attempt; 0 leaves it to the action
	Base    time.Duration // the first retry waits up to Base; 0 means DefaultRetryBase
	Max     time.Duration // no wait is drawn above Max; 0 means DefaultRetryMax
}

// Do calls attempt until it succeeds, fails permanently, runs out of
// retries, or ctx ends. It returns how many attempts it started and the
// last error; when ctx ended, that error wraps ctx's.
func (p RetryPolicy) Do(ctx context.Context, attempt func(context.Context) error) (int, error) {
	for n := 1; ; n++ {
		err := p.try(ctx, attempt)
		if err == nil {
			return n, nil
		}
		if ctx.Err() != nil {
			return n, fmt.Errorf("%w (attempt %d: %w)", context.Cause(ctx), n, err)
		}
		if !p.retries(n, err) {
			return n, err
		}
		t := time.NewTimer(p.wait(n, err))
		select {
		case <-ctx.Done():
			t.Stop()
			return n, fmt.Errorf("%w (attempt %d: %w)", context.Cause(ctx), n, err)
		case <-t.C:
		}
	}
}

// retries reports whether Do tries again after the n-th attempt failed with err.
func (p RetryPolicy) retries(n int, err error) bool { return n <= p.Retries && !IsPermanent(err) }

func (p RetryPolicy) try(ctx context.Context, attempt func(context.Context) error) error {
	if p.Timeout <= 0 {
		return attempt(ctx)
	}
	actx, cancel := context.WithTimeout(ctx, p.Timeout)
	defer cancel()
	err := attempt(actx)
	if err != nil && ctx.Err() == nil && errors.Is(actx.Err(), context.DeadlineExceeded) {
		return fmt.Errorf("timed out after %s: %w", p.Timeout, err)
	}
	return err
}

// wait is the pause after the n-th failed attempt: exponential backoff with
// full jitter (a uniform draw below the exponential cap, so receivers that
// come back are not hit by every leader's retries at once), or the
// receiver's Retry-After if that is longer.
func (p RetryPolicy) wait(n int, err error) time.Duration {
	base, ceiling := p.Base, p.Max
	if base <= 0 {
		base = DefaultRetryBase
	}
	if ceiling <= 0 {
		ceiling = DefaultRetryMax
	}
	limit := base
	for i := 1; i < n && limit < ceiling; i++ {
		limit *= 2
	}
	limit = min(limit, ceiling)
	d := rand.N(limit + 1)
	var ra *retryAfterError
	if errors.As(err, &ra) {
		d = max(d, min(ra.after, maxRetryAfter))
	}
	return d
}

// permanentError marks a failure that retrying cannot fix.
type permanentError struct{ err error }

func (e *permanentError) Error() string { return e.err.Error() }
func (e *permanentError) Unwrap() error { return e.err }

// Permanent marks err as not worth retrying: a receiver that refused the
// request itself (a 4xx other than 429, an SMTP 5xx reply) will refuse it
// again. Errors are retryable unless marked.
func Permanent(err error) error {
	if err == nil {
		return nil
	}
	return &permanentError{err}
}

// IsPermanent reports whether err, or an error it wraps, was marked with
// Permanent, or is a certificate the receiver cannot make us trust by
// being asked again.
func IsPermanent(err error) bool {
	var p *permanentError
	var cert *tls.CertificateVerificationError
	return errors.As(err, &p) || errors.As(err, &cert)
}

// retryAfterError is a retryable failure whose receiver asked us to wait.
type retryAfterError struct {
	err   error
	after time.Duration
}

func (e *retryAfterError) Error() string { return e.err.Error() }
func (e *retryAfterError) Unwrap() error { return e.err }

// RetryAfter marks err as retryable no sooner than after d.
func RetryAfter(err error, d time.Duration) error {
	return &retryAfterError{err: err, after: d}
}

// parseRetryAfter reads a Retry-After header: delay-seconds or an HTTP
// date (RFC 9110, section 10.2.3). A date in the past means now.
func parseRetryAfter(v string, now time.Time) (time.Duration, bool) {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0, false
	}
	if secs, err := strconv.ParseUint(v, 10, 32); err == nil {
		return time.Duration(secs) * time.Second, true
	}
	if t, err := http.ParseTime(v); err == nil {
		return max(t.Sub(now), 0), true
	}
	return 0, false
}
