package loadgen

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
	"net"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/watchdog-ha/watchdog/client"
)

// defaultAddr is the node the bench drives without -addr or $WATCHDOG_ADDR:
// an agent's default HTTP address.
const defaultAddr = "127.0.0.1:8080"

// benchOptions are the parsed flags of `watchdog bench`.
type benchOptions struct {
	benchConfig
	JSON       bool
	NoopServer string  // if set, serve the no-op baseline here instead of measuring
	APIToken   string  // to define and delete the bench's services
	CPUPids    cpuFlag // servers whose CPU to measure (cpu.go)
}

// Run is `watchdog bench`: args are its flags (without the word bench). The
// report goes to stdout, the flag errors and the progress to stderr.
func Run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	opts, err := parseBenchFlags(args, os.Getenv, stderr)
	if err != nil {
		return err
	}
	if opts.NoopServer != "" {
		return runNoopServer(ctx, opts.NoopServer, stderr)
	}
	fleet, err := prepareBench(ctx, &opts.benchConfig, opts.APIToken, stderr)
	if err != nil {
		return err
	}
	// Interrupted or not, the bench's services go: they are nobody's.
	defer fleet.remove(context.WithoutCancel(ctx))
	if len(opts.CPUPids) > 0 {
		return runBenchCPU(ctx, opts, stdout)
	}
	res, err := runLoad(ctx, &opts.benchConfig)
	if err != nil {
		return err
	}
	if opts.JSON {
		return json.NewEncoder(stdout).Encode(benchReport(&opts.benchConfig, res))
	}
	printBench(stdout, &opts.benchConfig, res, ctx.Err() != nil)
	return nil
}

func newBenchFlagSet(stderr io.Writer, o *benchOptions, addrs *string) *flag.FlagSet {
	fs := flag.NewFlagSet("watchdog bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(addrs, "addr", "", "node HTTP `addresses`, host:port,host:port,... used round-robin\n"+
		"(env WATCHDOG_ADDR, default "+defaultAddr+")")
	fs.IntVar(&o.Services, "services", 10000, "`number` of service ids, -prefix then 000000 and on")
	fs.StringVar(&o.Prefix, "prefix", "", "`prefix` of the service ids (default "+benchPrefixDefault+"XXXXXX-, random per run)")
	fs.IntVar(&o.Clients, "clients", 64, "concurrent clients, each with its own keep-alive connections")
	fs.DurationVar(&o.Duration, "duration", 10*time.Second, "how long to measure, after the warmup")
	fs.Float64Var(&o.Rate, "rate", 0, "requests/s in total, sent on a fixed schedule with latency counted from\n"+
		"each request's scheduled time (open loop); 0: each client sends as soon as answered")
	fs.StringVar(&o.Route, "route", routeV1, "`route`: v1 (POST /v1/heartbeat/{id}) or query (GET /heartbeat?id=)")
	fs.DurationVar(&o.Timeout, "timeout", 5*time.Second, "time limit of each request, connecting included")
	fs.DurationVar(&o.Warmup, "warmup", time.Second, "load sent first and not counted")
	fs.BoolVar(&o.JSON, "json", false, "print the results as one JSON object")
	addCPUFlag(fs, &o.CPUPids)
	fs.StringVar(&o.NoopServer, "noop-server", "", "instead, serve HTTP at `host:port` with a handler that does nothing:\n"+
		"the baseline scripts/bench.sh compares the cluster with")
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), `Usage: watchdog bench [flags]

Sends heartbeats to the nodes of a watchdog cluster and prints the throughput,
the errors by kind and the latency percentiles of the answers.

The bench's services never page anyone: before the load it defines them
(PUT, with $WATCHDOG_TOKEN) without actions, tagged `+benchTag+`, with a
timeout longer than the run, and it deletes them when it ends, interrupted
too. It warns first when the cluster runs actions for its own services,
whose heartbeats the load may delay. Services a killed bench left behind:
watchdog delete -tag `+benchTag+` -yes.

Flags:
`)
		fs.PrintDefaults()
	}
	return fs
}

// parseBenchFlags parses args (without the "bench" word); the environment
// is injected for tests.
func parseBenchFlags(args []string, getenv func(string) string, stderr io.Writer) (*benchOptions, error) {
	o := &benchOptions{}
	var addrs string
	fs := newBenchFlagSet(stderr, o, &addrs)
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected argument %q: watchdog bench takes only flags (see -h)", fs.Arg(0))
	}
	if o.NoopServer != "" {
		return o, nil
	}
	// As every CLI command: $WATCHDOG_TOKEN, else $WATCHDOG_TOKEN_FILE.
	tok, err := client.TokenFromEnv(getenv)
	if err != nil {
		return nil, err
	}
	o.APIToken = tok
	if o.Prefix == "" {
		o.Prefix = newBenchPrefix()
	}
	from := "-addr"
	if addrs == "" {
		addrs, from = getenv("WATCHDOG_ADDR"), "$WATCHDOG_ADDR"
	}
	if addrs == "" {
		addrs = defaultAddr
	}
	var errs []error
	if o.Addrs, err = parseBenchAddrs(addrs); err != nil {
		errs = append(errs, fmt.Errorf("%s: %w", from, err))
	}
	errs = append(errs, o.validate()...)
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return o, nil
}

