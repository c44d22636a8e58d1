package cluster

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/watchdog-ha/watchdog/fsm"
)

func startSecretNode(t *testing.T, id string, expect int, join []string, tweak func(*Config)) *Node {
	t.Helper()
	cfg := Config{NodeID: id, RaftAddr: "127.0.0.1:0", GossipAddr: "127.0.0.1:0", HTTPAddr: "127.0.0.1:1",
		DataDir: t.TempDir(), Join: join, BootstrapExpect: expect, FSM: fsm.New()}
	if tweak != nil {
		tweak(&cfg)
	}
	n, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	n.Start(func(ctx context.Context, _ time.Time) { <-ctx.Done() })
	t.Cleanup(func() { n.Close() })
	return n
}

func waitUntil(t *testing.T, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", within, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func sameSecret(nodes ...*Node) bool {
	for _, n := range nodes[1:] {
		if n.secret.fingerprint() != nodes[0].secret.fingerprint() {
			return false
		}
	}
	return true
}

// Three nodes that each generate a secret on their first start bootstrap
// with one of them, kept in every data dir with mode 0600; a node that joins
// later takes the cluster's, which does not change; a restart keeps it.
func TestNodesSettleOnOneGeneratedSecret(t *testing.T) {
	n1 := startSecretNode(t, "n1", 3, nil, nil)
	n2 := startSecretNode(t, "n2", 3, []string{n1.GossipAddr()}, nil)
	n3 := startSecretNode(t, "n3", 3, []string{n1.GossipAddr()}, nil)
	waitUntil(t, 15*time.Second, "a leader", func() bool { id, _ := n1.Leader(); return id != "" })
	if !sameSecret(n1, n2, n3) {
		t.Fatal("the cluster bootstrapped before its nodes agreed on a secret")
	}
	clusterFP := n1.secret.fingerprint()
	for _, n := range []*Node{n1, n2, n3} {
		fi, err := os.Stat(filepath.Join(n.cfg.DataDir, SecretFile))
		if err != nil || fi.Mode().Perm() != 0o600 {
			t.Fatalf("%s: secret file %v, mode %v; want 0600", n.ID(), err, fi.Mode())
		}
		if n.GeneratedAPIToken() != n1.GeneratedAPIToken() {
			t.Fatalf("%s derives another API token", n.ID())
		}
	}
	changed := make(chan string, 1)
	n4 := startSecretNode(t, "n4", 0, []string{n2.GossipAddr()}, func(c *Config) {
		c.OnSecretChange = func(n *Node) { changed <- n.GeneratedAPIToken() }
	})
	waitUntil(t, 10*time.Second, "n4 to take the cluster's secret", func() bool { return sameSecret(n1, n4) })
	if n1.secret.fingerprint() != clusterFP {
		t.Fatal("a joining node changed the cluster's secret")
	}
	select {
	case tok := <-changed:
		if tok != n1.GeneratedAPIToken() {
			t.Fatal("OnSecretChange saw another token")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("OnSecretChange was not called on adoption")
	}
	again, err := openSecret(n4.cfg)
	if err != nil || again.fingerprint() != clusterFP {
		t.Fatalf("n4's secret read again: %v", err)
	}
}

// A configured secret, or one derived from the gossip key, is the same on
// every node that has it and is never put into gossip.
func TestConfiguredSecretsAreNeverSent(t *testing.T) {
	key := []byte("0123456789abcdef0123456789abcdef")
	for name, tweak := range map[string]func(*Config){
		"configured":      func(c *Config) { c.ClusterSecret = []byte("a configured cluster secret") },
		"from gossip key": func(c *Config) { c.GossipKey = key },
	} {
		t.Run(name, func(t *testing.T) {
			a := startSecretNode(t, "a", 1, nil, tweak)
			b := startSecretNode(t, "b", 1, nil, tweak)
			if a.localSecretState() != nil || a.meta().SecretFP != "" {
				t.Fatal("a configured secret would be gossiped")
			}
			if a.GeneratedAPIToken() != b.GeneratedAPIToken() {
				t.Fatal("two nodes with the same secret derive different tokens")
			}
			if _, err := os.Stat(filepath.Join(a.cfg.DataDir, SecretFile)); err == nil {
				t.Fatal("a configured secret was written to the data dir")
			}
			req, _ := http.NewRequest("GET", "http://x/", nil)
			a.AuthorizePeer(req)
			if id, ok := b.Peer(req); !ok || id != "a" {
				t.Fatalf("b does not take a's signature: %q %v", id, ok)
			}
		})
	}
	other := startSecretNode(t, "c", 1, nil, func(c *Config) { c.GossipKey = []byte("fedcba9876543210fedcba9876543210") })
	same := startSecretNode(t, "d", 1, nil, func(c *Config) { c.GossipKey = key })
	req, _ := http.NewRequest("GET", "http://x/", nil)
	other.AuthorizePeer(req)
	if _, ok := same.Peer(req); ok {
		t.Fatal("a node with another gossip key passes")
	}
}

// Every node ranks secrets alike, so they all settle on the same one.
func TestSecretOffersAreTotallyOrdered(t *testing.T) {
	offers := []offer{
		{hasState: true, created: 5, fp: "b"}, {hasState: true, created: 5, fp: "a"},
		{hasState: true, created: 9, fp: "0"}, {hasState: false, created: 1, fp: "2"},
		{hasState: false, created: 1, fp: "1"},
	}
	for i, a := range offers {
		for j, b := range offers {
			if i == j {
				continue
			}
			if a.losesTo(b) == b.losesTo(a) {
				t.Errorf("%+v and %+v: losesTo is not antisymmetric", a, b)
			}
		}
	}
	best := offers[1]
	for _, o := range offers {
		if best.losesTo(o) {
			t.Errorf("%s: the best offer %+v loses to %+v", fmt.Sprint(o), best, o)
		}
	}
}
