package cluster

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync"

	"github.com/watchdog-ha/watchdog/fsm"
)

// ErrTooManyServices is the refusal of a heartbeat (or a definition) for a
// new service id once the cluster holds MaxServices services. Services it
// already holds, and those the config file defines, are never refused.
var ErrTooManyServices = errors.New("max_services reached")

// Refusal reasons, as the leader sends them back to a follower that
// forwarded the ids (see RefusedError.Reasons).
const (
	ReasonMaxServices = "max_services"
	ReasonUnknown     = "unknown"
)

// RefusedError says that some ids of a batch were refused; the batch's other
// ids were committed. It is how one flush answers each request apart.
type RefusedError struct {
	IDs map[string]error // the refusal of each refused id
}

func (e *RefusedError) Error() string {
	ids := slices.Sorted(maps.Keys(e.IDs))
	if len(ids) == 0 {
		return "cluster: no service refused"
	}
	return fmt.Sprintf("cluster: %d service id(s) refused, first %s", len(ids), e.IDs[ids[0]])
}

// For is the part of e about ids, nil when none of them was refused: the
// answer to a request that carried ids.
func (e *RefusedError) For(ids []string) error {
	var part map[string]error
	for _, id := range ids {
		if err, ok := e.IDs[id]; ok {
			if part == nil {
				part = make(map[string]error)
			}
			part[id] = err
		}
	}
	if part == nil {
		return nil
	}
	return &RefusedError{IDs: part}
}

// Unwrap makes errors.Is see the reasons of the refusals.
func (e *RefusedError) Unwrap() []error {
	out := make([]error, 0, len(e.IDs))
	for _, id := range slices.Sorted(maps.Keys(e.IDs)) {
		out = append(out, e.IDs[id])
	}
	return out
}

// single turns the refusal of a request's one id into that id's own error,
// which says it better to a client than a list would.
func single(err error, ids []string) error {
	if err == nil {
		return nil // the common case, without the allocation errors.As costs
	}
	var refused *RefusedError
	if len(ids) == 1 && errors.As(err, &refused) {
		if one, ok := refused.IDs[ids[0]]; ok {
			return one
		}
	}
	return err
}

// Refusal is one refused id in the leader's answer to a forwarded batch.
type Refusal struct {
	Reason string `json:"reason"` // ReasonMaxServices or ReasonUnknown
	Error  string `json:"error"`
}

// Reasons is the wire form of e, by id.
func (e *RefusedError) Reasons() map[string]Refusal {
	out := make(map[string]Refusal, len(e.IDs))
	for id, err := range e.IDs {
		reason := ReasonUnknown
		if errors.Is(err, ErrTooManyServices) {
			reason = ReasonMaxServices
		}
		out[id] = Refusal{Reason: reason, Error: err.Error()}
	}
	return out
}

// refusedFrom rebuilds, on the follower, the errors the leader refused ids
// with, so that errors.Is still tells the reasons apart.
func refusedFrom(reasons map[string]Refusal) *RefusedError {
	e := &RefusedError{IDs: make(map[string]error, len(reasons))}
	for id, r := range reasons {
		kind := fsm.ErrUnknownService
		if r.Reason == ReasonMaxServices {
			kind = ErrTooManyServices
		}
		e.IDs[id] = &remoteRefusal{kind: kind, msg: r.Error}
	}
	return e
}

// remoteRefusal is a refusal the leader sent: its words, its reason.
type remoteRefusal struct {
	kind error
	msg  string
}

func (e *remoteRefusal) Error() string { return e.msg }
func (e *remoteRefusal) Unwrap() error { return e.kind }

// knownState is what admission needs of the replicated state.
type knownState interface {
	Unknown(ids []string) []string
	Len() int
}

// admission decides, on the leader, which new service ids may enter the
// replicated state. It runs when the leader builds an entry, before it
// proposes it, so the FSM only ever applies what was admitted and stays
// deterministic; every node agrees because only the leader decides.
type admission struct {
	max        int  // 0: no cap
	refuseNew  bool // auto_register: false
	configured map[string]struct{}
	state      knownState

	mu sync.Mutex
	// pending counts, by id, the proposals under way that would create
	// it: entries in flight at once must not each take the last place.
	pending map[string]int
}

func newAdmission(maxServices int, autoRegister bool, configured []string, state knownState) *admission {
	a := &admission{max: maxServices, refuseNew: !autoRegister, state: state,
		configured: make(map[string]struct{}, len(configured)), pending: make(map[string]int)}
	for _, id := range configured {
		a.configured[id] = struct{}{}
	}
	return a
}

// admit splits ids into those that may be committed and those refused.
// defining says the ids are being defined explicitly (the management API),
// which auto_register does not forbid. release must be called once the
// entry carrying the admitted ids has been applied, or has failed.
func (a *admission) admit(ids []string, defining bool) (ok []string, refused map[string]error, release func()) {
	nothing := func() {}
	if a.max <= 0 && !a.refuseNew {
		return ids, nil, nothing
	}
	unknown := a.state.Unknown(ids)
	if len(unknown) == 0 {
		return ids, nil, nothing // the common case: every id is known
	}
	isNew := make(map[string]bool, len(unknown))
	for _, id := range unknown {
		if _, cfg := a.configured[id]; !cfg {
			isNew[id] = true
		}
	}
	if len(isNew) == 0 {
		return ids, nil, nothing
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	count := a.countLocked()
	ok = make([]string, 0, len(ids))
	var reserved []string
	for _, id := range ids {
		err := error(nil)
		switch {
		case !isNew[id] || a.pending[id] > 0:
			// Known, configured, or already counted in a proposal under way.
		case a.refuseNew && !defining:
			err = fmt.Errorf("%w %q: auto_register is off, so only services defined in the config file "+
				"or with PUT /v1/services/{id} may send heartbeats", fsm.ErrUnknownService, id)
		case a.max > 0 && count >= a.max:
			err = fmt.Errorf("service %q refused: %w: the cluster holds %d services (max_services %d); "+
				"heartbeats of existing services still work, delete some or raise max_services", id, ErrTooManyServices, count, a.max)
		default:
			count++
		}
		if err != nil {
			if refused == nil {
				refused = make(map[string]error)
			}
			refused[id] = err
			continue
		}
		if isNew[id] {
			a.pending[id]++
			reserved = append(reserved, id)
		}
		ok = append(ok, id)
	}
	return ok, refused, func() { a.release(reserved) }
}

// countLocked is how many services there are, counting those a proposal
// under way is creating (and that are not applied yet).
func (a *admission) countLocked() int {
	n := a.state.Len()
	if len(a.pending) > 0 {
		n += len(a.state.Unknown(slices.Collect(maps.Keys(a.pending))))
	}
	return n
}

func (a *admission) release(ids []string) {
	if len(ids) == 0 {
		return
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, id := range ids {
		if a.pending[id]--; a.pending[id] <= 0 {
			delete(a.pending, id)
		}
	}
}

// Reserve admits one service id about to be created by a single command
// (a ping that creates its service, or a definition through the API) on the
// leader. The returned release must be called once the command is applied
// or has failed. defining is true for an explicit definition, which
// auto_register: false allows.
func (n *Node) Reserve(id string, defining bool) (release func(), err error) {
	_, refused, release := n.admission.admit([]string{id}, defining)
	if err := refused[id]; err != nil {
		release()
		return func() {}, err
	}
	return release, nil
}
