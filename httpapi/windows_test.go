package httpapi_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/watchdog-ha/watchdog/fsm"
	"github.com/watchdog-ha/watchdog/httpapi"
)

// A pause takes its window from the query or the JSON body; the service
// shows when it ends. (No watcher runs here: the end is the watcher's,
// tested in package watcher and on a cluster in cmd/watchdog.)
func TestPauseForAndUntil(t *testing.T) {
	srv, node, f := singleNode(t)
	for _, id := range []string{"db", "web", "cache"} {
		if resp, _ := do(t, "POST", srv.URL+"/v1/heartbeat/"+id, ""); resp.StatusCode != http.StatusOK {
			t.Fatalf("heartbeat %s: %d", id, resp.StatusCode)
		}
	}
	before := node.Now()
	var v struct {
		Status      string
		PausedUntil *time.Time `json:"paused_until"`
	}
	resp, body := do(t, "POST", srv.URL+"/v1/services/db/pause?for=2h", "")
	if resp.StatusCode != http.StatusOK || json.Unmarshal(body, &v) != nil || v.Status != "paused" || v.PausedUntil == nil ||
		v.PausedUntil.Before(before.Add(2*time.Hour)) || v.PausedUntil.After(node.Now().Add(2*time.Hour)) {
		t.Fatalf("pause for 2h: %d %s", resp.StatusCode, body)
	}
	if s, _ := f.Service("db"); s.PausedUntil != v.PausedUntil.UnixNano() {
		t.Fatalf("committed end %d, answered %s", s.PausedUntil, v.PausedUntil)
	}
	until := time.Now().Add(3 * time.Hour).UTC().Truncate(time.Second)
	resp, body = do(t, "POST", srv.URL+"/v1/services/web/pause", `{"until": "`+until.Format(time.RFC3339)+`"}`)
	if resp.StatusCode != http.StatusOK || json.Unmarshal(body, &v) != nil || !v.PausedUntil.Equal(until) {
		t.Fatalf("pause until %s: %d %s", until, resp.StatusCode, body)
	}
	// The same in the query and the body is one window.
	resp, body = do(t, "POST", srv.URL+"/v1/services/cache/pause?for=30m", `{"for": "30m"}`)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("pause for 30m twice over: %d %s", resp.StatusCode, body)
	}
	// A plain pause holds until resumed: the window's end goes.
	resp, body = do(t, "POST", srv.URL+"/v1/services/cache/pause", "")
	if resp.StatusCode != http.StatusOK || strings.Contains(string(body), "paused_until") {
		t.Fatalf("plain pause: %d %s", resp.StatusCode, body)
	}
	var events struct {
		Events []struct{ Event, Until string }
	}
	getInto(t, srv.URL+"/v1/services/web/events", &events)
	if n := len(events.Events); n == 0 || events.Events[n-1].Event != "paused" || events.Events[n-1].Until != until.Format(time.RFC3339) {
		t.Fatalf("web's history: %+v", events)
	}
}

// Every bad window is a 400 that names the problem and commits nothing.
func TestBadWindowsAreRefusedAndChangeNothing(t *testing.T) {
	srv, node, f := singleNode(t)
	if resp, _ := do(t, "POST", srv.URL+"/v1/heartbeat/db", ""); resp.StatusCode != http.StatusOK {
		t.Fatal("heartbeat")
	}
	if resp, body := do(t, "PUT", srv.URL+"/v1/services/tagged", `{"tags": ["ops"]}`); resp.StatusCode != http.StatusCreated {
		t.Fatalf("define: %d %s", resp.StatusCode, body)
	}
	index, state := logIndex(t, node), f.Services()
	past := time.Now().Add(-time.Hour).UTC().Format(time.RFC3339)
	far := time.Now().Add(40 * 24 * time.Hour).UTC().Format(time.RFC3339)
	for _, c := range []struct{ path, body, want string }{
		{"/v1/services/db/pause?for=soon", "", "for: invalid duration"},
		{"/v1/services/db/pause?for=-1h", "", "must be positive"},
		{"/v1/services/db/pause?for=0s", "", "must be positive"},
		{"/v1/services/db/pause?for=1000h", "", "at most 720h"},
		{"/v1/services/db/pause?until=tomorrow", "", "until: invalid time"},
		{"/v1/services/db/pause?until=" + url.QueryEscape(past), "", "is not ahead of the cluster's time"},
		{"/v1/services/db/pause?until=" + url.QueryEscape(far), "", "is not ahead of the cluster's time"},
		{"/v1/services/db/pause?for=1h&until=" + url.QueryEscape(far), "", "until or for, not both"},
		{"/v1/services/db/pause?for=1h", `{"for": "2h"}`, "the query says"},
		{"/v1/services/db/pause", `{"for": "2h", "why": "x"}`, "unknown field"},
		{"/v1/services/db/pause", `"2h"`, "JSON object"},
		{"/v1/services/db/resume?for=1h", "", "resume takes no window"},
		{"/v1/pause?for=1h", "", "tag: required"},
		{"/v1/pause?tag=a/b&for=1h", "", "tag: invalid tag"},
		{"/v1/pause?tag=ops&for=forever", "", "for: invalid duration"},
		{"/v1/resume?tag=ops&until=" + url.QueryEscape(far), "", "resume takes no window"},
		{"/v1/resume", "", "tag: required"},
	} {
		resp, body := do(t, "POST", srv.URL+c.path, c.body)
		var e struct{ Error string }
		if resp.StatusCode != http.StatusBadRequest || json.Unmarshal(body, &e) != nil || !strings.Contains(e.Error, c.want) {
			t.Errorf("POST %s %s: %d %s, want 400 saying %q", c.path, c.body, resp.StatusCode, body, c.want)
		}
	}
	for _, path := range []string{"/v1/pause?tag=nobody&for=1h", "/v1/resume?tag=nobody", "/v1/services/nobody/pause?for=1h"} {
		if resp, body := do(t, "POST", srv.URL+path, ""); resp.StatusCode != http.StatusNotFound {
			t.Errorf("POST %s: %d %s, want 404", path, resp.StatusCode, body)
		}
	}
	if got := logIndex(t, node); got != index {
		t.Fatalf("refused windows moved the log from %d to %d", index, got)
	}
	if !slices.EqualFunc(state, f.Services(), func(a, b fsm.Service) bool { return a.Status == b.Status && a.PausedUntil == b.PausedUntil }) {
		t.Fatal("refused windows changed a service")
	}
}

