package fsm

import "unicode"

// UnsafeInText reports a character that makes text show other than it
// reads: a control character (a newline, an escape), a line or paragraph
// separator, a bidirectional embedding, override, isolate or mark
// (U+202A–U+202E, U+2066–U+2069, U+200E, U+200F, U+061C), or an invisible
// one (U+200B–U+200D, U+2060–U+2064, U+180E, U+FEFF). Descriptions refuse
// them, in the config file and through the API (and so in a restore), so
// that what the page or a terminal shows is what was written: "Trojan
// Source" reordering and look-alike text need exactly these.
func UnsafeInText(r rune) bool {
	switch {
	case unicode.IsControl(r):
		return true
	case r == '\u2028', r == '\u2029': // line and paragraph separators
		return true
	case r >= '\u202a' && r <= '\u202e', r >= '\u2066' && r <= '\u2069', r == '\u200e', r == '\u200f', r == '\u061c':
		return true
	case r >= '\u200b' && r <= '\u200d', r >= '\u2060' && r <= '\u2064', r == '\u180e', r == '\ufeff':
		return true
	}
	return false
}
