package httpapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/gorilla/mux"

	"github.com/watchdog-ha/watchdog/fsm"
)

// Prometheus's dead man's switch. kube-prometheus and most Prometheus setups
// carry an alert that always fires (Watchdog, or DeadMansSwitch), routed to
// a receiver whose only job is to be told, again and again, that the whole
// alerting pipeline (Prometheus evaluating rules, Alertmanager routing and
// sending) works. Pointed at
//
//	POST /v1/alertmanager/{id}
//
// an Alertmanager webhook_config turns each of its notifications into a
// heartbeat of service {id}: when they stop, the service times out and its
// actions page someone, however the pipeline broke.

// alertmanagerVersion is the webhook payload version Alertmanager has sent
// since 0.x: "version": "4".
const alertmanagerVersion = "4"

// alertmanagerPayload is Alertmanager's webhook body (webhook_config). Only
// version, status and the alerts' statuses decide anything; the rest is
// named so that a test can post the whole shape, and unknown fields are
// tolerated (Alertmanager adds some now and then).
type alertmanagerPayload struct {
	Version           string              `json:"version"`
	GroupKey          string              `json:"groupKey"`
	TruncatedAlerts   int                 `json:"truncatedAlerts"`
	Status            string              `json:"status"`
	Receiver          string              `json:"receiver"`
	GroupLabels       map[string]string   `json:"groupLabels"`
	CommonLabels      map[string]string   `json:"commonLabels"`
	CommonAnnotations map[string]string   `json:"commonAnnotations"`
	ExternalURL       string              `json:"externalURL"`
	Alerts            []alertmanagerAlert `json:"alerts"`
}

type alertmanagerAlert struct {
	Status       string            `json:"status"`
	Labels       map[string]string `json:"labels"`
	Annotations  map[string]string `json:"annotations"`
	StartsAt     time.Time         `json:"startsAt"`
	EndsAt       time.Time         `json:"endsAt"`
	GeneratorURL string            `json:"generatorURL"`
	Fingerprint  string            `json:"fingerprint"`
}

// alertmanagerAnswer is the JSON answer: whether a heartbeat was committed,
// and why not when it was not.
type alertmanagerAnswer struct {
	ID     string `json:"id"`
	Status string `json:"status"` // committed, or ignored
	Firing int    `json:"firing"` // alerts of the payload that fire
	Reason string `json:"reason,omitempty"`
}

// handleAlertmanager commits a heartbeat for {id} when Alertmanager says an
// alert fires. It takes the heartbeat routes' ping token (Alertmanager sends
// it with http_config.authorization, or ?token=), their body cap, and their
// admission of new ids (max_services, auto_register), through the same
// Node.Heartbeat.
func (s *Server) handleAlertmanager(w http.ResponseWriter, r *http.Request) {
	if !allowed(w, r, s.access.pingToken, true) {
		return
	}
	id := mux.Vars(r)["id"]
	if !fsm.ValidID(id) {
		writeError(w, http.StatusBadRequest, fmt.Sprintf("invalid service id %s: want 1-128 of A-Za-z0-9._- (not . or ..)", quoteInput(id)))
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxHeartbeatBody))
	if err != nil {
		bodyError(w, err)
		return
	}
	p, err := decodeAlertmanager(body)
	if err != nil {
		writeError(w, http.StatusBadRequest, "alertmanager payload: "+err.Error())
		return
	}
	firing := 0
	for _, a := range p.Alerts {
		if a.Status == "firing" {
			firing++
		}
	}
	answer := alertmanagerAnswer{ID: id, Status: "ignored", Firing: firing}
	switch {
	case p.Status != "firing":
		// A resolved notification means the always-firing alert stopped:
		// it must not count as a sign of life.
		answer.Reason = "the payload's status is resolved: nothing committed"
	case firing == 0:
		answer.Reason = "no alert of the payload fires: nothing committed"
	}
	if answer.Reason != "" {
		writeJSON(w, http.StatusOK, answer)
		return
	}
	s.metrics.receivedAlertmanager.Inc()
	ctx, cancel := context.WithTimeout(r.Context(), commitTimeout)
	defer cancel()
	if err := s.node.HeartbeatID(ctx, id); err != nil {
		commitError(w, err)
		return
	}
	answer.Status = "committed"
	writeJSON(w, http.StatusOK, answer)
}

// decodeAlertmanager reads one webhook payload and checks what decides:
// version 4, a status of firing or resolved, and the alerts' statuses.
func decodeAlertmanager(body []byte) (alertmanagerPayload, error) {
	var p alertmanagerPayload
	dec := json.NewDecoder(bytes.NewReader(body))
	if err := dec.Decode(&p); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) && te.Field != "" {
			return p, fmt.Errorf("%s: unexpected JSON %s", te.Field, te.Value)
		}
		return p, fmt.Errorf("want the JSON object Alertmanager's webhook_config sends: %w", err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return p, errors.New("data after the JSON object")
	}
	switch {
	case p.Version != alertmanagerVersion:
		return p, fmt.Errorf("version: want %q (Alertmanager's webhook payload), got %s", alertmanagerVersion, quoteInput(p.Version))
	case p.Status != "firing" && p.Status != "resolved":
		return p, fmt.Errorf("status: want firing or resolved, got %s", quoteInput(p.Status))
	case p.Alerts == nil:
		return p, errors.New("alerts: missing (want a list of alerts)")
	}
	for i, a := range p.Alerts {
		if a.Status != "firing" && a.Status != "resolved" {
			return p, fmt.Errorf("alerts[%d].status: want firing or resolved, got %s", i, quoteInput(a.Status))
		}
	}
	return p, nil
}
