package main

import (
	"context"
	"crypto/tls"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/watchdog-ha/watchdog/cli"
	wdclient "github.com/watchdog-ha/watchdog/client"
	"github.com/watchdog-ha/watchdog/config"
	"github.com/watchdog-ha/watchdog/internal/testcert"
)

// send sends a request with hc and returns its status, or the error.
func send(hc *http.Client, method, url, body string) (int, error) {
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		return 0, err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return 0, err
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode, nil
}

// TestTLSClusterServesOnlyClientsWithCertificates runs three nodes with
// mutual TLS everywhere and verify_incoming: they elect a leader over TLS
// Raft, a heartbeat sent over https to a follower is forwarded (https, with
// the node's certificate) and replicated, and so is a management write; the
// CLI and the Go client get through with a certificate, and a node leaves. A client without
// one, with one from another CA, over plain http, or trusting another CA
// gets nothing.
func TestTLSClusterServesOnlyClientsWithCertificates(t *testing.T) {
	ca, other := testcert.NewCA(t, "cluster CA"), testcert.NewCA(t, "another CA")
	c := newTestCluster(t, 3, fileConfig(t, ""), secured(nodeTLS(t, ca, "node", true), newGossipKey(t)))
	leader := c.leader(3)
	f := c.follower(leader)
	cert := ca.Certificate(t, "operator")
	hc := httpsClient(t, ca, &cert)

	if status, err := send(hc, http.MethodPost, f.URL()+"/v1/heartbeat/over-tls", ""); err != nil || status != http.StatusOK {
		t.Fatalf("heartbeat over https to follower %s: %d, %v; want 200", f.Node.ID(), status, err)
	}
	if status, err := send(hc, http.MethodPut, f.URL()+"/v1/services/defined-over-tls", `{"timeout": "1m"}`); err != nil || status != http.StatusCreated {
		t.Fatalf("PUT through follower %s: %d, %v; want 201 from the leader", f.Node.ID(), status, err)
	}
	c.replicated("over-tls", "defined-over-tls")

	files := ca.Issue(t, "cli")
	env := map[string]string{"WATCHDOG_TLS_CA": files.CA, "WATCHDOG_TLS_CERT": files.Cert, "WATCHDOG_TLS_KEY": files.Key}
	if out, errOut, code := runCLI(t, env, "ping", "-addr", f.Addr, "by-cli"); code != cli.ExitOK {
		t.Fatalf("watchdog ping over TLS: exit %d\n%s%s", code, out, errOut)
	}
	c.allReady()
	if out, errOut, code := runCLI(t, env, "status", "-addr", f.Addr); code != cli.ExitOK {
		t.Fatalf("watchdog status over TLS (asks each node at its https address): exit %d\n%s%s", code, out, errOut)
	}
	gc, err := wdclient.New([]string{f.Addr}, wdclient.WithTLSConfig(&tls.Config{RootCAs: ca.Pool(), Certificates: []tls.Certificate{cert}}))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := gc.Ping(ctx, "by-go-client"); err != nil {
		t.Fatalf("Go client over TLS: %v", err)
	}
	c.replicated("by-cli", "by-go-client")

	strangerCert := other.Certificate(t, "stranger")
	refused := map[string]func() (int, error){
		"no client certificate": func() (int, error) {
			return send(httpsClient(t, ca, nil), http.MethodGet, f.URL()+"/v1/services", "")
		},
		"a client certificate of another CA": func() (int, error) {
			return send(httpsClient(t, ca, &strangerCert), http.MethodPost, f.URL()+"/v1/heartbeat/stranger", "")
		},
		"a client that trusts another CA": func() (int, error) {
			return send(httpsClient(t, other, &strangerCert), http.MethodGet, f.URL()+"/v1/services", "")
		},
		"plain http": func() (int, error) {
			return send(http.DefaultClient, http.MethodPost, "http://"+f.Addr+"/v1/heartbeat/plain", "")
		},
	}
	for name, try := range refused {
		if status, err := try(); err == nil && status != http.StatusBadRequest {
			t.Errorf("%s: answered %d; want the connection refused (or 400 to plain http)", name, status)
		}
	}
	for _, id := range []string{"stranger", "plain"} {
		if _, ok := serviceOn(leader, id); ok {
			t.Errorf("a refused client's heartbeat for %s was committed", id)
		}
	}

	// Leaving goes from the node to the leader over https, with the node's
	// certificate.
	if out, errOut, code := runCLI(t, env, "leave", "-addr", f.Addr); code != cli.ExitOK {
		t.Fatalf("watchdog leave over TLS: exit %d\n%s%s", code, out, errOut)
	}
	waitForLeft(t, f)
	c.shutdown(f)
	c.leader(2)
}

