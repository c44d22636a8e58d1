package main

import (
	"net"
	"strings"
	"testing"

	"github.com/watchdog-ha/watchdog/config"
)

// An agent whose HTTP address is taken (say -dev's default 8080 by the
// load balancer of make cluster) says which flag moves it.
func TestAgentOnATakenPortSaysHowToMoveIt(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	cfg := &config.AgentConfig{NodeID: "n1", HTTPAddr: ln.Addr().String(), RaftAddr: "127.0.0.1:0", GossipAddr: "127.0.0.1:0",
		DataDir: t.TempDir(), BootstrapExpect: 1, File: fileConfig(t, "{}"), Dev: true, OpenManagement: true}
	a, err := StartAgent(cfg, testLogger(t))
	if err == nil {
		a.Close()
		t.Fatal("an agent started on a taken port")
	}
	if !strings.Contains(err.Error(), "address already in use") || !strings.Contains(err.Error(), "-http-addr") {
		t.Fatalf("error %q does not say how to move it", err)
	}
}
