package fsm

import (
	"strconv"
	"unicode/utf8"
)

// ValidID reports whether id may name a service (or a node): 1–128 of
// A-Za-z0-9._-, and not "." or "..", which would read as paths. It runs on
// every heartbeat, hence a loop rather than a regular expression.
func ValidID(id string) bool {
	if len(id) == 0 || len(id) > MaxIDLen || id == "." || id == ".." {
		return false
	}
	for i := range len(id) {
		switch c := id[i]; {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9', c == '.', c == '_', c == '-':
		default:
			return false
		}
	}
	return true
}

// MaxIDLen is the longest id ValidID accepts.
const MaxIDLen = 128

// maxQuoted bounds how much of a client's input an error message quotes:
// enough to recognise it, never an echo of a whole body or header, which
// would land in the client's logs and any proxy's in full.
const maxQuoted = 64

// QuoteInput quotes s, as %q would, cut to its first maxQuoted bytes (at a
// character boundary) with how long it was when that is more.
func QuoteInput(s string) string {
	if len(s) <= maxQuoted {
		return strconv.Quote(s)
	}
	cut := maxQuoted
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return strconv.Quote(s[:cut]) + "… (" + strconv.Itoa(len(s)) + " bytes)"
}
