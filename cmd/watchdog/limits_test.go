package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

// errorBody decodes the API's {"error": ...}, failing the test on anything else.
func errorBody(t *testing.T, body string) string {
	t.Helper()
	var e struct {
		Error string `json:"error"`
	}
	if err := json.Unmarshal([]byte(body), &e); err != nil || e.Error == "" {
		t.Fatalf("want a JSON error, got %q", body)
	}
	return e.Error
}

// waitConfigured waits until the leader has committed the file's services.
func waitConfigured(t *testing.T, leader *Agent, ids ...string) {
	t.Helper()
	waitFor(t, 15*time.Second, "the config file's services committed", func() bool {
		for _, id := range ids {
			if _, ok := leader.FSM.Service(id); !ok {
				return false
			}
		}
		return true
	})
}

// TestMaxServicesRefusesNewIDsOnEveryNodeAndRoute fills a real cluster to
// max_services with concurrent heartbeats for new ids through the leader and
// a follower: exactly the room left is taken, the rest is refused with 429
// and a JSON error naming max_services, on every route that could create a
// service, while existing and configured services keep beating.
func TestMaxServicesRefusesNewIDsOnEveryNodeAndRoute(t *testing.T) {
	const capacity = 6
	file := fileConfig(t, fmt.Sprintf("max_services: %d\nservices:\n  cfg-1: {timeout: 1m}\n", capacity))
	c := newTestCluster(t, 3, file)
	leader := c.leader(3)
	follower := c.someFollower()
	waitConfigured(t, leader, "cfg-1")
	term := c.term()

	// 20 new ids at once, half through each node: the leader's batches
	// must not let more than the room left (capacity-1) in.
	codes := make(map[int]int)
	var mu sync.Mutex
	var wg sync.WaitGroup
	for i := range 20 {
		via := []*Agent{leader, follower}[i%2]
		wg.Go(func() {
			code := heartbeat(t, via, fmt.Sprintf("new-%02d", i))
			mu.Lock()
			codes[code]++
			mu.Unlock()
		})
	}
	wg.Wait()
	// Under one leader every answer is 200 or 429. An election meanwhile
	// (a loaded machine) can answer 503, leaving that id's fate open: only
	// then may an answer stand for either.
	unclear := 20 - codes[http.StatusOK] - codes[http.StatusTooManyRequests]
	if unclear > 0 && c.term() == term {
		t.Fatalf("answers %v: %d neither 200 nor 429 under one leader", codes, unclear)
	}
	if ok, no := codes[http.StatusOK], codes[http.StatusTooManyRequests]; ok > capacity-1 || ok+unclear < capacity-1 ||
		no > 20-(capacity-1) || no+unclear < 20-(capacity-1) {
		t.Fatalf("want %d×200 and %d×429, got %v", capacity-1, 20-(capacity-1), codes)
	}
	// Exactly max_services, on every node, whichever leads now.
	c.holdExactly(capacity)

	for _, a := range []*Agent{leader, follower} {
		call := callSettled // a 503 while leadership moves is asked again
		code, body := call(t, http.MethodPost, "http://"+a.Addr+"/v1/heartbeat/one-too-many", "", "")
		if msg := errorBody(t, body); code != http.StatusTooManyRequests || !strings.Contains(msg, "max_services") {
			t.Errorf("new id via %s: %d %q, want 429 naming max_services", a.Node.ID(), code, msg)
		}
		for _, route := range []string{"/heartbeat?id=one-too-many", "/ping/one-too-many?create=1",
			"/ping/one-too-many/start?create=1"} {
			if code, body := call(t, http.MethodPost, "http://"+a.Addr+route, "", ""); code != http.StatusTooManyRequests {
				t.Errorf("POST %s via %s: %d %s, want 429", route, a.Node.ID(), code, body)
			}
		}
		code, body = call(t, http.MethodPut, "http://"+a.Addr+"/v1/services/one-too-many", `{"timeout": "1m"}`, "")
		if code != http.StatusTooManyRequests {
			t.Errorf("PUT a new service via %s: %d %s, want 429", a.Node.ID(), code, body)
		}
		// Those already in, and those the file defines, keep working.
		for _, id := range []string{"cfg-1", existingNew(t, leader)} {
			if code, _ := call(t, http.MethodPost, "http://"+a.Addr+"/v1/heartbeat/"+id, "", ""); code != http.StatusOK {
				t.Errorf("heartbeat of existing %s via %s: %d, want 200", id, a.Node.ID(), code)
			}
		}
	}
	if _, ok := leader.FSM.Service("one-too-many"); ok {
		t.Fatal("a refused id got in")
	}
	c.holdExactly(capacity)
}

