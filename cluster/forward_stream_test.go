package cluster

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"github.com/watchdog-ha/watchdog/fsm"
)

// streamHold is a leader's streamedHook that holds each batch holding an
// id it was told to hold until that id is let go, and notes every batch.
type streamHold struct {
	mu      sync.Mutex
	batches []string                 // as the leader got them, ids joined by '\n'
	held    map[string]chan struct{} // by id: closed when let go
}

func newStreamHold(ids ...string) *streamHold {
	h := &streamHold{held: make(map[string]chan struct{})}
	for _, id := range ids {
		h.held[id] = make(chan struct{})
	}
	return h
}

// install makes h the hook of the node whose internal handler is next,
// before the node serves anything (a wrap of startPeerNode).
func (h *streamHold) install(next http.Handler) http.Handler {
	next.(*internalHandler).n.streamedHook = h.hook
	return next
}

func (h *streamHold) hook(ids []string) {
	h.mu.Lock()
	h.batches = append(h.batches, strings.Join(ids, "\n"))
	var wait []chan struct{}
	for _, id := range ids {
		if c, ok := h.held[id]; ok {
			wait = append(wait, c)
		}
	}
	h.mu.Unlock()
	for _, c := range wait {
		<-c
	}
}

// got reports whether the leader got a batch holding id.
func (h *streamHold) got(id string) func() bool {
	return func() bool {
		h.mu.Lock()
		defer h.mu.Unlock()
		return slices.ContainsFunc(h.batches, func(b string) bool { return slices.Contains(strings.Split(b, "\n"), id) })
	}
}

func (h *streamHold) seen() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.Clone(h.batches)
}

func (h *streamHold) letGo(id string) { close(h.held[id]) }

// letGoAll lets every batch still held go (at the test's end).
func (h *streamHold) letGoAll() {
	h.mu.Lock()
	defer h.mu.Unlock()
	for id, c := range h.held {
		select {
		case <-c:
		default:
			close(c)
		}
		delete(h.held, id)
	}
}

// notDone fails the test if a request already has its answer.
func notDone(t *testing.T, what string, c chan error) {
	t.Helper()
	select {
	case err := <-c:
		t.Fatalf("%s answered (%v) while its batch is held at the leader", what, err)
	default:
	}
}

// On the stream, several batches are on their way at once, and each gets
// its own answer as soon as the leader has one: a batch the leader holds
// does not hold the answers of the batches sent after it, nor do they get
// its answer. A refused id fails only the requests that carried it, not
// the rest of its batch.
func TestStreamedBatchesInFlightEachGetTheirOwnAnswer(t *testing.T) {
	hold := newStreamHold("slow-1", "slow-2")
	t.Cleanup(hold.letGoAll)
	leaderCfg := func(c *Config) {
		c.RefuseUnknown = true
		c.Configured = []string{"known-1", "known-2", "known-3", "slow-1", "slow-2"}
		c.BatchWindow = 0
	}
	followerCfg := func(c *Config) { c.BatchWindow, c.ForwardInflight = 0, 2 }
	leader, follower := leaderAndFollower(t, leaderCfg, followerCfg, hold.install)
	fwd := follower.forwards
	first := submitAsync(fwd, "slow-1")
	waitUntil(t, 10*time.Second, "the first batch at the leader", hold.got("slow-1"))
	// The second batch is answered while the first is held.
	if err := <-submitAsync(fwd, "stranger-1"); !errors.Is(err, fsm.ErrUnknownService) {
		t.Fatalf("stranger-1: %v, want its refusal", err)
	}
	notDone(t, "slow-1", first)
	// Both workers busy: a batch forms behind them, with a refused id
	// among good ones, and goes once slow-2's is answered.
	blocker := submitAsync(fwd, "slow-2")
	waitUntil(t, 10*time.Second, "the batch of slow-2 at the leader", hold.got("slow-2"))
	third := []chan error{submitAsync(fwd, "known-2"), submitAsync(fwd, "stranger-2"), submitAsync(fwd, "known-3")}
	hold.letGo("slow-2")
	if err := <-blocker; err != nil {
		t.Fatalf("slow-2: %v", err)
	}
	for i, want := range []error{nil, fsm.ErrUnknownService, nil} {
		err := <-third[i]
		if (want == nil) != (err == nil) || (want != nil && !errors.Is(err, want)) {
			t.Fatalf("third batch, request %d: %v, want %v", i, err, want)
		}
	}
	if batches := hold.seen(); !slices.Contains(batches, "known-2\nstranger-2\nknown-3") {
		t.Fatalf("batches at the leader %q: the third batch was not sent as one", batches)
	}
	notDone(t, "slow-1", first)
	hold.letGo("slow-1")
	if err := <-first; err != nil {
		t.Fatalf("slow-1: %v", err)
	}
	appliedNotRefused(t, leader, follower, "stranger-2", "slow-1", "known-3")
}

