package fsm

import (
	"bytes"
	"io"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/hashicorp/raft"
)

func TestIncidentSaysWhyItOpened(t *testing.T) {
	a := newApplier(t)
	a.apply(Configure{At: 0, Defaults: Definition{Timeout: time.Second, Actions: []string{"log"}}})

	a.apply(Heartbeat{At: 100, IDs: []string{"rsync", "cron", "quiet"}})
	a.apply(Ping{At: 200, Service: "rsync", Signal: SignalFail, ExitStatus: 23, Note: "rsync: disk full (exit 23)\n"})
	a.apply(Ping{At: 200, Service: "cron", Signal: SignalFail, Note: "job\tfailed"})
	if inc := current(a, "rsync"); inc.Reason != ReasonExitStatus || inc.ExitStatus != 23 || inc.Note != "rsync: disk full (exit 23)" {
		t.Errorf("exit status 23: incident %+v", inc)
	}
	if inc := current(a, "cron"); inc.Reason != ReasonFail || inc.ExitStatus != 0 || inc.Note != "job failed" {
		t.Errorf("fail: incident %+v", inc)
	}

	// A timeout carries the note of the last contact if that was a ping...
	a.apply(Ping{At: 300, Service: "rsync", Signal: SignalSuccess, Note: "rsync: 3 GB sent"})
	if inc := current(a, "rsync"); inc.Resolved != 300 || inc.RecoveryNote != "rsync: 3 GB sent" || inc.Note != "rsync: disk full (exit 23)" {
		t.Errorf("recovered by a ping: incident %+v", inc)
	}
	a.apply(Incidents{At: 2000, Opens: []Open{{Service: "rsync", LastSeen: 300}}})
	if inc := current(a, "rsync"); inc.Reason != ReasonTimeout || inc.Note != "rsync: 3 GB sent" {
		t.Errorf("timeout after a ping with a note: incident %+v", inc)
	}
	// ...and none if a plain heartbeat came after it.
	a.apply(Ping{At: 2100, Service: "quiet", Signal: SignalStart, Note: "starting"})
	a.apply(Heartbeat{At: 2200, IDs: []string{"quiet"}})
	a.apply(Incidents{At: 4000, Opens: []Open{{Service: "quiet", LastSeen: 2200}}})
	if inc := current(a, "quiet"); inc.Reason != ReasonTimeout || inc.Note != "" {
		t.Errorf("timeout after a plain heartbeat: incident %+v", inc)
	}

	restored := New()
	if err := restored.Restore(io.NopCloser(bytes.NewReader(persist(t, a.f)))); err != nil {
		t.Fatal(err)
	}
	assertSameState(t, a.f, restored)
}

// current is a service's latest incident.
func current(a *applier, id string) Incident {
	a.t.Helper()
	s := a.service(id)
	if s.Current() == nil {
		a.t.Fatalf("%s has no incident", id)
	}
	return *s.Current()
}

func TestIncidentNoteIsOneBoundedPrintableLine(t *testing.T) {
	for in, want := range map[string]string{
		"":                               "",
		"  ok \n":                        "ok",
		"a\x00b\x1b[31mc\x7f":            "ab[31mc",
		"evil\u202eoverride\u200bzero":   "eviloverridezero",
		"bad \xff utf8":                  "bad \uFFFD utf8",
		"line one\r\nline two\ttabbed\n": "line one  line two tabbed",
	} {
		if got := incidentNote(in); got != want {
			t.Errorf("incidentNote(%q) = %q, want %q", in, got, want)
		}
	}
	long := incidentNote(strings.Repeat("é", MaxIncidentNote))
	if len(long) > MaxIncidentNote || !utf8.ValidString(long) || len(long) < MaxIncidentNote-1 {
		t.Errorf("a long note became %d bytes (valid UTF-8: %v), want at most %d, cut at a character",
			len(long), utf8.ValidString(long), MaxIncidentNote)
	}
}

// Entries and snapshots as builds before reasons were recorded wrote them,
// spelled out byte for byte: the entries still decode, and applying them
// gives the incidents their reasons; the snapshot restores, its incidents
// without reasons.
func TestOldEncodingsStillDecode(t *testing.T) {
	entries := []string{
		"\x01\x01" + "\xc8\x01\x01\x03job", // Heartbeat{At: 100, IDs: [job]}
		"\x0b\x01" + `{"at":200,"service":"job","signal":"fail","exit_status":23,"note":"disk full"}`,
		"\x0b\x01" + `{"at":300,"service":"job","signal":"success","note":"ok again"}`,
		"\x03\x01" + `{"at":5000000000,"opens":[{"service":"job","last_seen":300}]}`,
	}
	f := New()
	for i, e := range entries {
		if _, err := Decode([]byte(e)); err != nil {
			t.Fatalf("entry %d: %v", i+1, err)
		}
		if resp := f.Apply(&raft.Log{Index: uint64(i + 1), Type: raft.LogCommand, Data: []byte(e)}); resp != nil {
			switch resp.(type) {
			case Opened, Recoveries:
			default:
				t.Fatalf("entry %d: %v", i+1, resp)
			}
		}
	}
	s, _ := f.Service("job")
	if len(s.Incidents) != 2 {
		t.Fatalf("incidents = %+v, want two", s.Incidents)
	}
	first, second := s.Incidents[0], s.Incidents[1]
	if first.Reason != ReasonExitStatus || first.ExitStatus != 23 || first.Note != "disk full" || first.RecoveryNote != "ok again" {
		t.Errorf("first incident %+v", first)
	}
	if second.Reason != ReasonTimeout || second.Note != "ok again" {
		t.Errorf("second incident %+v", second)
	}

	old := `{"v":2,"defaults":{"timeout":10000000000,"actions":["log"]},"count":1,"seq":3}
{"id":"job","status":"down","last_seen":200,"incidents":[{"id":"2-0","opened":200,"last_seen":200,"actions":[{"action":"log","event":"down","owed":200,"state":"done","attempts":1,"finished":210}],"notified":200}]}
`
	restored := New()
	if err := restored.Restore(io.NopCloser(strings.NewReader(old))); err != nil {
		t.Fatalf("restore a snapshot of the previous build: %v", err)
	}
	s, _ = restored.Service("job")
	if inc := s.Current(); inc == nil || inc.ID != "2-0" || inc.Reason != "" || inc.Note != "" {
		t.Errorf("restored incident %+v, want 2-0 without reason or note", inc)
	}
}