// holdExactly checks that every running agent holds n services once it has
// applied what the leader has: an agent may trail, never exceed.
func (c *testCluster) holdExactly(n int) {
	c.t.Helper()
	leader := c.leader(len(c.running()))
	waitFor(c.t, 10*time.Second, fmt.Sprintf("every node to hold %d services", n), func() bool {
		for _, a := range c.running() {
			if a.FSM.Len() > n || leader.FSM.Len() > n {
				c.t.Fatalf("%s holds %d services, over %d", a.Node.ID(), a.FSM.Len(), n)
			}
			if a.FSM.Len() != n {
				return false
			}
		}
		return true
	})
}

// callSettled is call, asked again while the answer is 503: leadership
// is moving, and a client is told to try again.
func callSettled(t *testing.T, method, url, body, token string) (int, string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		code, b := call(t, method, url, body, token)
		if code != http.StatusServiceUnavailable || time.Now().After(deadline) {
			return code, b
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// existingNew returns one of the new-NN services that got in.
func existingNew(t *testing.T, a *Agent) string {
	t.Helper()
	for i := range 20 {
		if id := fmt.Sprintf("new-%02d", i); func() bool { _, ok := a.FSM.Service(id); return ok }() {
			return id
		}
	}
	t.Fatal("no new-NN service got in")
	return ""
}

// TestAutoRegisterOffRefusesUnknownIDs: with auto_register: false an id
// neither the file nor the API defined is a 404 on every node and route,
// while configured services, and services defined with PUT, beat.
func TestAutoRegisterOffRefusesUnknownIDs(t *testing.T) {
	file := fileConfig(t, "auto_register: false\nservices:\n  known-1: {timeout: 1m}\n")
	c := newTestCluster(t, 3, file)
	leader := c.leader(3)
	follower := c.someFollower()
	for _, a := range []*Agent{leader, follower} {
		// Configured services are admitted even before the leader has
		// committed the file's definitions.
		if code := heartbeat(t, a, "known-1"); code != http.StatusOK {
			t.Errorf("configured service via %s: %d, want 200", a.Node.ID(), code)
		}
		code, body := call(t, http.MethodPost, "http://"+a.Addr+"/v1/heartbeat/stranger", "", "")
		if msg := errorBody(t, body); code != http.StatusNotFound || !strings.Contains(msg, "auto_register") {
			t.Errorf("unknown id via %s: %d %q, want 404 naming auto_register", a.Node.ID(), code, msg)
		}
		for _, route := range []string{"/heartbeat?id=stranger", "/ping/stranger?create=1", "/ping/stranger/fail?create=1"} {
			if code, body := call(t, http.MethodGet, "http://"+a.Addr+route, "", ""); code != http.StatusNotFound {
				t.Errorf("GET %s via %s: %d %s, want 404", route, a.Node.ID(), code, body)
			}
		}
	}
	if code, body := call(t, http.MethodPut, "http://"+follower.Addr+"/v1/services/defined", "{}", ""); code != http.StatusCreated {
		t.Fatalf("PUT through a follower: %d %s, want 201", code, body)
	}
	for _, a := range []*Agent{leader, follower} {
		if code := heartbeat(t, a, "defined"); code != http.StatusOK {
			t.Errorf("service defined with PUT via %s: %d, want 200", a.Node.ID(), code)
		}
	}
	if _, ok := leader.FSM.Service("stranger"); ok {
		t.Fatal("the unknown id got into the state")
	}
}

// dribble writes msg one byte at a time, every gap, until it is all sent or
// the server closes the connection; it reports whether the server did.
func dribble(conn net.Conn, msg string, gap time.Duration) bool {
	for i := range len(msg) {
		if _, err := conn.Write([]byte{msg[i]}); err != nil {
			return true
		}
		time.Sleep(gap) // the attack itself, not a synchronisation
	}
	return false
}

// TestSlowlorisIsCutOffWhileHeartbeatsGoOn opens connections that send
// their headers a byte at a time, never finishing. With
// http_read_header_timeout the node closes each of them (here within the
// generous test deadline, long before the headers could end), while an
// ordinary heartbeat sent meanwhile is committed as usual.
func TestSlowlorisIsCutOffWhileHeartbeatsGoOn(t *testing.T) {
	file := fileConfig(t, "http_read_header_timeout: 300ms\n")
	c := newTestCluster(t, 1, file)
	node := c.leader(1)
	const attackers = 10
	// 60 s of headers at 100 ms a byte: the node must not wait for them.
	header := "POST /v1/heartbeat/loris HTTP/1.1\r\nHost: watchdog\r\nX-Slow: " + strings.Repeat("z", 600)
	closed := make(chan time.Duration, attackers)
	for range attackers {
		conn, err := net.Dial("tcp", node.Addr)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { conn.Close() })
		go func() {
			start := time.Now()
			if dribble(conn, header, 100*time.Millisecond) {
				closed <- time.Since(start)
			}
		}()
	}
	if code := heartbeat(t, node, "legit"); code != http.StatusOK {
		t.Fatalf("a heartbeat beside the slow clients: %d, want 200", code)
	}
	deadline := time.After(30 * time.Second)
	for i := range attackers {
		select {
		case d := <-closed:
			t.Logf("slow client %d cut off after %s", i, d.Round(time.Millisecond))
		case <-deadline:
			t.Fatalf("only %d of %d slow clients were cut off within 30s", i, attackers)
		}
	}
	if _, ok := node.FSM.Service("loris"); ok {
		t.Fatal("a request that never finished its headers was committed")
	}
}

// TestSlowBodyIsCutOffByTheReadTimeout sends complete headers, then a body
// a byte at a time: http_read_timeout answers 408 and closes the connection
// rather than waiting for a body that would take minutes, and nothing is
// committed.
func TestSlowBodyIsCutOffByTheReadTimeout(t *testing.T) {
	file := fileConfig(t, "http_read_timeout: 500ms\n")
	c := newTestCluster(t, 1, file)
	node := c.leader(1)
	conn, err := net.Dial("tcp", node.Addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := io.WriteString(conn, "POST /v1/heartbeat/sloth HTTP/1.1\r\nHost: watchdog\r\nContent-Length: 600\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	go dribble(conn, strings.Repeat("z", 600), 100*time.Millisecond)
	conn.SetReadDeadline(time.Now().Add(30 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("no answer to a slow body within 30s: %v", err)
	}
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusRequestTimeout {
		t.Fatalf("slow body: %d %s, want 408", resp.StatusCode, body)
	}
	errorBody(t, string(body))
	if _, ok := node.FSM.Service("sloth"); ok {
		t.Fatal("a request whose body never arrived was committed")
	}
	// An ordinary heartbeat with a body still gets through.
	if code, body := call(t, http.MethodPost, "http://"+node.Addr+"/v1/heartbeat/quick", "fine", ""); code != http.StatusOK {
		t.Fatalf("heartbeat with a body: %d %s", code, body)
	}
}
