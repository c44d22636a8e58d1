package httpapi_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/watchdog-ha/watchdog/cluster"
	"github.com/watchdog-ha/watchdog/httpapi"
)

// forwardBatch posts a follower's batch of ids to the leader's internal
// route, chunked or with its length, and reads the answer while the body
// is still being written.
func forwardBatch(t *testing.T, node *cluster.Node, base, body string, chunked bool) (*http.Response, []byte) {
	t.Helper()
	head := "POST " + cluster.ForwardPath + " HTTP/1.1\r\nHost: w\r\n" + cluster.ForwardedByHeader + ": n2\r\n" + peerHeader(node)
	wire := head + fmt.Sprintf("Content-Length: %d\r\n\r\n", len(body)) + body
	if chunked {
		wire = head + "Transfer-Encoding: chunked\r\n\r\n" + fmt.Sprintf("%x\r\n%s\r\n0\r\n\r\n", len(body), body)
	}
	resp, out := sendWhileReading(t, base, wire)
	return resp, []byte(out)
}

// sendWhileReading writes a whole request (head and body) on a connection of
// its own while it reads the answer, which may come, and the connection
// close, before the body is all written.
func sendWhileReading(t *testing.T, base, wire string) (*http.Response, string) {
	t.Helper()
	u, err := url.Parse(base)
	if err != nil {
		t.Fatal(err)
	}
	conn, err := net.Dial("tcp", u.Host)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	go io.WriteString(conn, wire) // fails harmlessly once the server closes
	conn.SetReadDeadline(time.Now().Add(20 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("no answer: %v", err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp, string(body)
}

// peerHeader is the header line with which node signs its internal calls.
func peerHeader(node *cluster.Node) string {
	req, _ := http.NewRequest("POST", "http://w", nil)
	node.AuthorizePeer(req)
	return cluster.PeerAuthHeader + ": " + req.Header.Get(cluster.PeerAuthHeader) + "\r\n"
}

func ids(prefix string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("%s-%d", prefix, i)
	}
	return out
}

// TestForwardedBatchIsCappedAndRefusedWhole sends the leader's internal
// heartbeat route batches beyond batch_size ids or bytes, and one with a
// line over 64 KiB: each is refused whole (413, or 400 for the line) and
// commits nothing; a batch of exactly batch_size ids commits.
func TestForwardedBatchIsCappedAndRefusedWhole(t *testing.T) {
	srv, node, f := singleNode(t)
	limit := node.MaxBatch()
	tooMany := strings.Join(ids("many", limit+1), "\n")
	longLine := "first\n" + strings.Repeat("x", 70<<10) + "\nlast"
	huge := strings.Repeat(strings.Repeat("h", 6)+"\n", (8<<20)/7)
	for _, c := range []struct {
		name    string
		body    string
		chunked bool
		status  int
		absent  string
	}{
		{"batch_size + 1 ids", tooMany, false, 413, "many-0"},
		{"batch_size + 1 ids, chunked", tooMany, true, 413, "many-0"},
		{"8 MiB of ids", huge, false, 413, "hhhhhh"},
		{"8 MiB of ids, chunked", huge, true, 413, "hhhhhh"},
		{"a line over 64 KiB", longLine, false, 400, "first"},
		{"an empty line", "first\n\nlast", false, 400, "first"},
	} {
		t.Run(c.name, func(t *testing.T) {
			last := logIndex(t, node)
			start := time.Now()
			resp, body := forwardBatch(t, node, srv.URL, c.body, c.chunked)
			wantError(t, resp, body, c.status)
			t.Logf("%d %.200s in %s", resp.StatusCode, body, time.Since(start).Round(time.Millisecond))
			if logIndex(t, node) != last {
				t.Fatal("a refused batch reached Raft")
			}
			if _, ok := f.Service(c.absent); ok {
				t.Fatalf("%s of a refused batch was committed", c.absent)
			}
		})
	}
	full := ids("full", limit)
	resp, body := forwardBatch(t, node, srv.URL, strings.Join(full, "\n")+"\n", false)
	if resp.StatusCode != 200 {
		t.Fatalf("a batch of batch_size ids: %d %s", resp.StatusCode, body)
	}
	if _, ok := f.Service(full[limit-1]); !ok {
		t.Fatal("the last id of a full batch was not committed")
	}
}

// rawRequest sends head (a request line and headers, without the blank
// line) and then bodyPart of a body it never finishes, and reads the
// answer within 10 s.
func rawRequest(t *testing.T, base, head, bodyPart string) (*http.Response, string, net.Conn) {
	t.Helper()
	u, err := url.Parse(base)
	if err != nil {
		t.Fatal(err)
	}
	conn, err := net.Dial("tcp", u.Host)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	if _, err := io.WriteString(conn, head+"\r\n\r\n"+bodyPart); err != nil {
		t.Fatal(err)
	}
	conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatalf("%s: no answer within 10s: %v", strings.SplitN(head, "\r\n", 2)[0], err)
	}
	body, _ := io.ReadAll(resp.Body)
	return resp, string(body), conn
}

// wantClosed checks the server closes conn after its answer: a refusal
// does not wait for the rest of a body it will not read.
func wantClosed(t *testing.T, resp *http.Response, conn net.Conn) {
	t.Helper()
	if !resp.Close {
		t.Errorf("answer %d does not say Connection: close", resp.StatusCode)
	}
	conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	n, err := conn.Read(make([]byte, 1))
	var netErr net.Error
	if n > 0 || err == nil || (errors.As(err, &netErr) && netErr.Timeout()) {
		t.Errorf("the connection stayed open after the refusal (%d bytes, %v)", n, err)
	}
}

// TestARefusalAnswersAtOnceAndCloses sends requests that are refused
// before their body is read (no token; a declared length over the cap),
// with a body announced but never sent: the refusal comes at once, well
// before the 30 s read timeout, and the connection closes, rather than
// net/http first waiting for up to 256 KiB of the body.
func TestARefusalAnswersAtOnceAndCloses(t *testing.T) {
	srv, node, _ := singleNode(t, httpapi.WithAPIToken(apiToken), httpapi.WithPingToken(pingToken),
		httpapi.WithTimeouts(30*time.Second, 30*time.Second), httpapi.WithMaxSnapshotBody(64<<10))
	for _, c := range []struct {
		name, head string
		status     int
	}{
		{"401 on a restore", "PUT /v1/snapshot HTTP/1.1\r\nHost: w\r\nContent-Length: 1048576", 401},
		{"401 on a service", "PUT /v1/services/svc HTTP/1.1\r\nHost: w\r\nContent-Length: 60000", 401},
		{"401 on a heartbeat", "POST /v1/heartbeat/svc HTTP/1.1\r\nHost: w\r\nContent-Length: 60000", 401},
		{"413 on a restore", "PUT /v1/snapshot HTTP/1.1\r\nHost: w\r\nAuthorization: Bearer " + apiToken + "\r\nContent-Length: 1048576", 413},
		{"413 on a forwarded batch", "POST " + cluster.ForwardPath + " HTTP/1.1\r\nHost: w\r\n" + peerHeader(node) + "Authorization: Bearer " + pingToken + "\r\nContent-Length: 104857600", 413},
	} {
		t.Run(c.name, func(t *testing.T) {
			start := time.Now()
			resp, body, conn := rawRequest(t, srv.URL, c.head, strings.Repeat("x", 1024))
			if resp.StatusCode != c.status {
				t.Fatalf("%d %s, want %d", resp.StatusCode, body, c.status)
			}
			wantClosed(t, resp, conn)
			t.Logf("%d after %s", resp.StatusCode, time.Since(start).Round(time.Millisecond))
		})
	}
}

// TestASlowBodyGetsA408WithEqualTimeouts dribbles a body slower than the
// read timeout, with the write timeout as long as the read one (as the
// defaults are, 30 s each): the 408 is still written, and the connection
// closes. Before, the write deadline passed with the read one and the
// client got a closed connection and no answer.
func TestASlowBodyGetsA408WithEqualTimeouts(t *testing.T) {
	const timeout = 300 * time.Millisecond
	srv, _, f := singleNode(t, httpapi.WithTimeouts(timeout, timeout))
	// (PUT /v1/snapshot lifts the read timeout for a large backup, and
	// answers 408 only after snapshotTimeout.)
	for _, path := range []string{"/v1/heartbeat/sloth", "/ping/sloth", "/v1/services/sloth"} {
		t.Run(path, func(t *testing.T) {
			u, _ := url.Parse(srv.URL)
			conn, err := net.Dial("tcp", u.Host)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			method := "POST"
			if path == "/v1/services/sloth" {
				method = "PUT"
			}
			io.WriteString(conn, method+" "+path+" HTTP/1.1\r\nHost: w\r\nContent-Length: 600\r\n\r\n")
			go func() { // a byte every 100 ms: the 600 bytes would take a minute
				for range 600 {
					if _, err := conn.Write([]byte("z")); err != nil {
						return
					}
					time.Sleep(100 * time.Millisecond)
				}
			}()
			conn.SetReadDeadline(time.Now().Add(20 * time.Second))
			resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
			if err != nil {
				t.Fatalf("no answer to a slow body: %v", err)
			}
			body, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != http.StatusRequestTimeout {
				t.Fatalf("slow body: %d %s, want 408", resp.StatusCode, body)
			}
			if !resp.Close {
				t.Error("a 408 does not close the connection")
			}
		})
	}
	if _, ok := f.Service("sloth"); ok {
		t.Fatal("a request whose body never arrived was committed")
	}
}

// clientFrom is an HTTP client whose connections come from local address
// ip (any 127.x.y.z is loopback on Linux): another client, as the server
// sees it.
func clientFrom(ip string) *http.Client {
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}}
	return &http.Client{Transport: &http.Transport{DialContext: d.DialContext}}
}

