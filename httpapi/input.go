package httpapi

import (
	"strconv"
	"unicode/utf8"
)

// maxQuoted bounds how much of a client's input an error message quotes:
// enough to recognise it, never an echo of a whole body or header, which
// would land in the client's logs and any proxy's in full.
const maxQuoted = 64

// quoteInput quotes s, as %q would, cut to its first maxQuoted bytes (at a
// character boundary) with how long it was when that is more.
func quoteInput(s string) string {
	if len(s) <= maxQuoted {
		return strconv.Quote(s)
	}
	cut := maxQuoted
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return strconv.Quote(s[:cut]) + "… (" + strconv.Itoa(len(s)) + " bytes)"
}

// maxErrorMessage bounds an error answer as a whole: a last guard for a
// message that quotes input some other way (a decoder's own error).
const maxErrorMessage = 1024

// boundMessage cuts msg to maxErrorMessage bytes, at a character boundary.
func boundMessage(msg string) string {
	if len(msg) <= maxErrorMessage {
		return msg
	}
	cut := maxErrorMessage
	for cut > 0 && !utf8.RuneStart(msg[cut]) {
		cut--
	}
	return msg[:cut] + "… (cut)"
}
