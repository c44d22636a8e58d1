package httpapi_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/watchdog-ha/watchdog/cluster"
	"github.com/watchdog-ha/watchdog/httpapi"
)

// getBackup saves a backup through the API.
func getBackup(t *testing.T, url, tok string) []byte {
	t.Helper()
	resp, body := withBearer(t, "GET", url+"/v1/snapshot", "", tok)
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "application/octet-stream" {
		t.Fatalf("GET /v1/snapshot: %d %s %.200q", resp.StatusCode, resp.Header.Get("Content-Type"), body)
	}
	if _, err := cluster.InspectBackup(bytes.NewReader(body), nil); err != nil {
		t.Fatalf("the backup served does not check: %v", err)
	}
	return body
}

// putBackup restores body through the API; chunked hides its length.
func putBackup(t *testing.T, url, tok string, body []byte, chunked bool) (*http.Response, []byte) {
	t.Helper()
	var rd io.Reader = bytes.NewReader(body)
	if chunked {
		rd = io.MultiReader(rd) // not a type whose length net/http knows
	}
	req, err := http.NewRequest("PUT", url+"/v1/snapshot", rd)
	if err != nil {
		t.Fatal(err)
	}
	if tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	// Sent raw, the answer read while the body is still going out: a backup
	// over the cap is refused before it is read, and a client that only
	// reads after writing could see the closed connection's reset instead.
	var wire bytes.Buffer
	if err := req.Write(&wire); err != nil {
		t.Fatal(err)
	}
	resp, answer := sendWhileReading(t, url, wire.String())
	return resp, []byte(answer)
}

// reseal edits the snapshot inside a backup and gives the result a header
// and checksum that fit it, as a hand-made file could have.
func reseal(t *testing.T, backup []byte, edit func([]byte) []byte) []byte {
	t.Helper()
	line, rest, _ := bytes.Cut(backup, []byte("\n"))
	var header map[string]any
	if err := json.Unmarshal(line, &header); err != nil {
		t.Fatal(err)
	}
	snap := edit(bytes.Clone(rest[:int(header["size"].(float64))]))
	header["size"] = len(snap)
	line, _ = json.Marshal(header)
	out := append(append(line, '\n'), snap...)
	sum := sha256.Sum256(out)
	return append(out, fmt.Sprintf("{\"sha256\":%q}\n", hex.EncodeToString(sum[:]))...)
}

