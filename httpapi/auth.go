package httpapi

import (
	"crypto/sha256"
	"crypto/subtle"
	"net/http"
	"slices"
	"strings"
)

// Tokens. When the API token is set, every mutating management route needs
// "Authorization: Bearer <api token>"; when the ping token is set, so does
// every heartbeat (or ?token= on the query form, for curl and cron), and so
// does the leader's route for the heartbeat batches its followers forward
// (the followers send the ping token with them), so that route is no way
// around it.

// token is a configured secret, kept as its SHA-256 digest: comparing
// digests in constant time reveals neither the token nor its length. Or
// it is the token the cluster generated, which current gives at each
// request (it changes if the node adopts the cluster's secret).
type token struct {
	digest  [sha256.Size]byte
	set     bool
	current func() string
}

// required reports whether a request must present the token.
func (t token) required() bool { return t.set || t.current != nil }

func newToken(secret string) token {
	if secret == "" {
		return token{}
	}
	return token{digest: sha256.Sum256([]byte(secret)), set: true}
}

// admits reports whether the presented secret is the token, in time that
// does not depend on where they differ.
func (t token) admits(presented string) bool {
	want := t.digest
	if !t.set {
		c := t.current()
		if c == "" {
			return false
		}
		want = sha256.Sum256([]byte(c))
	}
	d := sha256.Sum256([]byte(presented))
	return subtle.ConstantTimeCompare(d[:], want[:]) == 1
}

// access is what the options below set: who may change what, and which
// actions a service defined through the API may name.
type access struct {
	apiToken, pingToken token
	actions             []string // sorted
}

// WithAPIToken guards the mutating management routes with a bearer token.
// Empty leaves them open.
func WithAPIToken(secret string) Option {
	return func(s *Server) { s.access.apiToken = newToken(secret) }
}

// WithGeneratedAPIToken guards the mutating management routes with the token
// current returns at each request, unless WithAPIToken set one: the token
// the cluster generated, for a node whose configuration sets none. An empty
// token admits nobody.
func WithGeneratedAPIToken(current func() string) Option {
	return func(s *Server) {
		if !s.access.apiToken.set {
			s.access.apiToken.current = current
		}
	}
}

// WithPingToken guards the heartbeat routes with a token of their own.
// Empty leaves them open.
func WithPingToken(secret string) Option {
	return func(s *Server) { s.access.pingToken = newToken(secret) }
}

// WithActions names the actions this node's configuration defines: a
// service defined through the API may name only these (the API names
// actions, it never carries a command). Without it, none is known.
func WithActions(names []string) Option {
	return func(s *Server) { s.access.actions = slices.Sorted(slices.Values(names)) }
}

// bearer returns the credential of an "Authorization: Bearer" header.
func bearer(r *http.Request) (string, bool) {
	scheme, cred, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	return strings.TrimSpace(cred), true
}

// allowed checks a request against t, answering 401 when it fails. A
// missing and a wrong token get the same answer.
func allowed(w http.ResponseWriter, r *http.Request, t token, queryToo bool) bool {
	if !t.required() {
		return true
	}
	cred, ok := bearer(r)
	if !ok && queryToo {
		cred, ok = r.URL.Query().Get("token"), r.URL.Query().Has("token")
	}
	if ok && t.admits(cred) {
		return true
	}
	w.Header().Set("WWW-Authenticate", `Bearer realm="watchdog"`)
	msg := "missing or wrong token: send Authorization: Bearer <token>"
	if queryToo {
		msg += " (or ?token=)"
	}
	writeError(w, http.StatusUnauthorized, msg)
	return false
}