// openStreamFrom opens GET /v1/stream through c and returns its status;
// a stream that opened stays open until the test ends.
func openStreamFrom(t *testing.T, c *http.Client, base string) int {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	req, _ := http.NewRequestWithContext(ctx, "GET", base+"/v1/stream", nil)
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 200 {
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		t.Logf("%d %s (Retry-After %s)", resp.StatusCode, body, resp.Header.Get("Retry-After"))
		return resp.StatusCode
	}
	t.Cleanup(func() { resp.Body.Close() })
	return resp.StatusCode
}

// TestOneClientCannotTakeEveryStream opens event streams from one client
// address until it is refused (503, Retry-After) at its share of 16, well
// below the node's 128; another address still gets a stream.
func TestOneClientCannotTakeEveryStream(t *testing.T) {
	srv, _, _ := singleNode(t)
	greedy := clientFrom("127.0.0.1")
	for i := range 16 {
		if code := openStreamFrom(t, greedy, srv.URL); code != 200 {
			t.Fatalf("stream %d of one client: %d", i+1, code)
		}
	}
	if code := openStreamFrom(t, greedy, srv.URL); code != http.StatusServiceUnavailable {
		t.Fatalf("stream 17 of one client: %d, want 503", code)
	}
	if code := openStreamFrom(t, clientFrom("127.0.0.2"), srv.URL); code != 200 {
		t.Fatalf("another client's stream: %d", code)
	}
}

