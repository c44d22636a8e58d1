package client

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"time"
)

// Definition is a service's policy for Define: PUT /v1/services/{id}. A
// zero duration or number, a nil list and an empty description are
// omitted and take the cluster's committed defaults; a non-nil empty list
// (such as []string{} for Actions) is sent, and means none.
type Definition struct {
	Timeout, Grace, Repeat, FlapWindow time.Duration
	MaxRepeats, FlapThreshold          int
	Actions, OnRecovered, Tags         []string
	Description                        string
	// Schedule (a cron expression) and TZ replace Timeout; DependsOn
	// names the services this one depends on.
	Schedule, TZ string
	DependsOn    []string
}

// MarshalJSON writes the API's body: duration strings, and only the fields
// that are set.
func (d Definition) MarshalJSON() ([]byte, error) {
	m := map[string]any{}
	for name, v := range map[string]time.Duration{"timeout": d.Timeout, "grace": d.Grace, "repeat": d.Repeat, "flap_window": d.FlapWindow} {
		if v != 0 {
			m[name] = v.String()
		}
	}
	for name, v := range map[string]int{"max_repeats": d.MaxRepeats, "flap_threshold": d.FlapThreshold} {
		if v != 0 {
			m[name] = v
		}
	}
	for name, v := range map[string][]string{"actions": d.Actions, "on_recovered": d.OnRecovered, "tags": d.Tags, "depends_on": d.DependsOn} {
		if v != nil {
			m[name] = v
		}
	}
	for name, v := range map[string]string{"description": d.Description, "schedule": d.Schedule, "tz": d.TZ} {
		if v != "" {
			m[name] = v
		}
	}
	return json.Marshal(m)
}

// Define creates service id, or changes one that the API or a heartbeat
// created, and returns it as committed. A service the config file defines
// is an *APIError with status 409; an action the config does not define, a
// 400. Defining a service again as it is changes nothing.
func (c *Client) Define(ctx context.Context, id string, def Definition) (Service, error) {
	var s Service
	if err := checkID(id); err != nil {
		return s, err
	}
	body, err := json.Marshal(def)
	if err != nil {
		return s, fmt.Errorf("watchdog: define %q: %w", id, err)
	}
	resp, err := c.Do(ctx, Request{Method: http.MethodPut, Path: "/v1/services/" + id,
		Body: bytes.NewReader(body), BodySize: int64(len(body))})
	if err != nil {
		return s, err
	}
	if err := json.Unmarshal(resp.Body, &s); err != nil {
		return s, fmt.Errorf("watchdog: decode the answer to PUT /v1/services/%s: %w", id, err)
	}
	return s, nil
}

// Delete forgets service id, its history and any action still owed for it
// (DELETE /v1/services/{id}). An unknown service is an *APIError with
// status 404, one the config file defines a 409. A Delete retried on
// another node after an unclear failure may thus find the service gone
// already: a 404 then means it is deleted.
func (c *Client) Delete(ctx context.Context, id string) error {
	if err := checkID(id); err != nil {
		return err
	}
	_, err := c.Do(ctx, Request{Method: http.MethodDelete, Path: "/v1/services/" + id})
	return err
}
