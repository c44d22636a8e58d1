package cluster

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/hashicorp/raft"

	"github.com/watchdog-ha/watchdog/fsm"
)

// ErrBadBackup is returned for a backup file that is not a whole, unaltered
// watchdog backup: truncated, corrupted, of another format or version.
var ErrBadBackup = errors.New("cluster: not a valid watchdog backup")

// A backup file is three parts, so that a truncated or altered file is
// refused before anything is restored from it:
//
//	{"magic":"watchdog-backup","version":1,"index":...,"size":N,...}\n  header, one JSON line
//	N bytes                                                             the FSM's snapshot (fsm/snapshot.go)
//	{"sha256":"..."}\n                                                  over the header line and the N bytes
//
// The checksum comes last so that the snapshot streams from the leader's
// snapshot store to the client without being held or read twice.
const (
	backupMagic   = "watchdog-backup"
	backupVersion = 1
	// maxBackupLine bounds the header and trailer lines a reader accepts.
	maxBackupLine = 4 << 10
)

// BackupInfo describes a backup: its header, and what InspectBackup found
// in it.
type BackupInfo struct {
	Magic   string    `json:"magic"`
	Version int       `json:"version"`
	Index   uint64    `json:"index"` // the Raft index the snapshot was taken at
	Term    uint64    `json:"term"`
	Size    int64     `json:"size"` // of the FSM snapshot, in bytes
	Node    string    `json:"node"` // the leader that took it
	Created time.Time `json:"created"`
	// Filled in by InspectBackup, not part of the header.
	Services      int    `json:"services,omitempty"`
	OpenIncidents int    `json:"open_incidents,omitempty"`
	SHA256        string `json:"sha256,omitempty"`
}

type backupTrailer struct {
	SHA256 string `json:"sha256"`
}

// WriteBackup takes a snapshot of the replicated state on the leader and
// writes it to w as a backup file. It fails with ErrNotLeader, before
// writing anything, anywhere but on the leader.
func (n *Node) WriteBackup(ctx context.Context, w io.Writer) (BackupInfo, error) {
	meta, rc, err := n.openFreshSnapshot(ctx)
	if err != nil {
		return BackupInfo{}, err
	}
	defer rc.Close()
	info := BackupInfo{Magic: backupMagic, Version: backupVersion, Index: meta.Index, Term: meta.Term,
		Size: meta.Size, Node: n.cfg.NodeID, Created: time.Now().UTC()}
	header, err := json.Marshal(info)
	if err != nil {
		return BackupInfo{}, fmt.Errorf("cluster: backup header: %w", err)
	}
	sum := sha256.New()
	out := io.MultiWriter(w, sum)
	if _, err := out.Write(append(header, '\n')); err != nil {
		return info, fmt.Errorf("cluster: write backup: %w", err)
	}
	if copied, err := io.Copy(out, io.LimitReader(rc, meta.Size)); err != nil || copied != meta.Size {
		return info, fmt.Errorf("cluster: write backup: copied %d of %d bytes: %w", copied, meta.Size, err)
	}
	info.SHA256 = hex.EncodeToString(sum.Sum(nil))
	trailer, _ := json.Marshal(backupTrailer{SHA256: info.SHA256})
	if _, err := w.Write(append(trailer, '\n')); err != nil {
		return info, fmt.Errorf("cluster: write backup: %w", err)
	}
	return info, nil
}

