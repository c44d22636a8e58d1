package httpapi_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"
)

// A scheduled service through the API: PUT takes schedule, tz and grace
// instead of timeout, GET shows them with the next deadline (the next tick
// after the last success, plus grace).
func TestPutAScheduledService(t *testing.T) {
	srv, _, f := singleNode(t, knownActions)
	resp, body := do(t, "PUT", srv.URL+"/v1/services/backup",
		`{"schedule": "30 2 * * *", "tz": "Europe/Berlin", "grace": "15m", "actions": ["page"]}`)
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("PUT: %d %s", resp.StatusCode, body)
	}
	var v map[string]any
	if err := json.Unmarshal(body, &v); err != nil {
		t.Fatal(err)
	}
	if _, has := v["timeout"]; has || v["schedule"] != "30 2 * * *" || v["tz"] != "Europe/Berlin" || v["grace"] != "15m0s" {
		t.Fatalf("PUT answered %s", body)
	}
	s, _ := f.Service("backup")
	berlin, _ := time.LoadLocation("Europe/Berlin")
	defined := time.Unix(0, s.LastSeen).In(berlin)
	tick := time.Date(defined.Year(), defined.Month(), defined.Day(), 2, 30, 0, 0, berlin)
	if !tick.After(defined) {
		tick = time.Date(defined.Year(), defined.Month(), defined.Day()+1, 2, 30, 0, 0, berlin)
	}
	deadline, err := time.Parse(time.RFC3339, v["next_deadline"].(string))
	if err != nil || !deadline.Equal(tick.Add(15*time.Minute)) {
		t.Fatalf("next_deadline %v, want %v (02:30 Berlin after %v, plus grace)", v["next_deadline"], tick.Add(15*time.Minute), defined)
	}
	// tz defaults to UTC, and is shown.
	resp, body = do(t, "PUT", srv.URL+"/v1/services/hourly", `{"schedule": "@hourly", "grace": "5m"}`)
	if resp.StatusCode != http.StatusCreated || !strings.Contains(string(body), `"tz":"UTC"`) {
		t.Fatalf("PUT without tz: %d %s", resp.StatusCode, body)
	}
}

// Bad schedules, zones and dependencies are refused with a 400 naming the
// problem, and change nothing.
func TestPutRefusesBadSchedulesAndDependencies(t *testing.T) {
	srv, node, f := singleNode(t, knownActions)
	for _, id := range []string{"db", "app"} {
		if resp, body := do(t, "PUT", srv.URL+"/v1/services/"+id, `{"timeout": "1m"}`); resp.StatusCode != http.StatusCreated {
			t.Fatalf("PUT %s: %d %s", id, resp.StatusCode, body)
		}
	}
	if resp, body := do(t, "PUT", srv.URL+"/v1/services/db", `{"timeout": "1m", "depends_on": ["app"]}`); resp.StatusCode != http.StatusOK {
		t.Fatalf("db depends on app: %d %s", resp.StatusCode, body)
	}
	cases := []struct{ name, id, body, want string }{
		{"both", "job", `{"schedule": "@daily", "timeout": "1h", "grace": "1m"}`, "timeout and schedule exclude each other"},
		{"no grace", "job", `{"schedule": "@daily"}`, "grace: a scheduled service needs one"},
		{"six fields", "job", `{"schedule": "0 0 * * * *", "grace": "1m"}`, "want five fields"},
		{"every", "job", `{"schedule": "@every 5m", "grace": "1m"}`, "shorthands are"},
		{"range", "job", `{"schedule": "0 25 * * *", "grace": "1m"}`, "schedule: "},
		{"never", "job", `{"schedule": "0 0 31 2 *", "grace": "1m"}`, "never fires"},
		{"zone", "job", `{"schedule": "@daily", "tz": "Mars/Olympus", "grace": "1m"}`, `tz: unknown time zone "Mars/Olympus"`},
		{"tz alone", "job", `{"timeout": "1m", "tz": "UTC"}`, "tz: needs a schedule"},
		{"number", "job", `{"schedule": 5}`, "schedule: expected a string"},
		{"unknown dependency", "job", `{"timeout": "1m", "depends_on": ["nobody"]}`, `depends_on: no service "nobody"`},
		{"self", "job2", `{"timeout": "1m", "depends_on": ["job2"]}`, "cannot depend on itself"},
		{"bad id", "job", `{"timeout": "1m", "depends_on": ["a b"]}`, "depends_on: invalid service id"},
		{"twice", "job", `{"timeout": "1m", "depends_on": ["db", "db"]}`, "listed more than once"},
		{"cycle", "app", `{"timeout": "1m", "depends_on": ["db"]}`, "depends_on: dependency cycle app -> db -> app"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			before, applied := f.Services(), logIndex(t, node)
			resp, body := do(t, "PUT", srv.URL+"/v1/services/"+c.id, c.body)
			wantError(t, resp, body, http.StatusBadRequest)
			var e struct{ Error string }
			if json.Unmarshal(body, &e); !strings.Contains(e.Error, c.want) {
				t.Fatalf("%s, want it to say %q", e.Error, c.want)
			}
			t.Log(e.Error)
			if logIndex(t, node) != applied || len(f.Services()) != len(before) {
				t.Fatal("a refused PUT reached the Raft log")
			}
		})
	}
}

// The dashboard, without JavaScript, shows a scheduled service's schedule
// and a suppressed service's "waits for".
func TestDashboardShowsSchedulesAndWhatASuppressedServiceWaitsFor(t *testing.T) {
	srv, node, f := singleNode(t, knownActions)
	for id, body := range map[string]string{
		"db":  `{"timeout": "1m"}`,
		"job": `{"schedule": "*/5 * * * *", "tz": "Asia/Tokyo", "grace": "1m"}`,
	} {
		if resp, got := do(t, "PUT", srv.URL+"/v1/services/"+id, body); resp.StatusCode != http.StatusCreated {
			t.Fatalf("PUT %s: %d %s", id, resp.StatusCode, got)
		}
	}
	if resp, got := do(t, "PUT", srv.URL+"/v1/services/app", `{"timeout": "1m", "depends_on": ["db"]}`); resp.StatusCode != http.StatusCreated {
		t.Fatalf("PUT app: %d %s", resp.StatusCode, got)
	}
	goDown(t, node, f, "db")
	goDown(t, node, f, "app")
	_, body := do(t, "GET", srv.URL+"/", "")
	page := string(body)
	for _, s := range []string{"*/5 * * * * (Asia/Tokyo)", "waits for db"} {
		if !strings.Contains(page, s) {
			t.Errorf("page lacks %q", s)
		}
	}
	// app sorts before db by id, but is shown under db, the one it waits for.
	dbRow, appRow := strings.Index(page, `data-id="db"`), strings.Index(page, `class="svc s-down waits-for" data-id="app"`)
	if dbRow < 0 || appRow < dbRow {
		t.Errorf("app (at %d) is not shown under db (at %d), marked as waiting", appRow, dbRow)
	}
	if _, body := do(t, "GET", srv.URL+"/v1/services/app", ""); !strings.Contains(string(body), `"waits_for":"db"`) {
		t.Errorf("GET app: %s", body)
	}
}
