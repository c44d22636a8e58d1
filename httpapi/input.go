package httpapi

import (
	"unicode/utf8"

	"github.com/watchdog-ha/watchdog/fsm"
)

// quoteInput quotes at most a prefix of a client's input (fsm.QuoteInput).
func quoteInput(s string) string { return fsm.QuoteInput(s) }

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
