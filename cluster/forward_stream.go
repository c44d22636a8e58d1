package cluster

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"
)

// A follower's forwarded heartbeats travel on one long-lived connection to
// the leader, a stream of framed batches (forward_frame.go): a batch costs
// a write and a read, where an HTTP request cost a request and a response
// to write and parse at each end and two goroutines' wake-ups. The forward
// workers (Config.ForwardInflight) share it; one reader goroutine per
// stream hands each answer to its batch by seq; no goroutine or timer is
// made per batch. The stream ends when the leader changes (the n.leaders
// context it was opened under) or the connection breaks: every batch on
// it then fails with ErrNoLeader, which Heartbeat retries (heartbeats are
// idempotent), and the next batch opens a new stream.

// forwardStreams is a follower's stream to the leader, if one is open, and
// what it knows of a leader that has none.
type forwardStreams struct {
	opening chan struct{} // a token: one handshake at a time
	mu      sync.Mutex
	cur     *forwardStream
	// A leader on an older build answers the handshake with no 101: the
	// batches go to it over HTTP until the leader changes.
	httpLeader string
	httpUntil  context.Context // the leaders context it was seen under
	closed     bool
}

func newForwardStreams() *forwardStreams {
	s := &forwardStreams{opening: make(chan struct{}, 1)}
	s.opening <- struct{}{}
	return s
}

// usable is the open stream to leaderID under changed; ok is false when
// none is known yet; (nil, true) means the leader takes HTTP only. The
// caller holds s.mu.
func (s *forwardStreams) usable(changed context.Context, leaderID string) (fs *forwardStream, ok bool) {
	if c := s.cur; c != nil && c.leaderID == leaderID && c.changed == changed && !c.broken() {
		return c, true
	}
	if s.httpLeader == leaderID && s.httpUntil == changed {
		return nil, true
	}
	return nil, false
}

// streamTo is this node's stream to the leader, leaderID at addr, opened
// if need be; nil (and no error) when that leader takes only HTTP.
func (n *Node) streamTo(ctx, changed context.Context, leaderID, addr string) (*forwardStream, error) {
	s := n.streams
	s.mu.Lock()
	fs, ok := s.usable(changed, leaderID)
	s.mu.Unlock()
	if ok {
		return fs, nil
	}
	select {
	case <-s.opening:
		defer func() { s.opening <- struct{}{} }()
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	s.mu.Lock()
	fs, ok = s.usable(changed, leaderID) // another worker's handshake
	s.mu.Unlock()
	if ok {
		return fs, nil
	}
	fs, err := n.openStream(ctx, changed, leaderID, addr)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		if fs != nil {
			fs.fail(errNodeClosing)
		}
		return nil, errNodeClosing
	}
	if fs == nil {
		s.httpLeader, s.httpUntil = leaderID, changed
		return nil, nil
	}
	if old := s.cur; old != nil {
		old.fail(fmt.Errorf("%w: forward to leader %s: stream replaced", ErrNoLeader, old.leaderID))
	}
	s.cur = fs
	n.spawn(fs.readAnswers)
	return fs, nil
}

// errNodeClosing fails the batches of a stream this node closes as it stops.
var errNodeClosing = fmt.Errorf("%w: node closing", ErrNoLeader)

// closeStreams ends this node's stream to the leader, and keeps new ones
// from opening: the node is closing.
func (n *Node) closeStreams() {
	s := n.streams
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	if s.cur != nil {
		s.cur.fail(errNodeClosing)
	}
}

// openStream does the handshake with the leader: a signed internal request
// asking to upgrade to ForwardStreamProtocol. Any answer but 101 from a
// leader that is still one means a build without the stream route: (nil,
// nil), and the batches go over HTTP.
func (n *Node) openStream(ctx, changed context.Context, leaderID, addr string) (*forwardStream, error) {
	ctx, cancel := context.WithTimeout(ctx, n.forwardTimeout())
	defer cancel() // after a 101 the connection is ours: cancelling leaves it open
	stop := context.AfterFunc(changed, cancel)
	defer stop()
	req, err := n.newPeerRequest(ctx, http.MethodGet, n.peerURL(addr, ForwardStreamPath), nil)
	if err != nil {
		return nil, fmt.Errorf("cluster: forward: %w", err)
	}
	req.Header.Set("Connection", "Upgrade")
	req.Header.Set("Upgrade", ForwardStreamProtocol)
	n.forwardHeaders(req)
	resp, err := n.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("%w: forward to leader %s: open stream: %w", ErrNoLeader, leaderID, err)
	}
	conn, ok := resp.Body.(io.ReadWriteCloser)
	switch {
	case resp.StatusCode == http.StatusServiceUnavailable:
		msg := readAnswer(resp, 4096)
		resp.Body.Close()
		return nil, fmt.Errorf("%w: leader %s: %s", ErrNoLeader, leaderID, clip(msg))
	case resp.StatusCode != http.StatusSwitchingProtocols || !ok ||
		!strings.EqualFold(resp.Header.Get("Upgrade"), ForwardStreamProtocol):
		msg := readAnswer(resp, 4096)
		resp.Body.Close()
		n.log.Info("leader has no forward stream: forwarding over HTTP", "leader", leaderID,
			"status", resp.Status, "answer", string(clip(msg)))
		return nil, nil
	}
	fs := &forwardStream{leaderID: leaderID, changed: changed, timeout: n.forwardTimeout(),
		conn: conn, br: bufio.NewReader(conn), pending: make(map[uint64]*streamWait)}
	fs.watch = time.AfterFunc(time.Hour, fs.checkDeadlines)
	fs.watch.Stop()
	fs.unwatch = context.AfterFunc(changed, func() {
		fs.fail(fmt.Errorf("%w: forward to leader %s: the leader changed", ErrNoLeader, leaderID))
	})
	return fs, nil
}

