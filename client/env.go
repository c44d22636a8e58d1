package client

import (
	"fmt"
	"os"
	"strings"
)

// TokenFromEnv is the API token as the watchdog command line takes it:
// $WATCHDOG_TOKEN, else the content of the file $WATCHDOG_TOKEN_FILE names
// (such as the api-token a node generates in its data dir), else none ("").
// getenv is os.Getenv, or a test's. Pass the token to WithAPIToken.
func TokenFromEnv(getenv func(string) string) (string, error) {
	if tok := getenv("WATCHDOG_TOKEN"); tok != "" {
		return tok, nil
	}
	path := getenv("WATCHDOG_TOKEN_FILE")
	if path == "" {
		return "", nil
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("$WATCHDOG_TOKEN_FILE: cannot read the API token: %w", err)
	}
	tok := strings.TrimSpace(string(b))
	if tok == "" {
		return "", fmt.Errorf("$WATCHDOG_TOKEN_FILE: %s is empty", path)
	}
	return tok, nil
}
