package httpapi_test

import (
	"context"
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
