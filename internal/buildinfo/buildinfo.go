package buildinfo

import (
	"runtime"
	"runtime/debug"
)

// Info is one build's identity.
type Info struct {
	Version   string `json:"version"`            // the module version, or "(devel)" for a build of a checkout
	Revision  string `json:"revision,omitempty"` // the VCS commit, when recorded
	Modified  bool   `json:"modified,omitempty"` // the tree had uncommitted changes
	GoVersion string `json:"go_version"`         // the toolchain that built it
}

// Read returns this binary's Info. Without build information (a test
// binary may lack some) fields are "unknown" or empty, never an error.
func Read() Info {
	info := Info{Version: "unknown", GoVersion: runtime.Version()}
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return info
	}
	if bi.Main.Version != "" {
		info.Version = bi.Main.Version
	}
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			info.Revision = s.Value
		case "vcs.modified":
			info.Modified = s.Value == "true"
		}
	}
	return info
}

// String is the one line "watchdog version" prints, and nodes report:
// the version, then the revision (12 digits, "+modified" if so) when known.
func (i Info) String() string {
	s := i.Version
	if i.Revision != "" {
		rev := i.Revision
		if len(rev) > 12 {
			rev = rev[:12]
		}
		if i.Modified {
			rev += "+modified"
		}
		s += " (" + rev + ")"
	}
	return s
}