// TestErrorsQuoteABoundedPrefix sends long bad input to routes whose
// errors quote it: each error quotes at most a 64-byte prefix (and says
// how long the input was), and no error answer is over 1 KiB.
func TestErrorsQuoteABoundedPrefix(t *testing.T) {
	srv, node, _ := singleNode(t, knownActions)
	long := strings.Repeat("A", 5000) + "!"
	for _, c := range []struct{ name, method, path, body string }{
		{"heartbeat id", "POST", "/v1/heartbeat/" + long, ""},
		{"query id", "GET", "/heartbeat?id=" + long, ""},
		{"service id", "GET", "/v1/services/" + long, ""},
		{"duration", "PUT", "/v1/services/svc", `{"timeout": "` + long + `"}`},
		{"action", "PUT", "/v1/services/svc", `{"actions": ["` + long + `"]}`},
		{"tag", "PUT", "/v1/services/svc", `{"tags": ["` + long + `"]}`},
		{"unknown field", "PUT", "/v1/services/svc", `{"` + long + `": 1}`},
		{"forwarded id", "POST", cluster.ForwardPath, "ok\n" + long},
	} {
		t.Run(c.name, func(t *testing.T) {
			resp, body := beat(t, node, c.method, srv.URL+c.path, c.body, "")
			wantError(t, resp, body, 400)
			if len(body) > 1100 || strings.Contains(string(body), strings.Repeat("A", 65)) {
				t.Fatalf("%d bytes of error quote more than a prefix: %.300s", len(body), body)
			}
			t.Logf("%s", body)
		})
	}
}
