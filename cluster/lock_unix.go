//go:build unix

package cluster

import (
	"fmt"
	"os"
	"syscall"
)

// lockDir takes an exclusive lock on the file at path, failing at once
// (not waiting) if another process holds it. The lock goes with the
// process, so a crashed node leaves none behind.
func lockDir(path string) (unlock func(), err error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		return nil, fmt.Errorf("%s is locked: %w", path, err)
	}
	return func() { f.Close() }, nil
}
