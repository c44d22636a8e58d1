package cluster

import (
	"fmt"

	"github.com/watchdog-ha/watchdog/fsm"
)

// windowGate refuses a backup that holds a maintenance window, a schedule or
// a dependency while some server of the cluster may run a build without
// them: that server would restore the service paused for good, or watched
// by a timeout it does not have, and disagree with the others. It is the
// restore's side of checkProtocol.
type windowGate struct {
	next RestoreCheck // nil: no other rule
	node *Node
}

// CheckDefaults implements RestoreCheck.
func (g windowGate) CheckDefaults(def fsm.Definition) error {
	if g.next == nil {
		return nil
	}
	return g.next.CheckDefaults(def)
}

// CheckService implements RestoreCheck.
func (g windowGate) CheckService(s fsm.Service) error {
	if s.PausedUntil != 0 {
		if err := g.node.checkProtocol(fsm.Window{}); err != nil {
			return fmt.Errorf("it is in a maintenance window: %w", err)
		}
	}
	if err := g.node.checkProtocol(fsm.Define{Service: s.ID, Def: *s.Def}); err != nil {
		return fmt.Errorf("its schedule or dependencies: %w", err)
	}
	if g.next == nil {
		return nil
	}
	return g.next.CheckService(s)
}
