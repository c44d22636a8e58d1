package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The cluster secret comes from -cluster-secret-file, its environment
// variable, or the config file (inline or as a file relative to it); a
// short or unreadable one is refused, naming where it came from.
func TestClusterSecretSettings(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "secret")
	if err := os.WriteFile(good, []byte("a-cluster-secret-of-some-length\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	short := filepath.Join(dir, "short")
	if err := os.WriteFile(short, []byte("tiny\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	inline := writeAgentConfigFile(t, "cluster_secret: inline-cluster-secret-value\n")
	relative := filepath.Join(dir, "watchdog.yaml")
	if err := os.WriteFile(relative, []byte("cluster_secret_file: secret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name string
		args []string
		env  testEnv
		want string // the secret, or the error's text
		bad  bool
	}{
		{"none", []string{"-dev"}, nil, "", false},
		{"flag", []string{"-dev", "-cluster-secret-file", good}, nil, "a-cluster-secret-of-some-length", false},
		{"env", []string{"-dev"}, testEnv{"WATCHDOG_CLUSTER_SECRET_FILE": good}, "a-cluster-secret-of-some-length", false},
		{"inline", []string{"-dev", "-config", inline}, nil, "inline-cluster-secret-value", false},
		{"file key", []string{"-dev", "-config", relative}, nil, "a-cluster-secret-of-some-length", false},
		{"flag beats file", []string{"-dev", "-config", inline, "-cluster-secret-file", good}, nil, "a-cluster-secret-of-some-length", false},
		{"short", []string{"-dev", "-cluster-secret-file", short}, nil, "-cluster-secret-file: the cluster secret is too short", true},
		{"missing", []string{"-dev", "-cluster-secret-file", filepath.Join(dir, "nope")}, nil, "-cluster-secret-file: cannot read the cluster secret", true},
		{"short inline", []string{"-dev", "-config", writeAgentConfigFile(t, "cluster_secret: tiny\n")}, nil, ":1: cluster_secret: the cluster secret is too short", true},
	} {
		cfg, err := parseAgentForTest(t, c.args, c.env)
		switch {
		case c.bad && (err == nil || !strings.Contains(err.Error(), c.want)):
			t.Errorf("%s: got %v, want an error with %q", c.name, err, c.want)
		case !c.bad && err != nil:
			t.Errorf("%s: %v", c.name, err)
		case !c.bad && string(cfg.ClusterSecret) != c.want:
			t.Errorf("%s: secret %q, want %q", c.name, cfg.ClusterSecret, c.want)
		case !c.bad && !cfg.OpenManagement:
			t.Errorf("%s: -dev without OpenManagement", c.name)
		}
	}
	if cfg, err := parseAgentForTest(t, []string{"-data-dir", dir}, nil); err != nil || cfg.OpenManagement {
		t.Fatalf("outside -dev: %v, open %v", err, cfg.OpenManagement)
	}
}
