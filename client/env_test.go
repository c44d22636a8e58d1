package client_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/watchdog-ha/watchdog/client"
)

func TestTokenFromEnv(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "api-token")
	if err := os.WriteFile(file, []byte("from-file\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	empty := filepath.Join(dir, "empty")
	if err := os.WriteFile(empty, []byte(" \n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		env       map[string]string
		want, err string
	}{
		{env: nil, want: ""},
		{env: map[string]string{"WATCHDOG_TOKEN": "t", "WATCHDOG_TOKEN_FILE": file}, want: "t"},
		{env: map[string]string{"WATCHDOG_TOKEN_FILE": file}, want: "from-file"},
		{env: map[string]string{"WATCHDOG_TOKEN_FILE": empty}, err: "$WATCHDOG_TOKEN_FILE: " + empty + " is empty"},
		{env: map[string]string{"WATCHDOG_TOKEN_FILE": filepath.Join(dir, "missing")}, err: "$WATCHDOG_TOKEN_FILE: cannot read the API token: "},
	} {
		got, err := client.TokenFromEnv(func(k string) string { return c.env[k] })
		switch {
		case c.err == "" && (err != nil || got != c.want):
			t.Errorf("%v: %q, %v; want %q", c.env, got, err, c.want)
		case c.err != "" && (err == nil || !strings.HasPrefix(err.Error(), c.err)):
			t.Errorf("%v: error %v, want one starting %q", c.env, err, c.err)
		}
	}
}
