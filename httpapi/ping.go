package httpapi

import (
	"context"
	"errors"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/gorilla/mux"

	"github.com/watchdog-ha/watchdog/cluster"
	"github.com/watchdog-ha/watchdog/fsm"
)

// The healthchecks.io-compatible ping API: /ping/{id}[/start|/fail|/<0-255>],
// so that existing cron wrappers and clients (curl one-liners, runitor) work
// unchanged. Replies are plain text with healthchecks' exact bodies, since
// clients such as runitor match on them, and so is every refusal under
// /ping; only the 401 of a wrong ping token is this API's usual JSON.

func (s *Server) pingRoutes(r *mux.Router) {
	methods := []string{http.MethodGet, http.MethodPost, http.MethodHead}
	r.HandleFunc("/ping/{id}", s.handlePing).Methods(methods...)
	r.HandleFunc("/ping/{id}/{signal}", s.handlePing).Methods(methods...)
	// Whatever else is under /ping (no id, too many parts, another method)
	// is refused in the same plain text, not in the JSON of the other routes.
	r.HandleFunc("/ping", pingNoRoute)
	r.PathPrefix("/ping/").HandlerFunc(pingNoRoute)
}

// pingNoRoute answers a request under /ping that no ping route takes: 405
// for a ping URL with another method, else 404.
func pingNoRoute(w http.ResponseWriter, r *http.Request) {
	parts := strings.Split(strings.TrimPrefix(r.URL.Path, "/ping/"), "/")
	if strings.HasPrefix(r.URL.Path, "/ping/") && len(parts) <= 2 && !slices.Contains(parts, "") {
		w.Header().Set("Allow", "GET, POST, HEAD")
		pingReply(w, http.StatusMethodNotAllowed, "method not allowed")
		return
	}
	pingReply(w, http.StatusNotFound, "not found")
}

// pingRequest is a parsed ping, before it is committed.
type pingRequest struct {
	id, signal, rid string
	exit            int
	note            []byte
}

func (s *Server) handlePing(w http.ResponseWriter, r *http.Request) {
	if !allowed(w, r, s.access.pingToken, true) {
		return
	}
	p, refused := parsePing(w, r)
	if refused.status != 0 {
		pingFailure(w, refused)
		return
	}
	// Counted where the client sent it, not again on the leader a
	// follower forwards it to.
	if r.Header.Get(cluster.ForwardedByHeader) == "" {
		s.metrics.receivedPing.Inc()
	}
	created := false
	if _, known := s.state.Service(p.id); !known {
		// This replica may lag behind a service just created: the leader,
		// which cannot, decides (one hop; unknown ids are rare).
		if !s.node.IsLeader() {
			s.forward(w, r, p.note)
			return
		}
		// healthchecks answers an unknown check 404, and creates one only
		// when asked.
		if r.URL.Query().Get("create") != "1" {
			pingReply(w, http.StatusNotFound, "not found")
			return
		}
		// max_services and auto_register have the last word.
		release, err := s.node.Reserve(p.id, false)
		if err != nil {
			pingFailed(w, err)
			return
		}
		defer release()
		created = true
	}
	if err := s.commitPing(w, r, p); err != nil {
		if !errors.Is(err, errForwarded) {
			pingFailed(w, err)
		}
		return
	}
	if created {
		pingReply(w, http.StatusCreated, "Created")
		return
	}
	pingReply(w, http.StatusOK, "OK")
}

// pingFailed answers a ping that was not committed with the API's status
// for err (failureOf), in healthchecks' words: a refused new id is 404
// when auto_register is off, 429 beyond max_services; anything else is
// worth a retry.
func pingFailed(w http.ResponseWriter, err error) {
	f := failureOf(err, "")
	switch f.status {
	case http.StatusTooManyRequests:
		f.msg = "too many services: " + f.msg
	case http.StatusNotFound:
		f.msg = "not found"
	case http.StatusServiceUnavailable:
		f.msg = "not committed, retry: " + f.msg
	}
	pingFailure(w, f)
}