// openFreshSnapshot has Raft take a snapshot now and opens it. A barrier
// first makes sure this node is the leader and has applied everything
// committed, and gives the snapshot something new to cover (Raft refuses
// to take one when nothing was applied since the last).
func (n *Node) openFreshSnapshot(ctx context.Context) (*raft.SnapshotMeta, io.ReadCloser, error) {
	for attempt := 0; ; attempt++ {
		if err := waitFuture(ctx, n.raft.Barrier(n.cfg.ApplyTimeout)); err != nil {
			return nil, nil, leaderError("barrier", err)
		}
		f := n.raft.Snapshot()
		err := waitFuture(ctx, f)
		if errors.Is(err, raft.ErrNothingNewToSnapshot) && attempt < 3 {
			continue // another snapshot covered the barrier meanwhile
		}
		if err != nil {
			return nil, nil, fmt.Errorf("cluster: take snapshot: %w", err)
		}
		meta, rc, err := f.Open()
		if err != nil {
			return nil, nil, fmt.Errorf("cluster: open snapshot: %w", err)
		}
		return meta, rc, nil
	}
}

// leaderError maps Raft's refusals on a follower to ErrNotLeader.
func leaderError(what string, err error) error {
	if errors.Is(err, raft.ErrNotLeader) || errors.Is(err, raft.ErrLeadershipLost) {
		return fmt.Errorf("%w: %s: %w", ErrNotLeader, what, err)
	}
	return fmt.Errorf("cluster: %s: %w", what, err)
}

// InspectBackup reads a whole backup and checks it as a restore would: the
// header, the length, the checksum, and that the snapshot decodes into a
// state machine with everything Apply guarantees, and, when check is not
// nil, that check accepts the defaults and every service (the API's rules:
// the state machine does not know them). It reads r to its end and changes
// nothing. Every failure is ErrBadBackup.
func InspectBackup(r io.Reader, check RestoreCheck) (BackupInfo, error) {
	info, _, err := inspectBackup(r, check)
	return info, err
}

// RestoreCheck refuses what a backup must not bring in. The checksum proves
// a file whole, not that a watchdog wrote it: a hand-made one can hold
// anything the state machine can decode.
type RestoreCheck interface {
	// CheckDefaults refuses the definition of services first seen
	// through a heartbeat.
	CheckDefaults(fsm.Definition) error
	// CheckService refuses a service.
	CheckService(fsm.Service) error
}

// inspectBackup is InspectBackup, also returning where the snapshot starts.
func inspectBackup(r io.Reader, check RestoreCheck) (BackupInfo, int64, error) {
	br := bufio.NewReaderSize(r, 1<<16)
	line, err := readBackupLine(br, "header")
	if err != nil {
		return BackupInfo{}, 0, err
	}
	info, err := checkBody(br, line, check)
	return info, int64(len(line)) + 1, err
}

// maxHeaderNumber bounds the index and term a header may name: Raft's are
// counted from 0 one entry or election at a time, so a value past 2^63 was
// written by hand. A restore never uses either (see restoreMeta), but a
// file that claims one is refused rather than shown as if it were true.
const maxHeaderNumber = math.MaxInt64

// checkHeader decodes the header line and refuses what a restore cannot
// honour.
func checkHeader(line []byte) (BackupInfo, error) {
	var info BackupInfo
	if err := json.Unmarshal(line, &info); err != nil || info.Magic != backupMagic {
		return BackupInfo{}, fmt.Errorf("%w: it does not start with a watchdog backup header", ErrBadBackup)
	}
	switch {
	case info.Version != backupVersion:
		return info, fmt.Errorf("%w: backup format version %d not supported (want %d)", ErrBadBackup, info.Version, backupVersion)
	case info.Size < 0:
		return info, fmt.Errorf("%w: negative snapshot size %d", ErrBadBackup, info.Size)
	case info.Index > maxHeaderNumber:
		return info, fmt.Errorf("%w: header: index %d is beyond any Raft index (at most %d)", ErrBadBackup, info.Index, uint64(maxHeaderNumber))
	case info.Term > maxHeaderNumber:
		return info, fmt.Errorf("%w: header: term %d is beyond any Raft term (at most %d)", ErrBadBackup, info.Term, uint64(maxHeaderNumber))
	case len(info.Node) > maxNodeName || !utf8.ValidString(info.Node) || strings.ContainsFunc(info.Node, unicode.IsControl):
		return info, fmt.Errorf("%w: header: node is not a node name (at most %d bytes, no control characters)", ErrBadBackup, maxNodeName)
	}
	return info, nil
}

