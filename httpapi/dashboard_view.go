package httpapi

import (
	"cmp"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"strings"
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
	// Lag is how many committed entries this node has yet to apply.
	Lag uint64 `json:"lag"`
	// applied is the last entry this node applied, read with Lag.
	applied uint64
}

// Progress is what the status page reads of how far this node's Raft got:
// the apply lag it shows, and the applied index its stream watches to look
// at the services again only once it moved.
type Progress interface {
	RaftStatus() cluster.RaftStatus
}

func (d *dashboard) clusterView() clusterView {
	leader, _ := d.node.Leader()
	rs := d.node.RaftStatus()
	// The applied index, read just after the commit index, may be past it.
	v := clusterView{Self: d.node.ID(), Leader: leader, Nodes: d.node.Members(), Ready: true,
		Lag: rs.CommitIndex - min(rs.AppliedIndex, rs.CommitIndex), applied: rs.AppliedIndex}
	if err := d.node.Ready(); err != nil {
		v.Ready = false
		v.NotReady = err.Error()
		// Its message says how long since the leader was heard from, which
		// changes every moment; the stream would send it on every poll.
		if errors.Is(err, cluster.ErrNoLeader) {
			v.NotReady = "no contact with a leader"
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
	Counts  []statusCount // every service, by status
	Groups  []pageGroup   // this page's rows
	Cluster clusterView
	Lag     string
	// The search and the page: Matched services match Query, and rows
	// First to Last of them (1-based) are shown. Prev and Next are the
	// neighbouring pages' links, empty when there is none.
	Query              string
	Matched, Page      int
	Pages, First, Last int
	Prev, Next         string
}

type statusCount struct {
	Status fsm.Status
	N      int
}

type pageGroup struct {
	Status fsm.Status
	N      int // services with this status that match the search
	Rows   []pageRow
}

// pageSize is how many services a page shows: a list of thousands is
// searched and paged, not scrolled. The script pages the same way.
const pageSize = 100

// maxQuery bounds the search a page is asked for.
const maxQuery = 200

// matches reports whether svc matches every word of the search: a word
// matches a service whose id contains it, or whose status or a tag it is
// (ignoring case). The script matches the same way.
func matches(svc fsm.Service, words []string) bool {
	for _, w := range words {
		if !strings.Contains(strings.ToLower(svc.ID), w) && w != string(svc.Shown()) &&
			!slices.ContainsFunc(svc.Def.Tags, func(t string) bool { return strings.ToLower(t) == w }) {
			return false
		}
	}
	return true
}

// pageLink is the page's URL for a search and page.
func pageLink(q string, page int) string {
	v := url.Values{}
	if q != "" {
		v.Set("q", q)
	}
	if page > 0 {
		v.Set("page", strconv.Itoa(page))
	}
	if len(v) == 0 {
		return "/"
	}
	return "/?" + v.Encode()
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
	// Tags link to the search for them; Timeline is the last 24 hours
	// (dashboard_timeline.go).
	Tags          []string
	Timeline      []timelineCell
	TimelineLabel string
	// WaitsFor is the dependency a suppressed incident waits for.
	WaitsFor string
}

func (d *dashboard) pageData(now time.Time, query string, page int) pageData {
	svcs := d.state.Services()
	// Services come sorted by id; a stable sort keeps that within a group.
	// Statuses of one rank are kept apart by name, so each is one group.
	// A suppressed service follows the dependency it waits for (down too,
	// so in the same group), shown under it.
	slices.SortStableFunc(svcs, func(a, b fsm.Service) int {
		return cmp.Or(cmp.Compare(statusRank(a.Shown()), statusRank(b.Shown())), cmp.Compare(a.Shown(), b.Shown()),
			cmp.Compare(cmp.Or(a.WaitsFor(), a.ID), cmp.Or(b.WaitsFor(), b.ID)),
			cmp.Compare(a.WaitsFor(), b.WaitsFor())) // "" first: the dependency itself
	})
	if len(query) > maxQuery {
		query = query[:maxQuery]
	}
	data := pageData{Now: now.UTC().Format(time.RFC3339Nano), Total: len(svcs), Cluster: d.clusterView(), Query: query}
	data.Lag = fmt.Sprintf("%d entries", data.Cluster.Lag)
	if data.Cluster.Lag == 1 {
		data.Lag = "1 entry"
	}
	words := strings.Fields(strings.ToLower(query))
	var matched []fsm.Service
	for _, svc := range svcs {
		if n := len(data.Counts); n == 0 || data.Counts[n-1].Status != svc.Shown() {
			data.Counts = append(data.Counts, statusCount{Status: svc.Shown()})
		}
		data.Counts[len(data.Counts)-1].N++
		if svc.Shown() == fsm.StatusDown {
			data.Down++
		}
		if matches(svc, words) {
			matched = append(matched, svc)
		}
	}
	data.Matched = len(matched)
	data.Pages = max(1, (len(matched)+pageSize-1)/pageSize)
	data.Page = min(max(page, 0), data.Pages-1)
	for i, svc := range matched {
		if n := len(data.Groups); n == 0 || data.Groups[n-1].Status != svc.Shown() {
			data.Groups = append(data.Groups, pageGroup{Status: svc.Shown()})
		}
		g := &data.Groups[len(data.Groups)-1]
		g.N++
		if i/pageSize == data.Page {
			g.Rows = append(g.Rows, d.rowWithTimeline(svc, now))
		}
	}
	// A group with no row on this page is left out.
	data.Groups = slices.DeleteFunc(data.Groups, func(g pageGroup) bool { return len(g.Rows) == 0 })
	if len(matched) > 0 {
		data.First, data.Last = data.Page*pageSize+1, min((data.Page+1)*pageSize, len(matched))
	}
	if data.Page > 0 {
		data.Prev = pageLink(query, data.Page-1)
	}
	if data.Page < data.Pages-1 {
		data.Next = pageLink(query, data.Page+1)
	}
	return data
}

func rowOf(svc fsm.Service, now time.Time) pageRow {
	r := pageRow{ID: svc.ID, Status: svc.Shown(), Timeout: svc.Def.Timeout.String(), WaitsFor: svc.WaitsFor()}
	if svc.Def.Schedule != "" {
		r.Timeout = svc.Def.Schedule + " (" + cmp.Or(svc.Def.TZ, fsm.DefaultTZ) + ")"
	}
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
	case svc.Status == fsm.StatusUp && !svc.NextDeadline().IsZero():
		due := svc.NextDeadline()
		r.Note, r.At, r.AtText = "due in", due.UTC().Format(time.RFC3339Nano), formatAge(due.Sub(now))
		r.Count = "until"
	case svc.Status == fsm.StatusPaused && svc.PausedUntil != 0:
		end := time.Unix(0, svc.PausedUntil)
		r.Note, r.At, r.AtText = "maintenance, resumes in", end.UTC().Format(time.RFC3339Nano), formatAge(end.Sub(now))
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
