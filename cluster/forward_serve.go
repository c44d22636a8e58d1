package cluster

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"
)

// The leader's end of a follower's forward stream (forward_frame.go): the
// handshake is an internal request like the others, signed by the follower
// and carrying the ping token; once it is admitted the connection is taken
// from net/http and carries frames both ways. Each batch is answered on its
// own, as soon as its commit is done: a few workers per stream (the
// leader's ForwardInflight) commit the batches, and one writer sends the
// answers, in as few writes as they come.

// streamWriteTimeout bounds a write of answers: a follower that stops
// reading (frozen) loses its stream rather than holding its workers.
const streamWriteTimeout = 10 * time.Second

// forwardStream answers a follower's handshake and serves its stream.
func (h *internalHandler) forwardStream(w http.ResponseWriter, r *http.Request, peer string) {
	if !h.auth.Heartbeats(w, r) {
		return
	}
	if !headerHas(r.Header, "Connection", "upgrade") || !strings.EqualFold(r.Header.Get("Upgrade"), ForwardStreamProtocol) {
		w.Header().Set("Connection", "Upgrade")
		w.Header().Set("Upgrade", ForwardStreamProtocol)
		writePeerError(w, http.StatusUpgradeRequired, "this route takes only an upgrade to "+ForwardStreamProtocol)
		return
	}
	if !h.n.IsLeader() {
		writePeerError(w, http.StatusServiceUnavailable, ErrNotLeader.Error())
		return
	}
	conn, brw, err := http.NewResponseController(w).Hijack()
	if err != nil {
		writePeerError(w, http.StatusInternalServerError, "cannot take the connection over: "+err.Error())
		return
	}
	// The HTTP server's deadlines were the handshake's: the stream has its
	// own (streamWriteTimeout), and waits for batches as long as it lives.
	_ = conn.SetDeadline(time.Time{})
	if !h.n.served.add(conn) {
		_ = conn.Close() // the node is closing
		return
	}
	defer h.n.served.remove(conn)
	_, _ = brw.WriteString("HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: " + ForwardStreamProtocol + "\r\n\r\n")
	if err := brw.Flush(); err != nil {
		return
	}
	h.n.log.Debug("forward stream opened", "peer", peer)
	err = h.n.serveStream(conn, brw.Reader)
	h.n.log.Debug("forward stream closed", "peer", peer, "err", err)
}

// headerHas reports whether the comma-separated header name holds token.
func headerHas(h http.Header, name, token string) bool {
	for _, v := range h.Values(name) {
		for part := range strings.SplitSeq(v, ",") {
			if strings.EqualFold(strings.TrimSpace(part), token) {
				return true
			}
		}
	}
	return false
}

// streamBatch is a batch read from a stream, and later its answer.
type streamBatch struct {
	seq     uint64
	body    []byte
	outcome streamOutcome
	msg     []byte
}

// serveStream reads the batches of a stream until it ends, and returns
// once every batch read has been answered (or the connection broke).
func (n *Node) serveStream(conn net.Conn, br *bufio.Reader) error {
	work := make(chan *streamBatch)
	answers := make(chan *streamBatch, n.cfg.ForwardInflight+1)
	var workers sync.WaitGroup
	for range n.cfg.ForwardInflight {
		workers.Go(func() {
			for b := range work {
				n.commitStreamed(b)
				answers <- b
			}
		})
	}
	written := make(chan struct{})
	go func() {
		defer close(written)
		writeAnswers(conn, answers)
	}()
	err := n.readBatches(br, work, answers)
	close(work)
	workers.Wait()
	close(answers)
	<-written
	return err
}

// readBatches hands each batch read to the workers. A frame over the
// bounds of a forwarded batch is answered, then ends the stream: its body
// cannot be skipped.
func (n *Node) readBatches(br *bufio.Reader, work chan<- *streamBatch, answers chan<- *streamBatch) error {
	limit := maxForwardedBytes(n.cfg.MaxBatch)
	hdr := make([]byte, batchHeaderLen)
	for {
		seq, body, err := readBatchFrame(br, hdr, limit)
		if errors.Is(err, errFrameTooLarge) {
			msg := fmt.Sprintf("batch larger than %d bytes (batch_size %d ids): %v", limit, n.cfg.MaxBatch, err)
			answers <- &streamBatch{seq: seq, outcome: outcomeFailed, msg: []byte(msg)}
			return err
		}
		if err != nil {
			return err
		}
		work <- &streamBatch{seq: seq, body: body}
	}
}

// commitStreamed commits a batch here, as the HTTP forward route does, and
// notes its answer in it.
func (n *Node) commitStreamed(b *streamBatch) {
	ids, err := parseForwardBody(b.body, n.cfg.MaxBatch)
	b.body = nil
	if err != nil {
		b.outcome, b.msg = outcomeFailed, []byte(err.Error())
		return
	}
	if n.streamedHook != nil {
		n.streamedHook(ids)
	}
	ctx, cancel := context.WithTimeout(context.Background(), n.cfg.ApplyTimeout)
	defer cancel()
	b.outcome, b.msg = answerOf(n.CommitHeartbeats(ctx, ids))
}

// writeAnswers writes the answers as they come, flushing when none waits.
// After a failed write it only drains them, so that no worker blocks.
func writeAnswers(conn net.Conn, answers <-chan *streamBatch) {
	bw := bufio.NewWriter(conn)
	var buf []byte
	broken := false
	for b := range answers {
		if broken {
			continue
		}
		buf = appendAnswerFrame(buf[:0], b.seq, b.outcome, b.msg)
		_, err := bw.Write(buf)
		if err == nil && len(answers) == 0 {
			_ = conn.SetWriteDeadline(time.Now().Add(streamWriteTimeout))
			err = bw.Flush()
		}
		if err != nil {
			broken = true
			_ = conn.Close() // the reader sees it and ends the stream
		}
	}
	if !broken {
		_ = conn.SetWriteDeadline(time.Now().Add(streamWriteTimeout))
		_ = bw.Flush()
	}
}

// servedStreams are the streams this node serves, which net/http no longer
// tracks: closed with the node.
type servedStreams struct {
	mu     sync.Mutex
	conns  map[net.Conn]struct{}
	closed bool
}

func (s *servedStreams) add(c net.Conn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false
	}
	if s.conns == nil {
		s.conns = make(map[net.Conn]struct{})
	}
	s.conns[c] = struct{}{}
	return true
}

func (s *servedStreams) remove(c net.Conn) {
	s.mu.Lock()
	delete(s.conns, c)
	s.mu.Unlock()
	_ = c.Close()
}

// drop closes the streams served now; new ones may open.
func (s *servedStreams) drop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for c := range s.conns {
		_ = c.Close()
	}
}

// closeAll closes them and refuses new ones: the node is closing.
func (s *servedStreams) closeAll() {
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
	s.drop()
}
