package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// chromiumPath finds the browser the dashboard test drives. Without one the
// test is skipped, except in CI, where a missing browser is a failure:
// scripts/ci-deps.sh installs Debian's chromium.
func chromiumPath(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("CI") != "" {
		t.Fatal("CI is set and no chromium is installed: run scripts/ci-deps.sh")
	}
	t.Skip("no chromium installed (scripts/ci-deps.sh installs it)")
	return ""
}

// tab is one browser tab, with every console message it has had.
type tab struct {
	ctx  context.Context
	mu   sync.Mutex
	msgs []chromedp.ConsoleMessage
}

// openTabs starts a headless chromium with one tab per URL, each recording
// its console from before it navigates.
func openTabs(t *testing.T, chrome string, urls []string) []*tab {
	t.Helper()
	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(chrome),
		// The sandbox refuses to run as root, as tests here do; the browser
		// loads only the test's own pages.
		chromedp.NoSandbox, chromedp.WindowSize(1200, 800))
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	browserCtx, cancelBrowser := chromedp.NewContext(allocCtx)
	var wg sync.WaitGroup
	cancels := []context.CancelFunc{cancelBrowser, cancelAlloc}
	t.Cleanup(func() {
		for i := len(cancels) - 1; i >= 0; i-- {
			cancels[i]()
		}
		wg.Wait()
	})
	var tabs []*tab
	for i, url := range urls {
		ctx := browserCtx
		if i > 0 {
			var cancel context.CancelFunc
			ctx, cancel = chromedp.NewContext(browserCtx)
			cancels = append(cancels, cancel)
		}
		tb := &tab{ctx: ctx}
		messages := chromedp.Console(ctx)
		wg.Go(func() {
			for m, err := range messages {
				if err != nil {
					return
				}
				tb.mu.Lock()
				tb.msgs = append(tb.msgs, m)
				tb.mu.Unlock()
			}
		})
		if err := chromedp.Do(ctx, chromedp.Navigate(url)); err != nil {
			t.Fatalf("open %s: %v", url, err)
		}
		tabs = append(tabs, tb)
	}
	return tabs
}

// waitJS polls a JavaScript condition in the tab until it is truthy.
func (tb *tab) waitJS(t *testing.T, what, cond string, within time.Duration) {
	t.Helper()
	// Interval polling, not animation frames: those do not run in a tab
	// in the background.
	poll := chromedp.Poll[chromedp.Void](cond, chromedp.WithPollingInterval(50*time.Millisecond),
		chromedp.WithPollingTimeout(within))
	if err := chromedp.Do(tb.ctx, poll); err != nil {
		t.Fatalf("waiting %s for %s: %v\n%s", within, what, err, tb.describe())
	}
}

// describe is the page's service rows and status line, for failure messages.
func (tb *tab) describe() string {
	s, err := chromedp.Run(tb.ctx, chromedp.Evaluate[string](
		`[...document.querySelectorAll("#svc-table tr.svc")].map(r => r.dataset.id + ":" + r.className).join(" ") +
		 " | " + document.getElementById("live").textContent`))
	if err != nil {
		return "page unreadable: " + err.Error()
	}
	return "page: " + s
}

func (tb *tab) problems() []string {
	tb.mu.Lock()
	defer tb.mu.Unlock()
	var out []string
	for _, m := range tb.msgs {
		if m.Type != chromedp.ConsoleLog && m.Type != chromedp.ConsoleDebug && m.Type != chromedp.ConsoleInfo {
			out = append(out, m.String()+" at "+m.URL)
		}
	}
	return out
}

// timelineOf is a service row's timeline marks' classes, oldest first.
func timelineOf(id string) string {
	return `[...document.querySelectorAll('tr.svc[data-id="` + id + `"] .timeline i')].map(i => i.className)`
}

// rowOrder is the services on the page, top to bottom.
const rowOrder = `[...document.querySelectorAll("#svc-table tr.svc")].map(r => r.dataset.id).join()`

