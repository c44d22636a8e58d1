package httpapi

import (
	"crypto/tls"
	"errors"
	"net"
	"net/http"
	"sync"
	"time"
)

// ConnLimiter caps the connections a node's HTTP server holds open. Each
// costs a goroutine, buffers and a file descriptor, and an idle kept-alive
// one is held for http_idle_timeout: without a cap, a client opening
// thousands of them holds a node's memory and files. At the cap, the
// connection idle longest is closed to make room (a kept-alive client
// reconnects for its next request); when none is idle, the new connection
// is closed unanswered.
type ConnLimiter struct {
	max     int
	mu      sync.Mutex
	open    int
	idle    map[*limitedConn]time.Time // since when, for those idle now
	refused uint64
}

// NewConnLimiter returns a limiter of max connections; max <= 0 is no cap.
func NewConnLimiter(max int) *ConnLimiter {
	return &ConnLimiter{max: max, idle: map[*limitedConn]time.Time{}}
}

// Listener wraps ln, the raw TCP listener (under any TLS), with the cap.
func (l *ConnLimiter) Listener(ln net.Listener) net.Listener {
	if l.max <= 0 {
		return ln
	}
	return &limitedListener{Listener: ln, l: l}
}

// ConnState is the hook for http.Server.ConnState: it tells the limiter
// which connections are idle.
func (l *ConnLimiter) ConnState(c net.Conn, state http.ConnState) {
	if tc, ok := c.(*tls.Conn); ok {
		c = tc.NetConn()
	}
	lc, ok := c.(*limitedConn)
	if !ok {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if state == http.StateIdle && !lc.closed {
		l.idle[lc] = time.Now()
	} else {
		delete(l.idle, lc)
	}
}

// Refused is how many connections were closed unanswered at the cap.
func (l *ConnLimiter) Refused() uint64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.refused
}

// admit counts a new connection in, closing the connection idle longest
// when at the cap; it reports false when none could be closed.
func (l *ConnLimiter) admit() bool {
	l.mu.Lock()
	if l.open < l.max {
		l.open++
		l.mu.Unlock()
		return true
	}
	var oldest *limitedConn
	for c, since := range l.idle {
		if oldest == nil || since.Before(l.idle[oldest]) {
			oldest = c
		}
	}
	if oldest == nil {
		l.refused++
		l.mu.Unlock()
		return false
	}
	// The evicted connection's slot passes to the new one.
	delete(l.idle, oldest)
	oldest.closed = true
	l.mu.Unlock()
	_ = oldest.Conn.Close()
	return true
}

type limitedListener struct {
	net.Listener
	l *ConnLimiter
}

func (ln *limitedListener) Accept() (net.Conn, error) {
	for {
		c, err := ln.Listener.Accept()
		if err != nil {
			return nil, err
		}
		if ln.l.admit() {
			return &limitedConn{Conn: c, l: ln.l}, nil
		}
		_ = c.Close()
	}
}

// limitedConn gives its slot back when it closes, once, unless eviction
// already passed it on.
type limitedConn struct {
	net.Conn
	l      *ConnLimiter
	closed bool // guarded by l.mu
}

func (c *limitedConn) Close() error {
	c.l.mu.Lock()
	if !c.closed {
		c.closed = true
		c.l.open--
	}
	delete(c.l.idle, c)
	c.l.mu.Unlock()
	err := c.Conn.Close()
	if errors.Is(err, net.ErrClosed) {
		return nil // evicted: already closed underneath
	}
	return err
}
