package httpapi

import "net/http"

// LeaderHealthPath answers 200 only on the leader, for load balancers that
// send every request to the leader (deploy/haproxy-leader.cfg): a heartbeat
// taken there is committed without a forwarding hop.
const LeaderHealthPath = "/v1/leader/health"

// handleLeaderHealth answers as Vault's /v1/sys/health does: 200 on the
// leader, 429 on a healthy standby (a ready follower: a load balancer
// takes it as down, monitoring can tell it from a broken node), 503 on a
// node that is not ready. Both non-leader answers are errors to a health
// check, which is the point; /readyz stays the check for round-robin.
func (s *Server) handleLeaderHealth(w http.ResponseWriter, r *http.Request) {
	leader, _ := s.node.Leader()
	body := map[string]string{"node": s.node.ID(), "leader": leader}
	if err := s.node.Ready(); err != nil {
		body["status"], body["error"] = "unavailable", err.Error()
		writeJSON(w, http.StatusServiceUnavailable, body)
		return
	}
	if !s.node.IsLeader() {
		body["status"] = "standby"
		writeJSON(w, http.StatusTooManyRequests, body)
		return
	}
	body["status"] = "leader"
	writeJSON(w, http.StatusOK, body)
}
