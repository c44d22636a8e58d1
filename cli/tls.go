package cli

import (
	"crypto/tls"
	"fmt"
	"strings"

	"github.com/watchdog-ha/watchdog/cluster"
)

// cliTLS is how a client command reaches a cluster that serves https: the
// CA to trust and, for an API that requires client certificates
// (verify_incoming), a certificate and key to present.
type cliTLS struct{ ca, cert, key string }

func (f *cliFlags) addTLSFlags() {
	f.StringVar(&f.tls.ca, "tls-ca", "", "PEM `file` of the CA the nodes' certificates are signed by: talk https,\n"+
		"trusting only it (env WATCHDOG_TLS_CA)")
	f.StringVar(&f.tls.cert, "tls-cert", "", "PEM client certificate `file`, for nodes that require one (env WATCHDOG_TLS_CERT)")
	f.StringVar(&f.tls.key, "tls-key", "", "PEM private key `file` of -tls-cert (env WATCHDOG_TLS_KEY)")
}

// tlsConfig builds the client's TLS configuration from the flags, else the
// environment; nil without a CA: plain http, or https trusting the system's
// roots for https URLs.
func (f *cliFlags) tlsConfig() (*tls.Config, error) {
	pick := func(flagVal, env string) (string, string) {
		if flagVal != "" {
			return flagVal, "-" + strings.ToLower(strings.ReplaceAll(strings.TrimPrefix(env, "WATCHDOG_"), "_", "-"))
		}
		return f.env.Getenv(env), "$" + env
	}
	ca, caFrom := pick(f.tls.ca, "WATCHDOG_TLS_CA")
	cert, certFrom := pick(f.tls.cert, "WATCHDOG_TLS_CERT")
	key, keyFrom := pick(f.tls.key, "WATCHDOG_TLS_KEY")
	if (cert == "") != (key == "") {
		if cert == "" {
			return nil, fmt.Errorf("%s: a key without a certificate: set -tls-cert too", keyFrom)
		}
		return nil, fmt.Errorf("%s: a certificate without its key: set -tls-key too", certFrom)
	}
	if ca == "" && cert == "" {
		return nil, nil
	}
	c := &tls.Config{MinVersion: tls.VersionTLS12}
	if ca != "" {
		pool, err := cluster.LoadCA(ca)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", caFrom, err)
		}
		c.RootCAs = pool
	}
	if cert != "" {
		pair, err := tls.LoadX509KeyPair(cert, key)
		if err != nil {
			return nil, fmt.Errorf("%s, %s: %w", certFrom, keyFrom, err)
		}
		c.Certificates = []tls.Certificate{pair}
	}
	return c, nil
}
