// Package buildinfo says which build of watchdog is running, from what the
// Go toolchain recorded in the binary (debug.ReadBuildInfo): the module
// version, the VCS revision and whether the tree was modified, and the Go
// version. Nothing is set by linker flags, so every build reports it alike.
package buildinfo
