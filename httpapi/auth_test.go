package httpapi_test

import (
	"go/ast"
	"go/parser"
	"go/token"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/watchdog-ha/watchdog/cluster"
	"github.com/watchdog-ha/watchdog/httpapi"
)

const apiToken, pingToken = "s3cret-api", "p1ng-only"

func withBearer(t *testing.T, method, url, body, tok string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	return send(t, req)
}

// asPeer is withBearer for a request signed by node, as the nodes sign
// their calls to each other's internal routes.
func asPeer(t *testing.T, node *cluster.Node, method, url, body, tok string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	node.AuthorizePeer(req)
	return send(t, req)
}

// beat sends a heartbeat-like request with tok, signed as node when it goes
// to an internal route (the forwarded batches).
func beat(t *testing.T, node *cluster.Node, method, url, body, tok string) (*http.Response, []byte) {
	t.Helper()
	if strings.Contains(url, "/v1/internal/") {
		return asPeer(t, node, method, url, body, tok)
	}
	return withBearer(t, method, url, body, tok)
}

func wantUnauthorized(t *testing.T, resp *http.Response, body []byte) {
	t.Helper()
	wantError(t, resp, body, http.StatusUnauthorized)
	if !strings.HasPrefix(resp.Header.Get("WWW-Authenticate"), "Bearer") {
		t.Fatalf("401 without WWW-Authenticate: Bearer: %q", resp.Header.Get("WWW-Authenticate"))
	}
}

func TestTokensGuardChangesAndHeartbeats(t *testing.T) {
	srv, node, f := singleNode(t, knownActions, httpapi.WithAPIToken(apiToken), httpapi.WithPingToken(pingToken))
	if resp, body := withBearer(t, "POST", srv.URL+"/v1/heartbeat/svc", "", pingToken); resp.StatusCode != 200 {
		t.Fatalf("heartbeat with the ping token: %d %s", resp.StatusCode, body)
	}
	writes := []struct{ method, path, body string }{
		{"PUT", "/v1/services/svc", `{"timeout": "1m"}`},
		{"POST", "/v1/services/svc/pause", ""},
		{"POST", "/v1/services/svc/resume", ""},
		{"DELETE", "/v1/services/svc", ""},
		{"DELETE", "/v1/services/..", ""}, // refused for its token before its id
	}
	beats := []struct{ method, path string }{
		{"POST", "/v1/heartbeat/svc"}, {"GET", "/heartbeat?id=svc"}, {"HEAD", "/heartbeat?id=svc"}, {"POST", cluster.ForwardPath},
	}
	for _, tok := range []string{"", "wrong", pingToken, apiToken + "x", strings.ToUpper(apiToken)} {
		for _, w := range writes {
			applied := logIndex(t, node)
			before, _ := f.Service("svc")
			resp, body := withBearer(t, w.method, srv.URL+w.path, w.body, tok)
			wantUnauthorized(t, resp, body)
			if after, _ := f.Service("svc"); logIndex(t, node) != applied || after.Def != before.Def || after.Status != before.Status {
				t.Fatalf("%s %s with token %q: refused, yet something changed", w.method, w.path, tok)
			}
		}
		if tok == pingToken {
			continue
		}
		for _, b := range beats {
			applied := logIndex(t, node)
			resp, body := beat(t, node, b.method, srv.URL+b.path, "svc", tok)
			if b.method == "HEAD" {
				body = []byte(`{"error":"(HEAD has no body)"}`)
			}
			wantUnauthorized(t, resp, body)
			if logIndex(t, node) != applied {
				t.Fatalf("%s %s with token %q: refused, yet it reached the log", b.method, b.path, tok)
			}
		}
	}
	// The right tokens.
	for _, w := range writes[:4] {
		if resp, body := withBearer(t, w.method, srv.URL+w.path, w.body, apiToken); resp.StatusCode != 200 {
			t.Fatalf("%s %s with the API token: %d %s", w.method, w.path, resp.StatusCode, body)
		}
	}
	for _, b := range beats {
		if resp, body := beat(t, node, b.method, srv.URL+b.path, "svc", pingToken); resp.StatusCode != 200 {
			t.Fatalf("%s %s with the ping token: %d %s", b.method, b.path, resp.StatusCode, body)
		}
	}
	if resp, body := do(t, "GET", srv.URL+"/heartbeat?id=curl&token="+pingToken, ""); resp.StatusCode != 200 {
		t.Fatalf("heartbeat with ?token=: %d %s", resp.StatusCode, body)
	}
	// The query form is for heartbeats only, never for changes.
	resp, body := do(t, "POST", srv.URL+"/v1/services/curl/pause?token="+apiToken, "")
	wantUnauthorized(t, resp, body)
	// Reads stay open.
	if resp, body := do(t, "GET", srv.URL+"/v1/services", ""); resp.StatusCode != 200 {
		t.Fatalf("read without a token: %d %s", resp.StatusCode, body)
	}
}

