package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"os"
	"slices"
	"syscall"
	"time"

	"github.com/watchdog-ha/watchdog/cluster"
	"github.com/watchdog-ha/watchdog/config"
	"github.com/watchdog-ha/watchdog/fsm"
	"github.com/watchdog-ha/watchdog/httpapi"
	"github.com/watchdog-ha/watchdog/watcher"
)

// Agent is one running watchdog node: the cluster node, its watcher and its
// HTTP server.
type Agent struct {
	Node    *cluster.Node
	FSM     *fsm.FSM
	HTTP    *http.Server
	Addr    string // the HTTP address actually bound
	dataDir string
	log     *slog.Logger
	served  chan error
	tempDir string
	tls     *cluster.TLS // nil: plain http
}

// URL is the base URL of the agent's HTTP API.
func (a *Agent) URL() string { return a.tls.Scheme() + "://" + a.Addr }

// healthTLS is how the agent's own health checks reach its API: nil for
// plain http.
func (a *Agent) healthTLS() *tls.Config {
	if a.tls == nil {
		return nil
	}
	return a.tls.ClientConfig()
}

// debugRoutes serves Go's profiler when enable_debug is set.
func debugRoutes(on bool) httpapi.Option {
	if !on {
		return func(*httpapi.Server) {}
	}
	return httpapi.WithDebug()
}

// tune adjusts the cluster configuration before the node starts; tests use
// it for shorter timeouts.
type tune func(*cluster.Config)

// StartAgent starts a node as cfg says. It returns once the node listens;
// the cluster forms in the background.
func StartAgent(cfg *config.AgentConfig, log *slog.Logger, tunes ...tune) (*Agent, error) {
	// Nothing this node logs, whoever logs it (a receiver's error, Raft,
	// the HTTP server), shows a secret of the configured actions.
	redact := watcher.NewRedactor(watcher.ActionSecrets(cfg.File.BuildActions(log)))
	log = slog.New(redact.Handler(log.Handler()))
	a := &Agent{FSM: fsm.New(), log: log, served: make(chan error, 1)}
	dataDir := cfg.DataDir
	if dataDir == "" && cfg.Dev {
		dir, err := os.MkdirTemp("", "watchdog-dev-")
		if err != nil {
			return nil, err
		}
		a.tempDir, dataDir = dir, dir
	}
	ln, err := listenAPI(cfg.HTTPAddr)
	if err != nil {
		a.removeTemp()
		return nil, err
	}
	a.Addr, a.dataDir = ln.Addr().String(), dataDir
	conns := httpapi.NewConnLimiter(cfg.File.MaxConnections)
	ln = conns.Listener(ln) // under TLS: a refused connection costs no handshake
	cc := clusterConfig(cfg, a.FSM, log, dataDir, a.Addr)
	for _, t := range tunes {
		t(&cc)
	}
	// The HTTP API serves with the same TLS material the node uses
	// (tests set it through a tune).
	if a.tls = cc.TLS; a.tls != nil {
		ln = tls.NewListener(ln, a.tls.HTTPServerConfig())
	}
	tokens := newTokenKeeper(cfg, dataDir, log)
	cc.OnSecretChange = tokens.changed
	a.Node, err = cluster.New(cc)
	if err != nil {
		ln.Close()
		a.removeTemp()
		return nil, err
	}
	apiToken := tokens.start(a.Node)
	w := newWatcher(cfg, a, log)
	metrics := newRegistry(a.FSM, cfg.File.ServiceMetrics)
	api := httpapi.New(a.Node, a.FSM, log.With("sys", "http"), httpapi.WithMetrics(metrics),
		httpapi.WithActions(slices.Collect(maps.Keys(cfg.File.Actions))),
		apiToken, httpapi.WithPingToken(string(cfg.File.PingToken)),
		httpapi.WithTimeouts(time.Duration(cfg.File.ReadTimeout), time.Duration(cfg.File.WriteTimeout)),
		httpapi.WithConfigParser(config.ParseApplied), debugRoutes(cfg.EnableDebug))
	metrics.MustRegister(a.Node.Collector(), w.Collector(), api.Collector(), newConfigCollector(a.Node))
	a.Node.Start(w.Run)
	a.HTTP = httpServer(cfg.File, api, log)
	a.HTTP.ConnState = conns.ConnState
	go func() { a.served <- a.HTTP.Serve(ln) }()
	log.Info("agent started", "node", cfg.NodeID, "http", a.Addr, "raft", a.Node.RaftAddr(),
		"gossip", a.Node.GossipAddr(), "data_dir", dataDir, "tls", a.tls != nil, "gossip_encrypted", cc.GossipKey != nil)
	return a, nil
}

