package httpapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"time"

	"github.com/gorilla/mux"

	"github.com/watchdog-ha/watchdog/cluster"
	"github.com/watchdog-ha/watchdog/fsm"
)

// Maintenance windows:
//
//	POST /v1/services/{id}/pause?for=2h       or ?until=<RFC 3339>, or the body {"for": "2h"}
//	POST /v1/pause?tag=T[&for=D|&until=T]     every service tagged T, at once
//	POST /v1/resume?tag=T                     every paused service tagged T
//
// The leader resumes a windowed service by itself when the window ends
// (fsm.WindowEnd, committed by its watcher).

// maxWindow bounds a window, to catch unit typos ("200h" for "200m") as
// the definitions' periods do.
const maxWindow = fsm.MaxPeriod

func (s *Server) windowRoutes(r *mux.Router) {
	r.HandleFunc("/v1/pause", s.leaderWrite(s.handlePauseTag)).Methods(http.MethodPost)
	r.HandleFunc("/v1/resume", s.leaderWrite(s.handleResumeTag)).Methods(http.MethodPost)
}

// windowSpec is a window as the query or the JSON body gives it.
type windowSpec struct {
	Until string `json:"until"`
	For   string `json:"for"`
}

// readWindow reads the window of a request, from its query and its JSON
// body (either, or both when they agree), and returns its end on the
// leader's timeline: 0 when none was given.
func (s *Server) readWindow(r *http.Request) (int64, error) {
	q := r.URL.Query()
	spec := windowSpec{Until: q.Get("until"), For: q.Get("for")}
	body, err := io.ReadAll(r.Body)
	if err != nil {
		return 0, err
	}
	if len(bytes.TrimSpace(body)) > 0 {
		var b windowSpec
		dec := json.NewDecoder(bytes.NewReader(body))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&b); err != nil {
			return 0, &badRequest{fmt.Sprintf(`the body must be empty or a JSON object {"until": "<RFC 3339>"} or {"for": "<duration>"}: %v`, err)}
		}
		if dec.More() {
			return 0, &badRequest{"the body holds more than one JSON value"}
		}
		for _, f := range []struct{ name, query, body string }{{"until", spec.Until, b.Until}, {"for", spec.For, b.For}} {
			if f.query != "" && f.body != "" && f.query != f.body {
				return 0, &badRequest{fmt.Sprintf("%s: the query says %s and the body %s", f.name, quoteInput(f.query), quoteInput(f.body))}
			}
		}
		spec.Until, spec.For = cmpOr(spec.Until, b.Until), cmpOr(spec.For, b.For)
	}
	return windowEnd(spec, s.node.Now())
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// windowEnd checks a window against now, the leader's time.
func windowEnd(spec windowSpec, now time.Time) (int64, error) {
	var end time.Time
	switch {
	case spec.Until != "" && spec.For != "":
		return 0, &badRequest{"give until or for, not both"}
	case spec.For != "":
		d, err := time.ParseDuration(spec.For)
		if err != nil {
			return 0, &badRequest{fmt.Sprintf(`for: invalid duration %s: write a number with a unit, such as "2h" or "90m"`, quoteInput(spec.For))}
		}
		if d <= 0 || d > maxWindow {
			return 0, &badRequest{fmt.Sprintf("for: %s is out of range: must be positive and at most %s", d, maxWindow)}
		}
		end = now.Add(d)
	case spec.Until != "":
		t, err := time.Parse(time.RFC3339, spec.Until)
		if err != nil {
			return 0, &badRequest{fmt.Sprintf(`until: invalid time %s: write RFC 3339, such as "2026-12-24T18:00:00Z"`, quoteInput(spec.Until))}
		}
		if !t.After(now) || t.Sub(now) > maxWindow {
			return 0, &badRequest{fmt.Sprintf("until: %s is not ahead of the cluster's time %s by at most %s",
				t.UTC().Format(time.RFC3339), now.UTC().Format(time.RFC3339), maxWindow)}
		}
		end = t
	default:
		return 0, nil
	}
	return end.UnixNano(), nil
}

// applyWindow commits w, saying what a refusal for protocol means here.
func (s *Server) applyWindow(ctx context.Context, w fsm.Window) (fsm.Windowed, error) {
	resp, err := s.node.Apply(ctx, w)
	if errors.Is(err, cluster.ErrProtocolNotAgreed) {
		return nil, fmt.Errorf("maintenance windows and pausing by tag need protocol %d on every server: %w", fsm.WindowProtocol, err)
	}
	if err != nil {
		return nil, err
	}
	changed, _ := resp.(fsm.Windowed)
	return changed, nil
}

