package httpapi

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/gorilla/mux"

	"github.com/watchdog-ha/watchdog/cluster"
	"github.com/watchdog-ha/watchdog/fsm"
)

// Configs is what the configuration routes need from the node.
type Configs interface {
	// CommitConfig commits c on the leader if check allows it, given the
	// committed configuration (cluster.ErrNotLeader elsewhere).
	CommitConfig(ctx context.Context, c fsm.Configure, check func(fsm.ConfigInfo) error) (fsm.ConfigInfo, error)
	// ConfigStatus compares this node's file with the committed
	// configuration; nil when not tracked.
	ConfigStatus() *cluster.ConfigStatus
}

// ConfigParser parses and validates a config file sent to PUT /v1/config
// into the configuration the cluster replicates. Problems are reported as
// "name:line: key: problem", all of them. It must not act on what the file
// says (read files it names, run anything): the file comes from the
// network, and its action definitions stay on the operator's side.
type ConfigParser func(data []byte, name string) (fsm.Configure, error)

// WithConfigParser enables PUT /v1/config with p; without it the route
// answers 501.
func WithConfigParser(p ConfigParser) Option {
	return func(s *Server) { s.parseConfig = p }
}

// maxConfigBody bounds a config file sent to PUT /v1/config: thousands of
// services, far beyond any hand-written file.
const maxConfigBody = 8 << 20

// configRoutes adds:
//
//	GET /v1/config   the committed configuration's description, and this node's file against it
//	PUT /v1/config   apply a config file (the body, YAML) as the cluster's configuration
func (s *Server) configRoutes(r *mux.Router) {
	r.HandleFunc("/v1/config", s.handleConfig).Methods(http.MethodGet, http.MethodHead)
	r.HandleFunc("/v1/config", s.leaderWriteUpTo(maxConfigBody, s.handleConfigApply)).Methods(http.MethodPut)
}

func (s *Server) handleConfig(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]any{"node": s.node.ID(), "committed": s.state.ConfigInfo(),
		"file": s.node.ConfigStatus()})
}

// configApplied is the answer of PUT /v1/config.
type configApplied struct {
	Changed   bool           `json:"changed"`
	Committed fsm.ConfigInfo `json:"committed"`
	Services  int            `json:"services"`
	// Missing lists, by node, the actions the applied configuration names
	// that the node's own file lacks (with force only; otherwise a 409).
	Missing map[string][]string `json:"missing_actions,omitempty"`
}

// handleConfigApply commits a config file as the cluster's configuration,
// on the leader. Query parameters: name (the file's name, for messages),
// generation (apply only if the committed generation is still this one),
// force (apply even if some node's file lacks an action it newly names).
func (s *Server) handleConfigApply(r *http.Request) (int, any, error) {
	if s.parseConfig == nil {
		return 0, nil, &badRequest{"this node cannot parse config files"}
	}
	q := r.URL.Query()
	force, err := boolParam(r, "force")
	if err != nil {
		return 0, nil, &badRequest{err.Error()}
	}
	var expect *uint64
	if g := q.Get("generation"); g != "" {
		v, err := strconv.ParseUint(g, 10, 64)
		if err != nil {
			return 0, nil, &badRequest{fmt.Sprintf("generation=%q: want the committed generation, a number", g)}
		}
		expect = &v
	}
	name := q.Get("name")
	if name == "" || len(name) > 256 || strings.ContainsFunc(name, func(r rune) bool { return r < ' ' || r == 0x7f }) {
		name = "config"
	}
	data, err := io.ReadAll(r.Body)
	if err != nil {
		return 0, nil, &badRequest{err.Error()}
	}
	c, err := s.parseConfig(data, name)
	if err != nil {
		return 0, nil, &badRequest{err.Error()}
	}
	c.At = s.node.Now().UnixNano()
	missing := s.missingActions(fsm.ReferencedActions(c))
	changed := true
	ctx, cancel := context.WithTimeout(r.Context(), commitTimeout)
	defer cancel()
	info, err := s.node.CommitConfig(ctx, c, func(now fsm.ConfigInfo) error {
		switch {
		case expect != nil && now.Generation != *expect:
			return &conflict{fmt.Sprintf("the committed configuration is at generation %d, not %d: someone applied another; look at it and try again",
				now.Generation, *expect)}
		case !force && len(newlyMissing(missing, now.Actions)) > 0:
			return &conflict{describeMissing(newlyMissing(missing, now.Actions)) +
				": add the actions to those nodes' config files and restart them first, or apply with force=true"}
		case now.Generation > 0 && now.Hash == fsm.ConfigHash(c) && now.ActionsHash == c.ActionsHash:
			changed = false
			return errUnchanged
		}
		return nil
	})
	if err != nil && !errors.Is(err, errUnchanged) {
		return 0, nil, err
	}
	if changed {
		s.log.Info("applied a configuration", "generation", info.Generation, "hash", info.Hash,
			"services", len(c.Services), "name", name, "missing_actions", describeMissing(missing))
	}
	return http.StatusOK, configApplied{Changed: changed, Committed: info, Services: len(c.Services), Missing: missing}, nil
}

// errUnchanged stops CommitConfig when the configuration is already the
// committed one: applying a file twice commits nothing the second time.
var errUnchanged = errors.New("configuration unchanged")

// missingActions are, by node, the actions in need that the node's file
// lacks, from the nodes' last status answers. Nodes that did not answer
// are not counted: they are checked when they come back (and then are
// not ready, which says why).
func (s *Server) missingActions(need []string) map[string][]string {
	out := map[string][]string{}
	for _, m := range s.node.Members() {
		if m.Config == nil {
			continue
		}
		if miss := cluster.MissingActions(need, m.Config.Actions); len(miss) > 0 {
			out[m.ID] = miss
		}
	}
	if len(out) == 0 {
		return nil
	}
	return out
}

// newlyMissing are the actions of missing that the committed configuration
// (which names before) does not name yet: an apply is refused for these,
// not for a node that lacked an action before (which is not ready, and
// says so, already).
func newlyMissing(missing map[string][]string, before []string) map[string][]string {
	out := map[string][]string{}
	for id, miss := range missing {
		if fresh := cluster.MissingActions(miss, before); len(fresh) > 0 {
			out[id] = fresh
		}
	}
	return out
}

func describeMissing(missing map[string][]string) string {
	var parts []string
	for _, id := range slices.Sorted(maps.Keys(missing)) {
		parts = append(parts, fmt.Sprintf("%s's file lacks %s", id, strings.Join(missing[id], ", ")))
	}
	return strings.Join(parts, "; ")
}
