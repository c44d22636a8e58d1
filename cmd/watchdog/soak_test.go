package main

import (
	"context"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/watchdog-ha/watchdog/internal/promtest"
)

// soakEnv runs TestSoak (make soak) for as long as it says, e.g. 15m.
const soakEnv = "WATCHDOG_SOAK"

// The soak's load and faults.
const (
	soakServices  = 40
	soakBeatEvery = 500 * time.Millisecond
	soakTimeout   = 2 * time.Second // of every service
	soakSilence   = 6 * time.Second // a silenced service is down, then recovers
	soakKillEvery = time.Minute     // the leader gets kill -9, then is restarted
)

// soakSample is one node's figures at one moment; a figure not read is -1.
type soakSample struct {
	at                              time.Duration // since the soak began
	rss, goroutines, fds, dataBytes float64
}

// soakBound is how much one figure may grow: the median of the last third
// of the run may not exceed the first third's maximum times factor plus
// slack. A leak raises the median of a whole third; a passing spike (a
// restart's catch-up, a burst of connections) does not.
type soakBound struct {
	name          string
	get           func(soakSample) float64
	scale         float64 // shown in units of this many
	factor, slack float64 // slack in shown units
}

func soakBounds() []soakBound {
	return []soakBound{
		{"rss MiB", func(s soakSample) float64 { return s.rss }, 1 << 20, 1.25, 8},
		{"goroutines", func(s soakSample) float64 { return s.goroutines }, 1, 1.5, 25},
		{"open fds", func(s soakSample) float64 { return s.fds }, 1, 1.5, 16},
		{"data dir MiB", func(s soakSample) float64 { return s.dataBytes }, 1 << 20, 1.5, 1},
	}
}

// soak is the state of a soak run shared with its load goroutines.
type soak struct {
	procs   []*proc
	token   string // WATCHDOG_TOKEN, sent as a bearer token when set
	client  http.Client
	silent  sync.Map // service id → until when it stays silent
	acked   atomic.Int64
	failed  atomic.Int64
	samples map[string][]soakSample // by node id
}

func (s *soak) request(method, url string) (int, error) {
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		return 0, err
	}
	if s.token != "" {
		req.Header.Set("Authorization", "Bearer "+s.token)
	}
	resp, err := s.client.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	_, err = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode, err
}

// beat keeps one service beating through the nodes in turn until ctx ends,
// but not while it is silenced.
func (s *soak) beat(ctx context.Context, i int) {
	id := fmt.Sprintf("soak-%02d", i)
	tick := time.NewTicker(soakBeatEvery)
	defer tick.Stop()
	for n := i; ; n++ {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		if until, ok := s.silent.Load(id); ok && time.Now().Before(until.(time.Time)) {
			continue
		}
		p := s.procs[n%len(s.procs)]
		if code, err := s.request(http.MethodPost, "http://"+p.httpAddr+"/v1/heartbeat/"+id); err == nil && code == http.StatusOK {
			s.acked.Add(1)
		} else {
			s.failed.Add(1)
		}
	}
}

// silence makes two services at a time go silent for soakSilence, over and
// over, so services go down and recover throughout.
func (s *soak) silence(ctx context.Context, silenced *atomic.Int64) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-time.After(soakSilence + 4*soakTimeout):
		}
		for range 2 {
			s.silent.Store(fmt.Sprintf("soak-%02d", rand.IntN(soakServices)), time.Now().Add(soakSilence))
			silenced.Add(1)
		}
	}
}

// leaderProc is the node the running nodes name as leader, or nil.
func (s *soak) leaderProc() *proc {
	for _, p := range s.procs {
		if id, _, err := leaderVia(p.httpAddr); err == nil && id != "" {
			for _, q := range s.procs {
				if q.id == id && running(q) {
					return q
				}
			}
		}
	}
	return nil
}

func running(p *proc) bool {
	select {
	case <-p.done:
		return false
	default:
		return true
	}
}

