package loadgen

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

// countingServer is a real HTTP server that counts what it serves, by
// service id, and answers as behave says for that id.
type countingServer struct {
	*httptest.Server
	mu     sync.Mutex
	byID   map[string]int
	bad    []string // requests that are not a heartbeat the bench should send
	status map[int]int
}

var benchPath = regexp.MustCompile(`^/v1/heartbeat/(bench-\d{6})$`)

func newCountingServer(t *testing.T, behave func(w http.ResponseWriter, r *http.Request, id string, n int) int) *countingServer {
	s := &countingServer{byID: map[string]int{}, status: map[int]int{}}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/v1/services" {
			return // 200 and no services list: not a watchdog, so runBench sends heartbeats only
		}
		id := ""
		if m := benchPath.FindStringSubmatch(r.URL.Path); m != nil && r.Method == http.MethodPost {
			id = m[1]
		} else if r.URL.Path == "/heartbeat" && r.Method == http.MethodGet {
			id = r.URL.Query().Get("id")
		}
		s.mu.Lock()
		if id == "" {
			s.bad = append(s.bad, r.Method+" "+r.URL.String())
		}
		s.byID[id]++
		n := 0
		for _, c := range s.byID {
			n += c
		}
		s.mu.Unlock()
		code := behave(w, r, id, n)
		s.mu.Lock()
		s.status[code]++
		s.mu.Unlock()
	}))
	t.Cleanup(s.Close)
	return s
}

func (s *countingServer) counts() (total int, byID map[string]int, status map[int]int, bad []string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	byID, status = map[string]int{}, map[int]int{}
	for k, v := range s.byID {
		byID[k], total = v, total+v
	}
	for k, v := range s.status {
		status[k] = v
	}
	return total, byID, status, append([]string(nil), s.bad...)
}

func addrOf(s *httptest.Server) string { return strings.TrimPrefix(s.URL, "http://") }

// benchServiceID is the id of service i of a quickBench.
func benchServiceID(i int) string { return fmt.Sprintf("bench-%06d", i) }

func quickBench(addrs []string) *benchConfig {
	return &benchConfig{Addrs: addrs, Services: 7, Prefix: "bench-", Clients: 4, Duration: 300 * time.Millisecond,
		Route: routeV1, Timeout: 5 * time.Second}
}

