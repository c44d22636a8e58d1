package cli

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/watchdog-ha/watchdog/client"
	"github.com/watchdog-ha/watchdog/cluster"
	"github.com/watchdog-ha/watchdog/fsm"
)

// apiClient is the public client as the CLI uses it: every call goes
// through client.Client (nodes tried in turn, errors classified there);
// what is left here is the CLI's: its transport, the raw JSON kept for
// -json, and errors worded as the CLI prints them.
type apiClient struct {
	c *client.Client
}

// newAPIClient is a client of the comma-separated nodes in list, with no
// timeout of its own: the command's -timeout bounds its context.
func newAPIClient(list string, tc *tls.Config, apiToken, pingToken string) (*apiClient, error) {
	hc := &http.Client{Transport: &http.Transport{
		// A node that is down usually refuses at once; one that is cut off
		// must not hold the whole time budget before the next is tried.
		DialContext:       (&net.Dialer{Timeout: 2 * time.Second}).DialContext,
		DisableKeepAlives: true, // one command, a few requests
		TLSClientConfig:   tc,
	}}
	opts := []client.Option{client.WithHTTPClient(hc), client.WithTimeout(0), client.WithUserAgent("watchdog-cli"),
		client.WithAPIToken(apiToken), client.WithPingToken(pingToken)}
	if tc != nil {
		opts = append(opts, client.WithTLSConfig(tc)) // host:port means https
	}
	c, err := client.New(strings.Split(list, ","), opts...)
	if err != nil {
		return nil, cliError{err}
	}
	return &apiClient{c: c}, nil
}

// cliError is an error of package client as the CLI prints it: without the
// "watchdog: " that package starts its errors with, since the CLI's own
// message starts with it already.
type cliError struct{ err error }

func (e cliError) Error() string { return strings.TrimPrefix(e.err.Error(), "watchdog: ") }
func (e cliError) Unwrap() error { return e.err }

// send is client.Do with the CLI's errors.
func (a *apiClient) send(ctx context.Context, req client.Request) (*client.Response, error) {
	resp, err := a.c.Do(ctx, req)
	if err != nil {
		return nil, cliError{err}
	}
	return resp, nil
}

// do sends a request without a body and returns the answer's body and the
// base URL of the node that gave it.
func (a *apiClient) do(ctx context.Context, method, path string) ([]byte, string, error) {
	return a.doBody(ctx, method, path, nil)
}

// doBody is do with a request body.
func (a *apiClient) doBody(ctx context.Context, method, path string, body []byte) ([]byte, string, error) {
	resp, err := a.send(ctx, client.Request{Method: method, Path: path,
		Body: bytes.NewReader(body), BodySize: int64(len(body))})
	if err != nil {
		return nil, "", err
	}
	return resp.Body, resp.Node, nil
}

// getJSON reads path from any node and decodes it into v, returning the raw
// answer too.
func (a *apiClient) getJSON(ctx context.Context, path string, v any) ([]byte, error) {
	return a.doJSON(ctx, http.MethodGet, path, v)
}

// doJSON is getJSON for any method.
func (a *apiClient) doJSON(ctx context.Context, method, path string, v any) ([]byte, error) {
	body, _, err := a.do(ctx, method, path)
	if err != nil {
		return nil, err
	}
	if err := json.Unmarshal(body, v); err != nil {
		return nil, fmt.Errorf("decode %s: %w", path, err)
	}
	return body, nil
}

// Nodes are the base URLs of the nodes given.
func (a *apiClient) Nodes() []string { return a.c.Nodes() }

// Heartbeat sends one heartbeat; it returns once it is committed, with the
// node that took it.
func (a *apiClient) Heartbeat(ctx context.Context, id string) (string, error) {
	_, base, err := a.do(ctx, http.MethodPost, "/v1/heartbeat/"+url.PathEscape(id))
	return base, err
}

// Delete forgets a service.
func (a *apiClient) Delete(ctx context.Context, id string) error {
	if err := a.c.Delete(ctx, id); err != nil {
		return cliError{err}
	}
	return nil
}

// Services lists every service.
func (a *apiClient) Services(ctx context.Context) ([]byte, []client.Service, error) {
	var v struct{ Services []client.Service }
	raw, err := a.getJSON(ctx, "/v1/services", &v)
	return raw, v.Services, err
}

// Service reads one service with its incident history.
func (a *apiClient) Service(ctx context.Context, id string) ([]byte, client.Service, error) {
	var s client.Service
	raw, err := a.getJSON(ctx, "/v1/services/"+url.PathEscape(id), &s)
	return raw, s, err
}

// Cluster reads the leader and the nodes as one node sees them.
func (a *apiClient) Cluster(ctx context.Context) ([]byte, apiCluster, error) {
	var v apiCluster
	raw, err := a.getJSON(ctx, "/v1/cluster", &v)
	return raw, v, err
}

// Ready asks one node, at its advertised HTTP address, whether it is ready;
// nil means ready. Unlike the other calls it never tries another node.
func (a *apiClient) Ready(ctx context.Context, httpAddr string) error {
	if httpAddr == "" {
		return errors.New("no known HTTP address")
	}
	_, err := a.c.DoAt(ctx, httpAddr, client.Request{Method: http.MethodGet, Path: "/readyz"})
	var refusal *client.APIError
	if errors.As(err, &refusal) && refusal.Status == http.StatusServiceUnavailable {
		return errors.New(refusal.Message) // the reason alone: 503 is what not ready means
	}
	if err != nil {
		return cliError{err}
	}
	return nil
}

// apiCluster is GET /v1/cluster, as the CLI reads it.
type apiCluster struct {
	Leader string           `json:"leader"`
	Nodes  []cluster.Member `json:"nodes"`
	Config fsm.ConfigInfo   `json:"config"` // the committed configuration
}
