package config

import (
	"maps"
	"slices"
	"strconv"
	"strings"

	"github.com/watchdog-ha/watchdog/fsm"
)

// The schedule, tz and depends_on settings of a service: a cron schedule
// in a zone instead of a timeout (with a grace, how long after a tick its
// ping may come), and the services of this file it depends on.

// unschedule makes a scheduled service's timeout 0 (it is not inherited
// from the defaults), refusing one written with a timeout. It reports
// whether the service is scheduled.
func (p *parser) unschedule(s *ServiceConfig, id string) bool {
	if s.Schedule == "" {
		return false
	}
	if s.Timeout != 0 {
		p.addf(p.line("services", id, "timeout"), "services."+id+".timeout",
			"timeout and schedule exclude each other: a service is expected either within a timeout of its last heartbeat or once per tick of its schedule")
	}
	s.Timeout = 0
	return true
}

// checkSchedules checks the schedules, zones and dependencies of every
// service, after the policies (grace) were resolved. The defaults take
// none of them: they are what a service first seen by a heartbeat gets.
func (p *parser) checkSchedules(cfg *FileConfig) {
	d := cfg.Defaults
	for key, set := range map[string]bool{"schedule": d.Schedule != "", "tz": d.TZ != "", "depends_on": len(d.DependsOn) > 0} {
		if set {
			p.addf(p.line("defaults", key), "defaults."+key, "is set per service, not in the defaults")
		}
	}
	for _, id := range slices.Sorted(maps.Keys(cfg.Services)) {
		s := cfg.Services[id]
		at := func(key string) (int, string) { return p.line("services", id, key), "services." + id + "." + key }
		if s.Schedule == "" {
			if s.TZ != "" {
				line, path := at("tz")
				p.addf(line, path, "needs a schedule (a timeout has no time zone)")
			}
		} else {
			p.checkSchedule(s, id)
		}
		p.checkDependsOn(cfg, id, s.DependsOn)
	}
	p.checkCycles(cfg)
}

func (p *parser) checkSchedule(s ServiceConfig, id string) {
	line, path := p.line("services", id, "schedule"), "services."+id+".schedule"
	if s.Grace <= 0 {
		p.addf(line, path, "a scheduled service needs a grace, how long after a tick its ping may come, such as \"5m\"")
	}
	if _, err := fsm.ParseSchedule(s.Schedule, s.TZ); err != nil {
		if strings.HasPrefix(err.Error(), fsm.ErrBadZone.Error()+": ") {
			line, path = p.line("services", id, "tz"), "services."+id+".tz"
		}
		_, msg, _ := strings.Cut(err.Error(), ": ")
		p.addf(line, path, "%s", msg)
	}
}

// checkDependsOn makes sure a service depends only on other services of
// this file, each once: a typo is found when the file is loaded.
func (p *parser) checkDependsOn(cfg *FileConfig, id string, deps []string) {
	path := "services." + id + ".depends_on"
	if len(deps) > fsm.MaxDependsOn {
		p.addf(p.line("services", id, "depends_on"), path, "at most %d services, got %d", fsm.MaxDependsOn, len(deps))
	}
	for i, dep := range deps {
		line := p.line("services", id, "depends_on", strconv.Itoa(i))
		switch _, ok := cfg.Services[dep]; {
		case dep == id:
			p.addf(line, path, "%q cannot depend on itself", id)
		case !ok:
			p.addf(line, path, "no service %q in this file (defined: %s)", dep, strings.Join(slices.Sorted(maps.Keys(cfg.Services)), ", "))
		case slices.Contains(deps[:i], dep):
			p.addf(line, path, "%q is listed more than once", dep)
		}
	}
}

// checkCycles reports each dependency cycle once, at the depends_on of the
// first service on it (by id).
func (p *parser) checkCycles(cfg *FileConfig) {
	deps := func(id string) []string { return cfg.Services[id].DependsOn }
	reported := map[string]bool{}
	for _, id := range slices.Sorted(maps.Keys(cfg.Services)) {
		if reported[id] {
			continue
		}
		cycle := fsm.DependencyCycle(id, deps)
		if cycle == nil || slices.Contains(cycle, "") {
			continue
		}
		for _, c := range cycle {
			reported[c] = true
		}
		if len(cycle) > 2 || cycle[0] != cycle[1] { // a service on itself is reported already
			p.addf(p.line("services", id, "depends_on"), "services."+id+".depends_on", "dependency cycle %s", fsm.CycleString(cycle))
		}
	}
}

// scheduleOf is the part of definition (state.go) a schedule changes.
func scheduleOf(s ServiceConfig, def *fsm.Definition) {
	def.Schedule, def.TZ, def.DependsOn = s.Schedule, s.TZ, s.DependsOn
	if s.Schedule != "" {
		def.Timeout = 0
	}
}
