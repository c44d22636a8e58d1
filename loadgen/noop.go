package loadgen

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"
)

// runNoopServer serves HTTP at addr with a handler that does next to
// nothing: it notes id -> time.Now() in a map under a mutex, as the least a
// heartbeat server must do. It is the ceiling for a node, since a heartbeat
// can't be cheaper than that from the same net/http server, with the
// agent's server settings. It runs until ctx is done.
func runNoopServer(ctx context.Context, addr string, stderr io.Writer) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("noop server: %w", err)
	}
	srv := newNoopServer()
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	fmt.Fprintf(stderr, "noop server listening on %s\n", ln.Addr())
	select {
	case err := <-served:
		return fmt.Errorf("noop server: %w", err)
	case <-ctx.Done():
	}
	shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdown); err != nil {
		return fmt.Errorf("noop server: %w", err)
	}
	if err := <-served; !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("noop server: %w", err)
	}
	return nil
}

func newNoopServer() *http.Server {
	var mu sync.Mutex
	seen := make(map[string]time.Time)
	return &http.Server{
		Handler: http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) {
			id := strings.TrimPrefix(r.URL.Path, "/v1/heartbeat/")
			if r.URL.RawQuery != "" {
				id = r.URL.Query().Get("id")
			}
			mu.Lock()
			seen[id] = time.Now()
			mu.Unlock()
		}),
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
	}
}
