package cli

import (
	"strings"
	"testing"

	"github.com/watchdog-ha/watchdog/internal/testcert"
	"github.com/watchdog-ha/watchdog/internal/testnet"
)

func TestCLIRefusesBadTLSSettings(t *testing.T) {
	f := testcert.NewCA(t, "cluster CA").Issue(t, "n1")
	for name, env := range map[string]map[string]string{
		"key without cert": {"WATCHDOG_TLS_KEY": f.Key},
		"CA not PEM":       {"WATCHDOG_TLS_CA": f.Key},
	} {
		if _, errOut, code := cli(t, env, runPing, "-addr", testnet.DeadAddr(t), "svc"); code != ExitUsage || !strings.Contains(errOut, "WATCHDOG_TLS_") {
			t.Errorf("%s: exit %d, %q; want a usage error naming the variable", name, code, errOut)
		}
	}
}
