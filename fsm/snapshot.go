package fsm

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"github.com/hashicorp/raft"
)

// snapshotVersion is the version of the snapshot format written today.
const snapshotVersion = 1

// The snapshot is a header line followed by one JSON line per service.
// Streaming it keeps memory flat however many services there are, and lines
// make a snapshot inspectable with ordinary tools.
type snapshotHeader struct {
	Version  int        `json:"v"`
	Defaults Definition `json:"defaults"`
	Count    int        `json:"count"`
}

// snapshotService leaves Def out for services on the defaults, so Restore
// can point them all at one shared Definition again.
type snapshotService struct {
	Service
	Def *Definition `json:"def,omitempty"`
}

type snapshot struct {
	defaults *Definition
	services []Service
}

// Snapshot implements raft.FSM. It copies the records, which is a flat
// memory copy (they share their immutable definitions and incident slices),
// so Apply is held up only for that; encoding happens later in Persist.
func (f *FSM) Snapshot() (raft.FSMSnapshot, error) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	services := make([]Service, 0, len(f.services))
	for _, s := range f.services {
		services = append(services, s.copy())
	}
	return &snapshot{defaults: f.defaults, services: services}, nil
}

// Persist implements raft.FSMSnapshot.
func (s *snapshot) Persist(sink raft.SnapshotSink) error {
	if err := s.write(sink); err != nil {
		_ = sink.Cancel()
		return fmt.Errorf("fsm: persist snapshot: %w", err)
	}
	return sink.Close()
}

func (s *snapshot) write(w io.Writer) error {
	bw := bufio.NewWriterSize(w, 1<<16)
	enc := json.NewEncoder(bw)
	if err := enc.Encode(snapshotHeader{Version: snapshotVersion, Defaults: *s.defaults, Count: len(s.services)}); err != nil {
		return err
	}
	for _, svc := range s.services {
		rec := snapshotService{Service: svc}
		if svc.Configured {
			rec.Def = svc.Def
		}
		if err := enc.Encode(rec); err != nil {
			return err
		}
	}
	return bw.Flush()
}

// Release implements raft.FSMSnapshot.
func (s *snapshot) Release() {}

// Restore implements raft.FSM. It decodes into new maps and swaps them in
// only when the whole snapshot was read, so a bad snapshot changes nothing.
func (f *FSM) Restore(rc io.ReadCloser) error {
	defer rc.Close()
	next := New()
	if err := next.read(rc); err != nil {
		return fmt.Errorf("fsm: restore: %w", err)
	}
	f.mu.Lock()
	f.defaults, f.services, f.owing, f.deadlines = next.defaults, next.services, next.owing, next.deadlines
	f.mu.Unlock()
	if len(next.owing) > 0 {
		select {
		case f.pendingCh <- struct{}{}:
		default:
		}
	}
	return nil
}

func (f *FSM) read(r io.Reader) error {
	dec := json.NewDecoder(bufio.NewReaderSize(r, 1<<16))
	var h snapshotHeader
	if err := dec.Decode(&h); err != nil {
		return fmt.Errorf("%w: header: %w", ErrCorrupt, err)
	}
	if h.Version != snapshotVersion {
		return fmt.Errorf("%w: snapshot version %d not supported", ErrCorrupt, h.Version)
	}
	f.defaults = &h.Defaults
	for i := range h.Count {
		var rec snapshotService
		if err := dec.Decode(&rec); err != nil {
			return fmt.Errorf("%w: service %d of %d: %w", ErrCorrupt, i+1, h.Count, err)
		}
		svc := rec.Service
		svc.Def = rec.Def
		if err := f.admit(svc); err != nil {
			return err
		}
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return fmt.Errorf("%w: data after %d services", ErrCorrupt, h.Count)
	}
	return nil
}

// admit adds a restored record, checking what Apply would have guaranteed.
func (f *FSM) admit(s Service) error {
	if s.ID == "" || (s.Configured && s.Def == nil) {
		return fmt.Errorf("%w: incomplete service record %q", ErrCorrupt, s.ID)
	}
	if _, dup := f.services[s.ID]; dup {
		return fmt.Errorf("%w: service %q twice", ErrCorrupt, s.ID)
	}
	if !s.Configured {
		s.Def = f.defaults
	}
	switch s.Status {
	case StatusUp, StatusDown, StatusPaused:
	default:
		return fmt.Errorf("%w: service %q has status %q", ErrCorrupt, s.ID, s.Status)
	}
	f.add(&s)
	f.track(&s)
	return nil
}