func (c *benchConfig) validate() []error {
	var errs []error
	check := func(bad bool, format string, args ...any) {
		if bad {
			errs = append(errs, fmt.Errorf(format, args...))
		}
	}
	check(c.Services < 1, "-services: must be at least 1, got %d", c.Services)
	check(c.Clients < 1, "-clients: must be at least 1, got %d", c.Clients)
	check(c.Duration <= 0, "-duration: must be positive, got %s", c.Duration)
	check(c.Warmup < 0, "-warmup: must not be negative, got %s", c.Warmup)
	check(c.Timeout <= 0, "-timeout: must be positive, got %s", c.Timeout)
	check(!(c.Rate >= 0) || c.Rate > 1e9, "-rate: must be 0 (closed loop) or a number of requests/s up to 1e9, got %g", c.Rate)
	check(c.Route != routeV1 && c.Route != routeQuery, "-route: must be %s or %s, got %q", routeV1, routeQuery, c.Route)
	check(!client.ValidID(c.serviceID(max(c.Services-1, 0))), "-prefix: %q makes invalid service ids: want A-Za-z0-9._-, ids at most 128 long", c.Prefix)
	return errs
}

// parseBenchAddrs accepts host:port, optionally written as an http:// URL.
func parseBenchAddrs(s string) ([]string, error) {
	var out []string
	for _, a := range strings.Split(s, ",") {
		a = strings.TrimSuffix(strings.TrimPrefix(strings.TrimSpace(a), "http://"), "/")
		if strings.Contains(a, "://") {
			return nil, fmt.Errorf("%q: only plain http is supported, give host:port", a)
		}
		host, port, err := net.SplitHostPort(a)
		if n, perr := strconv.Atoi(port); err != nil || host == "" || perr != nil || n < 1 || n > 65535 {
			return nil, fmt.Errorf("%q: want host:port", a)
		}
		out = append(out, a)
	}
	return out, nil
}

// benchJSON is the -json output, one object, for scripts.
type benchJSON struct {
	Addrs        []string           `json:"addrs"`
	Route        string             `json:"route"`
	Services     int                `json:"services"`
	Clients      int                `json:"clients"`
	Rate         float64            `json:"rate"`
	WarmupS      float64            `json:"warmup_s"`
	DurationS    float64            `json:"duration_s"`
	Requests     uint64             `json:"requests"`
	OK           uint64             `json:"ok"`
	ErrorsTotal  uint64             `json:"errors_total"`
	Errors       map[string]uint64  `json:"errors"`
	Unsent       uint64             `json:"unsent"`
	Throughput   float64            `json:"throughput"`
	OKThroughput float64            `json:"ok_throughput"`
	LatencyMS    map[string]float64 `json:"latency_ms"`
}

var benchQuantiles = []struct {
	name string
	q    float64
}{{"p50", 0.50}, {"p90", 0.90}, {"p99", 0.99}, {"p99.9", 0.999}}

func benchReport(cfg *benchConfig, r *benchResult) benchJSON {
	secs := r.Duration.Seconds()
	out := benchJSON{
		Addrs: cfg.Addrs, Route: cfg.Route, Services: cfg.Services, Clients: cfg.Clients, Rate: cfg.Rate,
		WarmupS: cfg.Warmup.Seconds(), DurationS: secs, Requests: r.Requests, OK: r.OK,
		ErrorsTotal: r.Requests - r.OK, Errors: r.Errors, Unsent: r.Unsent,
		LatencyMS: map[string]float64{"max": ms(r.Latency.max)},
	}
	if secs > 0 {
		out.Throughput, out.OKThroughput = float64(r.Requests)/secs, float64(r.OK)/secs
	}
	for _, b := range benchQuantiles {
		out.LatencyMS[b.name] = ms(r.Latency.quantile(b.q))
	}
	return out
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func printBench(w io.Writer, cfg *benchConfig, r *benchResult, interrupted bool) {
	rep := benchReport(cfg, r)
	mode := "closed loop"
	if cfg.Rate > 0 {
		mode = fmt.Sprintf("open loop at %g req/s", cfg.Rate)
	}
	route := "POST /v1/heartbeat/{id}"
	if cfg.Route == routeQuery {
		route = "GET /heartbeat?id={id}"
	}
	fmt.Fprintf(w, "watchdog bench: %s round-robin, %s, %d services, %d clients, %s, %s after %s warmup\n",
		strings.Join(cfg.Addrs, ","), route, cfg.Services, cfg.Clients, mode, cfg.Duration, cfg.Warmup)
	if interrupted {
		fmt.Fprintln(w, "interrupted: the figures cover the time until then")
	}
	fmt.Fprintf(w, "requests    %d (%d ok)\n", rep.Requests, rep.OK)
	fmt.Fprintf(w, "duration    %.2fs\n", rep.DurationS)
	fmt.Fprintf(w, "throughput  %.1f req/s (%.1f ok/s)\n", rep.Throughput, rep.OKThroughput)
	fmt.Fprintf(w, "errors      %d%s\n", rep.ErrorsTotal, errorList(r.Errors))
	if cfg.Rate > 0 {
		fmt.Fprintf(w, "unsent      %d (due in the window while every client was busy)\n", rep.Unsent)
	}
	fmt.Fprintf(w, "latency     ")
	for _, b := range benchQuantiles {
		fmt.Fprintf(w, "%s %.3fms  ", b.name, rep.LatencyMS[b.name])
	}
	fmt.Fprintf(w, "max %.3fms  (of the %d ok answers)\n", rep.LatencyMS["max"], rep.OK)
}

// errorList is ": kind n, kind n" for the kinds that occurred, in a fixed order.
func errorList(errs map[string]uint64) string {
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(errs)) {
		if errs[k] > 0 {
			parts = append(parts, fmt.Sprintf("%s %d", k, errs[k]))
		}
	}
	if len(parts) == 0 {
		return ""
	}
	return ": " + strings.Join(parts, ", ")
}
