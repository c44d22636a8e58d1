package main

import (
	"context"
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

// rowOrder is the services on the page, top to bottom.
const rowOrder = `[...document.querySelectorAll("#svc-table tr.svc")].map(r => r.dataset.id).join()`

// The dashboard in a real browser, on every node of a real cluster: the
// page loads with its table, a service that stops sending heartbeats moves
// to the top without a reload, and nothing is written to the console.
func TestDashboardInBrowser(t *testing.T) {
	chrome := chromiumPath(t)
	c := newTestCluster(t, 3, fileConfig(t, "check_interval: 100ms\ndefaults: {timeout: 1h}\n"+
		"services:\n  zz-victim: {timeout: 2s}\n"))
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
	}
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
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	page := string(body)
	if resp.StatusCode != 200 || !strings.Contains(page, `<table id="svc-table">`) ||
		!strings.Contains(page, `data-id="zz-victim"`) || !strings.Contains(page, `data-id="mm-paused"`) {
		t.Fatalf("GET %s: %d\n%s", url, resp.StatusCode, page)
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