// listenAPI binds the HTTP API's address; a taken port says which flag
// moves it.
func listenAPI(addr string) (net.Listener, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		if errors.Is(err, syscall.EADDRINUSE) {
			// 8080, the default, is also make cluster's load balancer.
			return nil, fmt.Errorf("listen on %s: %w: give this node another address with -http-addr", addr, err)
		}
		return nil, fmt.Errorf("listen on %s: %w", addr, err)
	}
	return ln, nil
}

// newWatcher is the leader's duty of a's node, as cfg configures it.
func newWatcher(cfg *config.AgentConfig, a *Agent, log *slog.Logger) *watcher.Watcher {
	var desired *fsm.Configure
	if !cfg.NoConfigFile {
		desired = cfg.File.Desired()
	}
	return watcher.New(watcher.Config{
		CheckInterval: time.Duration(cfg.File.CheckInterval),
		Actions:       cfg.File.BuildActions(log),
		Desired:       desired,
		Logger:        log.With("sys", "watcher"),
		NodeID:        cfg.NodeID,
	}, a.FSM, a.Node)
}

// clusterConfig is the node's part of cfg; httpAddr is the address bound.
func clusterConfig(cfg *config.AgentConfig, f *fsm.FSM, log *slog.Logger, dataDir, httpAddr string) cluster.Config {
	expect := cfg.BootstrapExpect
	if cfg.Dev && expect == 0 {
		expect = 1
	}
	file := cfg.File
	return cluster.Config{
		NodeID: cfg.NodeID, RaftAddr: cfg.RaftAddr, GossipAddr: cfg.GossipAddr, HTTPAddr: httpAddr,
		DataDir: dataDir, LogStore: cfg.LogStore, Join: cfg.Join, BootstrapExpect: expect, FSM: f, Logger: log,
		ReapAfter: time.Duration(file.DeadServerReapAfter),
		MaxBatch:  file.BatchSize, BatchWindow: time.Duration(file.BatchWindow),
		// Forwarded heartbeats carry the ping token: the leader wants it too.
		ForwardToken: string(file.PingToken),
		MaxServices:  file.MaxServices, RefuseUnknown: !file.AutoRegister,
		Configured: slices.Collect(maps.Keys(file.Services)),
		TLS:        cfg.TLS, GossipKey: cfg.GossipKey, ClusterSecret: cfg.ClusterSecret,
		Local: cfg.Local(),
	}
}

// httpServer serves api with the file's limits against slow clients.
func httpServer(file *config.FileConfig, api http.Handler, log *slog.Logger) *http.Server {
	return &http.Server{
		Handler:           api,
		ReadHeaderTimeout: time.Duration(file.ReadHeaderTimeout),
		IdleTimeout:       time.Duration(file.IdleTimeout),
		// Headers are a token and a few lines: 64 KiB is plenty, and a
		// client cannot make a node hold the default 1 MiB per connection.
		MaxHeaderBytes: 64 << 10,
		// Refused TLS handshakes (a client without a good certificate)
		// are logged here, not on the process's stderr.
		ErrorLog: slog.NewLogLogger(log.With("sys", "http").Handler(), slog.LevelWarn),
	}
}

// Close stops taking requests, then stops the node (and with it the
// watcher). It does not leave the cluster: a restart keeps the node's place.
func (a *Agent) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	errs := []error{a.HTTP.Shutdown(ctx)}
	if err := <-a.served; !errors.Is(err, http.ErrServerClosed) {
		errs = append(errs, err)
	}
	errs = append(errs, a.Node.Close())
	a.removeTemp()
	return errors.Join(errs...)
}

func (a *Agent) removeTemp() {
	if a.tempDir != "" {
		os.RemoveAll(a.tempDir)
	}
}
