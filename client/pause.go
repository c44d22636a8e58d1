package client

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"time"
)

// Window is a maintenance window: the service is paused For a while, or
// Until a time, and the cluster's leader resumes it by itself then. The
// zero Window pauses until resumed.
type Window struct {
	For   time.Duration
	Until time.Time
}

// query is the window as the pause routes take it.
func (w Window) query() url.Values {
	v := url.Values{}
	if w.For != 0 {
		v.Set("for", w.For.String())
	}
	if !w.Until.IsZero() {
		v.Set("until", w.Until.UTC().Format(time.RFC3339Nano))
	}
	return v
}

// TagChange is the answer to PauseTag and ResumeTag: the services it
// changed, and how many of those tagged needed no change.
type TagChange struct {
	Tag       string     `json:"tag"`
	Status    Status     `json:"status"` // paused, or up for a resume
	Changed   []string   `json:"changed"`
	Unchanged int        `json:"unchanged"`
	Until     *time.Time `json:"until"`
}

// Pause stops watching service id (POST /v1/services/{id}/pause), for the
// window w, and returns it as committed. Pausing again is harmless; a new
// window replaces the old one. A window needs every server of the cluster
// on a build that knows windows: until then it is an *APIError with status
// 409, and a zero Window still works.
func (c *Client) Pause(ctx context.Context, id string, w Window) (Service, error) {
	path := "/v1/services/" + id + "/pause"
	if q := w.query(); len(q) > 0 {
		path += "?" + q.Encode()
	}
	return c.setPaused(ctx, id, path)
}

// Resume watches service id again, with a full timeout from now (POST
// /v1/services/{id}/resume). One that is not paused is an *APIError with
// status 409.
func (c *Client) Resume(ctx context.Context, id string) (Service, error) {
	return c.setPaused(ctx, id, "/v1/services/"+id+"/resume")
}

func (c *Client) setPaused(ctx context.Context, id, path string) (Service, error) {
	var s Service
	if err := checkID(id); err != nil {
		return s, err
	}
	resp, err := c.Do(ctx, Request{Method: http.MethodPost, Path: path})
	if err != nil {
		return s, err
	}
	if err := json.Unmarshal(resp.Body, &s); err != nil {
		return s, fmt.Errorf("watchdog: decode the answer to POST %s: %w", path, err)
	}
	return s, nil
}

// PauseTag pauses every service tagged tag at once (POST /v1/pause?tag=),
// for the window w. A tag no service has is an *APIError with status 404.
func (c *Client) PauseTag(ctx context.Context, tag string, w Window) (TagChange, error) {
	q := w.query()
	q.Set("tag", tag)
	return c.tagChange(ctx, tag, "/v1/pause?"+q.Encode())
}

// ResumeTag resumes every paused service tagged tag at once (POST
// /v1/resume?tag=).
func (c *Client) ResumeTag(ctx context.Context, tag string) (TagChange, error) {
	return c.tagChange(ctx, tag, "/v1/resume?"+url.Values{"tag": {tag}}.Encode())
}

func (c *Client) tagChange(ctx context.Context, tag, path string) (TagChange, error) {
	var out TagChange
	if err := checkID(tag); err != nil {
		return out, fmt.Errorf("watchdog: tag: %w", err)
	}
	resp, err := c.Do(ctx, Request{Method: http.MethodPost, Path: path})
	if err != nil {
		return out, err
	}
	if err := json.Unmarshal(resp.Body, &out); err != nil {
		return out, fmt.Errorf("watchdog: decode the answer to POST %s: %w", path, err)
	}
	return out, nil
}
