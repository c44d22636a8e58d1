package cli

import (
	"bytes"
	"encoding/json"
	"runtime"
	"testing"

	"github.com/watchdog-ha/watchdog/internal/buildinfo"
)

func TestVersionCommand(t *testing.T) {
	var out, errOut bytes.Buffer
	if err := runVersion(t.Context(), nil, Env{Stdout: &out, Stderr: &errOut}); err != nil {
		t.Fatal(err, errOut.String())
	}
	want := "watchdog " + buildinfo.Read().String() + " " + runtime.Version() + " " + runtime.GOOS + "/" + runtime.GOARCH + "\n"
	if out.String() != want {
		t.Fatalf("version printed %q, want %q", out.String(), want)
	}
	out.Reset()
	var b buildinfo.Info
	if err := runVersion(t.Context(), []string{"-json"}, Env{Stdout: &out, Stderr: &errOut}); err != nil || json.Unmarshal(out.Bytes(), &b) != nil || b != buildinfo.Read() {
		t.Fatalf("version -json: %v %q", err, out.String())
	}
	if err := runVersion(t.Context(), []string{"extra"}, Env{Stdout: &out, Stderr: &errOut}); ExitCode(err) != ExitUsage {
		t.Fatalf("an argument: %v", err)
	}
}
