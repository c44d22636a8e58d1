package main

import (
	"fmt"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/watchdog-ha/watchdog/internal/buildinfo"
	"github.com/watchdog-ha/watchdog/internal/promtest"
)

// Every node says which build it runs: in /v1/cluster, for every node as
// its status answers say, and in watchdog_build_info.
func TestEveryNodeReportsItsVersion(t *testing.T) {
	c := newTestCluster(t, 3, fileConfig(t, ""))
	c.leader(3)
	want := buildinfo.Read()
	for _, a := range c.running() {
		waitFor(t, 15*time.Second, "every node's version on "+a.Node.ID(), func() bool {
			var v apiCluster
			if getJSON(t, "http://"+a.Addr+"/v1/cluster", &v) != 200 || len(v.Nodes) != 3 {
				return false
			}
			for _, n := range v.Nodes {
				if n.Version != want.String() {
					return false
				}
			}
			return true
		})
		mfs, err := promtest.Scrape("http://" + a.Addr + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		if v, ok := mfs.Value("watchdog_build_info", "version", want.Version, "revision", want.Revision,
			"modified", strconv.FormatBool(want.Modified), "goversion", runtime.Version()); !ok || v != 1 {
			t.Fatalf("%s: watchdog_build_info = %v (present %v)", a.Node.ID(), v, ok)
		}
	}
	if !strings.Contains(want.GoVersion, "go") {
		t.Fatalf("go version %q", want.GoVersion)
	}
}

// service_metrics: true exports each service's status and age; without it,
// nothing per service (a large fleet would make too many series).
func TestPerServiceMetricsBehindTheirSwitch(t *testing.T) {
	for _, on := range []bool{true, false} {
		c := newTestCluster(t, 1, fileConfig(t, fmt.Sprintf("service_metrics: %v\nservices:\n  cfg-new: {timeout: 1h}\n", on)))
		a := c.leader(1)
		c.replicated("cfg-new")
		heartbeat(t, a, "beat")
		mfs, err := promtest.Scrape("http://" + a.Addr + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		value := func(name string, labels ...string) float64 {
			t.Helper()
			v, ok := mfs.Value(name, labels...)
			if ok != on {
				t.Fatalf("service_metrics %v: %s%q present %v", on, name, labels, ok)
			}
			return v
		}
		if up, down := value("watchdog_service_status", "service", "beat", "status", "up"),
			value("watchdog_service_status", "service", "beat", "status", "down"); on && (up != 1 || down != 0) {
			t.Fatalf("beat: up %v, down %v", up, down)
		}
		if v := value("watchdog_service_status", "service", "cfg-new", "status", "new"); on && v != 1 {
			t.Fatalf("cfg-new: new = %v", v)
		}
		if age := value("watchdog_service_seconds_since_heartbeat", "service", "beat"); on && (age < 0 || age > 60) {
			t.Fatalf("beat: %v seconds since its heartbeat", age)
		}
		if _, ok := mfs.Value("watchdog_service_seconds_since_heartbeat", "service", "cfg-new"); ok {
			t.Fatal("an age for a service never heard from")
		}
	}
}
