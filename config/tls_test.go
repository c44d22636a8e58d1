package config

import (
	"encoding/base64"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/watchdog-ha/watchdog/internal/testcert"
)

// tlsConfigDir holds a certificate, its key, its CA and files that are
// none of those, next to where the test's config file goes, so that the
// config can name them relative to itself.
func tlsConfigDir(t *testing.T) (dir string, f testcert.Files) {
	t.Helper()
	f = testcert.NewCA(t, "cluster CA").Issue(t, "n1")
	dir = filepath.Dir(f.Cert)
	if err := os.WriteFile(filepath.Join(dir, "junk.pem"), []byte("not PEM\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return dir, f
}

func TestParseConfigTLS(t *testing.T) {
	dir, f := tlsConfigDir(t)
	key := base64.StdEncoding.EncodeToString(make([]byte, 16))
	data := "tls_cert_file: n1.crt\ntls_key_file: n1.key\ntls_ca_file: " + f.CA + "\nverify_incoming: true\ngossip_key: " + key + "\n"
	cfg, err := ParseConfig([]byte(data), filepath.Join(dir, "watchdog.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.TLSCertFile != f.Cert || cfg.TLSKeyFile != f.Key || cfg.TLSCAFile != f.CA || !cfg.VerifyIncoming {
		t.Errorf("TLS settings = %q %q %q %v; want the files, relative to the config file, and verify_incoming",
			cfg.TLSCertFile, cfg.TLSKeyFile, cfg.TLSCAFile, cfg.VerifyIncoming)
	}
	if string(cfg.GossipKey) != key {
		t.Errorf("gossip key not kept")
	}
}

func TestParseConfigTLSErrors(t *testing.T) {
	dir, _ := tlsConfigDir(t)
	name := filepath.Join(dir, "watchdog.yaml")
	writeSecret(t, dir, "short-key", base64.StdEncoding.EncodeToString(make([]byte, 10)))
	tests := []struct{ data, want string }{
		{"log_level: info\ntls_key_file: n1.key\n", name + ":2: tls_key_file: a key without a certificate"},
		{"tls_cert_file: n1.crt\n", name + ":1: tls_cert_file: a certificate without its key"},
		{"tls_cert_file: n1.crt\ntls_key_file: n1.key\n", name + ":1: tls_cert_file: nodes verify each other against the CA"},
		{"tls_ca_file: ca.crt\n", name + ":1: tls_ca_file: a CA without a certificate"},
		{"tls_cert_file: n1.key\ntls_key_file: n1.key\ntls_ca_file: ca.crt\n", name + ":1: tls_cert_file: cannot load"},
		{"tls_cert_file: n1.crt\ntls_key_file: n1.key\ntls_ca_file: junk.pem\n", name + ":3: tls_ca_file: CA file"},
		{"tls_cert_file: n1.crt\ntls_key_file: n1.key\ntls_ca_file: missing.pem\n", name + ":3: tls_ca_file: CA file"},
		{"verify_incoming: true\n", name + ":1: verify_incoming: needs tls_cert_file"},
		{"gossip_key: not*base64\n", name + ":1: gossip_key: the key is not valid base64"},
		{"\ngossip_key_file: short-key\n", name + ":2: gossip_key_file: the key is 10 bytes"},
		{"gossip_key: abc\ngossip_key_file: short-key\n", name + ":2: gossip_key_file: set gossip_key or gossip_key_file, not both"},
	}
	for _, tc := range tests {
		_, err := ParseConfig([]byte(tc.data), name)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: error %v; want %q", tc.data, err, tc.want)
		}
		if err != nil && strings.Contains(err.Error(), "not*base64") {
			t.Errorf("%q: the error shows the key: %v", tc.data, err)
		}
	}
}

func TestParseAgentFlagsTLS(t *testing.T) {
	_, f := tlsConfigDir(t)
	keyFile := filepath.Join(t.TempDir(), "gossip.key")
	if err := os.WriteFile(keyFile, []byte(base64.StdEncoding.EncodeToString(make([]byte, 32))+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := parseAgentForTest(t, []string{"-dev", "-tls-cert", f.Cert, "-tls-key", f.Key, "-verify-incoming"},
		testEnv{"WATCHDOG_TLS_CA": f.CA, "WATCHDOG_GOSSIP_KEY_FILE": keyFile})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.TLS == nil || !cfg.TLS.VerifyIncoming || len(cfg.GossipKey) != 32 {
		t.Fatalf("TLS = %+v, gossip key of %d bytes; want TLS with verify_incoming and a 32-byte key", cfg.TLS, len(cfg.GossipKey))
	}
	plain, err := parseAgentForTest(t, []string{"-dev"}, nil)
	if err != nil || plain.TLS != nil || plain.GossipKey != nil {
		t.Fatalf("without settings: TLS %+v, gossip key %v, %v; want neither", plain.TLS, plain.GossipKey, err)
	}

	tests := []struct {
		name string
		args []string
		env  testEnv
		want string
	}{
		{"key without cert", []string{"-dev", "-tls-key", f.Key}, nil, "-tls-key: a key without a certificate"},
		{"no CA", []string{"-dev", "-tls-cert", f.Cert}, testEnv{"WATCHDOG_TLS_KEY": f.Key}, "-tls-cert: nodes verify each other against the CA"},
		{"bad CA", []string{"-dev", "-tls-cert", f.Cert, "-tls-key", f.Key, "-tls-ca", f.Key}, nil, "-tls-ca: CA file"},
		{"key of another cert", []string{"-dev", "-tls-cert", f.CA, "-tls-key", f.Key, "-tls-ca", f.CA}, nil, "-tls-cert, -tls-key, -tls-ca: certificate"},
		{"verify without TLS", []string{"-dev", "-verify-incoming"}, nil, "-verify-incoming: needs a certificate"},
		{"bad gossip key file", []string{"-dev", "-gossip-key-file", f.Cert}, nil, "-gossip-key-file: the key is not valid base64"},
	}
	for _, tc := range tests {
		if _, err := parseAgentForTest(t, tc.args, tc.env); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v; want %q", tc.name, err, tc.want)
		}
	}
}
