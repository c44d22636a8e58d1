package main

import (
	"bytes"
	"context"
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

	"github.com/watchdog-ha/watchdog/cluster"
)

// errUnavailable means no node could serve a request in the time allowed:
// none was reachable, or those that were had no leader (503).
var errUnavailable = errors.New("cluster unavailable")

// How the client waits between rounds over its addresses. A round where
// every node failed is followed by a short pause, or by what the nodes'
// Retry-After asked for, capped: a leader election takes about a second.
const (
	roundPause    = 250 * time.Millisecond
	maxRetryAfter = time.Second
	// maxAnswer bounds what the client reads: a list of many thousands of
	// services fits easily.
	maxAnswer = 32 << 20
)

// client is a small typed client of the watchdog HTTP API. It knows several
// nodes and tries each in turn: any node answers reads, and writes are
// forwarded to the leader by whichever node takes them.
type client struct {
	bases  []string // base URLs without a trailing slash
	hc     *http.Client
	scheme string // of the nodes' advertised HTTP addresses (Ready)
	// Sent as bearer tokens when set: the ping token with heartbeats, the
	// API token with everything else (pause and resume need it).
	apiToken, pingToken string
}

// apiError is a node's definite answer refusing a request (any status other
// than success and 503): trying another node would not change it.
type apiError struct {
	Status int
	Msg    string
}

func (e *apiError) Error() string { return fmt.Sprintf("%s (%d)", e.Msg, e.Status) }

// transientError is a failure another node, or a later try, may not have.
type transientError struct {
	err        error
	retryAfter time.Duration
}

func (e *transientError) Error() string { return e.err.Error() }
func (e *transientError) Unwrap() error { return e.err }

// parseAddrs reads a comma-separated list of host:port or http(s) URLs.
func parseAddrs(list string) ([]string, error) {
	var bases []string
	for _, a := range strings.Split(list, ",") {
		a = strings.TrimSpace(a)
		if a == "" {
			continue
		}
		if !strings.Contains(a, "://") {
			a = "http://" + a
		}
		u, err := url.Parse(a)
		if err != nil {
			return nil, fmt.Errorf("address %q: %w", a, err)
		}
		if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
			return nil, fmt.Errorf("address %q: want host:port or an http(s) URL", a)
		}
		bases = append(bases, strings.TrimSuffix(u.String(), "/"))
	}
	if len(bases) == 0 {
		return nil, errors.New("no address given")
	}
	return bases, nil
}

func newClient(bases []string) *client {
	return &client{bases: bases, scheme: "http", hc: &http.Client{Transport: &http.Transport{
		// A node that is down usually refuses at once; one that is cut off
		// must not hold the whole time budget before the next is tried.
		DialContext:       (&net.Dialer{Timeout: 2 * time.Second}).DialContext,
		DisableKeepAlives: true,
	}}}
}

// do sends a request without a body to the nodes in turn until one gives a
// definite answer. A connection error or a 503 moves on to the next node; a
// round in which none answered is followed by a pause and another round,
// until ctx ends. Every request the CLI sends is idempotent (heartbeats,
// pause, resume and reads), so sending one again after an unclear failure is
// safe. It returns the answer's body and the base URL that gave it, an
// *apiError, or errUnavailable.
func (c *client) do(ctx context.Context, method, path string) ([]byte, string, error) {
	return c.doBody(ctx, method, path, nil)
}

// doBody is do with a request body, sent again with every try.
func (c *client) doBody(ctx context.Context, method, path string, reqBody []byte) ([]byte, string, error) {
	return c.rounds(ctx, func(base string) ([]byte, error) {
		return c.tryBody(ctx, method, base+path, reqBody)
	})
}

// rounds calls try with each node in turn until one gives a definite
// answer (anything but a *transientError), pausing between rounds, until
// ctx ends.
func (c *client) rounds(ctx context.Context, try func(base string) ([]byte, error)) ([]byte, string, error) {
	var last error
	for {
		wait := roundPause
		for _, base := range c.bases {
			body, err := try(base)
			var tr *transientError
			if !errors.As(err, &tr) {
				return body, base, err
			}
			last = fmt.Errorf("%s: %w", base, err)
			wait = max(wait, min(tr.retryAfter, maxRetryAfter))
			if ctx.Err() != nil {
				break
			}
		}
		select {
		case <-ctx.Done():
			return nil, "", fmt.Errorf("%w: %w", errUnavailable, last)
		case <-time.After(wait):
		}
	}
}

func (c *client) try(ctx context.Context, method, url string) ([]byte, error) {
	return c.tryBody(ctx, method, url, nil)
}

func (c *client) tryBody(ctx context.Context, method, url string, reqBody []byte) ([]byte, error) {
	var rd io.Reader
	if reqBody != nil {
		rd = bytes.NewReader(reqBody)
	}
	req, err := c.newRequest(ctx, method, url, rd)
	if err != nil {
		return nil, err
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return nil, &transientError{err: err}
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswer))
	if err != nil {
		return nil, &transientError{err: fmt.Errorf("read answer: %w", err)}
	}
	if err := answerError(resp, body); err != nil {
		return nil, err
	}
	return body, nil
}

