// Package testnet is loopback addresses for tests: one that refuses every
// connection, to stand for a node that is down.
package testnet

import (
	"net"
	"testing"
)

// DeadAddr is a loopback address nothing listens on: connections to it are
// refused.
func DeadAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}
