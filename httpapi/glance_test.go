package httpapi_test

import (
	"context"
	"encoding/json"
	"encoding/xml"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/watchdog-ha/watchdog/fsm"
)

// GET /v1/services/{id} shows the uptime of the last 24 hours, 7 and 30
// days, and both it and the list show the 48 half-hours' timeline.
func TestServiceShowsUptimeAndTimeline(t *testing.T) {
	srv, node, _ := singleNode(t)
	ctx := context.Background()
	now := node.Now()
	if _, err := node.Apply(ctx, fsm.Heartbeat{At: now.Add(-2 * time.Hour).UnixNano(), IDs: []string{"db"}}); err != nil {
		t.Fatal(err)
	}
	// Down for the last hour, after an hour up.
	if _, err := node.Apply(ctx, fsm.Incidents{At: now.Add(-time.Hour).UnixNano(),
		Opens: []fsm.Open{{Service: "db", LastSeen: now.Add(-2 * time.Hour).UnixNano()}}}); err != nil {
		t.Fatal(err)
	}
	var v struct {
		Timeline string
		Uptime   map[string]*float64
	}
	getInto(t, srv.URL+"/v1/services/db", &v)
	day := v.Uptime["24h"]
	if day == nil || *day < 0.95 || *day > 0.96 || len(v.Timeline) != 48 || !strings.HasSuffix(v.Timeline, "dd") ||
		strings.Contains(v.Timeline, "-") || v.Uptime["7d"] == nil || v.Uptime["30d"] == nil {
		t.Fatalf("db: timeline %q, uptime %v (24h %v), want 23/24 up and the last half-hours down", v.Timeline, v.Uptime, day)
	}
	var list struct{ Services []map[string]any }
	getInto(t, srv.URL+"/v1/services", &list)
	if len(list.Services) != 1 || list.Services[0]["timeline"] != v.Timeline || list.Services[0]["uptime"] != nil {
		t.Fatalf("list: %v", list.Services)
	}
}

// Badges tell a tag's aggregate status, in SVG and in shields.io's
// endpoint JSON, without a token, cacheable for a few seconds.
func TestBadges(t *testing.T) {
	srv, node, f := singleNode(t)
	ctx := context.Background()
	for id, tags := range map[string][]string{"db-1": {"db"}, "db-2": {"db"}, "web": {"web"}} {
		if _, err := node.Apply(ctx, fsm.Define{At: node.Now().UnixNano(), Service: id,
			Def: fsm.Definition{Timeout: time.Hour, Tags: tags}}); err != nil {
			t.Fatal(err)
		}
	}
	badgeJSON := func(tag string) map[string]any {
		t.Helper()
		resp, body := do(t, "GET", srv.URL+"/v1/badges/"+tag+".json", "")
		var b map[string]any
		if resp.StatusCode != http.StatusOK || json.Unmarshal(body, &b) != nil ||
			resp.Header.Get("Cache-Control") != "public, max-age=10" {
			t.Fatalf("badge %s: %d %s %v", tag, resp.StatusCode, body, resp.Header)
		}
		return b
	}
	if b := badgeJSON("db"); b["schemaVersion"] != 1.0 || b["label"] != "db" || b["message"] != "up" || b["color"] != "brightgreen" {
		t.Fatalf("db up: %v", b)
	}
	if _, err := node.Apply(ctx, fsm.Pause{At: node.Now().UnixNano(), Service: "db-1", Paused: true}); err != nil {
		t.Fatal(err)
	}
	if b := badgeJSON("db"); b["message"] != "up" {
		t.Fatalf("one of db paused, the other up: %v", b)
	}
	if _, err := node.Apply(ctx, fsm.Pause{At: node.Now().UnixNano(), Service: "db-2", Paused: true}); err != nil {
		t.Fatal(err)
	}
	if b := badgeJSON("db"); b["message"] != "paused" || b["color"] != "lightgrey" {
		t.Fatalf("db all paused: %v", b)
	}
	web, _ := f.Service("web")
	if _, err := node.Apply(ctx, fsm.Incidents{At: node.Now().Add(2 * time.Hour).UnixNano(),
		Opens: []fsm.Open{{Service: "web", LastSeen: web.LastSeen}}}); err != nil {
		t.Fatal(err)
	}
	if b := badgeJSON("all"); b["message"] != "down" || b["color"] != "red" || b["label"] != "all" {
		t.Fatalf("all with web down: %v", b)
	}

	resp, body := do(t, "GET", srv.URL+"/v1/badges/web.svg", "")
	var svg struct {
		XMLName xml.Name
		Label   string `xml:"aria-label,attr"`
	}
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "image/svg+xml" ||
		xml.Unmarshal(body, &svg) != nil || svg.XMLName.Local != "svg" || svg.Label != "web: down" ||
		!strings.Contains(string(body), "#e05d44") {
		t.Fatalf("web.svg: %d %v\n%s", resp.StatusCode, resp.Header, body)
	}
	for path, status := range map[string]int{"/v1/badges/nobody.svg": 404, "/v1/badges/nobody.json": 404,
		"/v1/badges/%2E%2E.json": 400, "/v1/badges/db.png": 404} {
		resp, body := do(t, "GET", srv.URL+path, "")
		var e struct{ Error string }
		if resp.StatusCode != status || json.Unmarshal(body, &e) != nil || e.Error == "" {
			t.Errorf("GET %s: %d %s, want %d with a JSON error", path, resp.StatusCode, body, status)
		}
	}
}
