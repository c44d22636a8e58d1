package httpapi_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/watchdog-ha/watchdog/fsm"
	"github.com/watchdog-ha/watchdog/httpapi"
)

var knownActions = httpapi.WithActions([]string{"log", "page", "restart"})

// view is the part of a service view these tests look at.
type view struct {
	ID            string
	Source        string
	Status        string
	Timeout       string
	Grace         string
	Repeat        string
	MaxRepeats    int    `json:"max_repeats"`
	FlapThreshold int    `json:"flap_threshold"`
	FlapWindow    string `json:"flap_window"`
	Actions       []string
	OnRecovered   []string `json:"on_recovered"`
	Tags          []string
	Description   string
}

func decodeView(t *testing.T, body []byte) view {
	t.Helper()
	var v view
	if err := json.Unmarshal(body, &v); err != nil {
		t.Fatalf("service view %q: %v", body, err)
	}
	return v
}

func wantError(t *testing.T, resp *http.Response, body []byte, status int) {
	t.Helper()
	var e struct{ Error string }
	if resp.StatusCode != status || json.Unmarshal(body, &e) != nil || e.Error == "" {
		t.Fatalf("got %d %s, want %d and a JSON error", resp.StatusCode, body, status)
	}
}

func TestPutDefinesAServiceAndDeleteForgetsIt(t *testing.T) {
	srv, node, f := singleNode(t, knownActions)
	body := `{"timeout": "30s", "grace": "10s", "actions": ["page"], "on_recovered": ["log"], "repeat": "5m",
		"max_repeats": 3, "flap_threshold": 4, "flap_window": "10m", "tags": ["batch"], "description": "nightly backup"}`
	resp, got := do(t, "PUT", srv.URL+"/v1/services/backup", body)
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("PUT: %d %s", resp.StatusCode, got)
	}
	want := view{ID: "backup", Source: "api", Status: "new", Timeout: "30s", Grace: "10s", Repeat: "5m0s", MaxRepeats: 3,
		FlapThreshold: 4, FlapWindow: "10m0s", Actions: []string{"page"}, OnRecovered: []string{"log"},
		Tags: []string{"batch"}, Description: "nightly backup"}
	if v := decodeView(t, got); !reflect.DeepEqual(v, want) {
		t.Fatalf("PUT answered\n %+v\nwant %+v", v, want)
	}
	s, _ := f.Service("backup")
	if s.Source != fsm.SourceAPI || s.Def.Grace != 10*time.Second || s.Def.Repeat != 5*time.Minute {
		t.Fatalf("committed %+v", s.Def)
	}
	// The same PUT again: 200, and nothing reaches the log.
	applied := logIndex(t, node)
	if resp, got := do(t, "PUT", srv.URL+"/v1/services/backup", body); resp.StatusCode != http.StatusOK || logIndex(t, node) != applied {
		t.Fatalf("repeated PUT: %d %s, applied %d -> %d", resp.StatusCode, got, applied, logIndex(t, node))
	}
	// Omitted fields take the defaults (here the built-in ones).
	resp, got = do(t, "PUT", srv.URL+"/v1/services/backup", `{"timeout": "1m"}`)
	if v := decodeView(t, got); resp.StatusCode != 200 || v.Timeout != "1m0s" || v.Grace != "" || !reflect.DeepEqual(v.Actions, []string{"log"}) || v.Tags != nil {
		t.Fatalf("PUT with only a timeout: %d %s", resp.StatusCode, got)
	}
	// A service first seen by a heartbeat can be defined too, and deleted.
	do(t, "POST", srv.URL+"/v1/heartbeat/auto", "")
	if resp, got := do(t, "PUT", srv.URL+"/v1/services/auto", ""); resp.StatusCode != 200 || decodeView(t, got).Source != "api" {
		t.Fatalf("PUT of a heartbeat service: %d %s", resp.StatusCode, got)
	}
	for _, id := range []string{"backup", "auto"} {
		if resp, got := do(t, "DELETE", srv.URL+"/v1/services/"+id, ""); resp.StatusCode != 200 {
			t.Fatalf("DELETE %s: %d %s", id, resp.StatusCode, got)
		}
		if _, ok := f.Service(id); ok {
			t.Fatalf("DELETE %s answered 200 but it is still there", id)
		}
		resp, got := do(t, "DELETE", srv.URL+"/v1/services/"+id, "")
		wantError(t, resp, got, http.StatusNotFound)
	}
}

