package httpapi

import (
	"encoding/json"
	"errors"
	"fmt"
	"hash/maphash"
	"net"
	"net/http"
	"time"
)

// streamWriteTimeout bounds each write to an event stream, so a client that
// stopped reading cannot hold its goroutine forever. It also lifts any
// server-wide WriteTimeout, which would otherwise cut every stream short.
const streamWriteTimeout = 10 * time.Second

// The stream of GET /v1/stream is server-sent events of two kinds:
//
//	event: snapshot   everything the dashboard shows, once, on connect
//	event: delta      what changed since the last message, and nothing else
//
// A delta carries only the services that changed (whole, as GET
// /v1/services lists them) and the ids of those removed, the nodes that
// changed and those gone, and the node's own facts (self, leader, ready,
// lag) when one of them changed. Nothing is sent while nothing changed, so
// a cluster of thousands of quiet services costs one snapshot and a
// comment line now and then. Now is this node's clock, so a page can count
// ages without trusting the browser's clock.

// streamSnapshot is the first message.
type streamSnapshot struct {
	Now      time.Time         `json:"now"`
	Cluster  streamClusterFull `json:"cluster"`
	Services []json.RawMessage `json:"services"`
}

// streamDelta is every later message; empty fields did not change.
type streamDelta struct {
	Now          time.Time         `json:"now"`
	Cluster      *streamCluster    `json:"cluster,omitempty"`
	Nodes        []streamNode      `json:"nodes,omitempty"`
	NodesRemoved []string          `json:"nodes_removed,omitempty"`
	Services     []json.RawMessage `json:"services,omitempty"`
	Removed      []string          `json:"removed,omitempty"`
}

// streamCluster is this node's own view: who it is, whom it follows,
// whether it is ready, and its apply lag.
type streamCluster struct {
	Self     string `json:"self"`
	Leader   string `json:"leader"`
	Ready    bool   `json:"ready"`
	NotReady string `json:"not_ready,omitempty"`
	Lag      uint64 `json:"lag"`
}

type streamClusterFull struct {
	streamCluster
	Nodes []streamNode `json:"nodes"`
}

// streamNode is a member as the page shows it. It leaves out what changes
// with every entry or poll (applied index, lag, last contact): the page
// does not show them, and they would make every poll a change.
type streamNode struct {
	ID        string   `json:"id"`
	HTTPAddr  string   `json:"http_addr"`
	Voter     bool     `json:"voter"`
	Suffrage  string   `json:"suffrage"`
	Alive     bool     `json:"alive"`
	Gossip    string   `json:"gossip"`
	RaftState string   `json:"raft_state,omitempty"`
	Reachable bool     `json:"reachable"`
	Protocol  int      `json:"protocol,omitempty"`
	Drift     bool     `json:"config_drift,omitempty"`
	Missing   []string `json:"missing_actions,omitempty"`
}

// streamState is what one stream remembers of what it sent: a hash of each
// service's and node's JSON, so that a change is found without keeping
// copies, and the applied index the services were last looked at.
type streamState struct {
	seed     maphash.Seed
	started  bool
	applied  uint64
	cluster  streamCluster
	services map[string]uint64
	nodes    map[string]uint64
}

// handleStream serves the server-sent events. The state has no change
// feed, so the stream polls it; a poll that finds the applied index
// unchanged does not even look at the services. A comment line now and
// then keeps proxies from closing a quiet stream.
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
	allowPeerOrigin(d.node, h, r)
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	// Asks nginx and the like not to buffer the stream.
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)

	st := streamState{seed: maphash.MakeSeed()}
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