func mustRun(t *testing.T, cfg *benchConfig) *benchResult {
	t.Helper()
	res, err := runLoad(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("requests %d ok %d errors %v unsent %d p50 %s max %s", res.Requests, res.OK, res.Errors,
		res.Unsent, res.Latency.quantile(0.5), res.Latency.max)
	return res
}

func TestBenchCountsMatchTheServer(t *testing.T) {
	for _, route := range []string{routeV1, routeQuery} {
		t.Run(route, func(t *testing.T) {
			// Every third request served is refused with 503.
			srv := newCountingServer(t, func(w http.ResponseWriter, _ *http.Request, _ string, n int) int {
				if n%3 == 0 {
					w.WriteHeader(http.StatusServiceUnavailable)
					return http.StatusServiceUnavailable
				}
				return http.StatusOK
			})
			cfg := quickBench([]string{addrOf(srv.Server)})
			cfg.Route = route
			res := mustRun(t, cfg)
			total, byID, status, bad := srv.counts()
			if len(bad) > 0 {
				t.Fatalf("the bench sent %d requests that are not heartbeats, first %s", len(bad), bad[0])
			}
			if res.Requests != uint64(total) || res.OK != uint64(status[200]) ||
				res.Errors["http_503"] != uint64(status[503]) || res.Latency.n != res.OK {
				t.Fatalf("bench counted %d requests, %d ok, %d 503, %d latencies; the server served %d: %v",
					res.Requests, res.OK, res.Errors["http_503"], res.Latency.n, total, status)
			}
			if status[503] == 0 {
				t.Fatalf("the server never answered 503 in %d requests", total)
			}
			for id := range byID {
				if id < benchServiceID(0) || id > benchServiceID(cfg.Services-1) {
					t.Errorf("heartbeat for %s, outside the %d services", id, cfg.Services)
				}
			}
			for _, k := range []string{errRefused, errReset, errTimeout, errOther} {
				if res.Errors[k] != 0 {
					t.Errorf("%d %s errors from a server that only answers", res.Errors[k], k)
				}
			}
		})
	}
}

func TestBenchSortsErrorsByKind(t *testing.T) {
	// Four clients and four services: client i always sends service i.
	srv := newCountingServer(t, func(w http.ResponseWriter, r *http.Request, id string, _ int) int {
		switch id {
		case benchServiceID(1):
			w.WriteHeader(http.StatusInternalServerError)
			return http.StatusInternalServerError
		case benchServiceID(2): // never answer: the client times out
			<-r.Context().Done()
			return 0
		case benchServiceID(3): // drop the connection with a TCP reset
			conn, _, err := w.(http.Hijacker).Hijack()
			if err != nil {
				panic(err)
			}
			conn.(*net.TCPConn).SetLinger(0)
			conn.Close()
			return -1
		}
		return http.StatusOK
	})
	cfg := quickBench([]string{addrOf(srv.Server)})
	cfg.Services, cfg.Duration, cfg.Timeout = 4, time.Second, 2*time.Second
	res := mustRun(t, cfg)
	total, byID, status, _ := srv.counts()
	want := map[string]uint64{"http_500": uint64(status[500]), errTimeout: uint64(byID[benchServiceID(2)]),
		errReset: uint64(byID[benchServiceID(3)]), errRefused: 0, errOther: 0}
	for k, n := range want {
		if res.Errors[k] != n {
			t.Errorf("%s: bench counted %d, want %d (server: %d requests, %v)", k, res.Errors[k], n, total, byID)
		}
	}
	if res.OK != uint64(status[200]) || res.Requests != uint64(total) {
		t.Errorf("bench: %d requests, %d ok; server: %d requests, %d ok", res.Requests, res.OK, total, status[200])
	}
	if want[errTimeout] == 0 || want[errReset] == 0 || want["http_500"] == 0 {
		t.Errorf("some kind never happened, the test proves nothing: %v", want)
	}
}

func TestBenchCountsRefusedConnections(t *testing.T) {
	srv := newCountingServer(t, func(http.ResponseWriter, *http.Request, string, int) int { return 200 })
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := ln.Addr().String()
	ln.Close()
	res := mustRun(t, quickBench([]string{addrOf(srv.Server), closed}))
	total, _, _, _ := srv.counts()
	if res.OK != uint64(total) || res.Errors[errRefused] != res.Requests-uint64(total) || res.Errors[errRefused] == 0 {
		t.Fatalf("bench: %d requests, %d ok, %d refused; the live server served %d",
			res.Requests, res.OK, res.Errors[errRefused], total)
	}
	// Round-robin: each address gets every other request.
	if diff := int(res.OK) - int(res.Errors[errRefused]); diff < -int(res.Requests)/4 || diff > int(res.Requests)/4 {
		t.Errorf("%d to the live address, %d to the closed one: not round-robin", res.OK, res.Errors[errRefused])
	}
}

func TestBenchOpenLoopSendsAtTheRate(t *testing.T) {
	srv := newCountingServer(t, func(http.ResponseWriter, *http.Request, string, int) int { return 200 })
	cfg := quickBench([]string{addrOf(srv.Server)})
	cfg.Rate, cfg.Duration, cfg.Warmup = 200, time.Second, 200*time.Millisecond
	res := mustRun(t, cfg)
	// The window [0.2 s, 1.2 s) holds exactly 200 slots, sent or not.
	if res.Requests+res.Unsent != 200 {
		t.Errorf("%d sent + %d unsent, want the 200 slots of the window", res.Requests, res.Unsent)
	}
	if res.Requests < 140 || res.Requests > 260 {
		t.Errorf("sent %d in 1 s at 200/s: want 200 ± 30 %%", res.Requests)
	}
	if total, _, _, _ := srv.counts(); uint64(total) < res.Requests {
		t.Errorf("the server saw %d, fewer than the %d counted", total, res.Requests)
	}
}

func TestBenchOpenLoopShowsQueueing(t *testing.T) {
	// One client, a server that takes 20 ms, 100 requests/s wanted: the
	// client falls behind, and each request's latency counts from when it
	// was due. The k-th request (from 0) is due at k×10 ms and can't end
	// before (k+1)×20 ms, so it shows at least k×10 + 20 ms.
	srv := newCountingServer(t, func(http.ResponseWriter, *http.Request, string, int) int {
		time.Sleep(20 * time.Millisecond)
		return 200
	})
	cfg := quickBench([]string{addrOf(srv.Server)})
	cfg.Clients, cfg.Rate, cfg.Duration = 1, 100, time.Second
	res := mustRun(t, cfg)
	if res.Requests == 0 || res.Requests != res.OK {
		t.Fatalf("%d requests, %d ok", res.Requests, res.OK)
	}
	if floor := time.Duration(res.Requests-1)*10*time.Millisecond + 20*time.Millisecond; res.Latency.max < floor {
		t.Errorf("max latency %s, want at least %s: queueing behind a slow server is hidden", res.Latency.max, floor)
	}
	if res.Unsent == 0 || res.Requests+res.Unsent != 100 {
		t.Errorf("%d sent, %d unsent: want the rest of the 100 slots reported unsent", res.Requests, res.Unsent)
	}
}

func TestBenchFlags(t *testing.T) {
	env := func(m map[string]string) func(string) string { return func(k string) string { return m[k] } }
	var stderr bytes.Buffer
	o, err := parseBenchFlags(nil, env(nil), &stderr)
	if err != nil || strings.Join(o.Addrs, ",") != defaultAddr || o.Services != 10000 || o.Clients != 64 ||
		o.Duration != 10*time.Second || o.Rate != 0 || o.Route != routeV1 || o.Timeout != 5*time.Second || o.Warmup != time.Second ||
		!regexp.MustCompile(`^wdbench-[0-9a-f]{6}-$`).MatchString(o.Prefix) {
		t.Fatalf("defaults: %+v, %v", o, err)
	}
	o, err = parseBenchFlags(nil, env(map[string]string{"WATCHDOG_ADDR": "a:1, http://b:2/"}), &stderr)
	if err != nil || strings.Join(o.Addrs, ",") != "a:1,b:2" {
		t.Fatalf("from the environment: %v, %v", o, err)
	}
	o, err = parseBenchFlags([]string{"-addr", "c:3"}, env(map[string]string{"WATCHDOG_ADDR": "a:1"}), &stderr)
	if err != nil || strings.Join(o.Addrs, ",") != "c:3" {
		t.Fatalf("the flag must beat the environment: %v, %v", o, err)
	}
	// The token, as every CLI command takes it: the generated one's file.
	tokenFile := filepath.Join(t.TempDir(), "api-token")
	if err := os.WriteFile(tokenFile, []byte("generated-token\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	o, err = parseBenchFlags(nil, env(map[string]string{"WATCHDOG_TOKEN_FILE": tokenFile}), &stderr)
	if err != nil || o.APIToken != "generated-token" {
		t.Fatalf("token from $WATCHDOG_TOKEN_FILE: %q, %v", o.APIToken, err)
	}
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"-clients", "0"}, "-clients: must be at least 1"},
		{[]string{"-services", "-5"}, "-services: must be at least 1"},
		{[]string{"-duration", "0s"}, "-duration: must be positive"},
		{[]string{"-rate", "-1"}, "-rate: must be 0"},
		{[]string{"-rate", "NaN"}, "-rate: must be 0"},
		{[]string{"-route", "v2"}, `-route: must be v1 or query, got "v2"`},
		{[]string{"-timeout", "0s"}, "-timeout: must be positive"},
		{[]string{"-addr", "localhost"}, `-addr: "localhost": want host:port`},
		{[]string{"-addr", "a:1,,b:2"}, `-addr: "": want host:port`},
		{[]string{"-addr", "https://a:1"}, "only plain http"},
		{[]string{"-addr", "http://a:1/v1"}, `"a:1/v1": want host:port`},
		{[]string{"-addr", "a:0"}, `"a:0": want host:port`},
		{[]string{"extra"}, `unexpected argument "extra"`},
		{[]string{"-prefix", "a/b-"}, `-prefix: "a/b-" makes invalid service ids`},
	} {
		if _, err := parseBenchFlags(c.args, env(nil), &stderr); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v: error %v, want one containing %q", c.args, err, c.want)
		}
	}
}

