package httpapi

import (
	"io"
	"net/http"
	"sync/atomic"
	"time"
)

// Server-wide deadlines would cut the event stream short (a write deadline)
// or cancel every long request's context (a read deadline: net/http's
// background read of an idle connection fails when it passes). So they are
// set per request here instead: the body must arrive within the read
// timeout, after which reading stops being timed; the answer must be written
// within the write timeout, which the event stream lifts for itself, write by
// write (stream.go).

// WithTimeouts bounds how long a request's body may take to arrive (read)
// and how long its answer may take to be written (write); 0 leaves either
// unbounded. The headers are bounded by the http.Server's ReadHeaderTimeout.
func WithTimeouts(read, write time.Duration) Option {
	return func(s *Server) { s.readTimeout, s.writeTimeout = read, write }
}

// setDeadlines applies the per-request deadlines to the connection under r.
// Errors are ignored: a ResponseWriter that cannot take deadlines (a test
// recorder) simply has none.
func (s *Server) setDeadlines(w http.ResponseWriter, r *http.Request) {
	if s.readTimeout <= 0 && s.writeTimeout <= 0 {
		return
	}
	now := time.Now()
	if s.writeTimeout > 0 {
		// A controller of its own, which stays on the stack: the one below
		// escapes into the body, an allocation only a body needs.
		_ = http.NewResponseController(w).SetWriteDeadline(now.Add(s.writeTimeout))
	}
	// A request without a body has nothing left to read; a deadline would
	// only cancel its context once it passed.
	if s.readTimeout > 0 && r.Body != nil && r.Body != http.NoBody {
		rc := http.NewResponseController(w)
		_ = rc.SetReadDeadline(now.Add(s.readTimeout))
		r.Body = &timedBody{ReadCloser: r.Body, rc: rc}
	}
}

// timedBody lifts the read deadline once the body has been read to its end:
// from then on the connection is only watched for the client going away,
// which must not time out while a commit is awaited. (net/http clears it too
// when it starts that watch; this does not depend on it.) A body that failed
// keeps its deadline, so net/http's read of what is left of it after the
// handler cannot hang on a client that sends slowly.
type timedBody struct {
	io.ReadCloser
	rc   *http.ResponseController
	done bool
}

func (b *timedBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if err == io.EOF && !b.done {
		b.done = true
		_ = b.rc.SetReadDeadline(time.Time{})
	}
	return n, err
}

// extendWriteDeadline gives a route that may legitimately answer late (a
// leave waits up to leaveTimeout) at least d to write its answer in.
func (s *Server) extendWriteDeadline(w http.ResponseWriter, d time.Duration) {
	if s.writeTimeout > 0 && s.writeTimeout < d {
		_ = http.NewResponseController(w).SetWriteDeadline(time.Now().Add(d))
	}
}

// extendReadDeadline gives a route whose body may legitimately be large (a
// backup sent for restore) at least d to arrive in.
func (s *Server) extendReadDeadline(w http.ResponseWriter, d time.Duration) {
	if s.readTimeout > 0 && s.readTimeout < d {
		_ = http.NewResponseController(w).SetReadDeadline(time.Now().Add(d))
	}
}

// timeoutAnswerTime is how long a 408 may take to be written. The body's
// read deadline and the answer's write deadline are set together, so with
// equal timeouts (the defaults: 30s each) the write deadline would pass
// with the read one, and the 408 would never reach the client.
const timeoutAnswerTime = 5 * time.Second

// bodyTimeoutMessage is the error of a 408.
const bodyTimeoutMessage = "request body not received in time"

// allowTimeoutAnswer gives the answer to a body that timed out its own
// time to be written in.
func allowTimeoutAnswer(w http.ResponseWriter) {
	_ = http.NewResponseController(w).SetWriteDeadline(time.Now().Add(timeoutAnswerTime))
}

// closeUnread makes an answer sent before the request's body was read to
// its end (a refusal: 401, 413, a bad id) close the connection at once.
// Otherwise net/http reads up to 256 KiB of what is left of the body, for
// as long as the client takes to send it (up to the read timeout), before
// the answer goes out, and again before the connection closes.
func closeUnread(w http.ResponseWriter, r *http.Request) (http.ResponseWriter, *http.Request) {
	if r.Body == nil || r.Body == http.NoBody || r.ContentLength == 0 {
		return w, r
	}
	body := &eofBody{ReadCloser: r.Body}
	r.Body = body
	return &unreadCloser{ResponseWriter: w, body: body}, r
}

// eofBody records that its body was read to its end.
type eofBody struct {
	io.ReadCloser
	eof atomic.Bool
}

func (b *eofBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if err == io.EOF {
		b.eof.Store(true)
	}
	return n, err
}

// unreadCloser asks for the connection to close when the answer starts
// before its request's body was read.
type unreadCloser struct {
	http.ResponseWriter
	body    *eofBody
	started bool
}

func (u *unreadCloser) WriteHeader(code int) {
	if !u.started {
		u.started = true
		if !u.body.eof.Load() {
			// Nothing reads the body after its answer has begun: a
			// read deadline now fails net/http's own reads of it.
			u.Header().Set("Connection", "close")
			_ = http.NewResponseController(u.ResponseWriter).SetReadDeadline(time.Now())
		}
	}
	u.ResponseWriter.WriteHeader(code)
}

func (u *unreadCloser) Write(p []byte) (int, error) {
	if !u.started {
		u.WriteHeader(http.StatusOK)
	}
	return u.ResponseWriter.Write(p)
}

// Unwrap lets http.ResponseController reach the connection.
func (u *unreadCloser) Unwrap() http.ResponseWriter { return u.ResponseWriter }
