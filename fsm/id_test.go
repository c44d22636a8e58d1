package fsm

import (
	"regexp"
	"strings"
	"testing"
)

// TestValidIDMatchesTheDocumentedRule checks the hand-written validator
// against the rule as a regular expression, over every short string of
// interesting bytes and the length limits.
func TestValidIDMatchesTheDocumentedRule(t *testing.T) {
	rule := regexp.MustCompile(`^[A-Za-z0-9._-]{1,128}$`)
	alphabet := []string{"a", "Z", "0", ".", "_", "-", "/", " ", "é", "\x00", "%", ":"}
	var cases []string
	for _, a := range alphabet {
		cases = append(cases, a)
		for _, b := range alphabet {
			cases = append(cases, a+b, a+b+a)
		}
	}
	cases = append(cases, "", strings.Repeat("a", 128), strings.Repeat("a", 129), "..", ".", "...")
	for _, id := range cases {
		want := rule.MatchString(id) && id != "." && id != ".."
		if got := ValidID(id); got != want {
			t.Errorf("ValidID(%q) = %v, want %v", id, got, want)
		}
	}
}
