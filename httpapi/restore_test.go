package httpapi_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"strings"
	"testing"
	"time"
)

// resealHeader sets fields of a backup's header line, as a hand-made file
// could, and gives the result the checksum that fits it. Numbers are
// written exactly (a float64 would round 2^64-5).
func resealHeader(t *testing.T, backup []byte, set map[string]string) []byte {
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
	for k, v := range set {
		header[k] = json.RawMessage(v)
	}
	line, err = json.Marshal(header)
	if err != nil {
		t.Fatal(err)
	}
	out := append(append(line, '\n'), rest[:size]...)
	sum := sha256.Sum256(out)
	return append(out, fmt.Sprintf("{\"sha256\":%q}\n", hex.EncodeToString(sum[:]))...)
}

// snapshotIndex is the index of the node's latest snapshot.
func snapshotIndex(t *testing.T, stats map[string]string) uint64 {
	t.Helper()
	n, err := strconv.ParseUint(stats["last_snapshot_index"], 10, 64)
	if err != nil {
		t.Fatalf("last_snapshot_index: %v", err)
	}
	return n
}

// TestRestoreTakesTheClustersOwnIndex restores backups whose headers name
// indexes and terms at the edges, checksums recomputed: the restore lands
// at the node's own next index whatever the header says, a header beyond
// any Raft index or term is refused with a JSON 400 that changes nothing,
// and the node answers every one in time and commits heartbeats after it.
func TestRestoreTakesTheClustersOwnIndex(t *testing.T) {
	srv, node, f := singleNode(t, knownActions)
	do(t, "POST", srv.URL+"/v1/heartbeat/a", "")
	good := getBackup(t, srv.URL, "")
	u := func(n uint64) string { return strconv.FormatUint(n, 10) }
	cases := []struct {
		name   string
		set    map[string]string
		status int
	}{
		{"index 0", map[string]string{"index": "0"}, 200},
		{"index far ahead", map[string]string{"index": u(1 << 40)}, 200},
		{"index 2^63-1", map[string]string{"index": u(math.MaxInt64)}, 200},
		{"term 2^63-1", map[string]string{"term": u(math.MaxInt64)}, 200},
		{"index 2^63", map[string]string{"index": u(1 << 63)}, 400},
		{"index 2^64-5", map[string]string{"index": u(math.MaxUint64 - 4)}, 400},
		{"index 2^64-1", map[string]string{"index": u(math.MaxUint64)}, 400},
		{"term 2^64-1", map[string]string{"term": u(math.MaxUint64)}, 400},
		{"index 2^64", map[string]string{"index": "18446744073709551616"}, 400},
		{"index negative", map[string]string{"index": "-1"}, 400},
		{"index fraction", map[string]string{"index": "1.5"}, 400},
		{"node with an escape", map[string]string{"node": `"n1\u001b[2J"`}, 400},
		{"node too long", map[string]string{"node": `"` + strings.Repeat("n", 200) + `"`}, 400},
		{"size beyond the file", map[string]string{"size": u(math.MaxInt64)}, 400},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			do(t, "POST", srv.URL+"/v1/heartbeat/b", "")
			last := logIndex(t, node)
			snap := snapshotIndex(t, node.Stats())
			start := time.Now()
			resp, body := putBackup(t, srv.URL, "", resealHeader(t, good, c.set), false)
			if took := time.Since(start); took > time.Minute {
				t.Fatalf("the restore answered after %s", took)
			}
			if c.status != 200 {
				wantError(t, resp, body, c.status)
				if logIndex(t, node) != last || snapshotIndex(t, node.Stats()) != snap {
					t.Fatal("a refused backup reached Raft")
				}
				if _, ok := f.Service("b"); !ok {
					t.Fatal("a refused backup changed the state")
				}
				return
			}
			if resp.StatusCode != 200 {
				t.Fatalf("restore: %d %s", resp.StatusCode, body)
			}
			// Raft installs it at its last index + 1, then commits a no-op.
			if got := snapshotIndex(t, node.Stats()); got != last+1 {
				t.Fatalf("the restore's snapshot is at index %d, want the node's own next index %d", got, last+1)
			}
			if _, ok := f.Service("b"); ok {
				t.Fatal("the restore answered 200 but the state is not the backup's")
			}
			poll(t, 10*time.Second, "a heartbeat committed after the restore", func() bool {
				r, _ := do(t, "POST", srv.URL+"/v1/heartbeat/after", "")
				return r.StatusCode == 200
			})
			if got := logIndex(t, node); got > last+100 {
				t.Fatalf("after the restore the log is at %d, from %d", got, last)
			}
		})
	}
}

