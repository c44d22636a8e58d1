package buildinfo

import (
	"runtime"
	"testing"
)

func TestReadAndString(t *testing.T) {
	i := Read()
	if i.Version == "" || i.GoVersion != runtime.Version() {
		t.Fatalf("Read() = %+v", i)
	}
	for _, c := range []struct {
		in   Info
		want string
	}{
		{Info{Version: "v1.2.3"}, "v1.2.3"},
		{Info{Version: "(devel)", Revision: "0123456789abcdef0123"}, "(devel) (0123456789ab)"},
		{Info{Version: "(devel)", Revision: "abc", Modified: true}, "(devel) (abc+modified)"},
	} {
		if got := c.in.String(); got != c.want {
			t.Errorf("%+v: %q, want %q", c.in, got, c.want)
		}
	}
}
