package cluster

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
)

// The streamed forward's wire format (forward_stream.go, the follower's
// end; forward_serve.go, the leader's). After the handshake, a signed
// internal request that the leader answers 101 Switching Protocols, the
// connection carries frames, big-endian:
//
//	batch  (follower → leader): length uint32 | seq uint64 | ids, one per line (length bytes)
//	answer (leader → follower): length uint32 | seq uint64 | outcome byte | message (length bytes)
//
// Each batch gets one answer with its seq, in any order: the leader commits
// several batches of a stream at once. The ids are the body of the HTTP
// forward (forwardBody), read by the same parser (parseForwardBody) under
// the same bounds (batch_size ids, maxForwardedBytes).

// ForwardStreamPath is where a follower opens its stream to the leader: a
// GET asking to upgrade to ForwardStreamProtocol. A leader on a build
// without it answers 404, and the follower forwards over ForwardPath.
const ForwardStreamPath = InternalPrefix + "heartbeats/stream"

// ForwardStreamProtocol names the frames above and their version, in the
// handshake's Upgrade header: a change to them takes a new name.
const ForwardStreamProtocol = "watchdog-forward/1"

const (
	batchHeaderLen  = 12 // length, seq
	answerHeaderLen = 13 // length, seq, outcome
)

// streamOutcome is what became of a batch, in its answer.
type streamOutcome byte

const (
	outcomeOK streamOutcome = iota
	// outcomeRefused: some ids were refused, the others committed; the
	// message is a ForwardRefusedBody, as in the HTTP forward's 409.
	outcomeRefused
	// outcomeUnavailable: nothing committed, worth a retry (not the leader
	// any more, no quorum, not in time): the HTTP forward's 503.
	outcomeUnavailable
	// outcomeFailed: refused for its own shape (a bad id, too large) or
	// any other final error: the HTTP forward's other statuses.
	outcomeFailed
)

// maxAnswerMessage bounds an answer's message: a refusal of every id of
// the largest batch, as the HTTP forward's answer is bounded.
const maxAnswerMessage = maxRefusedBody

// errFrameTooLarge is a frame whose length is over the bound: the stream
// cannot skip it, so it ends there.
var errFrameTooLarge = errors.New("frame too large")

// appendBatchFrame appends the frame of batch seq to b.
func appendBatchFrame(b []byte, seq uint64, ids []string) []byte {
	start := len(b)
	b = binary.BigEndian.AppendUint32(b, 0) // the length, once known
	b = binary.BigEndian.AppendUint64(b, seq)
	b = appendForwardBody(b, ids)
	binary.BigEndian.PutUint32(b[start:], uint32(len(b)-start-batchHeaderLen))
	return b
}

// readBatchFrame reads the next batch frame from r into a new body; hdr is
// a scratch buffer of batchHeaderLen bytes. A frame of more than limit
// bytes is errFrameTooLarge, with its seq (its body is left unread).
func readBatchFrame(r *bufio.Reader, hdr []byte, limit int64) (seq uint64, body []byte, err error) {
	if _, err := io.ReadFull(r, hdr[:batchHeaderLen]); err != nil {
		return 0, nil, err
	}
	n := binary.BigEndian.Uint32(hdr)
	seq = binary.BigEndian.Uint64(hdr[4:])
	if int64(n) > limit {
		return seq, nil, fmt.Errorf("%w: batch of %d bytes, larger than %d", errFrameTooLarge, n, limit)
	}
	body = make([]byte, n)
	if _, err := io.ReadFull(r, body); err != nil {
		return seq, nil, err
	}
	return seq, body, nil
}

// appendAnswerFrame appends the answer to batch seq to b.
func appendAnswerFrame(b []byte, seq uint64, o streamOutcome, msg []byte) []byte {
	b = binary.BigEndian.AppendUint32(b, uint32(len(msg)))
	b = binary.BigEndian.AppendUint64(b, seq)
	b = append(b, byte(o))
	return append(b, msg...)
}

// readAnswerFrame reads the next answer from r; hdr is a scratch buffer of
// answerHeaderLen bytes. The message is nil when empty (an ok answer).
func readAnswerFrame(r *bufio.Reader, hdr []byte) (seq uint64, o streamOutcome, msg []byte, err error) {
	if _, err := io.ReadFull(r, hdr[:answerHeaderLen]); err != nil {
		return 0, 0, nil, err
	}
	n := binary.BigEndian.Uint32(hdr)
	seq, o = binary.BigEndian.Uint64(hdr[4:]), streamOutcome(hdr[12])
	if n > maxAnswerMessage {
		return seq, o, nil, fmt.Errorf("%w: answer of %d bytes, larger than %d", errFrameTooLarge, n, maxAnswerMessage)
	}
	if n > 0 {
		msg = make([]byte, n)
		if _, err := io.ReadFull(r, msg); err != nil {
			return seq, o, nil, err
		}
	}
	return seq, o, msg, nil
}

// answerOf is the answer to a batch whose commit returned err: the same
// decisions as the HTTP forward's statuses (peerFailure).
func answerOf(err error) (streamOutcome, []byte) {
	if err == nil {
		return outcomeOK, nil
	}
	if refused, ok := errors.AsType[*RefusedError](err); ok {
		msg, _ := json.Marshal(ForwardRefusedBody{Error: err.Error(), Refused: refused.Reasons()})
		return outcomeRefused, msg
	}
	status, msg := peerFailure(err, "heartbeats not committed in time")
	if status == http.StatusServiceUnavailable {
		return outcomeUnavailable, []byte(msg)
	}
	return outcomeFailed, []byte(msg)
}

// answerError is, on the follower, the error an answer from leaderID
// means for its batch: the same as the HTTP forward's for its status.
func answerError(leaderID string, o streamOutcome, msg []byte) error {
	switch o {
	case outcomeOK:
		return nil
	case outcomeRefused:
		return forwardRefused(leaderID, msg)
	case outcomeUnavailable:
		return fmt.Errorf("%w: leader %s: %s", ErrNoLeader, leaderID, clip(msg))
	}
	return fmt.Errorf("cluster: forward to leader %s: %s", leaderID, clip(msg))
}

// clip is the start of a message from another node, for an error.
func clip(msg []byte) []byte {
	return bytes.TrimSpace(msg[:min(len(msg), 512)])
}
