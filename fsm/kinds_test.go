package fsm

import (
	"bytes"
	"go/ast"
	"go/build"
	"go/constant"
	"go/parser"
	"go/token"
	"go/types"
	"path"
	"regexp"
	"strings"
	"testing"

	"github.com/hashicorp/raft"
)

// kindConstants are the Kind constants this build's source declares
// (Ignorable, a flag, aside), by name, read with go/types so that one
// declared anywhere in the package, in any form, is found.
func kindConstants(t *testing.T) map[string]Kind {
	t.Helper()
	ctx := build.Default
	ctx.BuildTags = strings.Fields(buildTags)
	pkg, err := ctx.ImportDir(".", 0)
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	var files []*ast.File
	for _, name := range pkg.GoFiles {
		f, err := parser.ParseFile(fset, name, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		files = append(files, f)
	}
	// Imports are stubbed: only constants matter, and they refer to
	// nothing outside the package. The errors the stubs cause are ignored.
	conf := types.Config{Importer: stubImporter{}, Error: func(error) {}}
	checked, _ := conf.Check("fsm", fset, files, nil)
	kind := checked.Scope().Lookup("Kind")
	if kind == nil {
		t.Fatal("no type Kind in the package")
	}
	consts := map[string]Kind{}
	for _, name := range checked.Scope().Names() {
		c, ok := checked.Scope().Lookup(name).(*types.Const)
		if !ok || !types.Identical(c.Type(), kind.Type()) || name == "Ignorable" {
			continue
		}
		v, exact := constant.Uint64Val(c.Val())
		if !exact {
			t.Fatalf("Kind constant %s = %v", name, c.Val())
		}
		consts[name] = Kind(v)
	}
	return consts
}

type stubImporter struct{}

func (stubImporter) Import(p string) (*types.Package, error) {
	pkg := types.NewPackage(p, path.Base(p))
	pkg.MarkComplete()
	return pkg, nil
}

// Every Kind constant has its row in the table, and every row's kind is
// a constant: a kind cannot be declared and forgotten.
func TestEveryKindConstantHasARow(t *testing.T) {
	consts := kindConstants(t)
	if len(consts) < 13 {
		t.Fatalf("found only %d Kind constants: %v", len(consts), consts)
	}
	kinds := commandKinds()
	declared := map[Kind]bool{}
	for name, k := range consts {
		declared[k] = true
		if _, ok := kinds.lookup(k); !ok {
			t.Errorf("%s (%d) has no row in commandKinds", name, k)
		}
	}
	for _, r := range kinds {
		if !declared[r.kind] {
			t.Errorf("row %q: kind %d is no Kind constant", r.name, r.kind)
		}
	}
}

// Rows are distinct, their names are metric label values, and their
// protocols are ones this build speaks; ProtocolVersion is no higher than
// its kinds and formats need, or a release would advertise what it lacks.
func TestKindRowsAreConsistent(t *testing.T) {
	label := regexp.MustCompile(`^[a-z][a-z_]*$`)
	kinds, names, newest := map[Kind]bool{}, map[string]bool{}, ProtocolSchedules
	for _, r := range commandKinds() {
		if kinds[r.kind] || names[r.name] || !label.MatchString(r.name) || r.name == "other" {
			t.Errorf("row %q (kind %d): repeated, or not a label of its own", r.name, r.kind)
		}
		kinds[r.kind], names[r.name] = true, true
		if r.protocol < BaseProtocol || r.protocol > ProtocolVersion {
			t.Errorf("row %q: protocol %d, outside %d..%d", r.name, r.protocol, BaseProtocol, ProtocolVersion)
		}
		if r.newest < commandVersion || r.codec == nil {
			t.Errorf("row %q is incomplete: %+v", r.name, r)
		}
		if name, known := KindName(r.kind); !known || name != r.name || MinProtocol(r.kind) != r.protocol {
			t.Errorf("row %q: KindName %q %v, MinProtocol %d", r.name, name, known, MinProtocol(r.kind))
		}
		newest = max(newest, r.protocol)
	}
	if ProtocolVersion != newest {
		t.Errorf("ProtocolVersion = %d; the newest protocol of the kinds and formats is %d", ProtocolVersion, newest)
	}
	if got := Kinds(); len(got) != len(kinds) {
		t.Errorf("Kinds() = %v, want the %d kinds of the table", got, len(kinds))
	}
}

// Each kind's empty command is encoded under its kind, decodes to the same
// command, and applies: to an empty state and to one whose services it
// might name, without stopping the node.
func TestEveryKindRoundTripsAndApplies(t *testing.T) {
	a := newApplier(t)
	a.apply(Heartbeat{At: 1, IDs: []string{""}})
	for i, r := range commandKinds() {
		c := r.codec.zero()
		if c.Kind() != r.kind {
			t.Errorf("row %q: its command is of kind %d, not %d", r.name, c.Kind(), r.kind)
		}
		b, err := Encode(c)
		if err != nil || Kind(b[0]) != r.kind || b[1] != commandVersion {
			t.Fatalf("row %q: Encode(%#v) = %q, %v", r.name, c, b, err)
		}
		back, err := Decode(b)
		if err != nil {
			t.Fatalf("row %q: Decode(%q): %v", r.name, b, err)
		}
		if again, _ := Encode(back); !bytes.Equal(again, b) || back.Kind() != r.kind {
			t.Errorf("row %q: %q decoded to %#v, which encodes to %q", r.name, b, back, again)
		}
		for _, f := range []*FSM{New(), a.f} {
			f.Apply(&raft.Log{Index: uint64(10 + i), Type: raft.LogCommand, Data: b})
		}
	}
}