func TestWithoutTokensEverythingIsOpen(t *testing.T) {
	srv, _, _ := singleNode(t, knownActions, httpapi.WithAPIToken(""), httpapi.WithPingToken(""))
	if resp, body := do(t, "PUT", srv.URL+"/v1/services/open", "{}"); resp.StatusCode != 201 {
		t.Fatalf("PUT without tokens configured: %d %s", resp.StatusCode, body)
	}
	if resp, body := do(t, "POST", srv.URL+"/v1/heartbeat/open", ""); resp.StatusCode != 200 {
		t.Fatalf("heartbeat without tokens configured: %d %s", resp.StatusCode, body)
	}
}

func TestForwardedWritesKeepTheirToken(t *testing.T) {
	leader, followers := threeNodes(t, knownActions, httpapi.WithAPIToken(apiToken))
	applied := logIndex(t, leader.node)
	resp, body := withBearer(t, "PUT", followers[0].srv.URL+"/v1/services/fwd", `{"timeout": "1m"}`, "")
	wantUnauthorized(t, resp, body)
	if logIndex(t, leader.node) != applied {
		t.Fatal("a refused write reached the log")
	}
	if resp, body := withBearer(t, "PUT", followers[0].srv.URL+"/v1/services/fwd", `{"timeout": "1m"}`, apiToken); resp.StatusCode != 201 {
		t.Fatalf("PUT via a follower with the token: %d %s", resp.StatusCode, body)
	}
	if s, ok := leader.fsm.Service("fwd"); !ok || s.Def.Timeout.String() != "1m0s" {
		t.Fatalf("the leader has %+v", s)
	}
}

// TestTokensAreComparedInConstantTime reads the package's source: tokens
// are compared with subtle.ConstantTimeCompare, and no token, credential or
// digest is ever an operand of == or != (which stop at the first
// difference) except against a literal.
func TestTokensAreComparedInConstantTime(t *testing.T) {
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	constantTime := false
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		src, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		f, err := parser.ParseFile(fset, name, src, 0)
		if err != nil {
			t.Fatal(err)
		}
		ast.Inspect(f, func(n ast.Node) bool {
			switch n := n.(type) {
			case *ast.CallExpr:
				if sel, ok := n.Fun.(*ast.SelectorExpr); ok && sel.Sel.Name == "ConstantTimeCompare" {
					constantTime = true
				}
			case *ast.BinaryExpr:
				if n.Op != token.EQL && n.Op != token.NEQ {
					return true
				}
				// Against a literal ("" for unset, 1 for ConstantTimeCompare's
				// verdict) nothing secret is compared.
				if _, lit := n.X.(*ast.BasicLit); lit {
					return true
				}
				if _, lit := n.Y.(*ast.BasicLit); lit {
					return true
				}
				for _, side := range []ast.Expr{n.X, n.Y} {
					text := strings.ToLower(string(src[fset.Position(side.Pos()).Offset:fset.Position(side.End()).Offset]))
					for _, secret := range []string{"token", "cred", "digest", "secret", "authorization"} {
						if strings.Contains(text, secret) {
							t.Errorf("%s: %q compared with %s", fset.Position(n.Pos()), text, n.Op)
						}
					}
				}
			}
			return true
		})
	}
	if !constantTime {
		t.Error("no subtle.ConstantTimeCompare in the package: how are tokens compared?")
	}
}
