package httpapi

import (
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"
)

// streamWriteTimeout bounds each write to an event stream, so a client that
// stopped reading cannot hold its goroutine forever. It also lifts any
// server-wide WriteTimeout, which would otherwise cut every stream short.
const streamWriteTimeout = 10 * time.Second

// streamEvent is one message of GET /v1/stream: everything the dashboard
// shows. Services are as GET /v1/services lists them. Now is this node's
// clock, so a page can count ages without trusting the browser's clock.
type streamEvent struct {
	Now      time.Time       `json:"now"`
	Cluster  json.RawMessage `json:"cluster"`
	Services json.RawMessage `json:"services"`
}

// streamState is what one stream remembers of what it sent.
type streamState struct {
	applied  uint64 // the applied index services was built at
	services []byte // services as JSON, nil until built
	sent     [sha256.Size]byte
}

// handleStream serves server-sent events: a snapshot on connect, then a new
// one whenever the services or the cluster view changed. The state has no
// change feed, so the stream polls it; a poll that finds the applied index
// unchanged does not even rebuild the services. A comment line now and then
// keeps proxies from closing a quiet stream.
func (d *dashboard) handleStream(w http.ResponseWriter, r *http.Request) {
	// net/http notices a client gone only once its body has been read to
	// the end: a stream that ignored a body would hold its slot after the
	// client left, until a write failed.
	if r.ContentLength != 0 {
		writeError(w, http.StatusRequestEntityTooLarge, "GET /v1/stream takes no body")
		return
	}
	release, refusal := d.takeStream(r)
	if refusal != "" {
		w.Header().Set("Retry-After", "5")
		writeError(w, http.StatusServiceUnavailable, refusal)
		return
	}
	defer release()
	closing := d.shutdownOf(r)
	rc := http.NewResponseController(w)
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	// Asks nginx and the like not to buffer the stream.
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)

	var st streamState
	// retry: how long a browser waits before reconnecting after a drop.
	if d.send(w, rc, []byte("retry: 2000\n\n")) != nil || d.push(w, rc, &st) != nil {
		return
	}
	poll := time.NewTicker(d.pollEvery)
	defer poll.Stop()
	keepAlive := time.NewTicker(d.keepAliveEvery)
	defer keepAlive.Stop()
	for {
		var err error
		select {
		case <-r.Context().Done():
			return
		case <-closing:
			return
		case <-poll.C:
			err = d.push(w, rc, &st)
		case <-keepAlive.C:
			err = d.send(w, rc, []byte(": keep-alive\n\n"))
		}
		if err != nil {
			return
		}
	}
}

// takeStream takes one of the node's stream slots and one of the client
// address's, or says why not.
func (d *dashboard) takeStream(r *http.Request) (release func(), refusal string) {
	client, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		client = r.RemoteAddr
	}
	d.mu.Lock()
	if d.perClient[client] >= maxStreamsPerClient {
		d.mu.Unlock()
		return nil, fmt.Sprintf("too many event streams open from %s (at most %d per client address)", client, maxStreamsPerClient)
	}
	d.perClient[client]++
	d.mu.Unlock()
	leave := func() {
		d.mu.Lock()
		if d.perClient[client]--; d.perClient[client] == 0 {
			delete(d.perClient, client)
		}
		d.mu.Unlock()
	}
	select {
	case d.streams <- struct{}{}:
		return func() { <-d.streams; leave() }, ""
	default:
		leave()
		return nil, "too many event streams open on this node"
	}
}

// push sends the state if it differs from what was sent last.
func (d *dashboard) push(w http.ResponseWriter, rc *http.ResponseController, st *streamState) error {
	// The index is read before the services, so services are never older
	// than the index they are filed under: at worst a poll rebuilds them
	// once more than needed.
	rs, indexed := d.node.(raftStats)
	var applied uint64
	if indexed {
		applied = rs.AppliedIndex()
	}
	if !indexed || st.services == nil || applied != st.applied {
		svcs := d.state.Services()
		views := make([]serviceView, 0, len(svcs))
		for _, svc := range svcs {
			views = append(views, viewOf(svc, false))
		}
		b, err := json.Marshal(views)
		if err != nil {
			return err
		}
		st.applied, st.services = applied, b
	}
	cl, err := json.Marshal(d.clusterView())
	if err != nil {
		return err
	}
	h := sha256.New()
	h.Write(cl)
	h.Write(st.services)
	var sum [sha256.Size]byte
	h.Sum(sum[:0])
	if sum == st.sent {
		return nil
	}
	ev, err := json.Marshal(streamEvent{Now: time.Now().UTC(), Cluster: cl, Services: st.services})
	if err != nil {
		return err
	}
	// JSON from Marshal has no newline, so it fits on one data: line.
	if err := d.send(w, rc, fmt.Appendf(nil, "data: %s\n\n", ev)); err != nil {
		return err
	}
	st.sent = sum
	return nil
}

func (d *dashboard) send(w http.ResponseWriter, rc *http.ResponseController, msg []byte) error {
	if err := rc.SetWriteDeadline(time.Now().Add(streamWriteTimeout)); err != nil && !errors.Is(err, http.ErrNotSupported) {
		return err
	}
	if _, err := w.Write(msg); err != nil {
		return err
	}
	return rc.Flush()
}

// shutdownOf returns a channel closed when the http.Server serving r shuts
// down. http.Server.Shutdown waits for connections to go idle and a stream
// never does; without this, stopping a node would hang for as long as a
// dashboard is open on it. Each server is registered once; a request not
// served by an http.Server gets a channel that never closes.
func (d *dashboard) shutdownOf(r *http.Request) <-chan struct{} {
	srv, ok := r.Context().Value(http.ServerContextKey).(*http.Server)
	if !ok {
		return nil
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	ch, ok := d.closing[srv]
	if !ok {
		ch = make(chan struct{})
		d.closing[srv] = ch
		srv.RegisterOnShutdown(func() { close(ch) })
	}
	return ch
}
