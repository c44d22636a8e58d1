package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// Request is a call of the API that the typed methods do not make, for Do
// and DoAt: another route (the cluster's membership, pause and resume,
// backups), a request with a body, or an answer to stream rather than hold
// in memory.
type Request struct {
	Method string // GET when empty
	// Path is the route with its query, such as
	// "/v1/cluster/leave?force=true", appended to a node's base URL.
	Path string
	// Body, when not nil, is sent with the request: BodySize bytes from
	// offset 0. It is read afresh for every try, so that a request that
	// failed part way on one node goes whole to the next.
	Body     io.ReaderAt
	BodySize int64
	// Into, when not nil, takes a successful answer's body: it is called
	// when a node answers 2xx, and the body is copied into the writer it
	// returns instead of into Response.Body (a backup can be larger than
	// memory). A copy cut short is a transient failure: the next try calls
	// Into again, which must start its output afresh (truncate its file).
	// An error of Into or of its writer ends the call.
	Into func() (io.Writer, error)
}

// Response is a node's successful answer to a Request.
type Response struct {
	Node   string // the base URL of the node that answered
	Status int    // 200, 201…
	Body   []byte // the answer (at most 32 MiB), empty when Request.Into took it
}

// Do sends req to the nodes in turn until one gives a definite answer, as
// Ping does: a connection error, a 503 or a gateway error (502, 504: a load
// balancer that could not reach a node) moves on to the next node, and a
// round in which none answered is followed by a pause (the nodes'
// Retry-After, at most a second) and another round, until ctx or the
// client's timeout ends. A refusal is an *APIError; no definite answer in
// time wraps ErrUnavailable. Since a request may reach more than one node,
// send only requests that may be repeated safely (every route of the API
// is idempotent). The ping token goes with the heartbeat routes
// (/v1/heartbeat/…, /ping/…), the API token with every other.
func (c *Client) Do(ctx context.Context, req Request) (*Response, error) {
	ctx, cancel := c.bound(ctx)
	defer cancel()
	var last error
	for {
		wait := roundPause
		for _, base := range c.bases {
			if ctx.Err() != nil {
				break
			}
			resp, err := c.try(ctx, base, req)
			var tr *transientError
			if !errors.As(err, &tr) {
				return resp, err
			}
			last = fmt.Errorf("%s: %w", base, err)
			wait = max(wait, min(tr.retryAfter, maxRetryAfter))
		}
		if last == nil { // ctx ended before anything was tried
			return nil, fmt.Errorf("%w: %w", ErrUnavailable, context.Cause(ctx))
		}
		timer := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			timer.Stop()
			if errors.Is(last, ctx.Err()) {
				return nil, fmt.Errorf("%w: %w", ErrUnavailable, last)
			}
			return nil, fmt.Errorf("%w: %w (%w)", ErrUnavailable, last, ctx.Err())
		case <-timer.C:
		}
	}
}

// DoAt sends req once to node alone, with no retry: for what one node says
// of itself, such as its readiness (GET /readyz). node is a host:port (of
// the scheme the client's addresses default to) or an http(s) URL; it need
// not be one of the client's addresses. Any answer but a 2xx, 503 included,
// is an *APIError; a failure to reach the node is the transport's error.
func (c *Client) DoAt(ctx context.Context, node string, req Request) (*Response, error) {
	base, err := c.baseURL(strings.TrimSpace(node))
	if err != nil {
		return nil, err
	}
	ctx, cancel := c.bound(ctx)
	defer cancel()
	resp, err := c.try(ctx, base, req)
	var tr *transientError
	switch {
	case !errors.As(err, &tr):
		return resp, err
	case tr.status != 0:
		return nil, &APIError{Status: tr.status, Message: tr.err.Error()}
	}
	return nil, tr.err
}

// bound applies the client's timeout to a call.
func (c *Client) bound(ctx context.Context) (context.Context, context.CancelFunc) {
	if c.timeout > 0 {
		return context.WithTimeout(ctx, c.timeout)
	}
	return context.WithCancel(ctx)
}

// transientError is a failure another node, or a later try, may not have.
type transientError struct {
	err        error
	retryAfter time.Duration
	status     int // of the answer that said so; 0 when there was none
}

func (e *transientError) Error() string { return e.err.Error() }
func (e *transientError) Unwrap() error { return e.err }

