package config

import (
	"flag"
	"os"
	"strconv"
	"strings"

	"github.com/watchdog-ha/watchdog/cluster"
)

func addSecurityFlags(fs *flag.FlagSet) {
	fs.String("tls-cert", "", "PEM certificate `file` of this node: with -tls-key and -tls-ca, the HTTP API\n"+
		"is https and Raft and every call between nodes is mutual TLS")
	fs.String("tls-key", "", "PEM private key `file` of -tls-cert")
	fs.String("tls-ca", "", "PEM `file` of the CA that signs the nodes' (and clients') certificates")
	fs.Bool("verify-incoming", false, "the HTTP API requires a client certificate signed by -tls-ca from every client")
	fs.String("gossip-key-file", "", "`file` holding the base64 gossip encryption key (watchdog keygen makes one);\n"+
		"the config file may give it inline as gossip_key")
	fs.String("cluster-secret-file", "", "`file` holding the secret the nodes authenticate each other with on the\n"+
		"internal routes, the same on every node (watchdog keygen makes one); default: derived\n"+
		"from the gossip key, else generated and shared by the nodes")
}

// tls resolves and loads the certificate, key and CA, each from flag,
// environment or file. It returns nil when none is set: plain TCP and http.
func (r *resolver) tls(f *FileConfig) *cluster.TLS {
	cert, key, ca := r.pick("tls-cert", f.TLSCertFile), r.pick("tls-key", f.TLSKeyFile), r.pick("tls-ca", f.TLSCAFile)
	fileVerify := ""
	if f.VerifyIncoming {
		fileVerify = "true"
	}
	verify := r.pick("verify-incoming", fileVerify)
	verifyIncoming := false
	if verify.val != "" {
		v, err := strconv.ParseBool(verify.val)
		if err != nil {
			r.errorf("%s: invalid value %q: want true or false", verify.from, verify.val)
		}
		verifyIncoming = v
	}
	if problem := tlsFilesProblem(cert.val, key.val, ca.val); problem != "" {
		r.errorf("%s: %s", firstSet(cert, key, ca).from, problem)
		return nil
	}
	if cert.val == "" {
		if verifyIncoming {
			r.errorf("%s: needs a certificate, key and CA (-tls-cert, -tls-key, -tls-ca)", verify.from)
		}
		return nil
	}
	t, err := cluster.LoadTLS(cert.val, key.val, ca.val)
	if err != nil {
		r.errorf("%s, %s, %s: %v", cert.from, key.from, ca.from, err)
		return nil
	}
	t.VerifyIncoming = verifyIncoming
	return t
}

// firstSet is the first setting given, to name in an error.
func firstSet(settings ...setting) setting {
	for _, s := range settings {
		if s.val != "" {
			return s
		}
	}
	return settings[0]
}

// gossipKey is the key from -gossip-key-file (or its environment variable),
// else from the config file, which has read and checked its own already.
func (r *resolver) gossipKey(f *FileConfig) []byte {
	encoded, from := string(f.GossipKey), r.fileName+" (gossip_key)"
	if s := r.pick("gossip-key-file", ""); s.explicit {
		from = s.from
		b, err := os.ReadFile(s.val)
		if err != nil {
			r.errorf("%s: cannot read the gossip key: %v", s.from, err)
			return nil
		}
		encoded = strings.TrimSpace(string(b))
	}
	if encoded == "" {
		return nil
	}
	key, err := decodeGossipKey(encoded)
	if err != nil {
		r.errorf("%s: %v", from, err)
		return nil
	}
	return key
}
