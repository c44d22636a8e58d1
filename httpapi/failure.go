package httpapi

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"

	"github.com/watchdog-ha/watchdog/cluster"
	"github.com/watchdog-ha/watchdog/fsm"
)

// The API's one mapping of errors to answers. failureOf maps what a route's
// work on the cluster returned (a commit, a write, a membership change, a
// restore), readFailure what reading a request's body returned; each is the
// only place its errors get a status. How a failure is written is a
// presentation on top: JSON {"error": ...} (writeFailure), or plain text in
// healthchecks' words under /ping (ping.go).

// failure is how an error is answered: its status and the message the
// client reads.
type failure struct {
	status int
	msg    string
}

// badRequest is a write refused because of the request itself (400).
type badRequest struct{ msg string }

func (e *badRequest) Error() string { return e.msg }

// conflict is a write refused because of the state it would change: the
// config file owns the service, or someone else changed it first (409).
type conflict struct{ msg string }

func (e *conflict) Error() string { return e.msg }

// failureOf maps a failed change to its answer. Refusals are final: asking
// again, here or elsewhere, gets the same answer. Anything else failed to
// commit (the leader lost its quorum or stepped down, the store failed) and
// is 503, worth a retry. late is what to say instead of the context's error
// when the wait for the commit ran out; "" keeps the error's own words.
func failureOf(err error, late string) failure {
	var bad *badRequest
	var clash *conflict
	switch {
	case errors.As(err, &bad), errors.Is(err, cluster.ErrBadBackup):
		return failure{http.StatusBadRequest, err.Error()}
	case errors.As(err, &clash), errors.Is(err, cluster.ErrRefused):
		return failure{http.StatusConflict, err.Error()}
	case errors.Is(err, cluster.ErrProtocolNotAgreed):
		// 409, not 503: the cluster's state (a server on an older build)
		// refuses it, and retrying will not help until an operator
		// finishes the upgrade; a 503 would have clients retry in a loop.
		return failure{http.StatusConflict, err.Error()}
	case errors.Is(err, cluster.ErrTooManyServices):
		// max_services: the leader's answer, which every node would give.
		return failure{http.StatusTooManyRequests, err.Error()}
	case errors.Is(err, fsm.ErrUnknownService), errors.Is(err, cluster.ErrUnknownMember):
		// An unknown service includes a new id refused while
		// auto_register is off.
		return failure{http.StatusNotFound, err.Error()}
	case late != "" && (errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled)):
		return failure{http.StatusServiceUnavailable, late}
	}
	return failure{http.StatusServiceUnavailable, err.Error()}
}

// readFailure maps a failure to read a request's body to its answer.
func readFailure(err error) failure {
	var tooBig *http.MaxBytesError
	switch {
	case errors.As(err, &tooBig):
		return failure{http.StatusRequestEntityTooLarge, fmt.Sprintf("body larger than %d bytes", tooBig.Limit)}
	case errors.Is(err, os.ErrDeadlineExceeded):
		return failure{http.StatusRequestTimeout, bodyTimeoutMessage}
	}
	return failure{http.StatusBadRequest, "read body: " + err.Error()}
}

// setHeaders adds what goes with f's status, whatever the body's format. A
// 503 tells the client (or its load balancer) to try again, here or on
// another node: nothing was lost, the request was not taken. A 408 closes
// the connection (the rest of the body would only trickle in), and gets
// its own time to be written.
func (f failure) setHeaders(w http.ResponseWriter) {
	switch f.status {
	case http.StatusServiceUnavailable:
		w.Header().Set("Retry-After", "1")
	case http.StatusRequestTimeout:
		w.Header().Set("Connection", "close")
		allowTimeoutAnswer(w)
	}
}

// writeFailure answers f as the API does: {"error": ...}.
func writeFailure(w http.ResponseWriter, f failure) {
	f.setHeaders(w)
	writeError(w, f.status, f.msg)
}

// commitError answers a heartbeat that was not committed.
func commitError(w http.ResponseWriter, err error) {
	writeFailure(w, failureOf(err, "heartbeat not committed in time"))
}

// writeFailed answers a failed write. After a timeout its outcome is
// unknown, and the client is told so.
func writeFailed(w http.ResponseWriter, err error) {
	writeFailure(w, failureOf(err, "change not committed in time (it may still commit; retrying is safe)"))
}

// bodyError answers a request whose body could not be read.
func bodyError(w http.ResponseWriter, err error) {
	writeFailure(w, readFailure(err))
}
