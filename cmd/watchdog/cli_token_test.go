package main

import (
	"strings"
	"testing"

	"github.com/watchdog-ha/watchdog/cli"
)

func TestCLISendsTokensFromTheEnvironment(t *testing.T) {
	c := newTestCluster(t, 1, fileConfig(t, "api_token: s3cret\nping_token: p1ng\ndefaults: {timeout: 1h}\n"))
	addr := c.leader(1).Addr
	env := map[string]string{"WATCHDOG_ADDR": addr}
	if _, errOut, code := runCLI(t, env, "ping", "svc"); code != cli.ExitFailed || !strings.Contains(errOut, "(401)") {
		t.Fatalf("ping without WATCHDOG_PING_TOKEN: exit %d %s, want a 401", code, errOut)
	}
	env["WATCHDOG_PING_TOKEN"] = "p1ng"
	if _, errOut, code := runCLI(t, env, "ping", "svc"); code != cli.ExitOK {
		t.Fatalf("ping with WATCHDOG_PING_TOKEN: exit %d %s", code, errOut)
	}
	if _, errOut, code := runCLI(t, env, "pause", "svc"); code != cli.ExitFailed || !strings.Contains(errOut, "(401)") {
		t.Fatalf("pause without WATCHDOG_TOKEN: exit %d %s, want a 401", code, errOut)
	}
	env["WATCHDOG_TOKEN"] = "s3cret"
	for _, cmd := range []string{"pause", "resume"} {
		if _, errOut, code := runCLI(t, env, cmd, "svc"); code != cli.ExitOK {
			t.Fatalf("with WATCHDOG_TOKEN: exit %d %s", code, errOut)
		}
	}
}