func TestBenchPrintsJSON(t *testing.T) {
	srv := newCountingServer(t, func(http.ResponseWriter, *http.Request, string, int) int { return 200 })
	var out, errOut bytes.Buffer
	err := Run(t.Context(), []string{"-addr", srv.URL, "-prefix", "bench-", "-services", "3", "-clients", "2",
		"-duration", "200ms", "-warmup", "0s", "-json"}, &out, &errOut)
	if err != nil {
		t.Fatal(err, errOut.String())
	}
	var rep benchJSON
	if err := json.Unmarshal(out.Bytes(), &rep); err != nil {
		t.Fatalf("%v in %s", err, out.String())
	}
	total, _, _, _ := srv.counts()
	if rep.Requests == 0 || rep.Requests != uint64(total) || rep.OK != rep.Requests || rep.ErrorsTotal != 0 ||
		rep.Throughput <= 0 || rep.DurationS != 0.2 || len(rep.Errors) != 4 {
		t.Errorf("report %+v; the server served %d", rep, total)
	}
	for _, k := range []string{"p50", "p90", "p99", "p99.9", "max"} {
		if v, ok := rep.LatencyMS[k]; !ok || v <= 0 {
			t.Errorf("latency %s = %v (present %v)", k, v, ok)
		}
	}
}

func TestBenchPrintsText(t *testing.T) {
	srv := newCountingServer(t, func(http.ResponseWriter, *http.Request, string, int) int { return 200 })
	var out bytes.Buffer
	err := Run(t.Context(), []string{"-addr", srv.URL, "-prefix", "bench-", "-clients", "1", "-duration", "100ms",
		"-warmup", "0s", "-rate", "50"}, &out, &out)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"throughput", "errors      0\n", "unsent", "p99.9", "open loop at 50 req/s"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
}

func TestNoopServerServesUntilCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	lines := &lineWriter{ch: make(chan string, 1)}
	done := make(chan error, 1)
	go func() { done <- runNoopServer(ctx, "127.0.0.1:0", lines) }()
	addr := strings.TrimSpace(strings.TrimPrefix(<-lines.ch, "noop server listening on "))
	resp, err := http.Post("http://"+addr+"/v1/heartbeat/x", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Errorf("no-op server answered %d", resp.StatusCode)
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("after cancel: %v", err)
	}
	if err := runNoopServer(t.Context(), "127.0.0.1:notaport", lines); err == nil {
		t.Error("a bad address must be an error")
	}
}

// lineWriter hands each write to a channel, so a test can wait for output.
type lineWriter struct{ ch chan string }

func (w *lineWriter) Write(p []byte) (int, error) {
	select {
	case w.ch <- string(p):
	default:
	}
	return len(p), nil
}