// The dashboard in a real browser, on every node of a real cluster: the
// page loads with its table, a service that stops sending heartbeats moves
// to the top without a reload, and nothing is written to the console.
func TestDashboardInBrowser(t *testing.T) {
	chrome := chromiumPath(t)
	c := newTestCluster(t, 3, fileConfig(t, "check_interval: 100ms\ndefaults: {timeout: 1h}\n"+
		"services:\n  zz-victim: {timeout: 2s, tags: [critical]}\n"))
	c.leader(3)
	agents := c.running()
	for _, id := range []string{"aa-steady", "mm-paused", "zz-victim"} {
		if code := heartbeat(t, agents[0], id); code != http.StatusOK {
			t.Fatalf("heartbeat %s: %d", id, code)
		}
	}
	if resp, err := http.Post("http://"+agents[1].Addr+"/v1/services/mm-paused/pause", "", nil); err != nil || resp.StatusCode != 200 {
		t.Fatalf("pause: %v %v", resp, err)
	}
	stopBeats := sync.OnceFunc(keepBeating(t, c, "zz-victim", 300*time.Millisecond))
	defer stopBeats()

	var urls []string
	for _, a := range agents {
		urls = append(urls, "http://"+a.Addr+"/")
		checkNoJSPage(t, urls[len(urls)-1])
	}
	tabs := openTabs(t, chrome, urls)
	for i, tb := range tabs {
		tb.waitJS(t, "the live table on "+urls[i], `document.getElementById("live").className === "live" && `+
			rowOrder+` === "mm-paused,aa-steady,zz-victim"`, 10*time.Second)
		// A reload would lose this mark: the update below must come live.
		if err := chromedp.Do(tb.ctx, chromedp.Evaluate[chromedp.Void](`window.notReloaded = true`)); err != nil {
			t.Fatal(err)
		}
	}

	stopBeats()
	for i, tb := range tabs {
		tb.waitJS(t, "zz-victim on top, down, on "+urls[i], rowOrder+` === "zz-victim,mm-paused,aa-steady" && `+
			`document.querySelector("#svc-table tr.svc").classList.contains("s-down") && `+
			`document.title === "(1 down) watchdog" && window.notReloaded === true`, 15*time.Second)
		// Its timeline's current half-hour turned red, live; the others'
		// 48 marks are all there.
		tb.waitJS(t, "zz-victim's timeline down, on "+urls[i], timelineOf("zz-victim")+`.length === 48 && `+
			timelineOf("zz-victim")+`.at(-1) === "tl-d" && `+timelineOf("aa-steady")+`.every(c => c === "tl-u") && `+
			`/last 24 h in half-hours: .*1 down/.test(document.querySelector('tr.svc[data-id="zz-victim"] .timeline').getAttribute("aria-label")) && `+
			`window.notReloaded === true`, 10*time.Second)
	}
	// A tag filters the list, as the search box does.
	if err := chromedp.Do(tabs[1].ctx, chromedp.Click(`tr.svc[data-id="zz-victim"] a.tag`, chromedp.NodeVisible)); err != nil {
		t.Fatal(err)
	}
	tabs[1].waitJS(t, "the list filtered by the tag", rowOrder+` === "zz-victim" && document.getElementById("q").value === "critical" && `+
		`location.search === "?q=critical" && window.notReloaded === true`, 5*time.Second)
	// The history comes from GET /v1/services/{id} when asked for.
	if err := chromedp.Do(tabs[0].ctx, chromedp.Click(`tr.svc[data-id="zz-victim"] a.hist-link`, chromedp.NodeVisible)); err != nil {
		t.Fatal(err)
	}
	tabs[0].waitJS(t, "the incident history", `/incident \S+: down at/.test(document.querySelector("tr.hist").textContent)`, 10*time.Second)
	screenshots(t, tabs[0])

	for i, tb := range tabs {
		if p := tb.problems(); len(p) > 0 {
			t.Errorf("console of %s:\n%s", urls[i], strings.Join(p, "\n"))
		}
	}
	// The console is really being heard: an error written now is caught.
	if err := chromedp.Do(tabs[0].ctx, chromedp.Evaluate[chromedp.Void](`console.error("probe")`)); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, "the console probe", func() bool { return len(tabs[0].problems()) > 0 })
}

