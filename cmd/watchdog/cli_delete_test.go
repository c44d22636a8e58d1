package main

import (
	"bytes"
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/watchdog-ha/watchdog/cli"
	"github.com/watchdog-ha/watchdog/client"
)

// cliAnswering is runCLI with a terminal on stdin that answers answer.
func cliAnswering(t *testing.T, answer string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	var out, errOut bytes.Buffer
	err := runCLIWith(t, cli.Env{Stdout: &out, Stderr: &errOut, Getenv: func(string) string { return "" }, Now: time.Now,
		Stdin: strings.NewReader(answer), Interactive: true}, args...)
	if err != nil {
		errOut.WriteString("watchdog: " + err.Error() + "\n")
	}
	return out.String(), errOut.String(), cli.ExitCode(err)
}

func TestCLIDelete(t *testing.T) {
	c := newTestCluster(t, 3, fileConfig(t, "defaults: {timeout: 1m}\nservices:\n  cfg-batch-1: {tags: [batch]}\n"))
	leader := c.leader(3)
	c.allReady()
	addr := strings.Join(c.addrs(), ",")
	api, err := client.New(c.addrs())
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for _, id := range []string{"job-1", "job-2", "other"} {
		if _, err := api.Define(ctx, id, client.Definition{Tags: []string{"batch"}}); err != nil {
			t.Fatal(err)
		}
	}
	for _, id := range []string{"wdbench-a-000000", "wdbench-a-000001", "wdbench-b-000000", "web-1"} {
		if err := api.Ping(ctx, id); err != nil {
			t.Fatal(err)
		}
	}
	left := func() []string {
		var ids []string
		for _, s := range leader.FSM.Services() {
			ids = append(ids, s.ID)
		}
		slices.Sort(ids)
		return ids
	}

	t.Run("one", func(t *testing.T) {
		if out := mustCLI(t, cli.ExitOK, "delete", "-addr", addr, "web-1"); out != "web-1: deleted\n" {
			t.Fatalf("delete said %q", out)
		}
		if _, ok := serviceOn(leader, "web-1"); ok {
			t.Fatal("web-1 still there")
		}
		if _, errOut, code := runCLI(t, nil, "delete", "-addr", addr, "web-1"); code != cli.ExitFailed || !strings.Contains(errOut, `"web-1"`) {
			t.Fatalf("deleting it again: exit %d, %s", code, errOut)
		}
		if _, errOut, code := runCLI(t, nil, "delete", "-addr", addr, "cfg-batch-1"); code != cli.ExitFailed || !strings.Contains(errOut, "config file") {
			t.Fatalf("deleting a config service: exit %d, %s", code, errOut)
		}
	})

	t.Run("usage", func(t *testing.T) {
		for _, args := range [][]string{{}, {"a", "b"}, {"-prefix", "x", "a"}, {"-prefix", ""}, {"-tag", ""}, {".."}} {
			if _, errOut, code := runCLI(t, nil, append([]string{"delete", "-addr", addr}, args...)...); code != cli.ExitUsage {
				t.Fatalf("%q: exit %d, want %d: %s", args, code, cli.ExitUsage, errOut)
			}
		}
	})

	// The list of a bulk delete comes from the node asked: the leader here,
	// which has applied the deletes before it answers them.
	addr = leader.Addr
	t.Run("bulk needs a confirmation", func(t *testing.T) {
		_, errOut, code := runCLI(t, nil, "delete", "-addr", addr, "-prefix", "wdbench-")
		if code != cli.ExitUsage || !strings.Contains(errOut, "give -yes") || !strings.Contains(errOut, "delete 3 services") {
			t.Fatalf("without a terminal nor -yes: exit %d: %s", code, errOut)
		}
		_, errOut, code = cliAnswering(t, "n\n", "delete", "-addr", addr, "-prefix", "wdbench-")
		if code != cli.ExitFailed || !strings.Contains(errOut, "[y/N]") {
			t.Fatalf("answered no: exit %d: %s", code, errOut)
		}
		if got := left(); len(got) != 7 {
			t.Fatalf("deleted without a yes: %v", got)
		}
	})

	t.Run("by prefix", func(t *testing.T) {
		out, errOut, code := cliAnswering(t, "y\n", "delete", "-addr", addr, "-prefix", "wdbench-a-")
		if code != cli.ExitOK || !strings.Contains(out, "deleted 2 of 2") {
			t.Fatalf("exit %d, %q, %s", code, out, errOut)
		}
		if got, want := left(), []string{"cfg-batch-1", "job-1", "job-2", "other", "wdbench-b-000000"}; !slices.Equal(got, want) {
			t.Fatalf("left %v, want %v", got, want)
		}
	})

	t.Run("by tag and prefix", func(t *testing.T) {
		out, errOut, code := runCLI(t, nil, "delete", "-addr", addr, "-tag", "batch", "-prefix", "job-", "-yes")
		if code != cli.ExitOK || !strings.Contains(out, "deleted 2 of 2") {
			t.Fatalf("exit %d, %q, %s", code, out, errOut)
		}
		out, errOut, code = runCLI(t, nil, "delete", "-addr", addr, "-tag", "batch", "-yes")
		if code != cli.ExitOK || !strings.Contains(out, "deleted 1 of 1") || !strings.Contains(errOut, "skipping 1 defined in the config file") {
			t.Fatalf("exit %d, %q, %s", code, out, errOut)
		}
		if got, want := left(), []string{"cfg-batch-1", "wdbench-b-000000"}; !slices.Equal(got, want) {
			t.Fatalf("left %v, want %v", got, want)
		}
		if out := mustCLI(t, cli.ExitOK, "delete", "-addr", addr, "-tag", "nothing", "-yes"); !strings.Contains(out, "no service to delete") {
			t.Fatalf("nothing matched: %q", out)
		}
	})
}
