package httpapi

import (
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/gorilla/mux"

	"github.com/watchdog-ha/watchdog/fsm"
)

// Bounds on GET /v1/events: a page is at most maxEventsPage events; a
// client pages on with ?after= the last seq it got.
const (
	defaultEventsPage = 1000
	maxEventsPage     = 10000
)

// eventView is one event of a service's history as the API shows it.
type eventView struct {
	Service  string          `json:"service,omitempty"` // on /v1/events only
	Seq      uint64          `json:"seq"`
	Time     *time.Time      `json:"time"`
	Event    fsm.Event       `json:"event"`
	Incident string          `json:"incident,omitempty"`
	Action   string          `json:"action,omitempty"`
	For      fsm.Event       `json:"for,omitempty"`
	Repeat   int             `json:"repeat,omitempty"`
	State    fsm.ActionState `json:"state,omitempty"`
	Attempts int             `json:"attempts,omitempty"`
	Error    string          `json:"error,omitempty"`
	// What a pinging client said (start, fail, success pings).
	Note       string `json:"note,omitempty"`
	RunID      string `json:"rid,omitempty"`
	ExitStatus int    `json:"exit_status,omitempty"`
	// A maintenance window's end (paused, resumed).
	Until *time.Time `json:"until,omitempty"`
	// The dependency a suppressed event waits for.
	SuppressedBy string `json:"suppressed_by,omitempty"`
}

func eventOf(service string, r fsm.Record) eventView {
	return eventView{Service: service, Seq: r.Seq, Time: timeOf(r.At), Event: r.Event, Incident: r.Incident,
		Action: r.Action, For: r.For, Repeat: r.Repeat, State: r.State, Attempts: r.Attempts, Error: r.Error,
		Note: r.Note, RunID: r.RunID, ExitStatus: r.ExitStatus, Until: timeOf(r.Until), SuppressedBy: r.SuppressedBy}
}

// handleServiceEvents answers a service's history, oldest first, from this
// node's replica, optionally only the events at or after ?since=.
func (s *Server) handleServiceEvents(w http.ResponseWriter, r *http.Request) {
	id := mux.Vars(r)["id"]
	if !fsm.ValidID(id) {
		writeError(w, http.StatusBadRequest, fmt.Sprintf("invalid service id %q", id))
		return
	}
	since, err := sinceParam(r)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	recs, ok := s.state.Events(id, since)
	if !ok {
		writeError(w, http.StatusNotFound, fmt.Sprintf("no service %q", id))
		return
	}
	out := make([]eventView, 0, len(recs))
	for _, rec := range recs {
		out = append(out, eventOf("", rec))
	}
	writeJSON(w, http.StatusOK, map[string]any{"id": id, "events": out})
}

// handleEvents answers every service's events at or after ?since= and after
// ?after= (a seq), in the order they were committed, up to ?limit=; "more"
// says whether another page follows.
func (s *Server) handleEvents(w http.ResponseWriter, r *http.Request) {
	since, err := sinceParam(r)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	q := r.URL.Query()
	var after uint64
	if v := q.Get("after"); v != "" {
		if after, err = strconv.ParseUint(v, 10, 64); err != nil {
			writeError(w, http.StatusBadRequest, fmt.Sprintf("after: want the seq of an event (a whole number), got %q", v))
			return
		}
	}
	limit := defaultEventsPage
	if v := q.Get("limit"); v != "" {
		if limit, err = strconv.Atoi(v); err != nil || limit < 1 || limit > maxEventsPage {
			writeError(w, http.StatusBadRequest, fmt.Sprintf("limit: want 1 to %d, got %q", maxEventsPage, v))
			return
		}
	}
	recs, more := s.state.AllEvents(since, after, limit)
	out := make([]eventView, 0, len(recs))
	for _, rec := range recs {
		out = append(out, eventOf(rec.Service, rec.Record))
	}
	writeJSON(w, http.StatusOK, map[string]any{"events": out, "more": more})
}

// sinceParam reads ?since= as an RFC 3339 time; absent means the beginning.
func sinceParam(r *http.Request) (int64, error) {
	v := r.URL.Query().Get("since")
	if v == "" {
		return 0, nil
	}
	t, err := time.Parse(time.RFC3339Nano, v)
	if err != nil {
		return 0, fmt.Errorf("since: want an RFC 3339 time such as 2026-11-25T10:00:00Z, got %q", v)
	}
	return t.UnixNano(), nil
}