// push sends the snapshot on the first call, and after that what changed,
// if anything did.
func (d *dashboard) push(w http.ResponseWriter, rc *http.ResponseController, st *streamState) error {
	// The index is read before the services, so services are never older
	// than the index they are filed under: at worst a poll looks at them
	// once more than needed.
	cv := d.clusterView()
	applied := cv.applied
	self := streamCluster{Self: cv.Self, Leader: cv.Leader, Ready: cv.Ready, NotReady: cv.NotReady, Lag: cv.Lag}
	nodes := streamNodes(cv)
	if !st.started {
		services, err := d.serviceJSON()
		if err != nil {
			return err
		}
		snap := streamSnapshot{Now: time.Now().UTC(), Cluster: streamClusterFull{self, nodes}}
		st.services, st.nodes = make(map[string]uint64, len(services)), make(map[string]uint64, len(nodes))
		for _, s := range services {
			st.services[s.id] = maphash.Bytes(st.seed, s.body)
			snap.Services = append(snap.Services, s.body)
		}
		st.noteNodes(nodes)
		if err := d.sendEvent(w, rc, "snapshot", snap); err != nil {
			return err
		}
		st.started, st.applied, st.cluster = true, applied, self
		return nil
	}
	delta := streamDelta{Now: time.Now().UTC()}
	if self != st.cluster {
		delta.Cluster = &self
	}
	delta.Nodes, delta.NodesRemoved = st.diffNodes(nodes)
	if applied != st.applied {
		services, err := d.serviceJSON()
		if err != nil {
			return err
		}
		delta.Services, delta.Removed = st.diffServices(services)
	}
	st.applied = applied
	if delta.Cluster == nil && len(delta.Nodes)+len(delta.NodesRemoved)+len(delta.Services)+len(delta.Removed) == 0 {
		return nil
	}
	if err := d.sendEvent(w, rc, "delta", delta); err != nil {
		return err
	}
	st.cluster = self
	return nil
}

// serviceBody is one service as the stream sends it.
type serviceBody struct {
	id   string
	body json.RawMessage
}

// serviceJSON is every service, each as its own JSON, sorted by id.
func (d *dashboard) serviceJSON() ([]serviceBody, error) {
	svcs := d.state.Services()
	out := make([]serviceBody, 0, len(svcs))
	now := d.node.Now()
	for _, svc := range svcs {
		v := viewOf(svc, false)
		withTimeline(d.state, &v, now)
		b, err := json.Marshal(v)
		if err != nil {
			return nil, err
		}
		out = append(out, serviceBody{svc.ID, b})
	}
	return out, nil
}

// diffServices returns the services whose JSON changed since the last
// message, and the ids of those gone, and remembers the new state. The
// hashes are remembered only once sent: a failed send ends the stream.
func (st *streamState) diffServices(now []serviceBody) (changed []json.RawMessage, removed []string) {
	seen := make(map[string]struct{}, len(now))
	for _, s := range now {
		seen[s.id] = struct{}{}
		sum := maphash.Bytes(st.seed, s.body)
		if old, ok := st.services[s.id]; !ok || old != sum {
			changed = append(changed, s.body)
			st.services[s.id] = sum
		}
	}
	for id := range st.services {
		if _, ok := seen[id]; !ok {
			removed = append(removed, id)
			delete(st.services, id)
		}
	}
	return changed, removed
}

func streamNodes(cv clusterView) []streamNode {
	out := make([]streamNode, 0, len(cv.Nodes))
	for _, m := range cv.Nodes {
		n := streamNode{ID: m.ID, HTTPAddr: m.HTTPAddr, Voter: m.Voter, Suffrage: m.Suffrage, Alive: m.Alive,
			Gossip: m.Gossip, RaftState: m.RaftState, Reachable: m.StatusError == "", Protocol: m.Protocol}
		if m.Config != nil {
			n.Drift, n.Missing = m.Config.Drift, m.Config.Missing
		}
		out = append(out, n)
	}
	return out
}

func (st *streamState) noteNodes(nodes []streamNode) {
	for _, n := range nodes {
		st.nodes[n.ID] = st.nodeHash(n)
	}
}

func (st *streamState) nodeHash(n streamNode) uint64 {
	b, _ := json.Marshal(n) // plain data: cannot fail
	return maphash.Bytes(st.seed, b)
}

// diffNodes is diffServices for the nodes.
func (st *streamState) diffNodes(now []streamNode) (changed []streamNode, removed []string) {
	seen := make(map[string]struct{}, len(now))
	for _, n := range now {
		seen[n.ID] = struct{}{}
		sum := st.nodeHash(n)
		if old, ok := st.nodes[n.ID]; !ok || old != sum {
			changed = append(changed, n)
			st.nodes[n.ID] = sum
		}
	}
	for id := range st.nodes {
		if _, ok := seen[id]; !ok {
			removed = append(removed, id)
			delete(st.nodes, id)
		}
	}
	return changed, removed
}

// sendEvent sends v as one event of the given type. JSON from Marshal has
// no newline, so it fits on one data: line.
func (d *dashboard) sendEvent(w http.ResponseWriter, rc *http.ResponseController, event string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return d.send(w, rc, fmt.Appendf(nil, "event: %s\ndata: %s\n\n", event, b))
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
