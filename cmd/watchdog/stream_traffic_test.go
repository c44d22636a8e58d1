package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"
)

// The dashboard's stream with many services (issue 15.4): one snapshot,
// then only what changed. With 3000 services that are not beating, a
// follower's stream used to resend the whole state every 500 ms because
// the nodes' last contact changed; now it sends the snapshot and small
// changes. Run with -v to see the bytes sent in 10 s.
func TestStreamTrafficWith3000Services(t *testing.T) {
	if testing.Short() {
		t.Skip("watches a stream for 10s")
	}
	const services, watch = 3000, 10 * time.Second
	var b strings.Builder
	b.WriteString("defaults: {timeout: 1h}\nservices:\n")
	for i := range services {
		fmt.Fprintf(&b, "  svc-%04d: {timeout: 1h}\n", i)
	}
	c := newTestCluster(t, 3, fileConfig(t, b.String()))
	leader := c.leader(3)
	var follower *Agent
	for _, a := range c.running() {
		if a != leader {
			follower = a
		}
	}
	waitFor(t, 20*time.Second, "the follower to apply the services", func() bool { return follower.FSM.Len() == services })

	ctx, cancel := context.WithTimeout(context.Background(), watch)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, follower.URL()+"/v1/stream", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var total, first, messages int
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(nil, 64<<20)
	sc.Split(splitEvents)
	for sc.Scan() {
		n := len(sc.Bytes()) + 2
		total += n
		if bytes.Contains(sc.Bytes(), []byte("data: ")) {
			messages++
			if first == 0 {
				first = n
			}
		}
	}
	t.Logf("GET /v1/stream on a follower, %d services, %s: %d bytes, %d messages, the first %d bytes",
		services, watch, total, messages, first)
	if first < services*50 {
		t.Fatalf("the first message (%d bytes) should hold every service", first)
	}
	// Everything after the snapshot must be small next to it: the nodes'
	// last contact and the clock are not worth resending 3000 services.
	if rest := total - first; rest > first/10 {
		t.Fatalf("%d bytes after a %d-byte snapshot in %s: the stream resends what did not change", rest, first, watch)
	}
}

// splitEvents splits a server-sent event stream at blank lines.
func splitEvents(data []byte, atEOF bool) (int, []byte, error) {
	if i := bytes.Index(data, []byte("\n\n")); i >= 0 {
		return i + 2, data[:i], nil
	}
	if atEOF && len(data) > 0 {
		return len(data), data, nil
	}
	return 0, nil, nil
}
