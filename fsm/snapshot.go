package fsm

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"math"
	"slices"

	"github.com/hashicorp/raft"
)

// snapshotVersion is the version of the snapshot format written today.
// Version 2 added the event histories, the sources of definitions and the
// restart policy; version 1 snapshots are still restored.
const snapshotVersion = 2

// snapshotScheduleVersion is the version of a snapshot that holds what
// ProtocolSchedules introduced (schedules, dependencies, runs, suppressed
// incidents): a build that does not know them refuses it rather than
// dropping them. A snapshot without them is still written as version 2.
const snapshotScheduleVersion = 3

// The snapshot is a header line followed by one JSON line per service.
// Streaming it keeps memory flat however many services there are, and lines
// make a snapshot inspectable with ordinary tools.
type snapshotHeader struct {
	Version           int        `json:"v"`
	Defaults          Definition `json:"defaults"`
	Count             int        `json:"count"`
	HistoryPerService int        `json:"history_per_service,omitempty"`
	Seq               uint64     `json:"seq,omitempty"` // of the latest event
	// The committed configuration's generation and actions hash (the
	// rest of its description follows from the services).
	ConfigGeneration uint64 `json:"config_generation,omitempty"`
	ActionsHash      string `json:"config_actions_hash,omitempty"`
}

// snapshotService leaves Def out for services on the defaults, so Restore
// can point them all at one shared Definition again.
type snapshotService struct {
	Service
	Def    *Definition `json:"def,omitempty"`
	Events []Record    `json:"events,omitempty"`
	// Configured is version 1's way of saying Source: SourceConfig.
	Configured bool `json:"configured,omitempty"`
}

type snapshot struct {
	defaults *Definition
	services []Service
	events   map[string][]Record
	historyN int
	seq      uint64
	config   ConfigInfo
}

// Snapshot implements raft.FSM. It copies the records, which is a flat
// memory copy (they share their immutable definitions and incident slices,
// and the histories, which are only appended to beyond what a copy sees),
// so Apply is held up only for that; encoding happens later in Persist.
func (f *FSM) Snapshot() (raft.FSMSnapshot, error) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	services := make([]Service, 0, len(f.services))
	for _, s := range f.services {
		services = append(services, s.copy())
	}
	return &snapshot{defaults: f.defaults, services: services, events: maps.Clone(f.events),
		historyN: f.historyN, seq: f.seq, config: f.config}, nil
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
	h := snapshotHeader{Version: s.version(), Defaults: *s.defaults, Count: len(s.services),
		HistoryPerService: s.historyN, Seq: s.seq, ConfigGeneration: s.config.Generation,
		ActionsHash: s.config.ActionsHash}
	if err := enc.Encode(h); err != nil {
		return err
	}
	for _, svc := range s.services {
		rec := snapshotService{Service: svc, Events: s.events[svc.ID]}
		if svc.Source != SourceHeartbeat {
			rec.Def = svc.Def
		}
		if err := enc.Encode(rec); err != nil {
			return err
		}
	}
	return bw.Flush()
}

// version is the oldest snapshot version that can hold s.
func (s *snapshot) version() int {
	if s.defaults.needsSchedules() {
		return snapshotScheduleVersion
	}
	for _, svc := range s.services {
		if svc.Def.needsSchedules() || svc.Started != 0 ||
			slices.ContainsFunc(svc.Incidents, func(inc Incident) bool { return inc.SuppressedBy != "" }) {
			return snapshotScheduleVersion
		}
	}
	return snapshotVersion
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
	f.timed, f.events, f.historyN, f.seq = next.timed, next.events, next.historyN, next.seq
	f.config, f.windows, f.suppressed = next.config, next.windows, next.suppressed
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
	if h.Version < 1 || h.Version > snapshotScheduleVersion {
		return fmt.Errorf("%w: snapshot version %d not supported", ErrCorrupt, h.Version)
	}
	if h.HistoryPerService < 0 {
		return fmt.Errorf("%w: history_per_service %d", ErrCorrupt, h.HistoryPerService)
	}
	// Each event adds one: near 2^64 the numbers would wrap, and the
	// histories, out of order, would refuse the next snapshot (a replica
	// restarting on it would panic in Raft).
	if h.Seq > math.MaxInt64 {
		return fmt.Errorf("%w: seq %d is beyond any number of events", ErrCorrupt, h.Seq)
	}
	h.Defaults.compile()
	f.defaults, f.historyN, f.seq = &h.Defaults, h.HistoryPerService, h.Seq
	seqs := make(map[uint64]struct{}) // event numbers are unique across services
	for i := range h.Count {
		var rec snapshotService
		if err := dec.Decode(&rec); err != nil {
			return fmt.Errorf("%w: service %d of %d: %w", ErrCorrupt, i+1, h.Count, err)
		}
		svc := rec.Service
		svc.Def = rec.Def
		if h.Version == 1 && rec.Configured {
			svc.Source = SourceConfig
		}
		if err := f.admit(svc, rec.Events, seqs); err != nil {
			return err
		}
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return fmt.Errorf("%w: data after %d services", ErrCorrupt, h.Count)
	}
	f.restoreConfig(h.ConfigGeneration, h.ActionsHash)
	return nil
}

// admit adds a restored record, checking what Apply would have guaranteed.
func (f *FSM) admit(s Service, events []Record, seqs map[uint64]struct{}) error {
	if s.ID == "" || (s.Source != SourceHeartbeat && s.Def == nil) {
		return fmt.Errorf("%w: incomplete service record %q", ErrCorrupt, s.ID)
	}
	if _, dup := f.services[s.ID]; dup {
		return fmt.Errorf("%w: service %q twice", ErrCorrupt, s.ID)
	}
	if s.Source == SourceHeartbeat {
		s.Def = f.defaults
	} else {
		s.Def.compile()
	}
	switch s.Status {
	case StatusUp, StatusDown, StatusPaused:
	default:
		return fmt.Errorf("%w: service %q has status %q", ErrCorrupt, s.ID, s.Status)
	}
	if err := checkWindow(&s); err != nil {
		return err
	}
	for i, r := range events {
		if r.Seq > f.seq || (i > 0 && r.Seq <= events[i-1].Seq) {
			return fmt.Errorf("%w: service %q: events out of order", ErrCorrupt, s.ID)
		}
		// Pages of GET /v1/events are ordered by Seq: a duplicate would
		// order differently on each replica.
		if _, dup := seqs[r.Seq]; dup {
			return fmt.Errorf("%w: service %q: event %d also belongs to another service", ErrCorrupt, s.ID, r.Seq)
		}
		seqs[r.Seq] = struct{}{}
	}
	f.add(&s)
	f.track(&s)
	if len(events) > 0 {
		f.events[s.ID] = events[max(len(events)-f.limit(), 0):]
	}
	return nil
}
