//go:build watchdog_nextproto

package httpapi

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"unicode/utf8"

	"github.com/gorilla/mux"

	"github.com/watchdog-ha/watchdog/fsm"
)

// nextProtoRoutes adds the route of the watchdog_nextproto build's extra
// command kind, fsm.Note (fsm/protocol_next.go), so that a test can trigger
// it while upgrading a cluster:
//
//	POST /v1/services/{id}/note   body {"text": "..."}: add a note to the history
//
// The leader refuses it (409) while any server advertises an older protocol.
func (s *Server) nextProtoRoutes(r *mux.Router) {
	r.HandleFunc("/v1/services/{id}/note", s.leaderWrite(s.handleNote)).Methods(http.MethodPost)
}

func (s *Server) handleNote(r *http.Request) (int, any, error) {
	id := mux.Vars(r)["id"]
	var body struct {
		Text string `json:"text"`
	}
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(&body); err != nil {
		return 0, nil, &badRequest{fmt.Sprintf("note: want a JSON object {\"text\": \"...\"}: %v", err)}
	}
	if body.Text == "" || len(body.Text) > fsm.MaxPingNote || !utf8.ValidString(body.Text) {
		return 0, nil, &badRequest{fmt.Sprintf("note: text must be 1-%d bytes of UTF-8", fsm.MaxPingNote)}
	}
	if _, ok := s.state.Service(id); !ok {
		return 0, nil, fmt.Errorf("%w: %q", fsm.ErrUnknownService, id)
	}
	ctx, cancel := context.WithTimeout(r.Context(), commitTimeout)
	defer cancel()
	if err := s.apply(ctx, fsm.Note{At: s.node.Now().UnixNano(), Service: id, Text: body.Text}); err != nil {
		return 0, nil, err
	}
	return http.StatusOK, map[string]string{"id": id, "status": "noted"}, nil
}