func TestBadServiceWritesAreRefusedAndChangeNothing(t *testing.T) {
	srv, node, f := singleNode(t, knownActions)
	if resp, got := do(t, "PUT", srv.URL+"/v1/services/svc", `{"timeout": "5s", "actions": ["page"]}`); resp.StatusCode != 201 {
		t.Fatalf("PUT: %d %s", resp.StatusCode, got)
	}
	for _, c := range []struct {
		name, method, path, body string
		status                   int
	}{
		{"unknown field", "PUT", "/v1/services/svc", `{"timeout": "5s", "exec": ["/bin/sh", "-c", "reboot"]}`, 400},
		{"command as action", "PUT", "/v1/services/svc", `{"actions": ["/bin/rm -rf /"]}`, 400},
		{"unknown action", "PUT", "/v1/services/svc", `{"actions": ["pgae"]}`, 400},
		{"unknown recovery action", "PUT", "/v1/services/svc", `{"on_recovered": ["nope"]}`, 400},
		{"duplicate action", "PUT", "/v1/services/svc", `{"actions": ["page", "page"]}`, 400},
		{"bad duration", "PUT", "/v1/services/svc", `{"timeout": "30"}`, 400},
		{"number for duration", "PUT", "/v1/services/svc", `{"timeout": 30}`, 400},
		{"zero timeout", "PUT", "/v1/services/svc", `{"timeout": "0s"}`, 400},
		{"negative grace", "PUT", "/v1/services/svc", `{"grace": "-1s"}`, 400},
		{"timeout too short", "PUT", "/v1/services/svc", `{"timeout": "1ms"}`, 400},
		{"repeat too long", "PUT", "/v1/services/svc", `{"repeat": "1000h"}`, 400},
		{"negative max_repeats", "PUT", "/v1/services/svc", `{"max_repeats": -1}`, 400},
		{"flap threshold without window", "PUT", "/v1/services/svc", `{"flap_threshold": 3}`, 400},
		{"flap threshold too high", "PUT", "/v1/services/svc", `{"flap_threshold": 10, "flap_window": "1m"}`, 400},
		{"bad tag", "PUT", "/v1/services/svc", `{"tags": ["a b"]}`, 400},
		{"control character", "PUT", "/v1/services/svc", `{"description": "line\nbreak"}`, 400},
		{"bidi override", "PUT", "/v1/services/svc", `{"description": "invoice \u202egnp.exe"}`, 400},
		{"bidi isolate", "PUT", "/v1/services/svc", "{\"description\": \"a\u2067b\u2069\"}", 400},
		{"zero-width space", "PUT", "/v1/services/svc", `{"description": "ad\u200bmin"}`, 400},
		{"byte order mark", "PUT", "/v1/services/svc", "{\"description\": \"\ufeffhello\"}", 400},
		{"line separator", "PUT", "/v1/services/svc", `{"description": "one\u2028two"}`, 400},
		{"not an object", "PUT", "/v1/services/svc", `["timeout"]`, 400},
		{"two objects", "PUT", "/v1/services/svc", `{} {}`, 400},
		{"trailing garbage", "PUT", "/v1/services/svc", `{}x`, 400},
		{"not JSON", "PUT", "/v1/services/svc", `timeout: 5s`, 400},
		{"too large", "PUT", "/v1/services/svc", `{"description": "` + strings.Repeat("x", 70<<10) + `"}`, 413},
		{"bad id", "PUT", "/v1/services/..", `{}`, 400},
		{"shell id", "DELETE", "/v1/services/%3Brm", ``, 400},
		{"unknown service", "DELETE", "/v1/services/nobody", ``, 404},
		{"bad since", "GET", "/v1/services/svc/events?since=yesterday", ``, 400},
		{"bad limit", "GET", "/v1/events?limit=0", ``, 400},
		{"bad after", "GET", "/v1/events?after=-1", ``, 400},
		{"events of unknown service", "GET", "/v1/services/nobody/events", ``, 404},
	} {
		t.Run(c.name, func(t *testing.T) {
			before, _ := f.Service("svc")
			applied := logIndex(t, node)
			var resp *http.Response
			var got []byte
			if c.status == http.StatusRequestEntityTooLarge {
				// Refused and closed before the body is read: read the
				// answer while writing, as a client may see a reset.
				var body string
				resp, body = sendWhileReading(t, srv.URL, fmt.Sprintf("%s %s HTTP/1.1\r\nHost: w\r\nContent-Length: %d\r\n\r\n%s",
					c.method, c.path, len(c.body), c.body))
				got = []byte(body)
			} else {
				resp, got = do(t, c.method, srv.URL+c.path, c.body)
			}
			wantError(t, resp, got, c.status)
			if logIndex(t, node) != applied {
				t.Fatal("a refused request reached the Raft log")
			}
			if after, _ := f.Service("svc"); !reflect.DeepEqual(before, after) {
				t.Fatalf("a refused request changed the service: %+v -> %+v", before.Def, after.Def)
			}
		})
	}
}

