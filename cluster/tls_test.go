package cluster

import (
	"crypto/tls"
	"crypto/x509"
	"io"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"

	"github.com/watchdog-ha/watchdog/internal/testcert"
)

func loadTestTLS(t *testing.T, ca *testcert.CA, name string) *TLS {
	t.Helper()
	f := ca.Issue(t, name)
	tl, err := LoadTLS(f.Cert, f.Key, f.CA)
	if err != nil {
		t.Fatal(err)
	}
	return tl
}

func tlsTransport(t *testing.T, layer raft.StreamLayer) *raft.NetworkTransport {
	t.Helper()
	tr := raft.NewNetworkTransportWithConfig(&raft.NetworkTransportConfig{Stream: layer, MaxPool: 1, Timeout: 10 * time.Second,
		Logger: hclog.NewNullLogger()})
	t.Cleanup(func() { tr.Close() })
	return tr
}

// TestRaftStreamLayerRefusesStrangers runs a Raft transport over the TLS
// stream layer and sends it a RequestVote from a peer of the same CA (which
// gets its answer) and from strangers: one whose certificate another CA
// signed, one that presents none, one with a client-only certificate of the
// CA (an operator's), and plain TCP. Not one of the strangers'
// requests reaches Raft. Made non-verifying, the layer would hand them on.
func TestRaftStreamLayerRefusesStrangers(t *testing.T) {
	ca, other := testcert.NewCA(t, "cluster CA"), testcert.NewCA(t, "another CA")
	server, err := newTLSStreamLayer("127.0.0.1:0", nil, loadTestTLS(t, ca, "n1"))
	if err != nil {
		t.Fatal(err)
	}
	target := raft.ServerAddress(server.Addr().String())
	var reached atomic.Int32
	go func() {
		for rpc := range tlsTransport(t, server).Consumer() {
			reached.Add(1)
			rpc.Respond(&raft.RequestVoteResponse{Term: 7}, nil)
		}
	}()
	vote := func(layer raft.StreamLayer) (*raft.RequestVoteResponse, error) {
		var resp raft.RequestVoteResponse
		err := tlsTransport(t, layer).RequestVote("n1", target, &raft.RequestVoteRequest{Term: 7}, &resp)
		return &resp, err
	}
	clientLayer := func(tl *TLS, client *tls.Config) raft.StreamLayer {
		l, err := newTLSStreamLayer("127.0.0.1:0", nil, tl)
		if err != nil {
			t.Fatal(err)
		}
		if client != nil {
			l.client = client
		}
		return l
	}

	if resp, err := vote(clientLayer(loadTestTLS(t, ca, "n2"), nil)); err != nil || resp.Term != 7 {
		t.Fatalf("a peer of the same CA: %+v, %v; want the answer", resp, err)
	}
	opFiles := ca.IssueFor(t, "operator", x509.ExtKeyUsageClientAuth)
	operator, err := tls.LoadX509KeyPair(opFiles.Cert, opFiles.Key)
	if err != nil {
		t.Fatal(err)
	}
	strangers := map[string]raft.StreamLayer{
		"certificate of another CA": clientLayer(loadTestTLS(t, other, "stranger"), nil),
		"no client certificate": clientLayer(loadTestTLS(t, ca, "n3"),
			&tls.Config{RootCAs: ca.Pool(), MinVersion: tls.VersionTLS12}),
		"a client-only certificate of the CA": clientLayer(loadTestTLS(t, ca, "n3"),
			&tls.Config{RootCAs: ca.Pool(), MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{operator}}),
	}
	for name, layer := range strangers {
		if resp, err := vote(layer); err == nil {
			t.Errorf("%s: got an answer %+v; want the connection refused", name, resp)
		}
	}
	plain, err := raft.NewTCPTransport("127.0.0.1:0", nil, 1, 10*time.Second, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	defer plain.Close()
	var resp raft.RequestVoteResponse
	if err := plain.RequestVote("n1", target, &raft.RequestVoteRequest{Term: 7}, &resp); err == nil {
		t.Errorf("plain TCP: got an answer %+v; want the connection refused", resp)
	}
	if n := reached.Load(); n != 1 {
		t.Errorf("%d requests reached Raft; want 1, the peer's", n)
	}
}

// TestRaftTLSConnectionWithoutHandshakeIsDropped: a client that connects
// and sends something that is not TLS gets not one byte of Raft back.
func TestRaftTLSConnectionWithoutHandshakeIsDropped(t *testing.T) {
	ca := testcert.NewCA(t, "cluster CA")
	server, err := newTLSStreamLayer("127.0.0.1:0", nil, loadTestTLS(t, ca, "n1"))
	if err != nil {
		t.Fatal(err)
	}
	tr := tlsTransport(t, server)
	conn, err := net.Dial("tcp", server.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	// The start of a RequestVote as the plain transport sends it: the
	// type byte, then a msgpack map.
	if _, err := conn.Write([]byte{1, 0x81, 0xa4, 'T', 'e', 'r', 'm', 7}); err != nil {
		t.Fatal(err)
	}
	if err := conn.SetReadDeadline(time.Now().Add(30 * time.Second)); err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(conn)
	if len(b) > 0 && b[0] != 0x15 { // 0x15: a TLS alert record, at most
		t.Errorf("read %q from the Raft port; want nothing but a TLS alert", b)
	}
	if ne, ok := err.(net.Error); ok && ne.Timeout() {
		t.Errorf("the connection stayed open: %v", err)
	}
	select {
	case rpc := <-tr.Consumer():
		t.Errorf("an RPC reached Raft: %T", rpc.Command)
	default:
	}
}
