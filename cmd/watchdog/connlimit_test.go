package main

import (
	"bufio"
	"errors"
	"io"
	"net"
	"net/http"
	"testing"
	"time"
)

// served opens a connection and has one request answered on it, leaving
// it open and idle, as a kept-alive client does; ok is false when the
// server closed it instead.
func served(t *testing.T, addr string) (conn net.Conn, br *bufio.Reader, ok bool) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	conn = c
	io.WriteString(conn, "GET /healthz HTTP/1.1\r\nHost: w\r\n\r\n")
	br = bufio.NewReader(conn)
	conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		conn.Close()
		return nil, nil, false
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return conn, br, resp.StatusCode == 200
}

// closedByServer reports whether the server has closed conn: a read ends
// within wait with EOF or a reset, not a timeout.
func closedByServer(conn net.Conn, br *bufio.Reader, wait time.Duration) bool {
	conn.SetReadDeadline(time.Now().Add(wait))
	_, err := br.ReadByte()
	var netErr net.Error
	return err != nil && !(errors.As(err, &netErr) && netErr.Timeout())
}

// TestMaxConnectionsCapsOpenConnections runs a node with max_connections
// 16. Sixteen idle kept-alive connections do not lock a client out: the
// one idle longest is closed to make room. Sixteen busy ones (headers
// never finished) do: a seventeenth connection is closed unanswered, and
// once they are gone a client is served again.
func TestMaxConnectionsCapsOpenConnections(t *testing.T) {
	c := newTestCluster(t, 1, fileConfig(t, "max_connections: 16\nhttp_read_header_timeout: 1m\n"))
	addr := c.leader(1).Addr
	var idle []net.Conn
	var readers []*bufio.Reader
	for len(idle) < 16 {
		conn, br, ok := served(t, addr)
		if !ok {
			t.Fatalf("connection %d of 16 was not served", len(idle)+1)
		}
		idle, readers = append(idle, conn), append(readers, br)
	}
	// The server marks a connection idle just after its answer: a new
	// client is served once it has, an idle one closed for it.
	waitFor(t, 10*time.Second, "a client served at the cap", func() bool {
		_, _, ok := served(t, addr)
		return ok
	})
	// The node's own kept-alive connections to itself count too, so
	// which idle one made room is not known; one of these did.
	evicted := 0
	for i := range idle {
		if closedByServer(idle[i], readers[i], 100*time.Millisecond) {
			evicted++
		}
	}
	if evicted == 0 {
		t.Fatal("no idle connection was closed to make room")
	}
	t.Logf("%d of 16 idle connections closed to make room", evicted)
	for _, conn := range idle {
		conn.Close()
	}
	// Busy connections: headers begun, never finished. A slot an idle
	// one held is free once the server has seen it close.
	var busy []net.Conn
	waitFor(t, 10*time.Second, "16 busy connections held", func() bool {
		conn, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { conn.Close() })
		io.WriteString(conn, "GET /healthz HTTP/1.1\r\nHost: w\r\n")
		if closedByServer(conn, bufio.NewReader(conn), 200*time.Millisecond) {
			return false
		}
		busy = append(busy, conn)
		return len(busy) == 16
	})
	if _, _, ok := served(t, addr); ok {
		t.Fatal("a connection beyond max_connections was served")
	}
	for _, conn := range busy {
		conn.Close()
	}
	waitFor(t, 10*time.Second, "a client served again", func() bool {
		_, _, ok := served(t, addr)
		return ok
	})
}