// When the leader changes, the batches on the stream to the old one fail
// at once with an error Heartbeat retries, even though the old leader
// never answers them; the next batch opens a stream to the new leader and
// is committed there.
func TestALeaderChangeFailsTheStreamsBatchesForARetry(t *testing.T) {
	hold := newStreamHold("stuck")
	t.Cleanup(hold.letGoAll)
	seen := &arrivals{}
	record := recordingHandler(seen)
	// A batch's own timeout, far away, cannot be what fails it.
	c := newCluster(t, 3, withConfig(func(c *Config) { c.ApplyTimeout = 2 * clusterWait }), withHandler(func(n *Node) http.Handler {
		n.streamedHook = hold.hook
		return record(n)
	}))
	leader, followers := c.Leader(), c.Followers()
	from, next := followers[0], followers[1]
	stuck := submitAsync(from.forwards, "stuck")
	waitUntil(t, clusterWait, "the batch at the leader", hold.got("stuck"))
	if err := leader.raft.LeadershipTransferToServer(raft.ServerID(next.ID()), raft.ServerAddress(next.RaftAddr())).Error(); err != nil {
		t.Fatalf("hand leadership to %s: %v", next.ID(), err)
	}
	select {
	case err := <-stuck:
		if !errors.Is(err, ErrNoLeader) || !leaderChanging(err) {
			t.Fatalf("the held batch: %v, want a leader change", err)
		}
	case <-time.After(clusterWait):
		t.Fatal("the batch held by the old leader was not failed when the leader changed")
	}
	c.waitFor(next.ID()+" to lead, as "+from.ID()+" sees it", func() bool {
		id, addr := from.Leader()
		return id == next.ID() && addr != ""
	})
	c.Beat(from, "after-change")
	lastSeen(t, next, "after-change")
	var atNext int
	for _, a := range seen.on(ForwardStreamPath) {
		if a.at == next.ID() && a.peer == from.ID() {
			atNext++
		}
	}
	if atNext == 0 {
		t.Fatalf("%s never opened a stream to the new leader %s", from.ID(), next.ID())
	}
}

// A leader that never answers a streamed batch (stuck, cut off) holds it
// no longer than a batch's timeout, as with HTTP: it fails with an error
// Heartbeat retries, the stream is dropped, and the next batch goes on a
// new one.
func TestAStuckLeaderHoldsAStreamedBatchOnlyUntilItsTimeout(t *testing.T) {
	hold := newStreamHold("stuck")
	t.Cleanup(hold.letGoAll)
	// The follower's timeout is what bounds its batches: 1.5 s.
	_, follower := leaderAndFollower(t, nil, func(c *Config) { c.ApplyTimeout = 500 * time.Millisecond }, hold.install)
	stuck := submitAsync(follower.forwards, "stuck")
	waitUntil(t, clusterWait, "the batch at the leader", hold.got("stuck"))
	select {
	case err := <-stuck:
		if !errors.Is(err, ErrNoLeader) || !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("the held batch: %v, want its timeout, to be retried", err)
		}
	case <-time.After(clusterWait):
		t.Fatal("the batch the leader never answers was not failed after its timeout")
	}
	hold.letGo("stuck")
	if err := <-submitAsync(follower.forwards, "next"); err != nil {
		t.Fatalf("the next batch: %v", err)
	}
}

// rawStream opens a stream to the leader as from would, for a test to
// write frames of its own on; it is closed after clusterWait at most, so
// that a read waiting for an answer that never comes ends.
func rawStream(t *testing.T, from, to *Node) (io.ReadWriteCloser, *bufio.Reader) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), clusterWait)
	defer cancel()
	req, err := from.newPeerRequest(ctx, http.MethodGet, from.peerURL(to.cfg.HTTPAddr, ForwardStreamPath), nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Connection", "Upgrade")
	req.Header.Set("Upgrade", ForwardStreamProtocol)
	resp, err := from.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	conn, ok := resp.Body.(io.ReadWriteCloser)
	if resp.StatusCode != http.StatusSwitchingProtocols || !ok {
		resp.Body.Close()
		t.Fatalf("handshake: %s, want 101", resp.Status)
	}
	timer := time.AfterFunc(clusterWait, func() { conn.Close() })
	t.Cleanup(func() { timer.Stop(); conn.Close() })
	return conn, bufio.NewReader(conn)
}

