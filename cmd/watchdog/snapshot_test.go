package main

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/watchdog-ha/watchdog/cli"
	"github.com/watchdog-ha/watchdog/fsm"
)

// restoredView is what a backup must carry of a service, compared across
// clusters.
type restoredView struct {
	Status    fsm.Status
	Source    fsm.Source
	LastSeen  int64
	Def       fsm.Definition
	Incidents []fsm.Incident
	Events    []fsm.Record
}

func viewOn(a *Agent, id string) (restoredView, bool) {
	s, ok := a.FSM.Service(id)
	if !ok {
		return restoredView{}, false
	}
	evs, _ := a.FSM.Events(id, 0)
	return restoredView{Status: s.Status, Source: s.Source, LastSeen: s.LastSeen, Def: *s.Def,
		Incidents: s.Incidents, Events: evs}, true
}

// snapshotSource builds the cluster a backup is taken of: services up, one
// down with an incident whose action is done, one paused, one defined
// through the API, and their histories. It returns the ids of the
// services that stay as they are for the rest of the test.
func snapshotSource(t *testing.T, src *testCluster) []string {
	t.Helper()
	leader := src.leader(3)
	base := "http://" + src.someFollower().Addr
	for _, id := range []string{"web-1", "web-2", "batch", "maint"} {
		if code := heartbeat(t, src.someFollower(), id); code != 200 {
			t.Fatalf("heartbeat %s: %d", id, code)
		}
	}
	if code, body := call(t, "PUT", base+"/v1/services/batch", `{"timeout": "1s", "description": "nightly"}`, ""); code != 200 {
		t.Fatalf("define batch: %d %s", code, body)
	}
	if code, body := call(t, "POST", base+"/v1/services/maint/pause", "", ""); code != 200 {
		t.Fatalf("pause maint: %d %s", code, body)
	}
	waitFor(t, 30*time.Second, "batch down, its log action done", func() bool {
		s, ok := serviceOn(leader, "batch")
		cur := s.Current()
		return ok && s.Status == fsm.StatusDown && cur != nil && len(cur.Actions) == 1 && cur.Actions[0].State == fsm.ActionDone
	})
	return []string{"web-1", "web-2", "batch", "maint", "from-file"}
}

// TestSnapshotRestoresIntoAFreshCluster saves a backup of a three-node
// cluster through a follower with the CLI, restores it with the CLI
// through a follower of a second, separate three-node cluster, and finds
// every service, status, incident and event on every node there. A
// service whose timeout had long passed by the restore gets a full
// timeout from the restore, not an instant false death.
func TestSnapshotRestoresIntoAFreshCluster(t *testing.T) {
	const quickTimeout = 5 * time.Second
	file := fileConfig(t, "defaults: {timeout: 10m}\nservices:\n  from-file: {timeout: 10m}\n")
	src := newTestCluster(t, 3, file)
	// Started now, so that its leadership is older than quick's timeout by
	// the restore: only the restore itself can then excuse quick's silence.
	dst := newTestCluster(t, 3, file)
	dstLeader := dst.leader(3)
	dstLed := time.Now()
	ids := snapshotSource(t, src)
	srcFollower := src.someFollower()
	if code, body := call(t, "PUT", "http://"+srcFollower.Addr+"/v1/services/quick",
		fmt.Sprintf(`{"timeout": %q}`, quickTimeout), ""); code/100 != 2 {
		t.Fatalf("define quick: %d %s", code, body)
	}
	heartbeat(t, srcFollower, "quick")
	path := filepath.Join(t.TempDir(), "backup.snap")
	out := mustCLI(t, cli.ExitOK, "snapshot", "save", "-addr", srcFollower.Addr, path)
	if !strings.Contains(out, "saved "+path+": ") || !strings.Contains(out, " 6 services (1 with an open incident)") {
		t.Fatalf("save said %q", out)
	}
	srcLeader := src.leader(3)
	want := viewsOn(t, srcLeader, ids)
	quickSeen := mustService(t, srcLeader, "quick").LastSeen

	waitFor(t, 30*time.Second, "quick's timeout and the fresh leader's grace both past", func() bool {
		return time.Since(time.Unix(0, quickSeen)) > quickTimeout+time.Second && time.Since(dstLed) > quickTimeout+time.Second
	})
	restoredAt := time.Now()
	out = mustCLI(t, cli.ExitOK, "snapshot", "restore", path, "-addr", dst.someFollower().Addr)
	if !strings.Contains(out, "restored "+path+": 6 services (1 with an open incident)") {
		t.Fatalf("restore said %q", out)
	}
	for _, a := range dst.running() {
		waitFor(t, 30*time.Second, a.Node.ID()+" has the backup's services", func() bool {
			for _, id := range ids {
				if got, _ := viewOn(a, id); !reflect.DeepEqual(got, want[id]) {
					return false
				}
			}
			return true
		})
	}
	// quick went silent long before the restore; the restored cluster gives
	// it a full timeout from the restore before declaring it down.
	waitFor(t, 30*time.Second, "quick down on the restored cluster", func() bool {
		return mustService(t, dst.leader(3), "quick").Status == fsm.StatusDown
	})
	quick := mustService(t, dst.leader(3), "quick")
	if opened := time.Unix(0, quick.Current().Opened); opened.Before(restoredAt.Add(quickTimeout)) {
		t.Fatalf("quick declared down at %s, %s after the restore began: want a full %s", opened.Format(time.RFC3339Nano),
			opened.Sub(restoredAt), quickTimeout)
	}
	// The restored cluster goes on committing.
	if code := heartbeat(t, dstLeader, "web-1"); code != 200 {
		t.Fatalf("heartbeat after restore: %d", code)
	}
}

