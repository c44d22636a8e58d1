package httpapi

import (
	"context"
	"fmt"
	"net/http"

	"github.com/gorilla/mux"

	"github.com/watchdog-ha/watchdog/fsm"
)

// handlePause stops watching a service: a paused service raises no incident
// however long it stays silent, until it is resumed.
func (s *Server) handlePause(r *http.Request) (int, any, error) { return s.setPaused(r, true) }

// handleResume watches a paused service again, with a full timeout from now.
func (s *Server) handleResume(r *http.Request) (int, any, error) { return s.setPaused(r, false) }

func (s *Server) setPaused(r *http.Request, paused bool) (int, any, error) {
	id := mux.Vars(r)["id"]
	var end int64
	var err error
	if paused {
		end, err = s.readWindow(r) // windows.go
	} else {
		err = refuseWindow(r)
	}
	if err != nil {
		return 0, nil, err
	}
	// Checked before proposing so that an unknown id costs no log entry;
	// the FSM checks again in case the service went away meanwhile.
	svc, ok := s.state.Service(id)
	if !ok {
		return 0, nil, fmt.Errorf("%w %q", fsm.ErrUnknownService, id)
	}
	// As healthchecks answers: resuming what is not paused is a 409 that
	// says so, and changes nothing. Pausing again stays a quiet 200.
	if !paused && svc.Status != fsm.StatusPaused {
		return 0, nil, &conflict{fmt.Sprintf("service %q is not paused (it is %s): nothing to resume", id, svc.Status)}
	}
	ctx, cancel := context.WithTimeout(r.Context(), commitTimeout)
	defer cancel()
	// The leader's clock stamps the change, as it does heartbeats: resuming
	// restarts the timeout from this moment on every node alike. A plain
	// pause is the first release's command, which every server knows; a
	// window needs protocol 2.
	at := s.node.Now().UnixNano()
	if end != 0 {
		_, err = s.applyWindow(ctx, fsm.Window{At: at, Services: []string{id}, Paused: true, Until: end})
	} else {
		_, err = s.node.Apply(ctx, fsm.Pause{At: at, Service: id, Paused: paused})
	}
	if err != nil {
		return 0, nil, err
	}
	// Apply returns once the entry is applied here, so this read sees it.
	svc, ok = s.state.Service(id)
	if !ok {
		return 0, nil, fmt.Errorf("%w %q", fsm.ErrUnknownService, id)
	}
	return http.StatusOK, viewOf(svc, true), nil
}