// pingFailure answers f in plain text, with the headers of its status.
func pingFailure(w http.ResponseWriter, f failure) {
	f.setHeaders(w)
	pingReply(w, f.status, f.msg)
}

// parsePing reads the signal, run id and note of a ping; a non-zero status
// is the refusal to send instead.
func parsePing(w http.ResponseWriter, r *http.Request) (pingRequest, failure) {
	vars := mux.Vars(r)
	p := pingRequest{id: vars["id"], signal: fsm.SignalSuccess, rid: r.URL.Query().Get("rid")}
	if !fsm.ValidID(p.id) {
		return p, failure{http.StatusBadRequest, "invalid url format"}
	}
	switch sig, ok := vars["signal"]; {
	case !ok:
	case sig == fsm.SignalStart, sig == fsm.SignalFail:
		p.signal = sig
	case isDigits(sig):
		// Django's <int:…> matches any digits; above 255 is a bad URL.
		n, err := strconv.Atoi(sig)
		if err != nil || n > 255 {
			return p, failure{http.StatusBadRequest, "invalid url format"}
		}
		if p.exit = n; n != 0 {
			p.signal = fsm.SignalFail
		}
	default:
		return p, failure{http.StatusNotFound, "not found"}
	}
	if r.URL.Query().Has("rid") && !isUUID(p.rid) {
		return p, failure{http.StatusBadRequest, "invalid uuid format"}
	}
	note, err := io.ReadAll(http.MaxBytesReader(w, r.Body, fsm.MaxPingNote))
	if err != nil {
		return p, readFailure(err)
	}
	p.note = note
	return p, failure{}
}

// errForwarded says the request went to the leader, whose answer the client
// already has.
var errForwarded = errors.New("forwarded to the leader")

// commitPing commits p. A plain success is a heartbeat and takes the group
// commit path; anything with a note, a run id, an exit status or another
// signal is a Ping entry, committed on the leader (a follower forwards the
// request there, one hop).
func (s *Server) commitPing(w http.ResponseWriter, r *http.Request, p pingRequest) error {
	ctx, cancel := context.WithTimeout(r.Context(), commitTimeout)
	defer cancel()
	_, numbered := mux.Vars(r)["signal"]
	if p.signal == fsm.SignalSuccess && !numbered && p.rid == "" && len(p.note) == 0 {
		return s.node.HeartbeatID(ctx, p.id)
	}
	if s.node.IsLeader() {
		cmd := fsm.Ping{At: s.node.Now().UnixNano(), Service: p.id, Signal: p.signal, ExitStatus: p.exit,
			RunID: p.rid, Note: string(p.note)}
		_, err := s.node.Apply(ctx, cmd)
		if !errors.Is(err, cluster.ErrNotLeader) {
			return err
		}
		// Leadership moved before the entry was taken: nothing committed.
	}
	s.forward(w, r, p.note)
	return errForwarded
}

// pingReply answers as healthchecks does: plain text, open to any origin,
// never cached, and the body limit for clients that size their uploads.
func pingReply(w http.ResponseWriter, status int, body string) {
	h := w.Header()
	h.Set("Content-Type", "text/plain; charset=utf-8")
	h.Set("Access-Control-Allow-Origin", "*")
	h.Set("Cache-Control", "no-cache, no-store, must-revalidate, private")
	h.Set("Ping-Body-Limit", strconv.Itoa(fsm.MaxPingNote))
	w.WriteHeader(status)
	_, _ = io.WriteString(w, body)
}

func isDigits(s string) bool {
	for i := range len(s) {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}

// isUUID reports whether s is a canonical UUID (8-4-4-4-12 hex digits), the
// only run id healthchecks accepts.
func isUUID(s string) bool {
	if len(s) != 36 {
		return false
	}
	for i := range len(s) {
		c := s[i]
		switch i {
		case 8, 13, 18, 23:
			if c != '-' {
				return false
			}
		default:
			if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F') {
				return false
			}
		}
	}
	return true
}
