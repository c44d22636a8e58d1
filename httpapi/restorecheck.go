package httpapi

import (
	"errors"
	"fmt"

	"github.com/watchdog-ha/watchdog/cluster"
	"github.com/watchdog-ha/watchdog/fsm"
)

// restoreRules holds what a restore brings in to the rules PUT
// /v1/services/{id} holds a definition to (checkDefinition): a valid id,
// durations within bounds, known actions, valid tags, a description without
// control characters. The file's checksum proves it whole, not that this
// API wrote it.
type restoreRules struct {
	// actions the configuration defines, sorted; checked only when known.
	actions      []string
	knownActions bool
}

// restoreRules are the rules this node's leader applies to a restore.
func (s *Server) restoreRules() cluster.RestoreCheck {
	return restoreRules{actions: s.access.actions, knownActions: true}
}

// OfflineRestoreCheck is the rules a restore is held to, but for the names
// of actions, which only a node's configuration knows: for a client checking
// a backup before it sends it (the leader checks it again, whole).
func OfflineRestoreCheck() cluster.RestoreCheck { return restoreRules{} }

// CheckDefaults implements cluster.RestoreCheck.
func (r restoreRules) CheckDefaults(def fsm.Definition) error {
	return checkDefinition(def, r.actionCheck())
}

// CheckService implements cluster.RestoreCheck.
func (r restoreRules) CheckService(svc fsm.Service) error {
	if !fsm.ValidID(svc.ID) {
		return errors.New("invalid id: want 1-128 of A-Za-z0-9._- (not . or ..)")
	}
	// A service on the defaults has them for its definition: checked once,
	// as the defaults.
	if svc.Source != fsm.SourceHeartbeat {
		if err := checkDefinition(*svc.Def, r.actionCheck()); err != nil {
			return err
		}
	}
	if !r.knownActions {
		return nil
	}
	// An action still owed would be run by the next leader's watcher.
	for _, inc := range svc.Incidents {
		for _, run := range inc.Actions {
			if run.State != fsm.ActionPending {
				continue
			}
			if err := checkActionsIn(r.actions, "incident "+quoteInput(inc.ID), []string{run.Action}); err != nil {
				return fmt.Errorf("owes an action: %w", err)
			}
		}
	}
	return nil
}

// actionCheck checks action names against the configuration's, when known.
func (r restoreRules) actionCheck() func(field string, names []string) error {
	if !r.knownActions {
		return nil
	}
	return func(field string, names []string) error { return checkActionsIn(r.actions, field, names) }
}
