package httpapi_test

import (
	"bufio"
	"encoding/binary"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/watchdog-ha/watchdog/cluster"
	"github.com/watchdog-ha/watchdog/httpapi"
)

// pollsAnswered waits until every node's status polls of the others succeed:
// the nodes share the cluster secret and the leader knows who answers.
func pollsAnswered(t *testing.T, nodes ...apiNode) {
	t.Helper()
	poll(t, 15*time.Second, "every node to answer the others' status polls", func() bool {
		for _, n := range nodes {
			for _, m := range n.node.Members() {
				if m.StatusError != "" {
					return false
				}
			}
		}
		return true
	})
}

// Without any token configured, the internal routes still answer only a
// request signed with the cluster's secret: not an unsigned one, not one
// with a forged signature, not one signed by a node of another cluster. Each
// refusal is a 401 that changes nothing.
func TestInternalRoutesAnswerOnlyTheClusterNodes(t *testing.T) {
	leader, followers := threeNodes(t)
	pollsAnswered(t, leader, followers[0], followers[1])
	stranger := startNode(t, "n3", 1, nil) // another cluster, same ids
	victim := followers[0].node.ID()
	routes := []struct{ method, path, body string }{
		{"GET", cluster.StatusPath, ""},
		{"POST", cluster.ForwardPath, "sneaky"},
		{"GET", cluster.ForwardStreamPath, ""},
		{"POST", cluster.LeavePath + "?id=" + victim, ""},
		{"POST", cluster.LeavePath + "?id=" + victim + "&force=true", ""},
	}
	forged := map[string]func(*http.Request){
		"unsigned":        func(*http.Request) {},
		"forged":          func(r *http.Request) { r.Header.Set(cluster.PeerAuthHeader, victim+" "+strings.Repeat("ab", 32)) },
		"garbage":         func(r *http.Request) { r.Header.Set(cluster.PeerAuthHeader, "%%%") },
		"another cluster": stranger.node.AuthorizePeer,
		"relabelled": func(r *http.Request) { // a real signature under another id
			followers[1].node.AuthorizePeer(r)
			_, sig, _ := strings.Cut(r.Header.Get(cluster.PeerAuthHeader), " ")
			r.Header.Set(cluster.PeerAuthHeader, victim+" "+sig)
		},
	}
	applied := logIndex(t, leader.node)
	for name, sign := range forged {
		for _, rt := range routes {
			req, err := http.NewRequest(rt.method, leader.srv.URL+rt.path, strings.NewReader(rt.body))
			if err != nil {
				t.Fatal(err)
			}
			sign(req)
			resp, body := send(t, req)
			wantError(t, resp, body, http.StatusUnauthorized)
			if !strings.HasPrefix(resp.Header.Get("WWW-Authenticate"), cluster.PeerAuthHeader) {
				t.Fatalf("%s %s %s: 401 without WWW-Authenticate: %q", name, rt.method, rt.path, resp.Header.Get("WWW-Authenticate"))
			}
		}
	}
	if conf := servers(leader.node); len(conf) != 3 {
		t.Fatalf("refused requests changed the configuration: %v", conf)
	}
	if _, ok := leader.fsm.Service("sneaky"); ok || logIndex(t, leader.node) != applied {
		t.Fatal("a refused request reached the log")
	}
	// The nodes themselves pass: a signed status poll answers.
	if resp, body := asPeer(t, followers[1].node, "GET", leader.srv.URL+cluster.StatusPath, "", ""); resp.StatusCode != 200 {
		t.Fatalf("signed status poll: %d %s", resp.StatusCode, body)
	}
}

