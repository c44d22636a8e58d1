package scripts_test

import (
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"unicode"
)

// TestDocsLinksResolve checks every relative link of the README and of
// docs/*.md: the file (or directory) it names exists, and its #anchor is a
// heading of that file, as GitHub makes anchors of headings.
func TestDocsLinksResolve(t *testing.T) {
	root := repoRoot(t)
	docs := docFiles(t, root)
	for _, doc := range docs {
		for _, problem := range brokenLinks(t, doc) {
			t.Errorf("%s: %s", relTo(root, doc), problem)
		}
	}
	if !slices.Contains(docs, filepath.Join(root, "docs", "architecture.md")) {
		t.Errorf("no docs/architecture.md among %v", docs)
	}
}

// TestBrokenLinksAreFound is the check above on documents with broken
// links, so that it is known to fail on one.
func TestBrokenLinksAreFound(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		t.Helper()
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		return path
	}
	write("other.md", "# Other\n\n## Prometheus's dead man's switch: `POST /v1/alertmanager/{id}`\n\n## Same\n\n## Same\n")
	doc := write("doc.md", strings.Join([]string{
		"# Doc", "",
		"[ok](other.md) [ok](other.md#prometheuss-dead-mans-switch-post-v1alertmanagerid) [ok](#doc)",
		"[ok](other.md#same-1) [ok](https://example.com/x.md) ![ok](other.md)",
		"`[in code](missing.md)`", "",
		"```", "[in a block](missing.md)", "```", "",
		"[bad file](missing.md) [bad anchor](other.md#nothing) [bad here](#nothing)",
		"[bad dup](other.md#same-2) ![bad image](missing.png)",
		"[text]: missing-ref.md",
	}, "\n"))
	got := brokenLinks(t, doc)
	want := []string{"missing.md", "other.md#nothing", "#nothing", "other.md#same-2", "missing.png", "missing-ref.md"}
	if len(got) != len(want) {
		t.Fatalf("found %d broken links, want %d (%v):\n%s", len(got), len(want), want, strings.Join(got, "\n"))
	}
	for i, w := range want {
		if !strings.HasPrefix(got[i], w+": ") {
			t.Errorf("problem %d: %q, want one about %s", i, got[i], w)
		}
	}
}

