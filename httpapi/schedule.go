package httpapi

import (
	"errors"
	"fmt"
	"slices"

	"github.com/watchdog-ha/watchdog/fsm"
)

// The schedule, tz and depends_on fields of PUT /v1/services/{id}: a cron
// schedule instead of a timeout (fsm/schedule.go), and the services this
// one depends on (fsm/depends.go).

// scheduleFields resolves the schedule and tz of spec into def: a schedule
// replaces the timeout, and one written with a timeout is refused.
func scheduleFields(spec serviceSpec, def *fsm.Definition) error {
	switch {
	case spec.Schedule == nil && spec.TZ != nil:
		return errors.New("tz: needs a schedule (a timeout has no time zone)")
	case spec.Schedule == nil:
		return nil
	case spec.Timeout != nil:
		return errors.New("timeout and schedule exclude each other: a service is expected either within a timeout of its last heartbeat or once per tick of its schedule")
	}
	def.Timeout, def.Schedule, def.TZ = 0, *spec.Schedule, ""
	if spec.TZ != nil {
		def.TZ = *spec.TZ
	}
	return checkSchedule(*def)
}

// checkSchedule parses a definition's schedule in its zone, as this node's
// zone database has it.
func checkSchedule(def fsm.Definition) error {
	if def.Schedule == "" {
		return nil
	}
	if _, err := fsm.ParseSchedule(def.Schedule, def.TZ); err != nil {
		return errors.New(boundMessage(err.Error()))
	}
	return nil
}

// checkDependsIDs holds depends_on to the rules of ids.
func checkDependsIDs(deps []string) error {
	if len(deps) > fsm.MaxDependsOn {
		return fmt.Errorf("depends_on: at most %d services, got %d", fsm.MaxDependsOn, len(deps))
	}
	for i, id := range deps {
		if !fsm.ValidID(id) {
			return fmt.Errorf("depends_on: invalid service id %s", quoteInput(id))
		}
		if slices.Contains(deps[:i], id) {
			return fmt.Errorf("depends_on: %q is listed more than once", id)
		}
	}
	return nil
}

// checkDependencies refuses depends_on for service id when it names id
// itself, a service the cluster does not know, or closes a cycle through
// the services' committed dependencies.
func (s *Server) checkDependencies(id string, def fsm.Definition) error {
	if len(def.DependsOn) == 0 {
		return nil
	}
	graph := map[string][]string{}
	for _, svc := range s.state.Services() {
		graph[svc.ID] = svc.Def.DependsOn
	}
	for _, dep := range def.DependsOn {
		if dep == id {
			return fmt.Errorf("depends_on: %q cannot depend on itself", id)
		}
		if _, ok := graph[dep]; !ok {
			return fmt.Errorf("depends_on: no service %q: define it (or let it send a heartbeat) first", dep)
		}
	}
	graph[id] = def.DependsOn
	if cycle := fsm.DependencyCycle(id, func(s string) []string { return graph[s] }); cycle != nil {
		return fmt.Errorf("depends_on: dependency cycle %s", fsm.CycleString(cycle))
	}
	return nil
}
