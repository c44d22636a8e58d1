package httpapi_test

import (
	"context"
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/watchdog-ha/watchdog/cluster"
	"github.com/watchdog-ha/watchdog/fsm"
)

// goDown commits an incident for a service, as the leader's watcher would
// once it is overdue: the one-node test cluster runs no watcher.
func goDown(t *testing.T, node *cluster.Node, f *fsm.FSM, id string) {
	t.Helper()
	svc, ok := f.Service(id)
	if !ok {
		t.Fatalf("no service %q", id)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cmd := fsm.Incidents{At: time.Now().UnixNano(), Opens: []fsm.Open{{Service: id, LastSeen: svc.LastSeen}}}
	if _, err := node.Apply(ctx, cmd); err != nil {
		t.Fatal(err)
	}
	if svc, _ := f.Service(id); svc.Status != fsm.StatusDown {
		t.Fatalf("%s is %s after its incident, want down", id, svc.Status)
	}
}

// The page is served whole by the server, so that it is readable with
// JavaScript off: every service in a table, grouped down, paused, up.
func TestDashboardRendersWithoutJavaScript(t *testing.T) {
	srv, node, f := singleNode(t)
	for _, id := range []string{"a-up", "b-down", "c-paused", "d-up"} {
		if resp, body := do(t, "POST", srv.URL+"/v1/heartbeat/"+id, ""); resp.StatusCode != 200 {
			t.Fatalf("heartbeat %s: %d %s", id, resp.StatusCode, body)
		}
	}
	if resp, body := do(t, "POST", srv.URL+"/v1/services/c-paused/pause", ""); resp.StatusCode != 200 {
		t.Fatalf("pause: %d %s", resp.StatusCode, body)
	}
	goDown(t, node, f, "b-down")

	resp, body := do(t, "GET", srv.URL+"/", "")
	if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") {
		t.Fatalf("GET /: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	page := string(body)
	order := regexp.MustCompile(`<tr class="svc s-(\w+)" data-id="([^"]+)">`).FindAllStringSubmatch(page, -1)
	var got []string
	for _, m := range order {
		got = append(got, m[1]+":"+m[2])
	}
	want := "down:b-down paused:c-paused up:a-up up:d-up"
	if strings.Join(got, " ") != want {
		t.Fatalf("rows in order %q, want %q", strings.Join(got, " "), want)
	}
	for _, s := range []string{"<table", "<title>(1 down) watchdog</title>", `data-label="Last heartbeat"`,
		`<dd id="leader">solo</dd>`, "down for", "not watched", "due in", `href="/v1/services/b-down"`,
		`<noscript><meta http-equiv="refresh"`} {
		if !strings.Contains(page, s) {
			t.Errorf("page lacks %q", s)
		}
	}
	// Under the policy an inline script would not run anyway; there must
	// be none for the page to work.
	if regexp.MustCompile(`<script(\s+type="module")?>`).MatchString(page) || strings.Contains(page, "style=") {
		t.Error("page has inline script or style, which its Content-Security-Policy forbids")
	}
}

func TestDashboardHeadersAndAssets(t *testing.T) {
	srv, _, _ := singleNode(t)
	resp, _ := do(t, "GET", srv.URL+"/", "")
	csp := resp.Header.Get("Content-Security-Policy")
	for _, s := range []string{"default-src 'none'", "script-src 'self'", "connect-src 'self'", "frame-ancestors 'none'"} {
		if !strings.Contains(csp, s) {
			t.Errorf("Content-Security-Policy %q lacks %q", csp, s)
		}
	}
	if strings.Contains(csp, "unsafe") || resp.Header.Get("X-Content-Type-Options") != "nosniff" {
		t.Errorf("weak headers: %v", resp.Header)
	}
	for path, ctype := range map[string]string{"/static/app.js": "javascript", "/static/style.css": "text/css",
		"/static/favicon.svg": "image/svg+xml"} {
		resp, body := do(t, "GET", srv.URL+path, "")
		if resp.StatusCode != 200 || !strings.Contains(resp.Header.Get("Content-Type"), ctype) || len(body) == 0 {
			t.Fatalf("GET %s: %d %q, %d bytes", path, resp.StatusCode, resp.Header.Get("Content-Type"), len(body))
		}
		req, _ := http.NewRequest("GET", srv.URL+path, nil)
		req.Header.Set("If-None-Match", resp.Header.Get("ETag"))
		again, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		again.Body.Close()
		if resp.Header.Get("ETag") == "" || again.StatusCode != http.StatusNotModified {
			t.Errorf("GET %s with its ETag %q: %d, want 304", path, resp.Header.Get("ETag"), again.StatusCode)
		}
	}
	for _, c := range []struct {
		method, path string
		status       int
	}{
		{"GET", "/static/nope.js", 404},
		{"GET", "/static/../dashboard.go", 404},
		{"GET", "/web/index.html", 404},
		{"POST", "/", 405},
		{"POST", "/static/app.js", 405},
		{"POST", "/v1/stream", 405},
	} {
		if resp, body := do(t, c.method, srv.URL+c.path, ""); resp.StatusCode != c.status {
			t.Errorf("%s %s: %d %s, want %d", c.method, c.path, resp.StatusCode, body, c.status)
		}
	}
}

// A service id can't carry markup, but a node name can: it must come out
// as text.
func TestDashboardEscapesWhatItShows(t *testing.T) {
	name := `n<script>alert("x")</script>&`
	srv, _ := nodeNamed(t, name)
	resp, body := do(t, "GET", srv.URL+"/", "")
	if resp.StatusCode != 200 {
		t.Fatalf("GET /: %d %s", resp.StatusCode, body)
	}
	page := string(body)
	if strings.Contains(page, "<script>alert") {
		t.Fatal("node name reached the page unescaped")
	}
	if !strings.Contains(page, `n&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;&amp;`) {
		t.Fatalf("escaped node name not on the page:\n%s", page)
	}
}

// A long list is searched and paged by the server too, for a page without
// script: a page holds at most 100 services, with links to the next.
func TestDashboardPagesAndSearches(t *testing.T) {
	srv, node, f := singleNode(t)
	ids := make([]string, 0, 230)
	for i := range 230 {
		ids = append(ids, fmt.Sprintf("svc-%03d", i))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := node.Heartbeat(ctx, ids...); err != nil {
		t.Fatal(err)
	}
	if f.Len() != 230 {
		t.Fatalf("%d services", f.Len())
	}
	rowsOf := func(page string) []string {
		var out []string
		for _, m := range regexp.MustCompile(`data-id="([^"]+)"`).FindAllStringSubmatch(page, -1) {
			out = append(out, m[1])
		}
		return out
	}
	_, body := do(t, "GET", srv.URL+"/", "")
	if rows := rowsOf(string(body)); len(rows) != 100 || rows[0] != "svc-000" || rows[99] != "svc-099" ||
		!strings.Contains(string(body), `href="/?page=1">next</a>`) || !strings.Contains(string(body), "1–100 of 230") {
		t.Fatalf("first page: %d rows %v\n%s", len(rows), rows, body)
	}
	_, body = do(t, "GET", srv.URL+"/?page=2", "")
	if rows := rowsOf(string(body)); len(rows) != 30 || rows[0] != "svc-200" || !strings.Contains(string(body), `href="/?page=1">previous</a>`) {
		t.Fatalf("last page: %v", rows)
	}
	_, body = do(t, "GET", srv.URL+"/?q=SVC-12", "")
	if rows := rowsOf(string(body)); len(rows) != 10 || rows[0] != "svc-120" || rows[9] != "svc-129" ||
		!strings.Contains(string(body), "1–10 of 10 matching (230 in all)") || !strings.Contains(string(body), `value="SVC-12"`) {
		t.Fatalf("search: %v\n%s", rows, body)
	}
}

// The page may follow another node's stream when its own node dies: its
// policy allows the cluster's nodes, and the stream lets their pages read
// it, but no other site.
func TestDashboardMayFollowTheClustersNodes(t *testing.T) {
	srv, _, _ := singleNode(t)
	resp, _ := do(t, "GET", srv.URL+"/", "")
	self := strings.TrimPrefix(srv.URL, "http://")
	if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "connect-src 'self' http://"+self+";") {
		t.Fatalf("CSP %q does not allow the cluster's nodes", csp)
	}
	for origin, allowed := range map[string]bool{"http://" + self: true, "http://evil.example": false, "https://" + self: false} {
		ctx, cancel := context.WithCancel(context.Background())
		req, _ := http.NewRequestWithContext(ctx, "GET", srv.URL+"/v1/stream", nil)
		req.Header.Set("Origin", origin)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		got := resp.Header.Get("Access-Control-Allow-Origin")
		resp.Body.Close()
		cancel()
		if (got == origin) != allowed || (!allowed && got != "") {
			t.Errorf("stream for Origin %s: Access-Control-Allow-Origin %q", origin, got)
		}
	}
}