// The reproduction of issue 16.4: DELETE /v1/cluster/members/{node} refuses
// a live node, and so must the leader's internal leave route, even when the
// request is signed by a node of the cluster. A node may ask only for its
// own removal, and the leader removes it only once the node, asked
// directly, says it is leaving.
func TestInternalLeaveRetiresOnlyTheNodeThatAsks(t *testing.T) {
	leader, followers := threeNodes(t)
	pollsAnswered(t, leader, followers[0], followers[1])
	victim, other := followers[0], followers[1]
	if resp, body := do(t, "DELETE", other.srv.URL+"/v1/cluster/members/"+victim.node.ID(), ""); resp.StatusCode != http.StatusConflict {
		t.Fatalf("public removal of a live node: %d %s, want 409", resp.StatusCode, body)
	}
	// Another node asking for the victim's removal.
	resp, body := asPeer(t, other.node, "POST", leader.srv.URL+cluster.LeavePath+"?id="+victim.node.ID()+"&force=true", "", "")
	wantError(t, resp, body, http.StatusForbidden)
	// The victim's own signature, but the victim is not leaving.
	for _, q := range []string{"", "?force=true", "?id=" + victim.node.ID()} {
		resp, body = asPeer(t, victim.node, "POST", leader.srv.URL+cluster.LeavePath+q, "", "")
		wantError(t, resp, body, http.StatusConflict)
		if !strings.Contains(string(body), "does not say it is leaving") {
			t.Fatalf("refusal %s does not say why", body)
		}
	}
	if conf := servers(leader.node); len(conf) != 3 || conf[victim.node.ID()] != "voter" {
		t.Fatalf("a live node was removed: %v", conf)
	}
	// The victim leaving for real is removed.
	if resp, body := do(t, "POST", victim.srv.URL+"/v1/cluster/leave", ""); resp.StatusCode != 200 {
		t.Fatalf("leave: %d %s", resp.StatusCode, body)
	}
	if conf := servers(leader.node); len(conf) != 2 {
		t.Fatalf("after the leave: %v", conf)
	}
}

// A follower's forward stream, as the API serves it: the handshake must
// carry the ping token (as a forwarded batch must), and once upgraded the
// stream outlives the API's read and write timeouts, which were the
// handshake's. The frames are written by hand here: the wire format is a
// contract between builds.
func TestForwardStreamTakesThePingTokenAndOutlivesTheTimeouts(t *testing.T) {
	srv, node, f := singleNode(t, httpapi.WithPingToken(pingToken), httpapi.WithTimeouts(100*time.Millisecond, 100*time.Millisecond))
	handshake := func(tok string) *http.Response {
		req, err := http.NewRequest("GET", srv.URL+cluster.ForwardStreamPath, nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Connection", "Upgrade")
		req.Header.Set("Upgrade", cluster.ForwardStreamProtocol)
		if tok != "" {
			req.Header.Set("Authorization", "Bearer "+tok)
		}
		node.AuthorizePeer(req)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		return resp
	}
	for _, tok := range []string{"", "wrong"} {
		resp := handshake(tok)
		if resp.StatusCode == http.StatusSwitchingProtocols {
			resp.Body.Close()
			t.Fatalf("handshake with token %q: upgraded, want 401", tok)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		wantUnauthorized(t, resp, body)
	}
	resp := handshake(pingToken)
	defer resp.Body.Close()
	conn, ok := resp.Body.(io.ReadWriter)
	if resp.StatusCode != http.StatusSwitchingProtocols || !ok {
		t.Fatalf("handshake with the ping token: %s, want 101", resp.Status)
	}
	// Past both timeouts (net/http clears them at the hijack, and so does
	// the handler: the documentation leaves them to it).
	time.Sleep(300 * time.Millisecond)
	body := "streamed-1\nstreamed-2"
	frame := binary.BigEndian.AppendUint32(nil, uint32(len(body)))
	frame = binary.BigEndian.AppendUint64(frame, 7)
	if _, err := conn.Write(append(frame, body...)); err != nil {
		t.Fatalf("write a batch after the timeouts: %v", err)
	}
	answer := make([]byte, 13)
	if _, err := io.ReadFull(bufio.NewReader(conn), answer); err != nil {
		t.Fatalf("read the answer after the timeouts: %v", err)
	}
	if n, seq, outcome := binary.BigEndian.Uint32(answer), binary.BigEndian.Uint64(answer[4:]), answer[12]; n != 0 || seq != 7 || outcome != 0 {
		t.Fatalf("answer: length %d, seq %d, outcome %d; want an empty ok to batch 7", n, seq, outcome)
	}
	for _, id := range []string{"streamed-1", "streamed-2"} {
		if _, ok := f.Service(id); !ok {
			t.Fatalf("%s was answered ok but is not committed", id)
		}
	}
}
