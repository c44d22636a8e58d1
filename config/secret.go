package config

import (
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// Secret is a credential of the node itself (api_token, ping_token,
// gossip_key, cluster_secret): it never prints. The actions' credentials
// are watcher.Secret, the type the actions take.
type Secret string

// String implements fmt.Stringer, so %v and %s never show the value.
func (Secret) String() string { return "[redacted]" }

// GoString implements fmt.GoStringer, for %#v.
func (Secret) GoString() string { return `"[redacted]"` }

// LogValue implements slog.LogValuer.
func (Secret) LogValue() slog.Value { return slog.StringValue("[redacted]") }

// minClusterSecret is the shortest cluster secret accepted: `watchdog
// keygen` makes 44 characters.
const minClusterSecret = 16

// checkClusterSecret reads the secret the nodes authenticate each other
// with (inline cluster_secret or cluster_secret_file). Optional: without it
// the nodes derive one from the gossip key, or generate and share one.
func (p *parser) checkClusterSecret(cfg *FileConfig) {
	cfg.ClusterSecret = secret(p, cfg.ClusterSecret, cfg.ClusterSecretFile, false, "cluster_secret")
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

// checkAPIToken reads the token that guards the management API; it goes
// into an Authorization header, so it must be one printable word.
func (p *parser) checkAPIToken(cfg *FileConfig) {
	cfg.APIToken = secret(p, cfg.APIToken, cfg.APITokenFile, false, "api_token")
	if strings.ContainsFunc(string(cfg.APIToken), func(r rune) bool { return r <= ' ' || r == 0x7f }) {
		p.addf(p.line(cmpKey(cfg.APITokenFile, "api_token")), cmpKey(cfg.APITokenFile, "api_token"),
			"the token must not contain spaces or control characters")
	}
}

// secret returns the secret at keys, given inline or, under the same key
// with _file appended, as the path of a file holding it (read now, so a
// missing file is found at start, not when a service is already down).
// S is Secret for the node's own, watcher.Secret for an action's.
func secret[S ~string](p *parser, inline S, file string, required bool, keys ...string) S {
	parent, key := keys[:len(keys)-1], keys[len(keys)-1]
	fileKeys := slices.Concat(parent, []string{key + "_file"})
	switch {
	case inline != "" && file != "":
		p.addf(p.keyLine(fileKeys...), strings.Join(fileKeys, "."), "set %s or %s_file, not both", key, key)
		return ""
	case file != "" && p.remote:
		return "" // the file is on the nodes; a node never reads a path the network names
	case file != "":
		return S(p.readSecret(file, fileKeys...))
	case inline == "" && required:
		p.addf(p.keyLine(parent...), strings.Join(parent, "."), "%s or %s_file is required", key, key)
	}
	return inline
}

// readSecret reads a one-line secret; a relative path is relative to the
// config file. Only the path is ever reported, never the content.
func (p *parser) readSecret(file string, keys ...string) string {
	line, path := p.line(keys...), strings.Join(keys, ".")
	name := file
	if !filepath.IsAbs(name) {
		name = filepath.Join(filepath.Dir(p.file), name)
	}
	b, err := os.ReadFile(name)
	if err != nil {
		p.addf(line, path, "cannot read the secret: %v", err)
		return ""
	}
	s := strings.TrimRight(string(b), "\r\n")
	switch {
	case s == "":
		p.addf(line, path, "%s is empty", name)
		return ""
	case strings.ContainsAny(s, "\r\n"):
		p.addf(line, path, "%s holds more than one line; put only the secret in it", name)
		return ""
	}
	return s
}
