package fsm

import (
	"testing"
	"unsafe"
)

// TestNewServiceKeepsAnIDOfItsOwn: a decoded heartbeat's ids are slices of
// the whole entry, so a service the entry adds must not keep one, or the
// state would hold every entry that ever added a service.
func TestNewServiceKeepsAnIDOfItsOwn(t *testing.T) {
	f := New()
	data, err := Encode(Heartbeat{At: 1, IDs: []string{"first-new", "second-new"}})
	if err != nil {
		t.Fatal(err)
	}
	cmd, err := f.kinds.decode(data)
	if err != nil {
		t.Fatal(err)
	}
	hb := cmd.(Heartbeat)
	f.mu.Lock()
	hb.applyTo(f, 1)
	f.mu.Unlock()
	for _, id := range hb.IDs {
		s, ok := f.Service(id)
		if !ok {
			t.Fatalf("%s not added", id)
		}
		if unsafe.StringData(s.ID) == unsafe.StringData(id) {
			t.Errorf("service %s keeps the entry's bytes as its id", id)
		}
	}
}
