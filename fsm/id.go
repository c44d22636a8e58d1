package fsm

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