// maxNodeName bounds the node named in a header, which the CLI prints.
const maxNodeName = 128

// checkBody checks what follows the header line: the snapshot, decoded
// into a scratch state machine, and the checksum.
func checkBody(br *bufio.Reader, line []byte, check RestoreCheck) (BackupInfo, error) {
	info, err := checkHeader(line)
	if err != nil {
		return info, err
	}
	sum := sha256.New()
	sum.Write(line)
	sum.Write([]byte{'\n'})
	body := &countingReader{r: io.TeeReader(io.LimitReader(br, info.Size), sum)}
	scratch := fsm.New()
	restoreErr := scratch.Restore(io.NopCloser(body))
	// Read what the decoder left, so that the checksum covers every byte.
	if _, err := io.Copy(io.Discard, body); err != nil {
		return info, fmt.Errorf("%w: read snapshot: %w", ErrBadBackup, err)
	}
	if body.n != info.Size {
		return info, fmt.Errorf("%w: truncated: %d of %d snapshot bytes", ErrBadBackup, body.n, info.Size)
	}
	if err := checkTrailer(br, sum.Sum(nil)); err != nil {
		return info, err
	}
	if restoreErr != nil {
		return info, fmt.Errorf("%w: %w", ErrBadBackup, restoreErr)
	}
	info.SHA256 = hex.EncodeToString(sum.Sum(nil))
	if check != nil {
		if err := check.CheckDefaults(scratch.Defaults()); err != nil {
			return info, fmt.Errorf("%w: defaults: %w", ErrBadBackup, err)
		}
	}
	for _, s := range scratch.Services() { // by id: a refusal names the same record every time
		if check != nil {
			if err := check.CheckService(s); err != nil {
				return info, fmt.Errorf("%w: service %q: %w", ErrBadBackup, s.ID, err)
			}
		}
		info.Services++
		if cur := s.Current(); cur != nil && cur.Resolved == 0 {
			info.OpenIncidents++
		}
	}
	return info, nil
}

// checkTrailer reads the checksum line and makes sure nothing follows it.
func checkTrailer(br *bufio.Reader, sum []byte) error {
	line, err := readBackupLine(br, "checksum")
	if err != nil {
		return err
	}
	var t backupTrailer
	if err := json.Unmarshal(line, &t); err != nil || t.SHA256 == "" {
		return fmt.Errorf("%w: no checksum after the snapshot", ErrBadBackup)
	}
	if t.SHA256 != hex.EncodeToString(sum) {
		return fmt.Errorf("%w: checksum mismatch: the file was altered or damaged", ErrBadBackup)
	}
	if _, err := br.ReadByte(); !errors.Is(err, io.EOF) {
		return fmt.Errorf("%w: data after the checksum", ErrBadBackup)
	}
	return nil
}

// readBackupLine reads one newline-terminated line of at most maxBackupLine
// bytes, without its newline.
func readBackupLine(br *bufio.Reader, what string) ([]byte, error) {
	var line []byte
	for {
		chunk, err := br.ReadSlice('\n')
		line = append(line, chunk...)
		switch {
		case len(line) > maxBackupLine:
			return nil, fmt.Errorf("%w: %s line longer than %d bytes", ErrBadBackup, what, maxBackupLine)
		case errors.Is(err, bufio.ErrBufferFull):
			continue
		case errors.Is(err, io.EOF):
			return nil, fmt.Errorf("%w: truncated: no %s line", ErrBadBackup, what)
		case err != nil:
			return nil, fmt.Errorf("%w: read %s: %w", ErrBadBackup, what, err)
		}
		return bytes.TrimSuffix(line, []byte("\n")), nil
	}
}

// countingReader counts the bytes read through it.
type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	k, err := c.r.Read(p)
	c.n += int64(k)
	return k, err
}
