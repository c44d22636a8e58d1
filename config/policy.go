package config

import (
	"maps"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/watchdog-ha/watchdog/fsm"
)

// maxHistoryPerService bounds history_per_service: each event is a few
// hundred bytes in every node's memory and snapshot, per service.
const maxHistoryPerService = 10000

// checkPingToken reads the token that guards heartbeats, as checkAPIToken
// does the API's; it may also travel as ?token=, so the same rule holds.
func (p *parser) checkPingToken(cfg *FileConfig) {
	cfg.PingToken = secret(p, cfg.PingToken, cfg.PingTokenFile, false, "ping_token")
	if strings.ContainsFunc(string(cfg.PingToken), func(r rune) bool { return r <= ' ' || r == 0x7f }) {
		p.addf(p.line(cmpKey(cfg.PingTokenFile, "ping_token")), cmpKey(cfg.PingTokenFile, "ping_token"),
			"the token must not contain spaces or control characters")
	}
}

// resolvePolicies checks history_per_service, and the restart policy, tags
// and description of the defaults and of every service, filling in what a
// service inherits from the defaults when it does not say.
func (p *parser) resolvePolicies(cfg *FileConfig) {
	if !p.set("history_per_service") {
		cfg.HistoryPerService = fsm.DefaultHistoryPerService
	} else if n := cfg.HistoryPerService; n < 1 || n > maxHistoryPerService {
		p.addf(p.line("history_per_service"), "history_per_service", "must be 1 to %d, got %d", maxHistoryPerService, n)
	}
	p.policy(&cfg.Defaults, nil, "defaults")
	for _, id := range slices.Sorted(maps.Keys(cfg.Services)) {
		s := cfg.Services[id]
		p.policy(&s, &cfg.Defaults, "services", id)
		cfg.Services[id] = s
	}
}

// set reports whether the setting at keys is written (and not null).
func (p *parser) set(keys ...string) bool {
	_, val, ok := p.find(keys...)
	return ok && !isNull(unalias(val))
}

// policy checks what s sets and, when inherit is given, takes from it what
// s does not set (the defaults were checked already).
func (p *parser) policy(s *ServiceConfig, inherit *ServiceConfig, keys ...string) {
	at := func(key string) []string { return slices.Concat(keys, []string{key}) }
	if inherit != nil {
		inheritPolicy(s, inherit, func(key string) bool { return p.set(at(key)...) })
	}
	p.optionalPeriod(s.Grace, true, at("grace")...)
	p.optionalPeriod(s.Repeat, false, at("repeat")...)
	p.optionalPeriod(s.FlapWindow, false, at("flap_window")...)
	p.count(s.MaxRepeats, fsm.MaxMaxRepeats, "0 (no limit)", at("max_repeats")...)
	p.count(s.FlapThreshold, fsm.MaxFlapThreshold, "0 (off)", at("flap_threshold")...)
	if s.FlapThreshold > 0 && s.FlapWindow == 0 {
		p.addf(p.line(at("flap_threshold")...), strings.Join(at("flap_threshold"), "."), "needs a flap_window")
	}
	if p.set(at("tags")...) {
		p.checkTags(s.Tags, at("tags")...)
	}
	if d := s.Description; p.set(at("description")...) {
		switch {
		case len(d) > fsm.MaxDescription:
			p.addf(p.line(at("description")...), strings.Join(at("description"), "."), "at most %d bytes, got %d", fsm.MaxDescription, len(d))
		case !utf8.ValidString(d) || strings.ContainsFunc(d, fsm.UnsafeInText):
			p.addf(p.line(at("description")...), strings.Join(at("description"), "."), "must be one line of text, without control, bidirectional or zero-width characters")
		}
	}
}

// inheritPolicy copies into s each setting of inherit that s does not set.
func inheritPolicy(s, inherit *ServiceConfig, set func(key string) bool) {
	for key, copyIt := range map[string]func(){
		"grace":          func() { s.Grace = inherit.Grace },
		"repeat":         func() { s.Repeat = inherit.Repeat },
		"max_repeats":    func() { s.MaxRepeats = inherit.MaxRepeats },
		"flap_threshold": func() { s.FlapThreshold = inherit.FlapThreshold },
		"flap_window":    func() { s.FlapWindow = inherit.FlapWindow },
		"tags":           func() { s.Tags = slices.Clone(inherit.Tags) },
		"description":    func() { s.Description = inherit.Description },
	} {
		if !set(key) {
			copyIt()
		}
	}
}

// optionalPeriod checks a duration that 0 turns off: otherwise it must lie
// within fsm.MinPeriod (or 0, for a grace) and fsm.MaxPeriod.
func (p *parser) optionalPeriod(d Duration, anyShort bool, keys ...string) {
	if !p.set(keys...) || d == 0 {
		return
	}
	path, line := strings.Join(keys, "."), p.line(keys...)
	switch {
	case d < 0:
		p.addf(line, path, "must not be negative, got %s", d)
	case d < Duration(fsm.MinPeriod) && !anyShort:
		p.addf(line, path, "%s is too short: must be at least %s (or 0 for off)", d, Duration(fsm.MinPeriod))
	case d > Duration(fsm.MaxPeriod):
		p.addf(line, path, "%s is too long: must be at most %s", d, Duration(fsm.MaxPeriod))
	}
}

func (p *parser) count(n, hi int, zero string, keys ...string) {
	if p.set(keys...) && (n < 0 || n > hi) {
		p.addf(p.line(keys...), strings.Join(keys, "."), "must be %s to %d, got %d", zero, hi, n)
	}
}

func (p *parser) checkTags(tags []string, keys ...string) {
	path := strings.Join(keys, ".")
	if len(tags) > fsm.MaxTags {
		p.addf(p.line(keys...), path, "at most %d tags, got %d", fsm.MaxTags, len(tags))
	}
	for i, tag := range tags {
		line := p.line(slices.Concat(keys, []string{strconv.Itoa(i)})...)
		if !validID(tag) {
			p.addf(line, path, "invalid tag %q: %s", tag, idRule)
		}
		if slices.Contains(tags[:i], tag) {
			p.addf(line, path, "tag %q is listed more than once", tag)
		}
	}
}