// viewsOn is what a has of ids, each of which has a history except the
// web services and the configured one, or the test would prove little.
func viewsOn(t *testing.T, a *Agent, ids []string) map[string]restoredView {
	t.Helper()
	want := map[string]restoredView{}
	for _, id := range ids {
		v, ok := viewOn(a, id)
		if !ok {
			t.Fatalf("source has no %s", id)
		}
		if len(v.Events) == 0 && id != "from-file" && !strings.HasPrefix(id, "web-") {
			t.Fatalf("%s has no history to restore", id)
		}
		want[id] = v
	}
	return want
}

func mustService(t *testing.T, a *Agent, id string) fsm.Service {
	t.Helper()
	s, ok := serviceOn(a, id)
	if !ok {
		t.Fatalf("%s has no service %s", a.Node.ID(), id)
	}
	return s
}

// TestCLISnapshotTokenAndDamagedFiles: with an api_token, saving and
// restoring need $WATCHDOG_TOKEN; a damaged file is refused by the CLI
// before it is sent, and the cluster keeps its state.
func TestCLISnapshotTokenAndDamagedFiles(t *testing.T) {
	c := newTestCluster(t, 1, fileConfig(t, "api_token: s3cret\ndefaults: {timeout: 10m}\n"))
	a := c.leader(1)
	heartbeat(t, a, "web-1")
	path := filepath.Join(t.TempDir(), "backup.snap")
	_, errOut, code := runCLI(t, nil, "snapshot", "save", "-addr", a.Addr, path)
	if code != cli.ExitFailed || !strings.Contains(errOut, "401") {
		t.Fatalf("save without the token: exit %d, %s", code, errOut)
	}
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Fatalf("a refused save left %s: %v", path, err)
	}
	env := map[string]string{"WATCHDOG_TOKEN": "s3cret"}
	if out, errOut, code := runCLI(t, env, "snapshot", "save", "-addr", a.Addr, path); code != cli.ExitOK {
		t.Fatalf("save with the token: exit %d, %s %s", code, out, errOut)
	}
	good, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	_, errOut, code = runCLI(t, nil, "snapshot", "restore", "-addr", a.Addr, path)
	if code != cli.ExitFailed || !strings.Contains(errOut, "401") {
		t.Fatalf("restore without the token: exit %d, %s", code, errOut)
	}
	heartbeat(t, a, "web-2") // not in the backup
	damaged := bytes.Replace(good, []byte(`"web-1"`), []byte(`"web-X"`), 1)
	if bytes.Equal(damaged, good) {
		t.Fatal("the backup does not hold web-1")
	}
	bad := filepath.Join(t.TempDir(), "damaged.snap")
	for _, b := range [][]byte{damaged, good[:len(good)/2], []byte("garbage\n")} {
		if err := os.WriteFile(bad, b, 0o600); err != nil {
			t.Fatal(err)
		}
		_, errOut, code = runCLI(t, env, "snapshot", "restore", "-addr", a.Addr, bad)
		if code != cli.ExitFailed || !strings.Contains(errOut, "not a valid watchdog backup") {
			t.Fatalf("restore of a damaged file: exit %d, %s", code, errOut)
		}
	}
	if _, ok := serviceOn(a, "web-2"); !ok {
		t.Fatal("a refused restore changed the state")
	}
	if out, errOut, code := runCLI(t, env, "snapshot", "restore", "-addr", a.Addr, path); code != cli.ExitOK {
		t.Fatalf("restore with the token: exit %d, %s %s", code, out, errOut)
	}
	waitFor(t, 10*time.Second, "the state as saved, without web-2", func() bool {
		_, has2 := serviceOn(a, "web-2")
		_, has1 := serviceOn(a, "web-1")
		return has1 && !has2
	})
	mustCLI(t, cli.ExitUsage, "snapshot", "save")
	mustCLI(t, cli.ExitUsage, "snapshot", "backup", path)
}
