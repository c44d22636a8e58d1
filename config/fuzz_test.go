package config

import (
	"bytes"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

// FuzzParseConfig feeds arbitrary YAML to ParseConfig. It must never panic;
// every error it reports about the file must name a line of it ("name:LINE:",
// as the operator is promised "file:line: field: problem"); and a config it
// accepts, written back as YAML, must parse to the same config, so the
// parsed form says all the file said. Run it with
//
//	go test -run '^$' -fuzz '^FuzzParseConfig$' -fuzztime 20s ./config
//
// Seeds are the documentation's examples (read at run time, so they stay
// current) and the configs of the tests, in testdata/fuzz/FuzzParseConfig.
func FuzzParseConfig(f *testing.F) {
	for _, example := range docExamples(f) {
		f.Add(example)
	}
	// Secret files the inputs may name, relative to the config file as
	// the README's examples do, so reading one can succeed.
	dir := f.TempDir()
	for name, content := range map[string]string{"api-token": "t0ken\n", "smtp-pass": "pa55\n",
		"pd-key": "R0UT1NG", "slack-url": "https://hooks.slack.com/services/T0/B0/X\n", "empty": "", "two-lines": "a\nb\n"} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o600); err != nil {
			f.Fatal(err)
		}
	}
	f.Add([]byte("api_token_file: api-token\nactions:\n  pager:\n    pagerduty: {routing_key_file: pd-key}\n" +
		"  mail:\n    email: {server: \"smtp.example.com:587\", from: w@example.com, to: [o@example.com], username: w, password_file: smtp-pass}\n" +
		"  chat:\n    slack: {url_file: slack-url}\n"))
	name := filepath.Join(dir, "watchdog.yaml")
	f.Fuzz(func(t *testing.T, data []byte) {
		if readsDevice(data, dir) {
			t.Skip("names a device or kernel file as a secret: reading it could block")
		}
		cfg, err := ParseConfig(data, name)
		if err != nil {
			checkErrorLines(t, data, name, err)
			if _, again := ParseConfig(data, name); again == nil || again.Error() != err.Error() {
				t.Fatalf("the same file gave %q, then %v", err, again)
			}
			return
		}
		written := writeConfig(t, cfg)
		cfg2, err := ParseConfig(written, name)
		if err != nil {
			t.Fatalf("a config that parses, written back, does not: %v\nwritten:\n%s\nfrom:\n%s", err, written, data)
		}
		if a, b := marshal(t, cfg), marshal(t, cfg2); !bytes.Equal(a, b) {
			t.Fatalf("a config that parses, written back, parses differently:\nfirst:\n%s\nthen:\n%s\nfrom:\n%s", a, b, data)
		}
	})
}

// docExamples are the YAML examples of the README and of every document in
// docs/ (the configuration reference, the TLS example of operations.md, the
// alertmanager one of http-api.md); there must be some in docs/configuration.md.
func docExamples(f *testing.F) [][]byte {
	f.Helper()
	docs, err := filepath.Glob(filepath.Join("..", "docs", "*.md"))
	if err != nil {
		f.Fatal(err)
	}
	var examples [][]byte
	fromConfiguration := 0
	for _, doc := range append([]string{filepath.Join("..", "README.md")}, docs...) {
		text, err := os.ReadFile(doc)
		if err != nil {
			f.Fatal(err)
		}
		for _, m := range regexp.MustCompile("(?s)```yaml\n(.*?)```").FindAllSubmatch(text, -1) {
			examples = append(examples, m[1])
			if filepath.Base(doc) == "configuration.md" {
				fromConfiguration++
			}
		}
	}
	if fromConfiguration == 0 {
		f.Fatal("no ```yaml example in docs/configuration.md: the seeds are the documented examples")
	}
	return examples
}

// checkErrorLines insists that every problem reported names a line of the
// document.
func checkErrorLines(t *testing.T, data []byte, name string, err error) {
	t.Helper()
	errs := []error{err}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		errs = j.Unwrap()
	}
	lines := countLines(data)
	// How an error names where it is, after the name: ":LINE: ".
	lineRef := regexp.MustCompile(`^:([0-9]+): `)
	for _, e := range errs {
		msg := e.Error()
		rest, ok := strings.CutPrefix(msg, name)
		m := lineRef.FindStringSubmatch(rest)
		if !ok || m == nil {
			t.Fatalf("error %q does not name a line (want %q)\nfile:\n%q", msg, name+":LINE: ", data)
		}
		if n, _ := strconv.Atoi(m[1]); n < 1 || n > lines {
			t.Fatalf("error %q names line %d of a file of %d lines\nfile:\n%q", msg, n, lines, data)
		}
	}
}

// countLines counts lines as YAML does: CR, LF and CR LF end a line, and
// so do NEL, LS and PS.
func countLines(data []byte) int {
	s := strings.ReplaceAll(string(data), "\r\n", "\n")
	return 1 + strings.Count(s, "\n") + strings.Count(s, "\r") +
		strings.Count(s, "\u0085") + strings.Count(s, "\u2028") + strings.Count(s, "\u2029")
}

// readsDevice reports whether some value of the document, taken as a path
// (relative to dir, as a secret file would be), lies under /dev, /proc or
// /sys, where reading can block or never end.
func readsDevice(data []byte, dir string) bool {
	var doc yaml.Node
	if yaml.Unmarshal(data, &doc) != nil {
		return false
	}
	var walk func(n *yaml.Node) bool
	walk = func(n *yaml.Node) bool {
		if n.Kind == yaml.ScalarNode {
			p := n.Value
			if !filepath.IsAbs(p) {
				p = filepath.Join(dir, p)
			}
			p = filepath.Clean(p)
			for _, root := range []string{"/dev", "/proc", "/sys"} {
				if p == root || strings.HasPrefix(p, root+"/") {
					return true
				}
			}
		}
		for _, c := range n.Content {
			if walk(c) {
				return true
			}
		}
		return false
	}
	return walk(&doc)
}

// writeConfig writes a parsed config back as an operator would write it:
// without the built-in log action (which cannot be defined), without the
// kinds an action does not set (YAML writes a nil list as [], which would
// set it), without a secret that came from a file (the file is named
// instead), and without retries where only notifications may set them.
func writeConfig(t *testing.T, cfg *FileConfig) []byte {
	t.Helper()
	var doc map[string]any
	if err := yaml.Unmarshal(marshal(t, cfg), &doc); err != nil {
		t.Fatal(err)
	}
	fromFile := func(m map[string]any, key string) {
		if s, _ := m[key+"_file"].(string); s != "" {
			delete(m, key)
		}
	}
	fromFile(doc, "api_token")
	fromFile(doc, "gossip_key")
	actions, _ := doc["actions"].(map[string]any)
	delete(actions, builtinLogAction)
	for _, a := range actions {
		a, _ := a.(map[string]any)
		for _, kind := range []string{"exec", "log", "webhook", "slack", "email", "pagerduty"} {
			if l, isList := a[kind].([]any); a[kind] == nil || isList && len(l) == 0 {
				delete(a, kind)
			}
		}
		if a["exec"] != nil || a["log"] != nil {
			delete(a, "retries")
		}
		for kind, key := range map[string]string{"slack": "url", "email": "password", "pagerduty": "routing_key"} {
			if m, ok := a[kind].(map[string]any); ok {
				fromFile(m, key)
			}
		}
	}
	out, err := yaml.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func marshal(t *testing.T, cfg *FileConfig) []byte {
	t.Helper()
	b, err := yaml.Marshal(cfg)
	if err != nil {
		t.Fatalf("a parsed config cannot be written as YAML: %v", err)
	}
	return b
}
