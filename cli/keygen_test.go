package cli

import (
	"encoding/base64"
	"fmt"
	"strings"
	"testing"

	"github.com/watchdog-ha/watchdog/config"
)

// TestKeygenMakesAGossipKey: watchdog keygen prints a key the config takes.
func TestKeygenMakesAGossipKey(t *testing.T) {
	out, errOut, code := cli(t, nil, runKeygen)
	if code != ExitOK {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	cfg, err := config.ParseConfig([]byte(fmt.Sprintf("gossip_key: %q\n", strings.TrimSpace(out))), "test.yaml")
	if err != nil {
		t.Fatalf("the key keygen printed is refused: %v", err)
	}
	if key, err := base64.StdEncoding.DecodeString(string(cfg.GossipKey)); err != nil || len(key) != 32 {
		t.Fatalf("key of %d bytes, %v; want 32", len(key), err)
	}
	if _, _, code := cli(t, nil, runKeygen, "extra"); code != ExitUsage {
		t.Fatalf("keygen with an argument: exit %d, want %d", code, ExitUsage)
	}
}
