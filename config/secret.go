package config

import (
	"os"
	"strings"
)

// minClusterSecret is the shortest cluster secret accepted: `watchdog
// keygen` makes 44 characters.
const minClusterSecret = 16

// checkClusterSecret reads the secret the nodes authenticate each other
// with (inline cluster_secret or cluster_secret_file). Optional: without it
// the nodes derive one from the gossip key, or generate and share one.
func (p *parser) checkClusterSecret(cfg *FileConfig) {
	cfg.ClusterSecret = p.secret(cfg.ClusterSecret, cfg.ClusterSecretFile, false, "cluster_secret")
	if problem := clusterSecretProblem(string(cfg.ClusterSecret)); problem != "" {
		at := cmpKey(cfg.ClusterSecretFile, "cluster_secret")
		p.addf(p.line(at), at, "%s", problem)
	}
}

// clusterSecretProblem says what is wrong with a cluster secret, "" if
// nothing is (or if it is not set).
func clusterSecretProblem(s string) string {
	switch {
	case s == "":
		return ""
	case len(s) < minClusterSecret:
		return "the cluster secret is too short: want at least 16 characters (`watchdog keygen` makes one)"
	case strings.ContainsFunc(s, func(r rune) bool { return r <= ' ' || r == 0x7f }):
		return "the cluster secret must not contain spaces or control characters"
	}
	return ""
}

// clusterSecret is the secret from -cluster-secret-file (or its
// environment variable), else from the config file, which has read and
// checked its own already; nil when none is set.
func (r *resolver) clusterSecret(f *FileConfig) []byte {
	secret := string(f.ClusterSecret)
	if s := r.pick("cluster-secret-file", ""); s.explicit {
		b, err := os.ReadFile(s.val)
		if err != nil {
			r.errorf("%s: cannot read the cluster secret: %v", s.from, err)
			return nil
		}
		secret = strings.TrimRight(string(b), "\r\n")
		if secret == "" {
			r.errorf("%s: the cluster secret file is empty", s.from)
			return nil
		}
		if problem := clusterSecretProblem(secret); problem != "" {
			r.errorf("%s: %s", s.from, problem)
			return nil
		}
	}
	if secret == "" {
		return nil
	}
	return []byte(secret)
}
