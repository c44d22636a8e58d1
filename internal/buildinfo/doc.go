// Package buildinfo says which build of watchdog is running, from what the Go toolchain recorded in
// the binary (module version, VCS revision, modified or not, Go version); no linker flag sets it.
package buildinfo