// killLeader kills the leader with SIGKILL and restarts it with the same
// command line and data dir.
func (s *soak) killLeader(t *testing.T) string {
	t.Helper()
	p := s.leaderProc()
	if p == nil {
		return "no leader to kill"
	}
	p.kill(syscall.SIGKILL)
	<-p.done
	startProc(t, p)
	return "killed and restarted " + p.id
}

// backup saves the state through a node as `watchdog snapshot save` does:
// the leader takes a Raft snapshot, compacting its log, and streams it.
func (s *soak) backup() error {
	p := s.procs[rand.IntN(len(s.procs))]
	code, err := s.request(http.MethodGet, "http://"+p.httpAddr+"/v1/snapshot")
	if err == nil && code != http.StatusOK {
		err = fmt.Errorf("GET /v1/snapshot on %s: status %d", p.id, code)
	}
	return err
}

// sample reads every node's figures: resident memory and open files from
// /proc, goroutines from its metrics, and its data dir's size on disk.
func (s *soak) sample(at time.Duration) {
	for _, p := range s.procs {
		smp := soakSample{at: at, rss: -1, goroutines: -1, fds: -1, dataBytes: dirBytes(p.dataDir)}
		if running(p) {
			pid := p.cmd.Process.Pid
			smp.rss = procRSS(pid)
			if fds, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid)); err == nil {
				smp.fds = float64(len(fds))
			}
			if mfs, err := promtest.Scrape("http://" + p.httpAddr + "/metrics"); err == nil {
				if v, ok := mfs.Value("go_goroutines"); ok {
					smp.goroutines = v
				}
			}
		}
		s.samples[p.id] = append(s.samples[p.id], smp)
	}
}

func procRSS(pid int) float64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return -1
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, err := strconv.ParseFloat(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 64)
			if err == nil {
				return kb * 1024
			}
		}
	}
	return -1
}

// dirListing names every file under dir with the space it takes.
func dirListing(dir string) string {
	var out []string
	_ = filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			rel, _ := filepath.Rel(dir, path)
			out = append(out, fmt.Sprintf("%s %.0f KiB", rel, dirBytes(path)/1024))
		}
		return nil
	})
	return strings.Join(out, ", ")
}

// dirBytes is the space the files under dir take on disk.
func dirBytes(dir string) float64 {
	var total int64
	_ = filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			if info, err := d.Info(); err == nil {
				if st, ok := info.Sys().(*syscall.Stat_t); ok {
					total += st.Blocks * 512
				}
			}
		}
		return nil
	})
	return float64(total)
}

