package client

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// ErrUnavailable means no node gave a definite answer before the context
// (or the client's timeout) ended: none was reachable, or those that were
// answered 503 (no leader, or the heartbeat was not committed in time). The
// error that wraps it also wraps the last node's failure and, when the
// context ended, the context's error.
var ErrUnavailable = errors.New("watchdog: cluster unavailable")

// ErrInvalidID means a service id was refused before anything was sent: ids
// are 1–128 characters of A-Za-z0-9._- and not "." or "..".
var ErrInvalidID = errors.New("watchdog: invalid service id")

// APIError is a node's definite refusal of a request (any answer but a 2xx,
// a 503 or a gateway error): another node would answer the same, so it is
// not retried.
type APIError struct {
	Status  int    // the HTTP status, such as 401 or 404
	Message string // the node's error text, or its status line
}

func (e *APIError) Error() string {
	return fmt.Sprintf("watchdog: %s (%d)", e.Message, e.Status)
}

// How the client waits between rounds over its addresses: a round in which
// every node failed is followed by a short pause, or by what the nodes'
// Retry-After asked for, capped, since a leader election takes about a
// second and the caller's context bounds the whole.
const (
	roundPause     = 250 * time.Millisecond
	maxRetryAfter  = time.Second
	defaultTimeout = 30 * time.Second
	maxAnswer      = 32 << 20 // bytes read of an answer at most
)

// Client talks to the nodes of one watchdog cluster. It is safe for
// concurrent use.
type Client struct {
	bases               []string // base URLs without a trailing slash
	hc                  *http.Client
	apiToken, pingToken string
	timeout             time.Duration
	userAgent           string
	tls                 *tls.Config
}

// Option configures a Client.
type Option func(*Client)

// WithPingToken sends token as a bearer token with every heartbeat (Ping,
// Start, Fail, Beat), for a cluster whose nodes set a ping token.
func WithPingToken(token string) Option { return func(c *Client) { c.pingToken = token } }

// WithAPIToken sends token as a bearer token with every other request.
func WithAPIToken(token string) Option { return func(c *Client) { c.apiToken = token } }

// WithHTTPClient replaces the HTTP client (for TLS settings or a proxy).
// The default dials with a 2 s timeout, so that a node that is cut off does
// not hold a call's whole time before the next node is tried.
func WithHTTPClient(hc *http.Client) Option { return func(c *Client) { c.hc = hc } }

// WithTLSConfig makes the client talk https to a cluster that serves TLS:
// addresses given as host:port are https, and the default HTTP client uses
// c (set RootCAs to the cluster's CA, and Certificates when the nodes
// require client certificates). A client given by WithHTTPClient is used
// as it is.
func WithTLSConfig(tc *tls.Config) Option { return func(c *Client) { c.tls = tc } }

// WithTimeout bounds each call, retries included, in addition to its
// context. The default is 30 s; 0 leaves only the context.
func WithTimeout(d time.Duration) Option { return func(c *Client) { c.timeout = d } }

// WithUserAgent sets the User-Agent header (default "watchdog-go-client").
func WithUserAgent(ua string) Option { return func(c *Client) { c.userAgent = ua } }

// New returns a client of the nodes at addrs, each a host:port or an
// http(s) URL. Calls try them in the order given.
func New(addrs []string, opts ...Option) (*Client, error) {
	c := &Client{timeout: defaultTimeout, userAgent: "watchdog-go-client"}
	for _, o := range opts {
		o(c)
	}
	scheme := "http://"
	if c.tls != nil {
		scheme = "https://"
	}
	for _, a := range addrs {
		a = strings.TrimSpace(a)
		if a == "" {
			continue
		}
		if !strings.Contains(a, "://") {
			a = scheme + a
		}
		u, err := url.Parse(a)
		if err != nil {
			return nil, fmt.Errorf("watchdog: address %q: %w", a, err)
		}
		if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" || u.User != nil {
			return nil, fmt.Errorf("watchdog: address %q: want host:port or an http(s) URL", a)
		}
		c.bases = append(c.bases, strings.TrimSuffix(u.String(), "/"))
	}
	if len(c.bases) == 0 {
		return nil, errors.New("watchdog: no address given")
	}
	if c.hc == nil {
		c.hc = &http.Client{Transport: &http.Transport{
			Proxy:               http.ProxyFromEnvironment,
			DialContext:         (&net.Dialer{Timeout: 2 * time.Second}).DialContext,
			TLSHandshakeTimeout: 5 * time.Second,
			TLSClientConfig:     c.tls,
			MaxIdleConnsPerHost: 4,
			IdleConnTimeout:     90 * time.Second,
		}}
	}
	return c, nil
}

// ValidID reports whether id may name a service: 1–128 characters of
// A-Za-z0-9._-, and not "." or "..". The nodes apply the same rule.
func ValidID(id string) bool {
	if len(id) == 0 || len(id) > 128 || id == "." || id == ".." {
		return false
	}
	for i := range len(id) {
		switch c := id[i]; {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9', c == '.', c == '_', c == '-':
		default:
			return false
		}
	}
	return true
}

