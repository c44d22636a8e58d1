package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/watchdog-ha/watchdog/client"
	"github.com/watchdog-ha/watchdog/cluster"
	"github.com/watchdog-ha/watchdog/httpapi"
)

// snapshotTimeout is the default -timeout of snapshot save and restore: a
// backup streams the whole state, and a restore waits for a quorum to
// install it.
const snapshotTimeout = 5 * time.Minute

// runSnapshot is "watchdog snapshot save FILE" or "watchdog snapshot restore FILE".
func runSnapshot(ctx context.Context, args []string, env Env) error {
	if len(args) > 0 {
		switch args[0] {
		case "save":
			return runSnapshotSave(ctx, args[1:], env)
		case "restore":
			return runSnapshotRestore(ctx, args[1:], env)
		}
	}
	fmt.Fprint(env.Stderr, "usage: watchdog snapshot save FILE | watchdog snapshot restore FILE (each takes -h)\n")
	return fmt.Errorf("%w: want snapshot save or snapshot restore", ErrUsage)
}

func snapshotFlags(env Env, name, about string) *cliFlags {
	f := newCLIFlags(env, name, "FILE", about)
	f.timeout = snapshotTimeout
	f.Lookup("timeout").DefValue = snapshotTimeout.String()
	return f
}

func runSnapshotSave(ctx context.Context, args []string, env Env) error {
	f := snapshotFlags(env, "snapshot save", `
Saves a backup of the cluster's replicated state to FILE: every service, its
definition, status, incidents and history. The leader takes a fresh snapshot
(a follower streams it from the leader). The file is written next to FILE,
checked whole, synced, and only then renamed to FILE, so FILE is either the
old file or a complete new backup. Needs $WATCHDOG_TOKEN when the cluster
sets an api_token.`)
	ctx, cancel, c, pos, err := f.connect(ctx, args, 1)
	if err != nil {
		return err
	}
	defer cancel()
	info, size, err := c.SaveSnapshot(ctx, pos[0])
	if err != nil {
		return fmt.Errorf("snapshot save: %w", err)
	}
	fmt.Fprintf(env.Stdout, "saved %s: %d bytes, %d services (%d with an open incident), raft index %d, term %d, from %s\n",
		pos[0], size, info.Services, info.OpenIncidents, info.Index, info.Term, info.Node)
	return nil
}

func runSnapshotRestore(ctx context.Context, args []string, env Env) error {
	f := snapshotFlags(env, "snapshot restore", `
Replaces the cluster's replicated state with the backup in FILE, through the
leader (any node forwards it there). The file is checked here, and again by
the leader, before anything changes: a truncated, altered or foreign file is
refused. The cluster keeps its own members and config file: the config
file's defaults and services win again over what the backup defined, as
they do whenever a leader takes over. Every service restored as up gets a full
timeout from the restore before it can be declared down. Needs
$WATCHDOG_TOKEN when the cluster sets an api_token.`)
	ctx, cancel, c, pos, err := f.connect(ctx, args, 1)
	if err != nil {
		return err
	}
	defer cancel()
	info, err := c.RestoreSnapshot(ctx, pos[0])
	if err != nil {
		return fmt.Errorf("snapshot restore: %w", err)
	}
	fmt.Fprintf(env.Stdout, "restored %s: %d services (%d with an open incident), saved at raft index %d by %s at %s\n",
		pos[0], info.Services, info.OpenIncidents, info.Index, info.Node, info.Created.Format(time.RFC3339))
	return nil
}

// SaveSnapshot downloads a backup into path, atomically: a temporary file in
// the same directory, checked whole with cluster.InspectBackup and synced
// before it is renamed over path. It returns what the backup holds and its
// size.
func (c *apiClient) SaveSnapshot(ctx context.Context, path string) (cluster.BackupInfo, int64, error) {
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".*.tmp")
	if err != nil {
		return cluster.BackupInfo{}, 0, err
	}
	defer func() {
		tmp.Close()
		os.Remove(tmp.Name()) // fails harmlessly once renamed
	}()
	_, err = c.send(ctx, client.Request{Method: http.MethodGet, Path: "/v1/snapshot", Into: func() (io.Writer, error) {
		// A try that failed part way leaves bytes behind: start afresh.
		if err := tmp.Truncate(0); err != nil {
			return nil, err
		}
		_, err := tmp.Seek(0, io.SeekStart)
		return tmp, err
	}})
	if err != nil {
		return cluster.BackupInfo{}, 0, err
	}
	size, err := tmp.Seek(0, io.SeekCurrent)
	if err != nil {
		return cluster.BackupInfo{}, 0, err
	}
	info, err := cluster.InspectBackup(io.NewSectionReader(tmp, 0, size), nil)
	if err != nil {
		return info, size, fmt.Errorf("the backup received is not whole (nothing written to %s): %w", path, err)
	}
	if err := tmp.Sync(); err != nil {
		return info, size, err
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return info, size, err
	}
	return info, size, syncDir(dir)
}

// syncDir makes a rename in dir durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// RestoreSnapshot checks the backup in path and sends it to be restored.
func (c *apiClient) RestoreSnapshot(ctx context.Context, path string) (cluster.BackupInfo, error) {
	file, err := os.Open(path)
	if err != nil {
		return cluster.BackupInfo{}, err
	}
	defer file.Close()
	st, err := file.Stat()
	if err != nil {
		return cluster.BackupInfo{}, err
	}
	// Checked here first, as the leader will: a bad file is refused without
	// a round trip.
	if _, err := cluster.InspectBackup(io.NewSectionReader(file, 0, st.Size()), httpapi.OfflineRestoreCheck()); err != nil {
		return cluster.BackupInfo{}, fmt.Errorf("%s: %w", path, err)
	}
	resp, err := c.send(ctx, client.Request{Method: http.MethodPut, Path: "/v1/snapshot", Body: file, BodySize: st.Size()})
	if err != nil {
		return cluster.BackupInfo{}, err
	}
	var answer struct {
		Backup cluster.BackupInfo `json:"backup"`
	}
	if err := json.Unmarshal(resp.Body, &answer); err != nil {
		return cluster.BackupInfo{}, fmt.Errorf("decode answer: %w", err)
	}
	return answer.Backup, nil
}