// TestSoak runs a three-process cluster for $WATCHDOG_SOAK under a steady
// heartbeat load, services going silent and recovering, a leader killed
// with SIGKILL (and restarted) every minute and a backup every few minutes,
// sampling every node's resident memory, goroutines, open files and data
// dir. It fails if any of them keeps growing (soakBounds) and prints the
// figures. make soak runs it; it stops by itself.
func TestSoak(t *testing.T) {
	d, err := time.ParseDuration(os.Getenv(soakEnv))
	if os.Getenv(soakEnv) == "" {
		t.Skip(soakEnv + " not set: make soak runs the soak (SOAK=15m by default)")
	}
	if err != nil || d < time.Minute {
		t.Fatalf("%s=%q: want a duration of at least 1m", soakEnv, os.Getenv(soakEnv))
	}
	dir := t.TempDir()
	config := filepath.Join(dir, "watchdog.yaml")
	yaml := fmt.Sprintf("defaults: {timeout: %s, actions: [log]}\n", soakTimeout)
	if err := os.WriteFile(config, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	procs := newProcCluster(t, dir, "", config)
	for _, p := range procs {
		p.env = []string{compactEnv + "=1"}
		startProc(t, p)
	}
	procLeader(t, procs)
	// The backups need the API token: WATCHDOG_TOKEN when set, else the one
	// the cluster generated (the same on every node once it has formed).
	token := os.Getenv("WATCHDOG_TOKEN")
	if token == "" {
		waitFor(t, 30*time.Second, "one generated API token on every node", func() bool {
			token = procs[0].apiToken()
			for _, p := range procs {
				if p.apiToken() != token {
					return false
				}
			}
			return token != ""
		})
	}
	s := &soak{procs: procs, token: token, client: http.Client{Timeout: 10 * time.Second},
		samples: map[string][]soakSample{}}
	figures := s.run(t, d)
	procLeader(t, procs) // the cluster is whole and ready at the end
	for _, p := range procs {
		if n, _ := filepath.Glob(filepath.Join(p.dataDir, "snapshots", "*", "state.bin")); len(n) == 0 {
			t.Errorf("%s never took a snapshot: its log was never compacted", p.id)
		}
	}
	t.Log(figures)
	for _, p := range procs {
		t.Logf("%s data dir at the end: %s", p.id, dirListing(p.dataDir))
	}
	s.judge(t, d)
}

// run drives the soak for d and returns a line of what happened.
func (s *soak) run(t *testing.T, d time.Duration) string {
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	var wg sync.WaitGroup
	var silenced atomic.Int64
	for i := range soakServices {
		wg.Add(1)
		go func() { defer wg.Done(); s.beat(ctx, i) }()
	}
	wg.Add(1)
	go func() { defer wg.Done(); s.silence(ctx, &silenced) }()
	backupEvery := min(max(d/5, 30*time.Second), 3*time.Minute)
	sampleEvery := min(max(d/90, 2*time.Second), 10*time.Second)
	kills, backups, backupErrs := 0, 0, 0
	nextKill, nextBackup := start.Add(soakKillEvery), start.Add(backupEvery)
	tick := time.NewTicker(sampleEvery)
	defer tick.Stop()
	for ctx.Err() == nil {
		s.sample(time.Since(start))
		select {
		case <-ctx.Done():
		case <-tick.C:
		}
		if now := time.Now(); now.After(nextKill) && ctx.Err() == nil {
			t.Logf("%s: %s", time.Since(start).Round(time.Second), s.killLeader(t))
			kills, nextKill = kills+1, now.Add(soakKillEvery)
		}
		if now := time.Now(); now.After(nextBackup) && ctx.Err() == nil {
			if err := s.backup(); err != nil {
				backupErrs++
				t.Logf("%s: backup failed: %v", time.Since(start).Round(time.Second), err)
			}
			backups, nextBackup = backups+1, now.Add(backupEvery)
		}
	}
	s.sample(time.Since(start))
	wg.Wait()
	// A backup may fail while a killed leader's successor is elected, not
	// more often than that.
	if backups > 0 && backupErrs*2 > backups {
		t.Errorf("%d of %d backups failed", backupErrs, backups)
	}
	return fmt.Sprintf("soak: %s, 3 nodes, %d services, %d leader kills (kill -9, restarted), %d backups (%d failed), "+
		"%d silences, %d heartbeats acknowledged, %d not (retried by the next beat)",
		d, soakServices, kills, backups, backupErrs, silenced.Load(), s.acked.Load(), s.failed.Load())
}

// judge compares, for every node and figure, the last third of the run
// after a warm-up with the first third, prints the table and fails on
// growth beyond the bound.
func (s *soak) judge(t *testing.T, d time.Duration) {
	var ids []string
	for _, p := range s.procs {
		ids = append(ids, p.id)
	}
	table, growing := soakVerdicts(s.samples, ids, d)
	t.Log("\n" + table)
	for _, g := range growing {
		t.Error(g)
	}
}

// soakVerdicts is judge's table and the figures that keep growing.
func soakVerdicts(samples map[string][]soakSample, ids []string, d time.Duration) (string, []string) {
	warm := min(time.Minute, d/5)
	third := (d - warm) / 3
	var b strings.Builder
	var growing []string
	fmt.Fprintf(&b, "warm-up %s; first third %s–%s; last third %s–%s; fail if last median > first max × factor + slack\n",
		warm, warm, warm+third, d-third, d)
	fmt.Fprintf(&b, "%-4s %-13s %10s %10s %10s %10s %10s  %-8s %s\n", "node", "figure", "first max", "last med",
		"last max", "end", "bound", "verdict", "max of each tenth of the run")
	for _, id := range ids {
		for _, bound := range soakBounds() {
			first := soakWindow(samples[id], bound, warm, warm+third)
			last := soakWindow(samples[id], bound, d-third, d+time.Hour)
			if len(first) == 0 || len(last) == 0 {
				growing = append(growing, fmt.Sprintf("%s %s: too few samples to judge", id, bound.name))
				continue
			}
			firstMax, lastMed := slices.Max(first), median(last)
			limit := firstMax*bound.factor + bound.slack
			verdict := "ok"
			if lastMed > limit {
				verdict = "GROWING"
				growing = append(growing, fmt.Sprintf("%s %s keeps growing: last third's median %.1f > %.1f (first third's max %.1f × %g + %g)",
					id, bound.name, lastMed, limit, firstMax, bound.factor, bound.slack))
			}
			fmt.Fprintf(&b, "%-4s %-13s %10.1f %10.1f %10.1f %10.1f %10.1f  %-8s %s\n", id, bound.name,
				firstMax, lastMed, slices.Max(last), last[len(last)-1], limit, verdict, tenths(samples[id], bound, d))
		}
	}
	return b.String(), growing
}

// tenths is the maximum of a figure in each tenth of the run.
func tenths(samples []soakSample, bound soakBound, d time.Duration) string {
	var out []string
	for i := range 10 {
		w := soakWindow(samples, bound, d*time.Duration(i)/10, d*time.Duration(i+1)/10+time.Duration(i/9)*time.Hour)
		if len(w) == 0 {
			out = append(out, "-")
			continue
		}
		out = append(out, strconv.FormatFloat(slices.Max(w), 'f', 1, 64))
	}
	return strings.Join(out, " ")
}

// soakWindow is one figure of the samples in [from, to), in shown units,
// leaving out the ones not read.
func soakWindow(samples []soakSample, bound soakBound, from, to time.Duration) []float64 {
	var out []float64
	for _, s := range samples {
		if v := bound.get(s); s.at >= from && s.at < to && v >= 0 {
			out = append(out, v/bound.scale)
		}
	}
	return out
}

func median(v []float64) float64 {
	s := slices.Clone(v)
	slices.Sort(s)
	return s[len(s)/2]
}

// TestSoakVerdictsFailOnlyOnGrowth checks the soak's judge on made-up runs:
// a figure that keeps rising fails, a flat one with a spike passes.
func TestSoakVerdictsFailOnlyOnGrowth(t *testing.T) {
	const d = 15 * time.Minute
	run := func(rss func(at time.Duration) float64) map[string][]soakSample {
		var out []soakSample
		for at := time.Duration(0); at <= d; at += 10 * time.Second {
			out = append(out, soakSample{at: at, rss: rss(at), goroutines: 60, fds: 30, dataBytes: 1 << 20})
		}
		return map[string][]soakSample{"n1": out}
	}
	flat := func(at time.Duration) float64 {
		if at > 12*time.Minute && at < 12*time.Minute+20*time.Second {
			return 200 << 20 // a passing spike
		}
		return 30 << 20
	}
	leak := func(at time.Duration) float64 { return 30<<20 + at.Seconds()*(64<<10) } // 64 KiB a second
	if table, growing := soakVerdicts(run(flat), []string{"n1"}, d); len(growing) != 0 {
		t.Errorf("a flat run with a spike fails: %v\n%s", growing, table)
	}
	table, growing := soakVerdicts(run(leak), []string{"n1"}, d)
	if len(growing) != 1 || !strings.Contains(growing[0], "rss MiB keeps growing") {
		t.Errorf("a leak of 64 KiB/s is not caught: %v\n%s", growing, table)
	}
	t.Log("\n" + table)
}