func checkID(id string) error {
	if !ValidID(id) {
		return fmt.Errorf("%w %q: want 1-128 characters of A-Za-z0-9._-, not \".\" or \"..\"", ErrInvalidID, id)
	}
	return nil
}

// Ping sends one heartbeat (POST /v1/heartbeat/{id}). It returns nil once
// the heartbeat is committed on a quorum.
func (c *Client) Ping(ctx context.Context, id string) error {
	if err := checkID(id); err != nil {
		return err
	}
	_, err := c.do(ctx, http.MethodPost, "/v1/heartbeat/"+id, c.pingToken)
	return err
}

// Start says a run of the job id begins (POST /ping/{id}/start, the
// healthchecks.io-compatible form): without a Ping or Fail within its
// timeout, the service goes down. Like Ping, it creates a service the
// cluster does not know yet (it sends ?create=1, and takes the 201 that
// answers it as success).
func (c *Client) Start(ctx context.Context, id string) error {
	return c.signal(ctx, id, "start")
}

// Fail says a run of the job id failed (POST /ping/{id}/fail): the service
// goes down at once. It creates an unknown service as Start does.
func (c *Client) Fail(ctx context.Context, id string) error {
	return c.signal(ctx, id, "fail")
}

// signal sends a healthchecks-style signal. Sending one again after an
// unclear failure is harmless: a second start or fail of the same run
// changes nothing more than the first.
func (c *Client) signal(ctx context.Context, id, signal string) error {
	if err := checkID(id); err != nil {
		return err
	}
	_, err := c.do(ctx, http.MethodPost, "/ping/"+id+"/"+signal+"?create=1", c.pingToken)
	return err
}

// Services lists every service, as one node's replica has it
// (GET /v1/services).
func (c *Client) Services(ctx context.Context) ([]Service, error) {
	var v struct {
		Services []Service `json:"services"`
	}
	if err := c.getJSON(ctx, "/v1/services", &v); err != nil {
		return nil, err
	}
	return v.Services, nil
}

// Service reads one service with its incident history, newest first
// (GET /v1/services/{id}). An unknown service is an *APIError with status
// 404.
func (c *Client) Service(ctx context.Context, id string) (Service, error) {
	var s Service
	if err := checkID(id); err != nil {
		return s, err
	}
	err := c.getJSON(ctx, "/v1/services/"+id, &s)
	return s, err
}

func (c *Client) getJSON(ctx context.Context, path string, v any) error {
	body, err := c.do(ctx, http.MethodGet, path, c.apiToken)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(body, v); err != nil {
		return fmt.Errorf("watchdog: decode %s: %w", path, err)
	}
	return nil
}

// transientError is a failure another node, or a later try, may not have.
type transientError struct {
	err        error
	retryAfter time.Duration
}

func (e *transientError) Error() string { return e.err.Error() }
func (e *transientError) Unwrap() error { return e.err }

// do sends a request without a body to the nodes in turn until one gives a
// definite answer. A connection error, a 503 or a gateway error (502, 504:
// a load balancer that could not reach a node) moves on to the next node; a
// round in which none answered is followed by a pause (the nodes'
// Retry-After, at most a second) and another round, until ctx or the
// client's timeout ends. Every request sent is idempotent (heartbeats only
// move a last-seen time forward), so sending one again is safe.
func (c *Client) do(ctx context.Context, method, path, token string) ([]byte, error) {
	if c.timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, c.timeout)
		defer cancel()
	}
	var last error
	for {
		wait := roundPause
		for _, base := range c.bases {
			if ctx.Err() != nil {
				break
			}
			body, err := c.try(ctx, method, base+path, token)
			var tr *transientError
			if !errors.As(err, &tr) {
				return body, err
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

func (c *Client) try(ctx context.Context, method, u, token string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, method, u, nil)
	if err != nil {
		return nil, fmt.Errorf("watchdog: request: %w", err)
	}
	req.Header.Set("Accept", "application/json, text/plain")
	req.Header.Set("User-Agent", c.userAgent)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return nil, &transientError{err: err}
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswer))
	switch {
	case err != nil:
		return nil, &transientError{err: fmt.Errorf("read answer: %w", err)}
	case resp.StatusCode == http.StatusServiceUnavailable:
		return nil, &transientError{err: errors.New(errorText(resp, body)), retryAfter: retryAfter(resp)}
	case resp.StatusCode == http.StatusBadGateway, resp.StatusCode == http.StatusGatewayTimeout:
		return nil, &transientError{err: errors.New(errorText(resp, body))}
	case resp.StatusCode/100 != 2:
		return nil, &APIError{Status: resp.StatusCode, Message: errorText(resp, body)}
	}
	return body, nil
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