// newRequest builds a request to a node with the client's headers and the
// token the route needs.
func (c *client) newRequest(ctx context.Context, method, url string, body io.Reader) (*http.Request, error) {
	req, err := http.NewRequestWithContext(ctx, method, url, body)
	if err != nil {
		return nil, fmt.Errorf("request: %w", err)
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", "watchdog-cli")
	token := c.apiToken
	if strings.HasPrefix(req.URL.Path, "/v1/heartbeat/") || strings.HasPrefix(req.URL.Path, "/ping/") {
		token = c.pingToken
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	return req, nil
}

// answerError classifies an answer by its status: nil for success, a
// *transientError for a 503, an *apiError for any other refusal.
func answerError(resp *http.Response, body []byte) error {
	switch {
	case resp.StatusCode == http.StatusServiceUnavailable:
		secs, _ := strconv.Atoi(resp.Header.Get("Retry-After"))
		return &transientError{err: errors.New(errorText(resp, body)), retryAfter: time.Duration(secs) * time.Second}
	case resp.StatusCode/100 != 2:
		return &apiError{Status: resp.StatusCode, Msg: errorText(resp, body)}
	}
	return nil
}

// errorText is the JSON error a node sent, or its status line.
func errorText(resp *http.Response, body []byte) string {
	var e struct{ Error string }
	if json.Unmarshal(body, &e) == nil && e.Error != "" {
		return e.Error
	}
	return resp.Status
}

// getJSON reads path from any node and decodes it into v, returning the raw
// answer too.
func (c *client) getJSON(ctx context.Context, path string, v any) ([]byte, error) {
	body, _, err := c.do(ctx, http.MethodGet, path)
	if err != nil {
		return nil, err
	}
	if err := json.Unmarshal(body, v); err != nil {
		return nil, fmt.Errorf("decode %s: %w", path, err)
	}
	return body, nil
}

// Heartbeat sends one heartbeat; it returns once it is committed, with the
// node that took it.
func (c *client) Heartbeat(ctx context.Context, id string) (string, error) {
	_, base, err := c.do(ctx, http.MethodPost, "/v1/heartbeat/"+url.PathEscape(id))
	return base, err
}

// SetPaused pauses or resumes a service and returns it as committed.
func (c *client) SetPaused(ctx context.Context, id string, paused bool) (apiService, error) {
	verb := "resume"
	if paused {
		verb = "pause"
	}
	var s apiService
	body, _, err := c.do(ctx, http.MethodPost, "/v1/services/"+url.PathEscape(id)+"/"+verb)
	if err == nil {
		err = json.Unmarshal(body, &s)
	}
	return s, err
}

// Services lists every service.
func (c *client) Services(ctx context.Context) ([]byte, []apiService, error) {
	var v struct{ Services []apiService }
	raw, err := c.getJSON(ctx, "/v1/services", &v)
	return raw, v.Services, err
}

// Service reads one service with its incident history.
func (c *client) Service(ctx context.Context, id string) ([]byte, apiService, error) {
	var s apiService
	raw, err := c.getJSON(ctx, "/v1/services/"+url.PathEscape(id), &s)
	return raw, s, err
}

// Cluster reads the leader and the nodes as one node sees them.
func (c *client) Cluster(ctx context.Context) ([]byte, apiCluster, error) {
	var v apiCluster
	raw, err := c.getJSON(ctx, "/v1/cluster", &v)
	return raw, v, err
}

// Ready asks one node, at its advertised HTTP address, whether it is ready;
// nil means ready. Unlike the other calls it never tries another node.
func (c *client) Ready(ctx context.Context, httpAddr string) error {
	if httpAddr == "" {
		return errors.New("no known HTTP address")
	}
	_, err := c.try(ctx, http.MethodGet, c.scheme+"://"+httpAddr+"/readyz")
	return err
}

// The API's JSON, as the CLI reads it.
type (
	apiService struct {
		ID           string        `json:"id"`
		Status       string        `json:"status"`
		LastSeen     *time.Time    `json:"last_seen"`
		Timeout      string        `json:"timeout"`
		Actions      []string      `json:"actions"`
		OnRecovered  []string      `json:"on_recovered"`
		NextDeadline *time.Time    `json:"next_deadline"`
		Incident     *apiIncident  `json:"incident"`
		Incidents    []apiIncident `json:"incidents"`
	}
	apiIncident struct {
		ID       string      `json:"id"`
		Opened   *time.Time  `json:"opened"`
		LastSeen *time.Time  `json:"last_seen"`
		Resolved *time.Time  `json:"resolved"`
		Actions  []apiAction `json:"actions"`
	}
	apiAction struct {
		Action   string     `json:"action"`
		Event    string     `json:"event"`
		State    string     `json:"state"`
		Attempts int        `json:"attempts"`
		Error    string     `json:"error"`
		Finished *time.Time `json:"finished"`
	}
	apiCluster struct {
		Leader string           `json:"leader"`
		Nodes  []cluster.Member `json:"nodes"`
	}
)
