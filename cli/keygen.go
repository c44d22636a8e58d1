package cli

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"fmt"
)

// runKeygen prints a new gossip key: base64 of 32 random bytes (AES-256),
// the form gossip_key and gossip_key_file take.
func runKeygen(_ context.Context, args []string, env Env) error {
	stdout, stderr := env.Stdout, env.Stderr
	if len(args) > 0 {
		fmt.Fprintln(stderr, "usage: watchdog keygen (takes no arguments)")
		return ErrUsage
	}
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		return fmt.Errorf("keygen: %w", err)
	}
	_, err := fmt.Fprintln(stdout, base64.StdEncoding.EncodeToString(key))
	return err
}
