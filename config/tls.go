package config

import (
	"crypto/tls"
	"encoding/base64"
	"fmt"
	"path/filepath"

	"github.com/watchdog-ha/watchdog/cluster"
)

// checkTLS validates the TLS settings of the file: a certificate, its key
// and the CA come together, and each file must load. Flags and environment
// variables may name other files; the resolver checks those.
func (p *parser) checkTLS(cfg *FileConfig) {
	cert, key, ca := &cfg.TLSCertFile, &cfg.TLSKeyFile, &cfg.TLSCAFile
	for _, path := range []*string{cert, key, ca} {
		if *path != "" && !filepath.IsAbs(*path) {
			*path = filepath.Join(filepath.Dir(p.file), *path)
		}
	}
	if problem := tlsFilesProblem(*cert, *key, *ca); problem != "" {
		at := tlsProblemKey(*cert, *key, *ca)
		p.addf(p.line(at), at, "%s", problem)
		return
	}
	if *cert == "" {
		if cfg.VerifyIncoming {
			p.addf(p.line("verify_incoming"), "verify_incoming", "needs tls_cert_file, tls_key_file and tls_ca_file")
		}
		return
	}
	if _, err := tls.LoadX509KeyPair(*cert, *key); err != nil {
		p.addf(p.line("tls_cert_file"), "tls_cert_file", "cannot load the certificate with tls_key_file %s: %v", *key, err)
	}
	if _, err := cluster.LoadCA(*ca); err != nil {
		p.addf(p.line("tls_ca_file"), "tls_ca_file", "%v", err)
	}
}

// tlsFilesProblem says what is missing from a certificate, key and CA
// given together, or "" when all three or none are given.
func tlsFilesProblem(cert, key, ca string) string {
	switch {
	case cert == "" && key == "" && ca == "":
		return ""
	case cert == "" && key != "":
		return "a key without a certificate: set tls_cert_file (-tls-cert) too"
	case cert == "":
		return "a CA without a certificate: set tls_cert_file and tls_key_file (-tls-cert, -tls-key) too"
	case key == "":
		return "a certificate without its key: set tls_key_file (-tls-key) too"
	case ca == "":
		return "nodes verify each other against the CA: set tls_ca_file (-tls-ca) too"
	}
	return ""
}

// tlsProblemKey is the setting tlsFilesProblem's complaint is about.
func tlsProblemKey(cert, key, ca string) string {
	switch {
	case cert == "" && key != "":
		return "tls_key_file"
	case cert == "":
		return "tls_ca_file"
	}
	return "tls_cert_file"
}

// checkGossipKey reads the gossip encryption key (inline or from
// gossip_key_file) and checks it is what `watchdog keygen` makes: base64
// of 16, 24 or 32 bytes. The key itself is never reported.
func (p *parser) checkGossipKey(cfg *FileConfig) {
	cfg.GossipKey = secret(p, cfg.GossipKey, cfg.GossipKeyFile, false, "gossip_key")
	if cfg.GossipKey == "" {
		return
	}
	if _, err := decodeGossipKey(string(cfg.GossipKey)); err != nil {
		at := cmpKey(cfg.GossipKeyFile, "gossip_key")
		p.addf(p.line(at), at, "%v", err)
	}
}

// decodeGossipKey decodes a base64 AES key of 16, 24 or 32 bytes.
func decodeGossipKey(s string) ([]byte, error) {
	key, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		return nil, fmt.Errorf("the key is not valid base64 (make one with `watchdog keygen`)")
	}
	if n := len(key); n != 16 && n != 24 && n != 32 {
		return nil, fmt.Errorf("the key is %d bytes: want 16, 24 or 32 (make one with `watchdog keygen`)", n)
	}
	return key, nil
}
