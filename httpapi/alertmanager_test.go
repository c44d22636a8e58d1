package httpapi_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/watchdog-ha/watchdog/cluster"
	"github.com/watchdog-ha/watchdog/httpapi"
)

// watchdogAlert is a notification as Alertmanager (0.27) sends it to a
// webhook_config for kube-prometheus's always-firing Watchdog alert, field
// for field; status is "firing" or "resolved", in the payload and its alert.
func watchdogAlert(status string) string {
	endsAt := "0001-01-01T00:00:00Z"
	if status == "resolved" {
		endsAt = "2024-05-02T10:16:30.123Z"
	}
	return `{
  "receiver": "watchdog-ha",
  "status": "` + status + `",
  "alerts": [
    {
      "status": "` + status + `",
      "labels": {
        "alertname": "Watchdog",
        "prometheus": "monitoring/k8s",
        "severity": "none"
      },
      "annotations": {
        "description": "This is an alert meant to ensure that the entire alerting pipeline is functional.\nThis alert is always firing, therefore it should always be firing in Alertmanager\nand always fire against a receiver.",
        "runbook_url": "https://runbooks.prometheus-operator.dev/runbooks/general/watchdog",
        "summary": "An alert that should always be firing to certify that Alertmanager is working properly."
      },
      "startsAt": "2024-05-02T09:15:30.123Z",
      "endsAt": "` + endsAt + `",
      "generatorURL": "http://prometheus-k8s-0:9090/graph?g0.expr=vector%281%29\u0026g0.tab=1",
      "fingerprint": "e7a37b7d8a8dd1d5"
    }
  ],
  "groupLabels": {
    "alertname": "Watchdog"
  },
  "commonLabels": {
    "alertname": "Watchdog",
    "prometheus": "monitoring/k8s",
    "severity": "none"
  },
  "commonAnnotations": {
    "summary": "An alert that should always be firing to certify that Alertmanager is working properly."
  },
  "externalURL": "http://alertmanager-main-0:9093",
  "version": "4",
  "groupKey": "{}/{alertname=\"Watchdog\"}:{alertname=\"Watchdog\"}",
  "truncatedAlerts": 0
}`
}

type alertmanagerReply struct {
	ID, Status, Reason, Error string
	Firing                    int
}

func postAlertmanager(t *testing.T, url, body string, header ...string) (int, alertmanagerReply) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "Alertmanager/0.27.0")
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var reply alertmanagerReply
	if err := json.NewDecoder(resp.Body).Decode(&reply); err != nil {
		t.Fatalf("POST %s: %d, not JSON: %v", url, resp.StatusCode, err)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Fatalf("POST %s: Content-Type %q", url, ct)
	}
	return resp.StatusCode, reply
}

