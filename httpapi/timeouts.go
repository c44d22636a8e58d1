package httpapi

import (
	"io"
	"net/http"
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
	rc := http.NewResponseController(w)
	now := time.Now()
	if s.writeTimeout > 0 {
		_ = rc.SetWriteDeadline(now.Add(s.writeTimeout))
	}
	// A request without a body has nothing left to read; a deadline would
	// only cancel its context once it passed.
	if s.readTimeout > 0 && r.Body != nil && r.Body != http.NoBody {
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
