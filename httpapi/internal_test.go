package httpapi_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/watchdog-ha/watchdog/cluster"
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