// POST /v1/pause?tag=T pauses every service tagged T in one entry, and
// /v1/resume?tag=T resumes those paused; both need the API token.
func TestPauseAndResumeByTag(t *testing.T) {
	srv, node, f := singleNode(t, httpapi.WithAPIToken("api-secret"))
	auth := func(method, path, body string) (*http.Response, []byte) {
		t.Helper()
		req, err := http.NewRequest(method, srv.URL+path, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Authorization", "Bearer api-secret")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp, b
	}
	for id, tags := range map[string]string{"db-1": `["db"]`, "db-2": `["db", "eu"]`, "web": `["eu"]`} {
		if resp, body := auth("PUT", "/v1/services/"+id, `{"tags": `+tags+`}`); resp.StatusCode != http.StatusCreated {
			t.Fatalf("define %s: %d %s", id, resp.StatusCode, body)
		}
	}
	index := logIndex(t, node)
	if resp, _ := do(t, "POST", srv.URL+"/v1/pause?tag=db&for=2h", ""); resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("tag pause without the token: %d", resp.StatusCode)
	}
	if resp, _ := do(t, "POST", srv.URL+"/v1/resume?tag=db", ""); resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("tag resume without the token: %d", resp.StatusCode)
	}
	if logIndex(t, node) != index {
		t.Fatal("an unauthorized request reached the log")
	}

	type answer struct {
		Tag, Status string
		Changed     []string
		Unchanged   int
		Until       *time.Time
	}
	var a answer
	resp, body := auth("POST", "/v1/pause?tag=db&for=2h", "")
	if resp.StatusCode != http.StatusOK || json.Unmarshal(body, &a) != nil || a.Status != "paused" ||
		!slices.Equal(a.Changed, []string{"db-1", "db-2"}) || a.Unchanged != 0 || a.Until == nil {
		t.Fatalf("pause tag db: %d %s", resp.StatusCode, body)
	}
	if logIndex(t, node) != index+1 {
		t.Fatalf("a tag pause took %d entries, want 1", logIndex(t, node)-index)
	}
	for _, id := range []string{"db-1", "db-2"} {
		if s, _ := f.Service(id); s.Status != fsm.StatusPaused || s.PausedUntil != a.Until.UnixNano() {
			t.Fatalf("%s = %+v", id, s)
		}
	}
	if s, _ := f.Service("web"); s.Status == fsm.StatusPaused {
		t.Fatal("web is not tagged db, but was paused")
	}
	resp, body = auth("POST", "/v1/resume?tag=eu", "")
	if resp.StatusCode != http.StatusOK || json.Unmarshal(body, &a) != nil ||
		!slices.Equal(a.Changed, []string{"db-2"}) || a.Unchanged != 1 {
		t.Fatalf("resume tag eu: %d %s", resp.StatusCode, body)
	}
	if s, _ := f.Service("db-2"); s.Status == fsm.StatusPaused || s.PausedUntil != 0 {
		t.Fatalf("db-2 after resume: %+v", s)
	}
	if s, _ := f.Service("db-1"); s.Status != fsm.StatusPaused {
		t.Fatalf("db-1 is not tagged eu, but was resumed: %+v", s)
	}
}

func getInto(t *testing.T, url string, v any) {
	t.Helper()
	resp, body := do(t, "GET", url, "")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %d %s", url, resp.StatusCode, body)
	}
	if err := json.Unmarshal(body, v); err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
}
