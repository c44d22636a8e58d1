package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"strconv"
	"testing"
	"time"
)

// withHeaderIndex rewrites the index in a backup's header, as a hand-made
// file could, and recomputes the checksum.
func withHeaderIndex(t *testing.T, backup []byte, index string) []byte {
	t.Helper()
	line, rest, _ := bytes.Cut(backup, []byte("\n"))
	var header map[string]json.RawMessage
	if err := json.Unmarshal(line, &header); err != nil {
		t.Fatal(err)
	}
	size, err := strconv.Atoi(string(header["size"]))
	if err != nil {
		t.Fatal(err)
	}
	header["index"] = json.RawMessage(index)
	if line, err = json.Marshal(header); err != nil {
		t.Fatal(err)
	}
	out := append(append(line, '\n'), rest[:size]...)
	sum := sha256.Sum256(out)
	return append(out, fmt.Sprintf("{\"sha256\":%q}\n", hex.EncodeToString(sum[:]))...)
}

// putWithin sends a PUT that must be answered within d (the reproduction
// of a restore at index 2^64-5 was never answered).
func putWithin(t *testing.T, d time.Duration, url string, body []byte) (int, string) {
	t.Helper()
	req, err := http.NewRequest("PUT", url, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := (&http.Client{Timeout: d}).Do(req)
	if err != nil {
		t.Fatalf("PUT %s: no answer within %s: %v", url, d, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// lastLogIndex is the index of the last entry in a's Raft log.
func lastLogIndex(t *testing.T, a *Agent) uint64 {
	t.Helper()
	n, err := strconv.ParseUint(a.Node.Stats()["last_log_index"], 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// everyNodeCommits waits until a heartbeat through each running node is
// committed and applied on all of them.
func everyNodeCommits(t *testing.T, c *testCluster, id string) {
	t.Helper()
	for _, a := range c.running() {
		waitFor(t, 30*time.Second, "a heartbeat through "+a.Node.ID()+" committed", func() bool {
			return heartbeat(t, a, id) == 200
		})
	}
	waitFor(t, 30*time.Second, id+" applied on every node", func() bool {
		for _, a := range c.running() {
			if _, ok := serviceOn(a, id); !ok {
				return false
			}
		}
		return true
	})
}

// TestDoctoredBackupIndexCannotStopACluster sends backups whose headers
// name indexes at the edges (checksums recomputed) to a real three-node
// cluster and to a single node, through a follower where there is one:
// those past 2^63 are refused with a JSON 400, the others restore at the
// cluster's own next index; every node then commits heartbeats, its log
// stays where it was, and after every node restarts the cluster forms
// again and commits.
func TestDoctoredBackupIndexCannotStopACluster(t *testing.T) {
	for _, nodes := range []int{3, 1} {
		t.Run(fmt.Sprintf("%d nodes", nodes), func(t *testing.T) {
			c := newTestCluster(t, nodes, fileConfig(t, "defaults: {timeout: 10m}\n"))
			leader := c.leader(nodes)
			via := leader
			if nodes > 1 {
				via = c.follower(leader)
			}
			heartbeat(t, via, "saved")
			code, good := call(t, "GET", "http://"+via.Addr+"/v1/snapshot", "", "")
			if code != 200 {
				t.Fatalf("backup: %d %s", code, good)
			}
			u := func(n uint64) string { return strconv.FormatUint(n, 10) }
			for _, c2 := range []struct {
				index  string
				status int
			}{
				{u(math.MaxUint64 - 4), 400},
				{u(math.MaxUint64), 400},
				{u(1 << 63), 400},
				{u(math.MaxInt64), 200},
				{u(math.MaxInt64 - 1), 200},
				{"0", 200},
			} {
				before := lastLogIndex(t, c.leader(nodes))
				code, body := putWithin(t, time.Minute, "http://"+via.Addr+"/v1/snapshot", withHeaderIndex(t, []byte(good), c2.index))
				if code != c2.status {
					t.Fatalf("restore with index %s: %d %s, want %d", c2.index, code, body, c2.status)
				}
				everyNodeCommits(t, c, "after-"+c2.index)
				for _, a := range c.running() {
					if got := lastLogIndex(t, a); got > before+100 {
						t.Fatalf("after a restore with index %s, %s's log is at %d (from %d)", c2.index, a.Node.ID(), got, before)
					}
				}
			}
			// Every node restarts on what the restores left, and the
			// cluster commits again.
			type place struct{ id, dir, raft, gossip, http string }
			var places []place
			for _, a := range c.running() {
				places = append(places, place{a.Node.ID(), a.dataDir, a.Node.RaftAddr(), a.Node.GossipAddr(), a.Addr})
				c.stop(a)
			}
			for _, p := range places {
				c.startAt(p.id, p.dir, p.raft, p.gossip, p.http)
			}
			c.leader(nodes)
			everyNodeCommits(t, c, "after-restart")
			if _, ok := serviceOn(c.leader(nodes), "saved"); !ok {
				t.Fatal("the restored state did not survive the restart")
			}
		})
	}
}