// try sends req to the node at base once and classifies the outcome: a
// *transientError, an *APIError or success.
func (c *Client) try(ctx context.Context, base string, r Request) (*Response, error) {
	req, err := c.newRequest(ctx, base, r)
	if err != nil {
		return nil, err
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return nil, &transientError{err: err}
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 == 2 && r.Into != nil {
		if err := copyInto(r.Into, resp.Body); err != nil {
			return nil, err
		}
		return &Response{Node: base, Status: resp.StatusCode}, nil
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswer))
	if err != nil {
		return nil, &transientError{err: fmt.Errorf("read answer: %w", err)}
	}
	if err := answerError(resp, body); err != nil {
		return nil, err
	}
	return &Response{Node: base, Status: resp.StatusCode, Body: body}, nil
}

// newRequest builds r for the node at base, with the client's headers and
// the token its route needs.
func (c *Client) newRequest(ctx context.Context, base string, r Request) (*http.Request, error) {
	method := r.Method
	if method == "" {
		method = http.MethodGet
	}
	var body io.Reader
	if r.Body != nil && r.BodySize > 0 {
		// Not a Closer, so the transport leaves r.Body open for the next try.
		body = io.NewSectionReader(r.Body, 0, r.BodySize)
	}
	req, err := http.NewRequestWithContext(ctx, method, base+r.Path, body)
	if err != nil {
		return nil, fmt.Errorf("watchdog: request: %w", err)
	}
	if body != nil {
		req.ContentLength = r.BodySize
	}
	req.Header.Set("Accept", "application/json, text/plain")
	req.Header.Set("User-Agent", c.userAgent)
	token := c.apiToken
	if strings.HasPrefix(r.Path, "/v1/heartbeat/") || strings.HasPrefix(r.Path, "/ping/") {
		token = c.pingToken
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	return req, nil
}

// copyInto copies a successful answer into the writer into gives. A read
// cut short is transient (the next try starts afresh); a local failure is
// not, since another node would not change it.
func copyInto(into func() (io.Writer, error), body io.Reader) error {
	w, err := into()
	if err != nil {
		return fmt.Errorf("watchdog: output: %w", err)
	}
	out := &writeErrors{w: w}
	if _, err := io.Copy(out, body); err != nil {
		if out.err != nil {
			return fmt.Errorf("watchdog: output: %w", out.err)
		}
		return &transientError{err: fmt.Errorf("read answer: %w", err)}
	}
	return nil
}

// writeErrors keeps its writer's error, to tell it from a read's.
type writeErrors struct {
	w   io.Writer
	err error
}

func (w *writeErrors) Write(p []byte) (int, error) {
	n, err := w.w.Write(p)
	if err != nil {
		w.err = err
	}
	return n, err
}

// answerError classifies an answer by its status: nil for success, a
// *transientError for a 503 or a gateway error, an *APIError for any other.
func answerError(resp *http.Response, body []byte) error {
	switch code := resp.StatusCode; {
	case code == http.StatusServiceUnavailable:
		return &transientError{err: errors.New(errorText(resp, body)), retryAfter: retryAfter(resp), status: code}
	case code == http.StatusBadGateway, code == http.StatusGatewayTimeout:
		return &transientError{err: errors.New(errorText(resp, body)), status: code}
	case code/100 != 2:
		return &APIError{Status: code, Message: errorText(resp, body)}
	}
	return nil
}

// retryAfter reads a Retry-After of whole seconds; an HTTP date or anything
// else counts as none (the round pause applies).
func retryAfter(resp *http.Response) time.Duration {
	secs, err := strconv.Atoi(strings.TrimSpace(resp.Header.Get("Retry-After")))
	if err != nil || secs < 0 {
		return 0
	}
	return time.Duration(min(secs, 3600)) * time.Second
}

// errorText is the node's JSON error, its short plain-text answer (the
// healthchecks-compatible routes answer "not found"), or its status line.
func errorText(resp *http.Response, body []byte) string {
	var e struct {
		Error string `json:"error"`
	}
	if json.Unmarshal(body, &e) == nil && e.Error != "" {
		return e.Error
	}
	if t := strings.TrimSpace(string(body)); t != "" && len(t) <= 200 && utf8.ValidString(t) &&
		strings.HasPrefix(resp.Header.Get("Content-Type"), "text/plain") {
		return t
	}
	return resp.Status
}