// tagged lists the services tagged with the request's tag, refusing a tag
// no service has and more than one entry can carry.
func (s *Server) tagged(r *http.Request) (tag string, ids []string, err error) {
	tag = r.URL.Query().Get("tag")
	switch {
	case !r.URL.Query().Has("tag"):
		return "", nil, &badRequest{"tag: required, as ?tag=T"}
	case !fsm.ValidID(tag):
		return "", nil, &badRequest{fmt.Sprintf("tag: invalid tag %s: want 1-128 of A-Za-z0-9._- (not . or ..)", quoteInput(tag))}
	}
	for _, svc := range s.state.Services() {
		if slices.Contains(svc.Def.Tags, tag) {
			ids = append(ids, svc.ID)
		}
	}
	switch {
	case len(ids) == 0:
		return "", nil, fmt.Errorf("%w has tag %q", fsm.ErrUnknownService, tag)
	case len(ids) > fsm.MaxWindowServices:
		return "", nil, &badRequest{fmt.Sprintf("tag %q: %d services, more than the %d one request may change at once", tag, len(ids), fsm.MaxWindowServices)}
	}
	return tag, ids, nil
}

// tagAnswer is what the tag routes answer: the services that changed, and
// how many of those tagged did not need to (paused already with that
// window; for a resume, not paused).
type tagAnswer struct {
	Tag       string     `json:"tag"`
	Status    fsm.Status `json:"status"` // paused or up (resumed)
	Changed   []string   `json:"changed"`
	Unchanged int        `json:"unchanged"`
	Until     *time.Time `json:"until,omitempty"`
}

// handlePauseTag pauses every service tagged T in one entry, for a window
// or until resumed.
func (s *Server) handlePauseTag(r *http.Request) (int, any, error) {
	end, err := s.readWindow(r)
	if err != nil {
		return 0, nil, err
	}
	tag, ids, err := s.tagged(r)
	if err != nil {
		return 0, nil, err
	}
	ctx, cancel := context.WithTimeout(r.Context(), commitTimeout)
	defer cancel()
	changed, err := s.applyWindow(ctx, fsm.Window{At: s.node.Now().UnixNano(), Services: ids, Paused: true, Until: end})
	if err != nil {
		return 0, nil, err
	}
	return http.StatusOK, tagAnswer{Tag: tag, Status: fsm.StatusPaused, Changed: nonNil(changed),
		Unchanged: len(ids) - len(changed), Until: timeOf(end)}, nil
}

// handleResumeTag resumes every paused service tagged T in one entry.
func (s *Server) handleResumeTag(r *http.Request) (int, any, error) {
	if err := refuseWindow(r); err != nil {
		return 0, nil, err
	}
	tag, all, err := s.tagged(r)
	if err != nil {
		return 0, nil, err
	}
	var ids []string
	for _, id := range all {
		if svc, ok := s.state.Service(id); ok && svc.Status == fsm.StatusPaused {
			ids = append(ids, id)
		}
	}
	answer := tagAnswer{Tag: tag, Status: fsm.StatusUp, Changed: []string{}, Unchanged: len(all)}
	if len(ids) > 0 {
		ctx, cancel := context.WithTimeout(r.Context(), commitTimeout)
		defer cancel()
		changed, err := s.applyWindow(ctx, fsm.Window{At: s.node.Now().UnixNano(), Services: ids})
		if err != nil {
			return 0, nil, err
		}
		answer.Changed, answer.Unchanged = nonNil(changed), len(all)-len(changed)
	}
	return http.StatusOK, answer, nil
}

// refuseWindow refuses a window on a resume, which takes none.
func refuseWindow(r *http.Request) error {
	q := r.URL.Query()
	body, err := io.ReadAll(r.Body)
	if err != nil {
		return err
	}
	var spec windowSpec
	if q.Has("until") || q.Has("for") ||
		(len(bytes.TrimSpace(body)) > 0 && json.Unmarshal(body, &spec) == nil && spec != windowSpec{}) {
		return &badRequest{"resume takes no window (until, for): it resumes now"}
	}
	return nil
}
