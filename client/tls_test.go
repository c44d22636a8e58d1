package client_test

import (
	"context"
	"crypto/tls"
	"log/slog"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/watchdog-ha/watchdog/client"
	"github.com/watchdog-ha/watchdog/cluster"
	"github.com/watchdog-ha/watchdog/fsm"
	"github.com/watchdog-ha/watchdog/httpapi"
	"github.com/watchdog-ha/watchdog/internal/testcert"
)

// TestWithTLSConfigTalksHTTPS: with WithTLSConfig a host:port address is
// https and the node's certificate is checked against the given CA; a
// client trusting another CA gets nowhere.
func TestWithTLSConfigTalksHTTPS(t *testing.T) {
	ca := testcert.NewCA(t, "cluster CA")
	files := ca.Issue(t, "solo")
	tl, err := cluster.LoadTLS(files.Cert, files.Key, files.CA)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(nil)
	f := fsm.New()
	node, err := cluster.New(cluster.Config{NodeID: "solo", RaftAddr: "127.0.0.1:0", GossipAddr: "127.0.0.1:0",
		HTTPAddr: srv.Listener.Addr().String(), DataDir: t.TempDir(), BootstrapExpect: 1, FSM: f, TLS: tl})
	if err != nil {
		t.Fatal(err)
	}
	node.Start(func(context.Context, time.Time) {})
	srv.Config.Handler = httpapi.New(node, f, slog.New(slog.DiscardHandler))
	srv.TLS = tl.HTTPServerConfig()
	srv.StartTLS()
	t.Cleanup(func() {
		srv.Close()
		node.Close()
	})
	addr := srv.Listener.Addr().String()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	c, err := client.New([]string{addr}, client.WithTLSConfig(&tls.Config{RootCAs: ca.Pool()}))
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Ping(ctx, "over-tls"); err != nil {
		t.Fatalf("Ping over https: %v", err)
	}
	other := testcert.NewCA(t, "another CA")
	distrustful, err := client.New([]string{addr}, client.WithTLSConfig(&tls.Config{RootCAs: other.Pool()}),
		client.WithTimeout(2*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	if err := distrustful.Ping(ctx, "over-tls"); err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Fatalf("Ping trusting another CA: %v; want a certificate error", err)
	}
}
