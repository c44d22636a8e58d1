package config

import (
	"fmt"
	"time"
)

// Limits that protect a node from hostile or broken clients.
const (
	// defaultMaxServices bounds the services a stranger able to reach the
	// API could create with random ids: far more than a watchdog is asked
	// to watch, yet a bound. Each service costs every node about a KiB of
	// heap (TestHostileLoad without a cap: 376 MiB for three nodes after
	// 100 000 random ids), so the default keeps a node near 100 MiB.
	defaultMaxServices = 100_000
	maxMaxServices     = 10_000_000

	defaultReadHeaderTimeout = 10 * time.Second
	defaultReadTimeout       = 30 * time.Second
	defaultWriteTimeout      = 30 * time.Second
	defaultIdleTimeout       = 2 * time.Minute
	minHTTPTimeout           = 100 * time.Millisecond
	maxHTTPTimeout           = time.Hour
	// defaultMaxConnections bounds the HTTP connections of a node: each
	// costs a goroutine, buffers (about 20 KiB) and a file descriptor.
	// Idle kept-alive ones are closed first to make room, so the cap
	// turns away only a client holding that many busy at once.
	defaultMaxConnections = 1024
	minMaxConnections     = 16 // room for peers' forwards, health checks and a few clients
	maxMaxConnections     = 1_000_000
	// minWriteTimeout leaves room for the longest answer a node waits for:
	// a forwarded write may take the leader's 10 s commit timeout and a hop.
	minWriteTimeout = 15 * time.Second
)

// checkLimits applies the defaults of the limits and checks what is set.
func (p *parser) checkLimits(cfg *FileConfig) {
	l := cfg
	if !p.set("max_services") {
		l.MaxServices = defaultMaxServices
	} else if n := l.MaxServices; n < 0 || n > maxMaxServices {
		p.addf(p.line("max_services"), "max_services", "must be 0 (no limit) to %d, got %d", maxMaxServices, n)
	} else if n > 0 && n < len(cfg.Services) {
		p.addf(p.line("max_services"), "max_services",
			"%d is less than the %d services the file defines", n, len(cfg.Services))
	}
	if !p.set("auto_register") {
		l.AutoRegister = true
	}
	p.duration(&l.ReadHeaderTimeout, defaultReadHeaderTimeout, minHTTPTimeout, maxHTTPTimeout, "http_read_header_timeout")
	p.duration(&l.ReadTimeout, defaultReadTimeout, minHTTPTimeout, maxHTTPTimeout, "http_read_timeout")
	p.duration(&l.WriteTimeout, defaultWriteTimeout, minWriteTimeout, maxHTTPTimeout, "http_write_timeout")
	p.duration(&l.IdleTimeout, defaultIdleTimeout, minHTTPTimeout, maxHTTPTimeout, "http_idle_timeout")
	if !p.set("max_connections") {
		l.MaxConnections = defaultMaxConnections
	} else if err := checkMaxConnections(l.MaxConnections); err != nil {
		p.addf(p.line("max_connections"), "max_connections", "%v", err)
	}
}

// checkMaxConnections checks max_connections, from the file, a flag or the
// environment.
func checkMaxConnections(n int) error {
	if n != 0 && (n < minMaxConnections || n > maxMaxConnections) {
		return fmt.Errorf("must be 0 (no limit) or %d to %d, got %d", minMaxConnections, maxMaxConnections, n)
	}
	return nil
}