// checkNoJSPage fetches the page as a browser without JavaScript would get
// it: the table is there, rendered by the server.
func checkNoJSPage(t *testing.T, url string) {
	t.Helper()
	// Each node shows its own replica, which may apply the last writes a
	// moment after they were acknowledged.
	var status int
	var page string
	ok := func() bool {
		resp, err := http.Get(url)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		status, page = resp.StatusCode, string(body)
		return status == 200 && strings.Contains(page, `<table id="svc-table">`) &&
			strings.Contains(page, `data-id="zz-victim"`) && strings.Contains(page, `data-id="mm-paused"`) &&
			// The timeline and the tags read without the script too.
			strings.Count(page, `<span class="timeline" role="img" aria-label="last 24 h in half-hours: `) == 3 &&
			strings.Contains(page, `<a class="tag" href="/?q=critical">critical</a>`)
	}
	deadline := time.Now().Add(10 * time.Second)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("GET %s: %d\n%s", url, status, page)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// screenshots saves the page at desktop and phone widths into the directory
// WATCHDOG_SCREENSHOTS names, if it does: for people to look at.
func screenshots(t *testing.T, tb *tab) {
	dir := os.Getenv("WATCHDOG_SCREENSHOTS")
	if dir == "" {
		return
	}
	for _, shot := range []struct {
		name          string
		width, height int64
	}{{"dashboard-desktop.png", 1200, 800}, {"dashboard-phone.png", 390, 844}} {
		err := chromedp.Do(tb.ctx, chromedp.EmulateViewport(shot.width, shot.height, chromedp.EmulateScale(2)))
		png, err2 := chromedp.Run(tb.ctx, chromedp.FullScreenshot(100))
		if err != nil || err2 != nil {
			t.Fatalf("screenshot: %v %v", err, err2)
		}
		if err := os.WriteFile(filepath.Join(dir, shot.name), png, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// A long list in a real browser: the page holds one page of 100 services,
// the search box filters them as one types and the pager moves through
// them; then the node that served the page dies, and the page follows the
// stream of another node it knows, and stays live.
func TestDashboardPagesSearchesAndFailsOverInBrowser(t *testing.T) {
	chrome := chromiumPath(t)
	c := newTestCluster(t, 3, fileConfig(t, "check_interval: 100ms\ndefaults: {timeout: 1h}\n"))
	leader := c.leader(3)
	ids := make([]string, 0, 250)
	for i := range 250 {
		ids = append(ids, fmt.Sprintf("svc-%03d", i))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := leader.Node.Heartbeat(ctx, ids...); err != nil {
		t.Fatal(err)
	}
	var served *Agent // a follower: the leader stays up, the page's node dies
	for _, a := range c.running() {
		if a != leader {
			served = a
		}
	}
	waitFor(t, 10*time.Second, "the services on the page's node", func() bool { return served.FSM.Len() == 250 })
	tb := openTabs(t, chrome, []string{served.URL() + "/"})[0]
	const rowCount = `document.querySelectorAll("#svc-table tr.svc").length`
	tb.waitJS(t, "one page of services, live", `document.getElementById("live").className === "live" && `+rowCount+` === 100 && `+
		`document.getElementById("showing").textContent === "1–100 of 250"`, 10*time.Second)
	if err := chromedp.Do(tb.ctx, chromedp.Evaluate[chromedp.Void](`window.notReloaded = true`)); err != nil {
		t.Fatal(err)
	}

	// Typing filters at once; the pager moves within the matches.
	if err := chromedp.Do(tb.ctx, chromedp.SendKeys("#q", "1", chromedp.NodeVisible)); err != nil {
		t.Fatal(err)
	}
	tb.waitJS(t, "the search", rowCount+` === 100 && document.getElementById("showing").textContent === "1–100 of 133 matching (250 in all)" && `+
		`location.search === "?q=1"`, 10*time.Second)
	if err := chromedp.Do(tb.ctx, chromedp.Click("#next", chromedp.NodeVisible)); err != nil {
		t.Fatal(err)
	}
	tb.waitJS(t, "the second page of matches", rowCount+` === 33 && document.querySelector("#svc-table tr.svc").dataset.id === "svc-181" && `+
		`location.search === "?q=1&page=1" && `+
		`!document.getElementById("prev").hidden && document.getElementById("next").hidden && window.notReloaded === true`, 10*time.Second)

	// The page's node dies: the page follows another node and stays live.
	c.stop(served)
	tb.waitJS(t, "the page to follow another node", `/^live from n\d, as the node that served this page is unreachable$/.test(`+
		`document.getElementById("live").textContent) && !document.getElementById("live").textContent.includes("`+served.Node.ID()+`")`, 20*time.Second)
	ctx2, cancel2 := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel2()
	if err := leader.Node.Heartbeat(ctx2, "svc-1zz"); err != nil {
		t.Fatal(err)
	}
	tb.waitJS(t, "a new service through the other node's stream", `document.getElementById("showing").textContent === "101–134 of 134 matching (251 in all)" && `+
		`document.querySelector('#svc-table tr.svc[data-id="svc-1zz"]') !== null && window.notReloaded === true`, 15*time.Second)
	// History comes from the node the page follows now.
	if err := chromedp.Do(tb.ctx, chromedp.Click(`tr.svc[data-id="svc-1zz"] a.hist-link`, chromedp.NodeVisible)); err != nil {
		t.Fatal(err)
	}
	tb.waitJS(t, "the history from the other node", `document.querySelector("tr.hist").textContent.includes("No incidents.")`, 10*time.Second)
	for _, p := range tb.problems() {
		// The browser reports the lost node's refused connections, and
		// its live stream cut mid-chunk when it stopped; nothing else may
		// appear.
		lost := strings.Contains(p, "ERR_CONNECTION_REFUSED") ||
			(strings.Contains(p, "ERR_INCOMPLETE_CHUNKED_ENCODING") && strings.Contains(p, "/v1/stream"))
		if !lost || !strings.Contains(p, served.Addr) {
			t.Errorf("console: %s", p)
		}
	}
}