// forwardStream is one open stream to the leader.
type forwardStream struct {
	leaderID string
	changed  context.Context // the leadership it was opened under
	timeout  time.Duration   // a batch's, for its answer
	conn     io.ReadWriteCloser
	br       *bufio.Reader // the reader goroutine's
	wmu      sync.Mutex    // one frame at a time on the wire

	mu      sync.Mutex
	seq     uint64
	pending map[uint64]*streamWait // the batches waiting, by seq
	err     error                  // why it ended; nil while open
	// watch fires at the oldest pending batch's deadline: one timer for
	// the stream, armed while batches wait.
	watch   *time.Timer
	unwatch func() bool // stops the watch on the leader
}

// streamWait is a batch waiting for its answer.
type streamWait struct {
	answer   chan error // buffered: whoever answers never waits
	deadline time.Time
}

func (fs *forwardStream) broken() bool {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	return fs.err != nil
}

// send sends a batch and waits for its answer, the stream's end, or ctx.
func (fs *forwardStream) send(ctx context.Context, ids []string) error {
	w := &streamWait{answer: make(chan error, 1), deadline: time.Now().Add(fs.timeout)}
	fs.mu.Lock()
	if fs.err != nil {
		fs.mu.Unlock()
		return fs.err
	}
	fs.seq++
	seq := fs.seq
	if len(fs.pending) == 0 {
		fs.watch.Reset(fs.timeout)
	}
	fs.pending[seq] = w
	fs.mu.Unlock()

	size := batchHeaderLen
	for _, id := range ids {
		size += len(id) + 1
	}
	frame := appendBatchFrame(make([]byte, 0, size), seq, ids)
	fs.wmu.Lock()
	_, err := fs.conn.Write(frame)
	fs.wmu.Unlock()
	if err != nil {
		fs.fail(fmt.Errorf("%w: forward to leader %s: %w", ErrNoLeader, fs.leaderID, err))
	}
	select {
	case err := <-w.answer:
		return err
	case <-ctx.Done():
		// The batch may still commit; its answer, if it comes, finds no
		// one (heartbeats are idempotent: the caller retries).
		fs.mu.Lock()
		delete(fs.pending, seq)
		fs.mu.Unlock()
		return ctx.Err()
	}
}

// readAnswers hands each answer to its batch until the stream ends.
func (fs *forwardStream) readAnswers() {
	hdr := make([]byte, answerHeaderLen)
	for {
		seq, o, msg, err := readAnswerFrame(fs.br, hdr)
		if err != nil {
			fs.fail(fmt.Errorf("%w: forward to leader %s: stream: %w", ErrNoLeader, fs.leaderID, err))
			return
		}
		err = answerError(fs.leaderID, o, msg)
		fs.mu.Lock()
		if w, ok := fs.pending[seq]; ok {
			delete(fs.pending, seq)
			w.answer <- err
		}
		fs.mu.Unlock()
	}
}

// checkDeadlines ends the stream once a batch has waited its whole
// timeout: the leader is stuck (frozen, cut off), and the stream with it.
func (fs *forwardStream) checkDeadlines() {
	fs.mu.Lock()
	var oldest time.Time
	for _, w := range fs.pending {
		if oldest.IsZero() || w.deadline.Before(oldest) {
			oldest = w.deadline
		}
	}
	wait := time.Until(oldest)
	if oldest.IsZero() || wait > 0 {
		if !oldest.IsZero() {
			fs.watch.Reset(wait)
		}
		fs.mu.Unlock()
		return
	}
	fs.mu.Unlock()
	fs.fail(fmt.Errorf("%w: forward to leader %s: no answer in %s: %w", ErrNoLeader, fs.leaderID, fs.timeout, context.DeadlineExceeded))
}

// fail ends the stream, failing every batch on it with err, once.
func (fs *forwardStream) fail(err error) {
	fs.mu.Lock()
	if fs.err != nil {
		fs.mu.Unlock()
		return
	}
	fs.err = err
	for seq, w := range fs.pending {
		delete(fs.pending, seq)
		w.answer <- err
	}
	fs.watch.Stop()
	fs.mu.Unlock()
	fs.unwatch()
	_ = fs.conn.Close()
}
