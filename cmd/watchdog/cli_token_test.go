package main

import (
	"strings"
	"testing"
)

func TestCLISendsTokensFromTheEnvironment(t *testing.T) {
	c := newTestCluster(t, 1, fileConfig(t, "api_token: s3cret\nping_token: p1ng\ndefaults: {timeout: 1h}\n"))
	addr := c.leader(1).Addr
	env := map[string]string{"WATCHDOG_ADDR": addr}
	if _, errOut, code := cli(t, env, runPing, "svc"); code != exitFailed || !strings.Contains(errOut, "(401)") {
		t.Fatalf("ping without WATCHDOG_PING_TOKEN: exit %d %s, want a 401", code, errOut)
	}
	env["WATCHDOG_PING_TOKEN"] = "p1ng"
	if _, errOut, code := cli(t, env, runPing, "svc"); code != exitOK {
		t.Fatalf("ping with WATCHDOG_PING_TOKEN: exit %d %s", code, errOut)
	}
	if _, errOut, code := cli(t, env, runPause, "svc"); code != exitFailed || !strings.Contains(errOut, "(401)") {
		t.Fatalf("pause without WATCHDOG_TOKEN: exit %d %s, want a 401", code, errOut)
	}
	env["WATCHDOG_TOKEN"] = "s3cret"
	for _, cmd := range []cliFunc{runPause, runResume} {
		if _, errOut, code := cli(t, env, cmd, "svc"); code != exitOK {
			t.Fatalf("with WATCHDOG_TOKEN: exit %d %s", code, errOut)
		}
	}
}