func TestConfigFileWinsOverTheAPI(t *testing.T) {
	srv, node, f := singleNode(t, knownActions)
	cfg := fsm.Configure{At: time.Now().UnixNano(), Defaults: *fsm.DefaultDefinition(),
		Services: map[string]fsm.Definition{"from-file": {Timeout: 3 * time.Second, Actions: []string{"restart"}}}}
	if _, err := node.Apply(context.Background(), cfg); err != nil {
		t.Fatal(err)
	}
	do(t, "PUT", srv.URL+"/v1/services/from-api", `{"timeout": "20s"}`)
	do(t, "POST", srv.URL+"/v1/heartbeat/from-beat", "")
	for _, method := range []string{"PUT", "DELETE"} {
		before, _ := f.Service("from-file")
		applied := logIndex(t, node)
		resp, got := do(t, method, srv.URL+"/v1/services/from-file", `{"timeout": "1m"}`)
		wantError(t, resp, got, http.StatusConflict)
		if !strings.Contains(string(got), "config file") {
			t.Errorf("%s: the 409 does not say why: %s", method, got)
		}
		if after, _ := f.Service("from-file"); logIndex(t, node) != applied || !reflect.DeepEqual(before, after) {
			t.Fatalf("%s of a config-defined service changed something", method)
		}
	}
	_, got := do(t, "GET", srv.URL+"/v1/services", "")
	var list struct{ Services []view }
	if err := json.Unmarshal(got, &list); err != nil {
		t.Fatal(err)
	}
	sources := map[string]string{}
	for _, v := range list.Services {
		sources[v.ID] = v.Source
	}
	if want := map[string]string{"from-file": "config", "from-api": "api", "from-beat": "heartbeat"}; !reflect.DeepEqual(sources, want) {
		t.Fatalf("sources listed %v, want %v", sources, want)
	}
}

type eventsPage struct {
	Events []struct {
		Service, Event, Incident string
		Seq                      uint64
		Time                     time.Time
	}
	More bool
}

func TestEventHistoryRoutes(t *testing.T) {
	srv, _, _ := singleNode(t, knownActions)
	do(t, "PUT", srv.URL+"/v1/services/a", `{}`)
	do(t, "POST", srv.URL+"/v1/heartbeat/b", "")
	do(t, "POST", srv.URL+"/v1/services/b/pause", "")
	mid := time.Now()
	do(t, "POST", srv.URL+"/v1/services/b/resume", "")
	for range 5 {
		do(t, "POST", srv.URL+"/v1/heartbeat/b", "") // no change, no event
	}
	resp, got := do(t, "GET", srv.URL+"/v1/services/b/events", "")
	var one eventsPage
	if err := json.Unmarshal(got, &one); resp.StatusCode != 200 || err != nil || len(one.Events) != 2 ||
		one.Events[0].Event != "paused" || one.Events[1].Event != "resumed" {
		t.Fatalf("b's events: %d %s", resp.StatusCode, got)
	}
	_, got = do(t, "GET", srv.URL+"/v1/services/b/events?since="+mid.UTC().Format(time.RFC3339Nano), "")
	if err := json.Unmarshal(got, &one); err != nil || len(one.Events) != 1 || one.Events[0].Event != "resumed" {
		t.Fatalf("b's events since %v: %s", mid, got)
	}
	var all eventsPage
	_, got = do(t, "GET", srv.URL+"/v1/events", "")
	if err := json.Unmarshal(got, &all); err != nil || len(all.Events) != 3 || all.More ||
		all.Events[0].Service != "a" || all.Events[0].Event != "defined" || all.Events[2].Service != "b" {
		t.Fatalf("all events: %s", got)
	}
	var page eventsPage
	_, got = do(t, "GET", srv.URL+"/v1/events?limit=1&after="+jsonNumber(all.Events[0].Seq), "")
	if err := json.Unmarshal(got, &page); err != nil || len(page.Events) != 1 || !page.More || page.Events[0].Seq != all.Events[1].Seq {
		t.Fatalf("second page: %s", got)
	}
}

func jsonNumber(n uint64) string { b, _ := json.Marshal(n); return string(b) }