// The stream bounds a batch as the HTTP route bounds its body: more than
// batch_size ids is refused with a clear error, and the stream goes on; a
// frame longer than batch_size ids can take is refused before its body is
// read, and ends the stream.
func TestAnOversizeStreamedBatchIsRefused(t *testing.T) {
	c := newCluster(t, 3, withConfig(func(c *Config) { c.MaxBatch = 4 }))
	leader, follower := c.Leader(), c.Followers()[0]
	conn, br := rawStream(t, follower, leader)
	hdr := make([]byte, answerHeaderLen)
	answer := func(wantSeq uint64) (streamOutcome, string) {
		t.Helper()
		seq, o, msg, err := readAnswerFrame(br, hdr)
		if err != nil || seq != wantSeq {
			t.Fatalf("answer to batch %d: seq %d, %v", wantSeq, seq, err)
		}
		return o, string(msg)
	}
	write := func(frame []byte) {
		t.Helper()
		if _, err := conn.Write(frame); err != nil {
			t.Fatal(err)
		}
	}
	write(appendBatchFrame(nil, 1, []string{"a", "b", "c", "d", "e"}))
	if o, msg := answer(1); o != outcomeFailed || !strings.Contains(msg, "at most 4 (batch_size)") {
		t.Fatalf("5 ids where batch_size is 4: outcome %d %q, want refused", o, msg)
	}
	write(appendBatchFrame(nil, 2, []string{"a", "b"}))
	if o, msg := answer(2); o != outcomeOK {
		t.Fatalf("a good batch after a refused one: outcome %d %q", o, msg)
	}
	limit := maxForwardedBytes(4)
	huge := appendBatchFrame(nil, 3, []string{strings.Repeat("x", int(limit)+1)})
	write(huge[:batchHeaderLen]) // the length alone must do
	if o, msg := answer(3); o != outcomeFailed || !strings.Contains(msg, "larger than") {
		t.Fatalf("a frame of %d bytes: outcome %d %q, want refused", limit+1, o, msg)
	}
	if _, _, _, err := readAnswerFrame(br, hdr); !errors.Is(err, io.EOF) {
		t.Fatalf("after an oversize frame the stream goes on (%v), want it closed", err)
	}
	for _, id := range []string{"a", "e"} {
		if _, ok := leader.FSM().Service(id); ok != (id == "a") {
			t.Fatalf("%s committed: %v", id, ok)
		}
	}
}

// The stream's handshake is an internal request like the others: unsigned
// or under a forged signature it is a 401, and it reaches nothing; signed,
// it must ask for this protocol, in this version.
func TestTheStreamHandshakeAdmitsOnlyTheClustersNodes(t *testing.T) {
	c := newCluster(t, 3)
	leader, follower := c.Leader(), c.Followers()[0]
	signed := func(n *Node) string {
		req, _ := http.NewRequest(http.MethodGet, "http://x/", nil)
		n.AuthorizePeer(req)
		return req.Header.Get(PeerAuthHeader)
	}
	_, sig, _ := strings.Cut(signed(follower), " ")
	for _, tc := range []struct {
		name, auth, upgrade string
		want                int
	}{
		{"unsigned", "", ForwardStreamProtocol, http.StatusUnauthorized},
		{"forged", follower.ID() + " " + strings.Repeat("ab", len(sig)/2), ForwardStreamProtocol, http.StatusUnauthorized},
		{"another node's signature", c.Followers()[1].ID() + " " + sig, ForwardStreamProtocol, http.StatusUnauthorized},
		{"signed, no upgrade", signed(follower), "", http.StatusUpgradeRequired},
		{"signed, another version", signed(follower), "watchdog-forward/2", http.StatusUpgradeRequired},
	} {
		headers := map[string]string{}
		if tc.auth != "" {
			headers[PeerAuthHeader] = tc.auth
		}
		if tc.upgrade != "" {
			headers["Connection"], headers["Upgrade"] = "Upgrade", tc.upgrade
		}
		if got, body := requestTo(t, leader, http.MethodGet, ForwardStreamPath, headers); got != tc.want {
			t.Errorf("%s: %d %s, want %d", tc.name, got, body, tc.want)
		}
	}
}
