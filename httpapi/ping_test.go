package httpapi_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/watchdog-ha/watchdog/fsm"
	"github.com/watchdog-ha/watchdog/httpapi"
)

const rid = "3f0d1c3e-8a7b-4c2d-9e1f-0a1b2c3d4e5f"

// lastEvent is the latest event in id's history.
func lastEvent(t *testing.T, f *fsm.FSM, id string) fsm.Record {
	t.Helper()
	evs, ok := f.Events(id, 0)
	if !ok || len(evs) == 0 {
		t.Fatalf("%s has no events", id)
	}
	return evs[len(evs)-1]
}

func TestPingRoutesAndMethods(t *testing.T) {
	srv, _, f := singleNode(t)
	if resp, body := do(t, "GET", srv.URL+"/ping/job?create=1", ""); resp.StatusCode != 201 || string(body) != "Created" {
		t.Fatalf("create: %d %q, want 201 Created", resp.StatusCode, body)
	}
	for _, m := range []string{"GET", "POST", "HEAD"} {
		for _, path := range []string{"/ping/job", "/ping/job/start", "/ping/job/0", "/ping/job?rid=" + rid} {
			resp, body := do(t, m, srv.URL+path, "")
			want := "OK"
			if m == "HEAD" {
				want = ""
			}
			if resp.StatusCode != 200 || string(body) != want || resp.Header.Get("Content-Type") != "text/plain; charset=utf-8" ||
				resp.Header.Get("Ping-Body-Limit") != "10000" {
				t.Fatalf("%s %s: %d %q %v", m, path, resp.StatusCode, body, resp.Header)
			}
			if s, _ := f.Service("job"); s.Status != fsm.StatusUp {
				t.Fatalf("%s %s: job is %s, want up", m, path, s.Status)
			}
		}
	}
	// Exit status 0 with a note and rid is a success, recorded as such.
	do(t, "POST", srv.URL+"/ping/job/0?rid="+rid, "all good\n")
	if e := lastEvent(t, f, "job"); e.Event != fsm.EventSuccess || e.RunID != rid || e.Note != "all good\n" {
		t.Fatalf("last event = %+v, want success with rid and note", e)
	}
	// A non-zero exit status raises an incident at once, without waiting
	// for the timeout.
	if resp, body := do(t, "POST", srv.URL+"/ping/job/3?rid="+rid, "disk full"); resp.StatusCode != 200 || string(body) != "OK" {
		t.Fatalf("exit 3: %d %q", resp.StatusCode, body)
	}
	s, _ := f.Service("job")
	if s.Status != fsm.StatusDown || s.Current() == nil || s.Current().Resolved != 0 {
		t.Fatalf("after exit 3: %+v, want down with an open incident", s)
	}
	evs, _ := f.Events("job", 0)
	if fail := evs[len(evs)-2]; fail.Event != fsm.EventFail || fail.ExitStatus != 3 || fail.Note != "disk full" || fail.RunID != rid {
		t.Fatalf("fail event = %+v", fail)
	}
	// A plain success resolves it; /fail raises one again.
	do(t, "GET", srv.URL+"/ping/job", "")
	if s, _ := f.Service("job"); s.Status != fsm.StatusUp || s.Current().Resolved == 0 {
		t.Fatalf("after success: %+v, want up and resolved", s)
	}
	do(t, "HEAD", srv.URL+"/ping/job/fail", "")
	if s, _ := f.Service("job"); s.Status != fsm.StatusDown {
		t.Fatalf("after /fail: %s, want down", s.Status)
	}
}

func TestPingStartRecordsRun(t *testing.T) {
	srv, _, f := singleNode(t)
	do(t, "GET", srv.URL+"/ping/cron?create=1", "")
	before, _ := f.Service("cron")
	if resp, _ := do(t, "POST", srv.URL+"/ping/cron/start?rid="+rid, "begin"); resp.StatusCode != 200 {
		t.Fatalf("start: %d", resp.StatusCode)
	}
	after, _ := f.Service("cron")
	if e := lastEvent(t, f, "cron"); e.Event != fsm.EventStart || e.RunID != rid || e.Note != "begin" {
		t.Fatalf("last event = %+v", e)
	}
	if after.LastSeen <= before.LastSeen || after.Status != fsm.StatusUp {
		t.Fatalf("start did not restart the timeout: %d -> %d", before.LastSeen, after.LastSeen)
	}
}

func TestPingBadInputChangesNothing(t *testing.T) {
	srv, node, f := singleNode(t)
	do(t, "GET", srv.URL+"/ping/known?create=1", "")
	cases := []struct {
		name, method, path, body string
		status                   int
		reply                    string
	}{
		{"unknown id", "GET", "/ping/nobody", "", 404, "not found"},
		{"unknown id start", "POST", "/ping/nobody/start", "", 404, "not found"},
		{"bad id", "GET", "/ping/..", "", 400, "invalid url format"},
		{"bad id chars", "GET", "/ping/a%20b", "", 400, "invalid url format"},
		{"exit 256", "GET", "/ping/known/256", "", 400, "invalid url format"},
		{"huge exit", "GET", "/ping/known/99999999999999999999", "", 400, "invalid url format"},
		{"negative exit", "GET", "/ping/known/-1", "", 404, "not found"},
		{"unknown signal", "GET", "/ping/known/log", "", 404, "not found"},
		{"bad rid", "GET", "/ping/known?rid=nope", "", 400, "invalid uuid format"},
		{"empty rid", "GET", "/ping/known/start?rid=", "", 400, "invalid uuid format"},
		{"note too big", "POST", "/ping/known/fail", strings.Repeat("x", fsm.MaxPingNote+1), 413, ""},
		{"no id", "GET", "/ping/", "", 404, "not found"},
		{"no id, no slash", "POST", "/ping", "", 404, "not found"},
		{"empty signal", "GET", "/ping/known/", "", 404, "not found"},
		{"too many parts", "GET", "/ping/known/start/now", "", 404, "not found"},
		{"wrong method", "DELETE", "/ping/known", "", 405, "method not allowed"},
		{"wrong method with a signal", "PUT", "/ping/known/start", "", 405, "method not allowed"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			before := logIndex(t, node)
			resp, body := do(t, c.method, srv.URL+c.path, c.body)
			if resp.StatusCode != c.status || (c.reply != "" && string(body) != c.reply) {
				t.Fatalf("%d %q, want %d %q", resp.StatusCode, body, c.status, c.reply)
			}
			if ct := resp.Header.Get("Content-Type"); ct != "text/plain; charset=utf-8" {
				t.Fatalf("Content-Type %q: every ping answer is plain text", ct)
			}
			if logIndex(t, node) != before {
				t.Fatal("a refused ping reached the Raft log")
			}
			if s, _ := f.Service("known"); s.Status != fsm.StatusUp {
				t.Fatalf("known is %s", s.Status)
			}
		})
	}
}

func TestPingToken(t *testing.T) {
	srv, node, _ := singleNode(t, httpapi.WithPingToken("s3cret"))
	before := logIndex(t, node)
	if resp, _ := do(t, "POST", srv.URL+"/ping/job/fail?create=1", ""); resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("without token: %d, want 401", resp.StatusCode)
	}
	if logIndex(t, node) != before {
		t.Fatal("an unauthorised ping reached the log")
	}
	if resp, body := do(t, "POST", srv.URL+"/ping/job/fail?create=1&token=s3cret", ""); resp.StatusCode != 201 {
		t.Fatalf("with token: %d %q", resp.StatusCode, body)
	}
}
