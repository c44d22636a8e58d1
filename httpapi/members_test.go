package httpapi_test

import (
	"encoding/json"
	"slices"
	"testing"
	"time"

	"github.com/watchdog-ha/watchdog/cluster"
	"github.com/watchdog-ha/watchdog/httpapi"
)

// servers is the leader's Raft configuration, by id.
func servers(n *cluster.Node) map[string]string {
	out := map[string]string{}
	for _, m := range n.Members() {
		if m.Suffrage != "none" {
			out[m.ID] = m.Suffrage
		}
	}
	return out
}

func TestMembershipChangesNeedTheAPITokenAndLeavePassesItOn(t *testing.T) {
	leader, followers := threeNodes(t, httpapi.WithAPIToken(apiToken))
	leaving := followers[0]
	// The leader decides whether the voters left keep a quorum that
	// answers, from its own polls: wait for them too, not only the
	// leaving node's.
	poll(t, 10*time.Second, "the leaving node and the leader to have polled every node", func() bool {
		for _, m := range slices.Concat(leaving.node.Members(), leader.node.Members()) {
			if m.StatusError != "" {
				return false
			}
		}
		return true
	})
	for _, w := range []struct{ method, url string }{
		{"POST", leaving.srv.URL + "/v1/cluster/leave"},
		{"DELETE", leaving.srv.URL + "/v1/cluster/members/n9"},
		{"POST", leader.srv.URL + cluster.LeavePath + "?id=" + leaving.node.ID()},
	} {
		for _, tok := range []string{"", "wrong", pingToken} {
			// The internal route needs the node's signature and the token.
			resp, body := beat(t, leaving.node, w.method, w.url, "", tok)
			wantUnauthorized(t, resp, body)
		}
	}
	if conf := servers(leader.node); len(conf) != 3 {
		t.Fatalf("refused requests changed the configuration: %v", conf)
	}
	// The leaving node asks the leader, which checks the token again.
	resp, body := withBearer(t, "POST", leaving.srv.URL+"/v1/cluster/leave", "", apiToken)
	var v struct {
		Node string
		Left bool
	}
	if resp.StatusCode != 200 || json.Unmarshal(body, &v) != nil || !v.Left || v.Node != leaving.node.ID() {
		t.Fatalf("leave with the token: %d %s", resp.StatusCode, body)
	}
	select {
	case <-leaving.node.Left():
	default:
		t.Fatal("leave answered 200 but Left is open")
	}
	if conf := servers(leader.node); len(conf) != 2 || conf[leaving.node.ID()] != "" {
		t.Fatalf("configuration after the leave: %v", conf)
	}
	// Status is read by the nodes themselves, without a token.
	var st cluster.NodeStatus
	resp, body = asPeer(t, followers[1].node, "GET", leader.srv.URL+cluster.StatusPath, "", "")
	if resp.StatusCode != 200 || json.Unmarshal(body, &st) != nil || st.ID != leader.node.ID() || st.State != "Leader" {
		t.Fatalf("status: %d %s", resp.StatusCode, body)
	}
}