// TestRestoreHoldsEveryRecordToTheAPIsRules restores backups sealed with
// records PUT /v1/services/{id} would refuse: each is refused whole, with
// a JSON 400 naming the first bad record and its problem, and changes
// nothing.
func TestRestoreHoldsEveryRecordToTheAPIsRules(t *testing.T) {
	srv, node, f := singleNode(t, knownActions)
	if resp, got := do(t, "PUT", srv.URL+"/v1/services/svc",
		`{"timeout": "30s", "actions": ["page"], "on_recovered": ["page"], "description": "nightly"}`); resp.StatusCode != 201 {
		t.Fatalf("PUT: %d %s", resp.StatusCode, got)
	}
	do(t, "POST", srv.URL+"/v1/heartbeat/beats", "")
	good := getBackup(t, srv.URL, "")
	// The fsm snapshot writes durations in nanoseconds; the defaults'
	// timeout (10s) differs from svc's (30s).
	edit := func(old, new string) func([]byte) []byte {
		return func(b []byte) []byte {
			if !bytes.Contains(b, []byte(old)) {
				t.Fatalf("%s is not in the snapshot: %s", old, b)
			}
			return bytes.Replace(b, []byte(old), []byte(new), 1)
		}
	}
	const svcTimeout, defTimeout = `"timeout":30000000000`, `"timeout":10000000000`
	cases := []struct {
		name  string
		edit  func([]byte) []byte
		wants []string // in the error
	}{
		{"negative timeout", edit(svcTimeout, `"timeout":-1000000000`), []string{`service "svc"`, "timeout", "positive"}},
		{"1ns timeout", edit(svcTimeout, `"timeout":1`), []string{`service "svc"`, "timeout", "too short"}},
		{"timeout too long", edit(svcTimeout, `"timeout":3000000000000000`), []string{`service "svc"`, "timeout", "too long"}},
		{"undefined action", edit(`"actions":["page"]`, `"actions":["rm-rf"]`), []string{`service "svc"`, "unknown action", "rm-rf"}},
		{"undefined recovery action", edit(`"on_recovered":["page"]`, `"on_recovered":["nope"]`), []string{`service "svc"`, "on_recovered"}},
		{"control character", edit(`"nightly"`, `"night\u001bly"`), []string{`service "svc"`, "description", "U+001B"}},
		{"bidi override", edit(`"nightly"`, `"night\u202ely"`), []string{`service "svc"`, "description", "U+202E"}},
		{"zero-width space", edit(`"nightly"`, `"night\u200bly"`), []string{`service "svc"`, "description", "U+200B"}},
		{"bad tag", edit(`"description":"nightly"`, `"description":"nightly","tags":["a b"]`), []string{`service "svc"`, "tags"}},
		{"bad id", edit(`"id":"beats"`, `"id":"a/../b"`), []string{`service "a/../b"`, "invalid id"}},
		{"negative default timeout", edit(defTimeout, `"timeout":-1`), []string{"defaults", "timeout"}},
		{"undefined default action", edit(`"actions":["log"]`, `"actions":["nope"]`), []string{"defaults", "unknown action"}},
		{"negative grace", edit(svcTimeout, svcTimeout+`,"grace":-5`), []string{`service "svc"`, "grace"}},
		{"max_repeats beyond bound", edit(svcTimeout, svcTimeout+`,"max_repeats":999999`), []string{`service "svc"`, "max_repeats"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			last := logIndex(t, node)
			resp, body := putBackup(t, srv.URL, "", reseal(t, good, c.edit), false)
			wantError(t, resp, body, 400)
			var refusal struct{ Error string }
			_ = json.Unmarshal(body, &refusal)
			for _, want := range c.wants {
				if !strings.Contains(refusal.Error, want) {
					t.Errorf("the refusal %q does not say %q", refusal.Error, want)
				}
			}
			if logIndex(t, node) != last {
				t.Fatal("a refused backup reached Raft")
			}
			if s, ok := f.Service("svc"); !ok || s.Def.Timeout != 30*time.Second || f.Len() != 2 {
				t.Fatal("a refused backup changed the state")
			}
		})
	}
	// Resealed unedited, the backup restores: each case failed for its edit.
	if resp, body := putBackup(t, srv.URL, "", reseal(t, good, bytes.Clone), false); resp.StatusCode != 200 {
		t.Fatalf("the good backup, resealed: %d %s", resp.StatusCode, body)
	}
}