// TestBadBackupsAreRefusedAndChangeNothing sends damaged, truncated,
// foreign and oversized backups straight to the API (the CLI would refuse
// most before sending): each is a JSON 400 (413 over the cap) that leaves
// the Raft log, the snapshot store and the state alone; the good backup
// then restores.
func TestBadBackupsAreRefusedAndChangeNothing(t *testing.T) {
	const limit = 64 << 10
	srv, node, f := singleNode(t, httpapi.WithMaxSnapshotBody(limit), knownActions)
	for _, id := range []string{"a", "b"} {
		do(t, "POST", srv.URL+"/v1/heartbeat/"+id, "")
	}
	good := getBackup(t, srv.URL, "")
	do(t, "POST", srv.URL+"/v1/heartbeat/not-in-backup", "")
	header, rest, _ := bytes.Cut(good, []byte("\n"))
	trailerAt := bytes.LastIndex(good[:len(good)-1], []byte("\n")) + 1
	flipped := bytes.Clone(good)
	flipped[len(header)+10] ^= 0x01
	cases := []struct {
		name    string
		body    []byte
		chunked bool
		status  int
	}{
		{"empty", nil, false, 400},
		{"garbage", []byte("not a backup at all\n"), false, 400},
		{"header only", append(bytes.Clone(header), '\n'), false, 400},
		{"no trailer", good[:trailerAt], false, 400},
		{"truncated", good[:len(good)/2], true, 400},
		{"one bit flipped", flipped, false, 400},
		{"data after the checksum", append(bytes.Clone(good), "more\n"...), false, 400},
		{"another version", bytes.Replace(good, []byte(`"version":1`), []byte(`"version":9`), 1), false, 400},
		{"checksum line garbage", append(good[:trailerAt:trailerAt], "{\"sha256\":\"00\"}\n"...), false, 400},
		{"a raw FSM snapshot", rest[:trailerAt-len(header)-1], false, 400},
		{"sealed, an id the API refuses", reseal(t, good, func(b []byte) []byte {
			return bytes.Replace(b, []byte(`"id":"a"`), []byte(`"id":"a/../b"`), 1)
		}), false, 400},
		{"sealed, a newer snapshot format", reseal(t, good, func(b []byte) []byte {
			return bytes.Replace(b, []byte(`{"v":2,`), []byte(`{"v":9,`), 1)
		}), false, 400},
		{"sealed, garbage for a snapshot", reseal(t, good, func([]byte) []byte { return []byte("{}{}") }), false, 400},
		{"over the cap", bytes.Repeat([]byte("x"), limit+1), false, 413},
		{"over the cap, chunked", bytes.Repeat([]byte("x"), limit+1), true, 413},
	}
	// Resealed unedited, a backup still checks: the sealed cases fail for their edits.
	if _, err := cluster.InspectBackup(bytes.NewReader(reseal(t, good, bytes.Clone)), httpapi.OfflineRestoreCheck()); err != nil {
		t.Fatalf("reseal without an edit broke the backup: %v", err)
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			index, snap := logIndex(t, node), node.Stats()["last_snapshot_index"]
			resp, body := putBackup(t, srv.URL, "", c.body, c.chunked)
			wantError(t, resp, body, c.status)
			t.Logf("%d %s", resp.StatusCode, body)
			if logIndex(t, node) != index || node.Stats()["last_snapshot_index"] != snap {
				t.Fatal("a refused backup reached Raft")
			}
			if _, ok := f.Service("not-in-backup"); !ok || f.Len() != 3 {
				t.Fatal("a refused backup changed the state")
			}
		})
	}
	resp, body := putBackup(t, srv.URL, "", good, true)
	var answer struct {
		Restored bool
		Backup   cluster.BackupInfo
	}
	if resp.StatusCode != 200 || json.Unmarshal(body, &answer) != nil || !answer.Restored || answer.Backup.Services != 2 {
		t.Fatalf("restore of the good backup: %d %s", resp.StatusCode, body)
	}
	if _, ok := f.Service("not-in-backup"); ok || f.Len() != 2 {
		t.Fatalf("after the restore: %d services, want the backup's 2", f.Len())
	}
	// The node goes on committing after it.
	poll(t, 10*time.Second, "a heartbeat committed after the restore", func() bool {
		r, _ := do(t, "POST", srv.URL+"/v1/heartbeat/after", "")
		return r.StatusCode == 200
	})
}

func TestBackupsNeedTheAPIToken(t *testing.T) {
	srv, node, f := singleNode(t, httpapi.WithAPIToken(apiToken), httpapi.WithPingToken(pingToken), knownActions)
	withBearer(t, "POST", srv.URL+"/v1/heartbeat/svc", "", pingToken)
	good := getBackup(t, srv.URL, apiToken)
	for _, tok := range []string{"", "wrong", pingToken, strings.ToUpper(apiToken)} {
		resp, body := withBearer(t, "GET", srv.URL+"/v1/snapshot", "", tok)
		wantUnauthorized(t, resp, body)
		index := logIndex(t, node)
		withBearer(t, "POST", srv.URL+"/v1/heartbeat/later", "", pingToken)
		before := logIndex(t, node)
		resp, body = putBackup(t, srv.URL, tok, good, false)
		wantUnauthorized(t, resp, body)
		if _, ok := f.Service("later"); !ok || logIndex(t, node) != before || before == index {
			t.Fatal("a restore without the token changed something")
		}
	}
	if resp, body := putBackup(t, srv.URL, apiToken, good, false); resp.StatusCode != 200 {
		t.Fatalf("restore with the token: %d %s", resp.StatusCode, body)
	}
	if _, ok := f.Service("later"); ok {
		t.Fatal("the restore answered 200 but the state is not the backup's")
	}
}
