package httpapi

import (
	"cmp"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/watchdog-ha/watchdog/cluster"
	"github.com/watchdog-ha/watchdog/fsm"
)

// clusterView is the cluster as this node sees it, for the dashboard: the
// same leader and members as GET /v1/cluster, and this node's own health.
// It holds nothing that changes by itself with the clock, so the stream can
// tell a real change by comparing two views.
type clusterView struct {
	Self     string           `json:"self"`
	Leader   string           `json:"leader"`
	Nodes    []cluster.Member `json:"nodes"`
	Ready    bool             `json:"ready"`
	NotReady string           `json:"not_ready,omitempty"`
	// Lag is how many committed entries this node has yet to apply; nil
	// when the node cannot tell.
	Lag *uint64 `json:"lag,omitempty"`
}

// raftStats is what a Raft-backed node tells beyond Node. It is optional so
// that Node stays what the API needs to serve requests.
type raftStats interface {
	Stats() map[string]string
	AppliedIndex() uint64
}

func (d *dashboard) clusterView() clusterView {
	leader, _ := d.node.Leader()
	v := clusterView{Self: d.node.ID(), Leader: leader, Nodes: d.node.Members(), Ready: true}
	if err := d.node.Ready(); err != nil {
		v.Ready = false
		v.NotReady = err.Error()
		// Its message says how long since the leader was heard from, which
		// changes every moment; the stream would send it on every poll.
		if errors.Is(err, cluster.ErrNoLeader) {
			v.NotReady = "no contact with a leader"
		}
	}
	if rs, ok := d.node.(raftStats); ok {
		commit, err := strconv.ParseUint(rs.Stats()["commit_index"], 10, 64)
		if applied := rs.AppliedIndex(); err == nil {
			lag := uint64(0)
			if commit > applied {
				lag = commit - applied
			}
			v.Lag = &lag
		}
	}
	return v
}

// statusRank orders the groups on the page: what needs someone first. A
// status this version does not know sorts right after down, where it will
// be noticed.
func statusRank(s fsm.Status) int {
	switch s {
	case fsm.StatusDown:
		return 0
	case fsm.StatusPaused:
		return 2
	case fsm.StatusUp, fsm.StatusNew:
		return 3
	}
	return 1
}

// pageData is what the page template renders: the same state the stream
// sends, laid out for a page that may never run its script.
type pageData struct {
	Now     string
	Total   int
	Down    int
	Groups  []pageGroup
	Cluster clusterView
	Lag     string
}

type pageGroup struct {
	Status fsm.Status
	Rows   []pageRow
}

// pageRow is one service, with its times already written out as text for
// a reader without JavaScript; the script keeps them counting.
type pageRow struct {
	ID       string
	Status   fsm.Status
	Timeout  string
	LastSeen string // RFC 3339, empty when never seen
	Ago      string
	// Note says what matters now: how long it has been down, when it is
	// due, or that it is paused. At is the time it counts from ("since")
	// or to ("until"), as Count says.
	Note, At, AtText, Count string
}

func (d *dashboard) pageData(now time.Time) pageData {
	svcs := d.state.Services()
	// Services come sorted by id; a stable sort keeps that within a group.
	// Statuses of one rank are kept apart by name, so each is one group.
	slices.SortStableFunc(svcs, func(a, b fsm.Service) int {
		return cmp.Or(cmp.Compare(statusRank(a.Shown()), statusRank(b.Shown())), cmp.Compare(a.Shown(), b.Shown()))
	})
	data := pageData{Now: now.UTC().Format(time.RFC3339Nano), Total: len(svcs), Cluster: d.clusterView(), Lag: "unknown"}
	switch lag := data.Cluster.Lag; {
	case lag == nil:
	case *lag == 1:
		data.Lag = "1 entry"
	default:
		data.Lag = fmt.Sprintf("%d entries", *lag)
	}
	for _, svc := range svcs {
		if n := len(data.Groups); n == 0 || data.Groups[n-1].Status != svc.Shown() {
			data.Groups = append(data.Groups, pageGroup{Status: svc.Shown()})
		}
		g := &data.Groups[len(data.Groups)-1]
		g.Rows = append(g.Rows, rowOf(svc, now))
		if svc.Status == fsm.StatusDown {
			data.Down++
		}
	}
	return data
}

func rowOf(svc fsm.Service, now time.Time) pageRow {
	r := pageRow{ID: svc.ID, Status: svc.Shown(), Timeout: svc.Def.Timeout.String()}
	if svc.LastSeen != 0 && !svc.New {
		seen := time.Unix(0, svc.LastSeen)
		r.LastSeen = seen.UTC().Format(time.RFC3339Nano)
		r.Ago = formatAge(now.Sub(seen)) + " ago"
	}
	switch cur := svc.Current(); {
	case svc.Status == fsm.StatusDown && cur != nil && cur.Resolved == 0:
		opened := time.Unix(0, cur.Opened)
		r.Note, r.At, r.AtText = "down for", opened.UTC().Format(time.RFC3339Nano), formatAge(now.Sub(opened))
		r.Count = "since"
	case svc.Status == fsm.StatusUp && svc.LastSeen != 0:
		due := time.Unix(0, svc.LastSeen).Add(svc.Def.Timeout)
		r.Note, r.At, r.AtText = "due in", due.UTC().Format(time.RFC3339Nano), formatAge(due.Sub(now))
		r.Count = "until"
	case svc.Status == fsm.StatusPaused:
		r.Note = "not watched"
	}
	return r
}

// formatAge writes a duration the way the page's script does: the two
// largest units, whole seconds ("3m 12s", "2h 5m", "4d 1h").
func formatAge(d time.Duration) string {
	s := int64(max(d, 0) / time.Second)
	switch {
	case s < 60:
		return fmt.Sprintf("%ds", s)
	case s < 3600:
		return fmt.Sprintf("%dm %ds", s/60, s%60)
	case s < 86400:
		return fmt.Sprintf("%dh %dm", s/3600, s%3600/60)
	}
	return fmt.Sprintf("%dd %dh", s/86400, s%86400/3600)
}
