package cli

import (
	"bytes"
	"sync"
)

// tailBuffer keeps the last max bytes written to it, from the command's
// stdout and stderr at once (hence the lock).
type tailBuffer struct {
	mu  sync.Mutex
	max int
	buf []byte
	cut bool // bytes were dropped from the front
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.buf = append(t.buf, p...)
	if over := len(t.buf) - t.max; over > 0 {
		t.buf = append(t.buf[:0], t.buf[over:]...)
		t.cut = true
	}
	return len(p), nil
}

// lines is the kept output, starting at a whole line when the front was cut.
func (t *tailBuffer) lines() []byte {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := t.buf
	if i := bytes.IndexByte(out, '\n'); t.cut && i >= 0 && i+1 < len(out) {
		out = out[i+1:]
	}
	return bytes.Clone(out)
}