// TestRaftRefusesNodesOfAnotherCA: a member that comes back with a
// certificate of another CA is still in the Raft configuration, so the
// leader keeps trying to replicate to it, yet it never gets an entry
// committed while it was away or after; and a new node with such a
// certificate, which gossip lets in (it has the key), never joins the
// configuration nor gets any data. Made non-verifying, the Raft stream
// layer would let the returning member catch up, and this test fails.
func TestRaftRefusesNodesOfAnotherCA(t *testing.T) {
	ca, other := testcert.NewCA(t, "cluster CA"), testcert.NewCA(t, "another CA")
	key := newGossipKey(t)
	c := newTestCluster(t, 3, fileConfig(t, ""), secured(nodeTLS(t, ca, "node", false), key))
	leader := c.leader(3)
	hc := httpsClient(t, ca, nil)
	if status, err := send(hc, http.MethodPost, leader.URL()+"/v1/heartbeat/before", ""); err != nil || status != http.StatusOK {
		t.Fatalf("heartbeat: %d, %v", status, err)
	}
	c.replicated("before")

	gone := c.follower(leader)
	id, dataDir, raftAddr, gossipAddr, httpAddr := gone.Node.ID(), gone.dataDir, gone.Node.RaftAddr(), gone.Node.GossipAddr(), gone.Addr
	c.stop(gone)
	if status, err := send(hc, http.MethodPost, leader.URL()+"/v1/heartbeat/while-away", ""); err != nil || status != http.StatusOK {
		t.Fatalf("heartbeat with %s down: %d, %v", id, status, err)
	}
	foreign := secured(nodeTLS(t, other, "impostor", false), key)
	back := c.launch(&config.AgentConfig{NodeID: id, HTTPAddr: httpAddr, RaftAddr: raftAddr, GossipAddr: gossipAddr,
		DataDir: dataDir, File: c.file}, foreign)
	newcomer := c.start("n4", 0, t.TempDir(), foreign)
	waitFor(t, 30*time.Second, id+" and n4 alive in the leader's gossip", func() bool {
		alive := 0
		for _, m := range leader.Node.Members() {
			if (m.ID == id || m.ID == "n4") && m.Gossip == "alive" {
				alive++
			}
		}
		return alive == 2
	})
	if status, err := send(hc, http.MethodPost, leader.URL()+"/v1/heartbeat/after", ""); err != nil || status != http.StatusOK {
		t.Fatalf("heartbeat: %d, %v", status, err)
	}
	waitFor(t, 15*time.Second, "the leader has applied the last heartbeat", func() bool {
		_, ok := serviceOn(leader, "after")
		return ok
	})
	holds(t, 5*time.Second, "the nodes of another CA get no entry, and n4 is not in the configuration", func() bool {
		for _, svc := range []string{"while-away", "after"} {
			if _, ok := serviceOn(back, svc); ok {
				t.Logf("%s, back with a certificate of another CA, got %s", id, svc)
				return false
			}
		}
		if newcomer.Node.AppliedIndex() != 0 || len(newcomer.FSM.Services()) != 0 {
			t.Logf("n4 got data: applied index %d", newcomer.Node.AppliedIndex())
			return false
		}
		for _, m := range leader.Node.Members() {
			if m.ID == "n4" && m.Suffrage != "none" {
				t.Logf("n4 is in the configuration as a %s", m.Suffrage)
				return false
			}
		}
		return true
	})
}

// TestGossipRefusesAWrongKey: with a gossip key, a node with another key, or
// none, is never a member, while a node with the key joins.
func TestGossipRefusesAWrongKey(t *testing.T) {
	key := newGossipKey(t)
	c := newTestCluster(t, 1, fileConfig(t, ""), secured(nil, key))
	first := c.leader(1)
	c.start("friend", 0, t.TempDir(), secured(nil, key))
	strangers := []*Agent{
		c.start("wrong-key", 0, t.TempDir(), secured(nil, newGossipKey(t))),
		c.start("no-key", 0, t.TempDir(), secured(nil, nil)),
	}
	member := func(a *Agent, id string) bool {
		for _, m := range a.Node.Members() {
			if m.ID == id {
				return true
			}
		}
		return false
	}
	waitFor(t, 30*time.Second, "the node with the key in gossip", func() bool { return member(first, "friend") })
	holds(t, 5*time.Second, "the nodes without the key stay out", func() bool {
		for _, s := range strangers {
			if member(first, s.Node.ID()) || member(s, first.Node.ID()) {
				t.Logf("%s and %s know each other", s.Node.ID(), first.Node.ID())
				return false
			}
		}
		return true
	})
}

// TestAgentProcessTakesTLSFromFlags starts a node as a process with the
// -tls-* flags, -verify-incoming and -gossip-key-file, as an operator
// would: it serves https only to clients with a certificate of its CA.
func TestAgentProcessTakesTLSFromFlags(t *testing.T) {
	ca := testcert.NewCA(t, "cluster CA")
	files := ca.Issue(t, "n1")
	dir := t.TempDir()
	keyFile := filepath.Join(dir, "gossip.key")
	key := mustCLI(t, cli.ExitOK, "keygen")
	if err := os.WriteFile(keyFile, []byte(key), 0o600); err != nil {
		t.Fatal(err)
	}
	addrs := freeAddrs(t, 3)
	p := &proc{id: "n1", dataDir: filepath.Join(dir, "n1"), logFile: filepath.Join(dir, "n1.log"),
		httpAddr: addrs[0], raft: addrs[1], gossipAddr: addrs[2],
		args: []string{"-bootstrap-expect", "1", "-tls-cert", files.Cert, "-tls-key", files.Key, "-tls-ca", files.CA,
			"-verify-incoming", "-gossip-key-file", keyFile}}
	startProc(t, p)
	cert := ca.Certificate(t, "operator")
	hc := httpsClient(t, ca, &cert)
	base := "https://" + p.httpAddr
	waitFor(t, 30*time.Second, "the node ready over https", func() bool {
		status, err := send(hc, http.MethodGet, base+"/readyz", "")
		return err == nil && status == http.StatusOK
	})
	if status, err := send(hc, http.MethodPost, base+"/v1/heartbeat/job", ""); err != nil || status != http.StatusOK {
		t.Fatalf("heartbeat over https: %d, %v", status, err)
	}
	if status, err := send(httpsClient(t, ca, nil), http.MethodGet, base+"/v1/services", ""); err == nil {
		t.Fatalf("a client without a certificate got %d; want the connection refused", status)
	}
	if status, err := send(http.DefaultClient, http.MethodGet, "http://"+p.httpAddr+"/v1/services", ""); err == nil && status != http.StatusBadRequest {
		t.Fatalf("plain http got %d; want 400 or the connection refused", status)
	}
}
