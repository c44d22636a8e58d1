package client

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"
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
// not retried. From DoAt, which asks one node, every answer but a 2xx is
// one.
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
	scheme              string   // of an address given as host:port
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
	c.scheme = "http"
	if c.tls != nil {
		c.scheme = "https"
	}
	for _, a := range addrs {
		if a = strings.TrimSpace(a); a == "" {
			continue
		}
		base, err := c.baseURL(a)
		if err != nil {
			return nil, err
		}
		c.bases = append(c.bases, base)
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

// baseURL checks one address and returns it as a base URL without a
// trailing slash.
func (c *Client) baseURL(addr string) (string, error) {
	if !strings.Contains(addr, "://") {
		addr = c.scheme + "://" + addr
	}
	u, err := url.Parse(addr)
	if err != nil {
		return "", fmt.Errorf("watchdog: address %q: %w", addr, err)
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		return "", fmt.Errorf("watchdog: address %q: want host:port or an http(s) URL", addr)
	}
	return strings.TrimSuffix(u.String(), "/"), nil
}

// Nodes returns the base URLs of the client's nodes, in the order calls
// try them.
func (c *Client) Nodes() []string { return slices.Clone(c.bases) }

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
	_, err := c.Do(ctx, Request{Method: http.MethodPost, Path: "/v1/heartbeat/" + id})
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
	_, err := c.Do(ctx, Request{Method: http.MethodPost, Path: "/ping/" + id + "/" + signal + "?create=1"})
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
	resp, err := c.Do(ctx, Request{Method: http.MethodGet, Path: path})
	if err != nil {
		return err
	}
	if err := json.Unmarshal(resp.Body, v); err != nil {
		return fmt.Errorf("watchdog: decode %s: %w", path, err)
	}
	return nil
}