// TestCodePointsAtDocsThatExist checks what the code tells operators to
// read: every docs/NAME.md (or README.md) named in the non-test sources,
// scripts and deploy files exists, and a section quoted after it, as in
// `see docs/operations.md, "Replace a node whose disk was lost"`, is a
// heading of that file.
func TestCodePointsAtDocsThatExist(t *testing.T) {
	root := repoRoot(t)
	pointer := regexp.MustCompile(`\b((?:docs/[A-Za-z0-9_-]+|README)\.md)(?:,?\s+\\?"([^"\\]+)\\?")?`)
	found := 0
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel := relTo(root, path)
		if d.IsDir() {
			if strings.HasPrefix(d.Name(), ".") && path != root || d.Name() == "testdata" || rel == "docs" {
				return filepath.SkipDir
			}
			return nil
		}
		if strings.HasSuffix(path, "_test.go") || strings.HasSuffix(path, ".md") ||
			!(strings.HasSuffix(path, ".go") || strings.HasSuffix(path, ".sh") || strings.HasPrefix(rel, "deploy/") ||
				rel == "Makefile" || rel == "Dockerfile") {
			return nil
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		for _, m := range pointer.FindAllStringSubmatch(string(b), -1) {
			found++
			target := filepath.Join(root, m[1])
			if _, err := os.Stat(target); err != nil {
				t.Errorf("%s names %s, which does not exist", rel, m[1])
				continue
			}
			if m[2] != "" && !slices.Contains(anchors(t, target), slug(m[2])) {
				t.Errorf("%s sends the reader to %s, %q: no such heading there", rel, m[1], m[2])
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if found == 0 {
		t.Fatal("no source names a document: the pattern is wrong (cluster/storecheck.go names docs/operations.md)")
	}
}

// TestArchitectureLayering checks the layering table of docs/architecture.md
// against the build: each package listed depends (go list -deps) on no
// package of this module but the ones its row allows.
func TestArchitectureLayering(t *testing.T) {
	root := repoRoot(t)
	if _, err := exec.LookPath("go"); err != nil {
		t.Skipf("go not found: %v", err)
	}
	doc, err := os.ReadFile(filepath.Join(root, "docs", "architecture.md"))
	if err != nil {
		t.Fatal(err)
	}
	rules := layeringRules(t, string(doc))
	cmd := exec.Command("go", "list", "-f", `{{.ImportPath}} {{join .Deps " "}}`, "./...")
	cmd.Dir = root
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	const module = "github.com/watchdog-ha/watchdog/"
	checked := 0
	for line := range strings.SplitSeq(strings.TrimSpace(string(out)), "\n") {
		fields := strings.Fields(line)
		pkg, ok := strings.CutPrefix(fields[0], module)
		allowed, listed := rules[pkg]
		if !ok || !listed {
			continue
		}
		checked++
		for _, dep := range fields[1:] {
			if d, ours := strings.CutPrefix(dep, module); ours && !slices.Contains(allowed, d) {
				t.Errorf("%s depends on %s; docs/architecture.md allows only %v", pkg, d, allowed)
			}
		}
	}
	if checked != len(rules) {
		t.Errorf("checked %d packages of the %d the table lists (%v): a row names no package", checked, len(rules), rules)
	}
}

// layeringRules reads the table whose header begins "| package | may
// depend on": each row's package, and the packages its second cell allows.
func layeringRules(t *testing.T, doc string) map[string][]string {
	t.Helper()
	code := regexp.MustCompile("`([a-z/]+)`")
	rules := map[string][]string{}
	in := false
	for line := range strings.SplitSeq(doc, "\n") {
		if strings.HasPrefix(line, "| package | may depend on") {
			in = true
			continue
		}
		if !in || strings.HasPrefix(line, "|---") {
			continue
		}
		if !strings.HasPrefix(line, "|") {
			break
		}
		cells := strings.Split(line, "|")
		pkg := code.FindStringSubmatch(cells[1])
		if pkg == nil {
			t.Fatalf("a row of the layering table names no package: %s", line)
		}
		allowed := []string{}
		for _, m := range code.FindAllStringSubmatch(cells[2], -1) {
			allowed = append(allowed, m[1])
		}
		rules[pkg[1]] = allowed
	}
	if len(rules) == 0 {
		t.Fatal(`docs/architecture.md has no table headed "| package | may depend on"`)
	}
	return rules
}

func repoRoot(t *testing.T) string {
	t.Helper()
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	return root
}

func relTo(root, path string) string {
	rel, err := filepath.Rel(root, path)
	if err != nil {
		return path
	}
	return filepath.ToSlash(rel)
}

// docFiles are the README and every document under docs/.
func docFiles(t *testing.T, root string) []string {
	t.Helper()
	docs, err := filepath.Glob(filepath.Join(root, "docs", "*.md"))
	if err != nil {
		t.Fatal(err)
	}
	return append([]string{filepath.Join(root, "README.md")}, docs...)
}

var (
	fence     = regexp.MustCompile("(?ms)^```.*?^```[ \t]*$")
	codeSpan  = regexp.MustCompile("`[^`]*`")
	inlineRef = regexp.MustCompile(`!?\[[^\]]*\]\(([^)\s]+)(?:\s+"[^"]*")?\)`)
	refDef    = regexp.MustCompile(`(?m)^\s{0,3}\[[^\]]+\]:\s*(\S+)`)
	scheme    = regexp.MustCompile(`^[a-zA-Z][a-zA-Z0-9+.-]*:`)
)

// brokenLinks lists the relative links of the Markdown file doc that do
// not resolve, each as "TARGET: problem", in the order they appear.
func brokenLinks(t *testing.T, doc string) []string {
	t.Helper()
	b, err := os.ReadFile(doc)
	if err != nil {
		t.Fatal(err)
	}
	text := codeSpan.ReplaceAllString(fence.ReplaceAllString(string(b), ""), "")
	type link struct {
		at     int
		target string
	}
	var links []link
	for _, re := range []*regexp.Regexp{inlineRef, refDef} {
		for _, m := range re.FindAllStringSubmatchIndex(text, -1) {
			links = append(links, link{m[0], text[m[2]:m[3]]})
		}
	}
	slices.SortFunc(links, func(a, b link) int { return a.at - b.at })
	var problems []string
	for _, l := range links {
		if scheme.MatchString(l.target) {
			continue // another site: not checked here
		}
		path, anchor, _ := strings.Cut(l.target, "#")
		file := doc
		if path != "" {
			file = filepath.Join(filepath.Dir(doc), filepath.FromSlash(path))
			if _, err := os.Stat(file); err != nil {
				problems = append(problems, fmt.Sprintf("%s: no such file", l.target))
				continue
			}
		}
		if anchor == "" {
			continue
		}
		if !strings.HasSuffix(file, ".md") {
			problems = append(problems, fmt.Sprintf("%s: an anchor in a file that is not Markdown", l.target))
			continue
		}
		if !slices.Contains(anchors(t, file), anchor) {
			problems = append(problems, fmt.Sprintf("%s: no such heading in %s", l.target, filepath.Base(file)))
		}
	}
	return problems
}

var heading = regexp.MustCompile(`(?m)^#{1,6}[ \t]+(.*?)[ \t#]*$`)

// anchors are the anchors GitHub gives the headings of a Markdown file:
// each heading's slug, with -1, -2... after its repeats.
func anchors(t *testing.T, file string) []string {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]int{}
	var out []string
	for _, m := range heading.FindAllStringSubmatch(fence.ReplaceAllString(string(b), ""), -1) {
		s := slug(m[1])
		if n := seen[s]; n > 0 {
			out = append(out, fmt.Sprintf("%s-%d", s, n))
		} else {
			out = append(out, s)
		}
		seen[s]++
	}
	return out
}

// slug is GitHub's anchor of a heading: lower case, every character but
// letters, marks, digits, connectors (_), spaces and hyphens dropped, and
// each space made a hyphen. Backticks go with the rest of the punctuation.
func slug(text string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(strings.TrimSpace(text)) {
		switch {
		case r == ' ':
			b.WriteRune('-')
		case r == '-' || unicode.In(r, unicode.L, unicode.M, unicode.N, unicode.Pc):
			b.WriteRune(r)
		}
	}
	return b.String()
}

// TestDocsNameTestsThatExist: a test, fuzz target or benchmark the README or
// docs/ names (as the source of a figure or of a guarantee) is defined in the
// repository, so that moving or renaming one cannot leave a claim without
// its proof. Where a doc names the package beside it (`go test ... ./pkg`),
// the test is in that package.
func TestDocsNameTestsThatExist(t *testing.T) {
	root := repoRoot(t)
	defined := map[string][]string{} // name -> packages (dirs) that define it
	funcDecl := regexp.MustCompile(`(?m)^func ((?:Test|Fuzz|Benchmark)[A-Z][A-Za-z0-9_]*)\(`)
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (strings.HasPrefix(d.Name(), ".") || d.Name() == "testdata") && path != root {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(path, "_test.go") {
			return nil
		}
		src, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		for _, m := range funcDecl.FindAllSubmatch(src, -1) {
			defined[string(m[1])] = append(defined[string(m[1])], relTo(root, filepath.Dir(path)))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	named := regexp.MustCompile(`\b(?:Test|Fuzz|Benchmark)[A-Z][A-Za-z0-9_]*`)
	command := regexp.MustCompile("go test[^`\n]*-run '?\\^?([A-Z][A-Za-z0-9_]*)\\$?'?[^`\n]*? \\./([a-z/]+[a-z])/?")
	for _, doc := range docFiles(t, root) {
		text, err := os.ReadFile(doc)
		if err != nil {
			t.Fatal(err)
		}
		for _, name := range named.FindAllString(string(text), -1) {
			if len(defined[name]) == 0 {
				t.Errorf("%s names %s, which no test file defines", relTo(root, doc), name)
			}
		}
		for _, m := range command.FindAllStringSubmatch(string(text), -1) {
			name, pkg := m[1], m[2]
			if !strings.HasPrefix(name, "Test") && !strings.HasPrefix(name, "Fuzz") {
				continue // a pattern such as RollingUpgrade: matched by go test itself
			}
			if len(defined[name]) > 0 && !slices.Contains(defined[name], pkg) {
				t.Errorf("%s runs %s in ./%s, but it is defined in %v", relTo(root, doc), name, pkg, defined[name])
			}
		}
	}
}
