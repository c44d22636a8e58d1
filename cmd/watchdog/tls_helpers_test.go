package main

import (
	"crypto/rand"
	"crypto/tls"
	"net/http"
	"testing"
	"time"

	"github.com/watchdog-ha/watchdog/cluster"
	"github.com/watchdog-ha/watchdog/internal/testcert"
)

// nodeTLS is a node's TLS material: a certificate for 127.0.0.1 signed by
// ca, and ca to trust. The nodes of a test may all share one.
func nodeTLS(t *testing.T, ca *testcert.CA, name string, verifyIncoming bool) *cluster.TLS {
	t.Helper()
	f := ca.Issue(t, name)
	tl, err := cluster.LoadTLS(f.Cert, f.Key, f.CA)
	if err != nil {
		t.Fatal(err)
	}
	tl.VerifyIncoming = verifyIncoming
	return tl
}

// secured gives a node TLS material and a gossip key (either may be nil),
// as the -tls-* flags and gossip_key would.
func secured(tl *cluster.TLS, gossipKey []byte) tune {
	return func(cc *cluster.Config) { cc.TLS, cc.GossipKey = tl, gossipKey }
}

func newGossipKey(t *testing.T) []byte {
	t.Helper()
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		t.Fatal(err)
	}
	return key
}

// httpsClient trusts only ca and presents cert when one is given.
func httpsClient(t *testing.T, ca *testcert.CA, cert *tls.Certificate) *http.Client {
	t.Helper()
	c := &tls.Config{RootCAs: ca.Pool(), MinVersion: tls.VersionTLS12}
	if cert != nil {
		c.Certificates = []tls.Certificate{*cert}
	}
	tr := &http.Transport{TLSClientConfig: c, DisableKeepAlives: true}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: 20 * time.Second}
}

// holds polls cond for the whole of d and fails the test the first time it
// does not hold: for what must never happen.
func holds(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	for end := time.Now().Add(d); time.Now().Before(end); time.Sleep(50 * time.Millisecond) {
		if !cond() {
			t.Fatalf("%s: no longer true", what)
		}
	}
}
