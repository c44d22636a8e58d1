// Package disktest gives tests a small filesystem they can fill: a tmpfs
// mounted on a directory, and a file that takes its free space.
package disktest

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

// Mount mounts a tmpfs of size bytes on dir, unmounted when the test ends
// (so mount before starting what uses it: cleanups run last first). It
// skips the test unless it runs as root, which mounting needs.
func Mount(t testing.TB, dir string, size int) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root to mount a small filesystem")
	}
	if err := os.MkdirAll(dir, 0o750); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mount("tmpfs", dir, "tmpfs", 0, fmt.Sprintf("size=%d", size)); err != nil {
		t.Fatalf("mount a tmpfs on %s: %v", dir, err)
	}
	t.Cleanup(func() { _ = syscall.Unmount(dir, syscall.MNT_DETACH) })
}

// Fill writes dir/filler until the filesystem has no space left, then
// gives back spare bytes (rounded to its pages), and returns the file's
// path: removing it frees the space.
func Fill(t testing.TB, dir string, spare int64) string {
	t.Helper()
	p := filepath.Join(dir, "filler")
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	chunk := make([]byte, 64<<10)
	for _, size := range []int{64 << 10, 512} { // the last pages may take a smaller write
		for {
			_, err := f.Write(chunk[:size])
			if err == nil {
				continue
			}
			if !errors.Is(err, syscall.ENOSPC) {
				t.Fatal(err)
			}
			break
		}
	}
	if spare > 0 {
		info, err := f.Stat()
		if err != nil {
			t.Fatal(err)
		}
		if err := f.Truncate(max(0, info.Size()-spare)); err != nil {
			t.Fatal(err)
		}
	}
	return p
}