// A firing notification commits a heartbeat; a resolved one commits
// nothing (so a pipeline whose Watchdog alert stopped times out); a payload
// that is not Alertmanager's is refused and commits nothing either.
func TestAlertmanagerWebhookIsADeadMansSwitch(t *testing.T) {
	srv, node, f := singleNode(t)
	url := srv.URL + "/v1/alertmanager/prometheus-pipeline"

	code, reply := postAlertmanager(t, url, watchdogAlert("firing"))
	if code != http.StatusOK || reply.Status != "committed" || reply.Firing != 1 || reply.ID != "prometheus-pipeline" {
		t.Fatalf("firing: %d %+v", code, reply)
	}
	svc, ok := f.Service("prometheus-pipeline")
	if !ok || svc.LastSeen == 0 {
		t.Fatalf("firing answered committed, but the service is %+v (%v)", svc, ok)
	}

	before, index := svc.LastSeen, logIndex(t, node)
	code, reply = postAlertmanager(t, url, watchdogAlert("resolved"))
	if code != http.StatusOK || reply.Status != "ignored" || !strings.Contains(reply.Reason, "resolved") {
		t.Fatalf("resolved: %d %+v", code, reply)
	}
	// A firing group whose alerts all resolved is no sign of life either.
	mixed := strings.Replace(watchdogAlert("resolved"), `"status": "resolved"`, `"status": "firing"`, 1)
	if code, reply = postAlertmanager(t, url, mixed); code != http.StatusOK || reply.Status != "ignored" || reply.Firing != 0 {
		t.Fatalf("firing payload without a firing alert: %d %+v", code, reply)
	}

	for _, c := range []struct{ name, body, want string }{
		{"not JSON", "Watchdog is firing", "want the JSON object"},
		{"a list", "[]", "want the JSON object"},
		{"version 3", strings.Replace(watchdogAlert("firing"), `"version": "4"`, `"version": "3"`, 1), `version: want "4"`},
		{"no version", strings.Replace(watchdogAlert("firing"), `"version": "4",`, ``, 1), `version: want "4"`},
		{"status", strings.Replace(watchdogAlert("firing"), `"receiver": "watchdog-ha",
  "status": "firing"`, `"receiver": "watchdog-ha",
  "status": "burning"`, 1), "status: want firing or resolved"},
		{"alert status", strings.Replace(watchdogAlert("firing"), `"status": "firing",
      "labels"`, `"status": "ok",
      "labels"`, 1), "alerts[0].status"},
		{"no alerts", `{"version":"4","status":"firing"}`, "alerts: missing"},
		{"labels type", strings.Replace(watchdogAlert("firing"), `"groupLabels": {
    "alertname": "Watchdog"
  }`, `"groupLabels": 7`, 1), "groupLabels"},
		{"two objects", watchdogAlert("firing") + watchdogAlert("firing"), "data after"},
	} {
		code, reply := postAlertmanager(t, url, c.body)
		if code != http.StatusBadRequest || !strings.Contains(reply.Error, c.want) {
			t.Errorf("%s: %d %+v, want 400 saying %q", c.name, code, reply, c.want)
		}
	}
	code, reply = postAlertmanager(t, srv.URL+"/v1/alertmanager/..", watchdogAlert("firing"))
	if code != http.StatusBadRequest || !strings.Contains(reply.Error, "invalid service id") {
		t.Errorf("bad id: %d %+v", code, reply)
	}
	code, reply = postAlertmanager(t, url, `{"version":"4","status":"firing","alerts":[],"pad":"`+strings.Repeat("x", 70<<10)+`"}`)
	if code != http.StatusRequestEntityTooLarge {
		t.Errorf("oversized body: %d %+v", code, reply)
	}
	if got := logIndex(t, node); got != index {
		t.Fatalf("the log moved from %d to %d on payloads that commit nothing", index, got)
	}
	if svc, _ := f.Service("prometheus-pipeline"); svc.LastSeen != before {
		t.Fatalf("last_seen moved on payloads that commit nothing")
	}
}

// The webhook takes the heartbeats' ping token and their admission of new
// ids: with auto_register off, an unknown id is a 404 and nothing more.
func TestAlertmanagerWebhookTokenAndAdmission(t *testing.T) {
	srv, node, f := singleNodeTuned(t, func(c *cluster.Config) { c.RefuseUnknown = true },
		httpapi.WithPingToken("ping-secret"))
	url := srv.URL + "/v1/alertmanager/pipeline"
	index := logIndex(t, node)
	if code, reply := postAlertmanager(t, url, watchdogAlert("firing")); code != http.StatusUnauthorized || reply.Error == "" {
		t.Fatalf("no token: %d %+v", code, reply)
	}
	if code, _ := postAlertmanager(t, url, watchdogAlert("firing"), "Authorization", "Bearer wrong"); code != http.StatusUnauthorized {
		t.Fatalf("wrong token: %d", code)
	}
	code, reply := postAlertmanager(t, url, watchdogAlert("firing"), "Authorization", "Bearer ping-secret")
	if code != http.StatusNotFound || !strings.Contains(reply.Error, "pipeline") {
		t.Fatalf("unknown id with auto_register off: %d %+v", code, reply)
	}
	if _, ok := f.Service("pipeline"); ok || logIndex(t, node) != index {
		t.Fatal("a refused notification changed the state")
	}
}
