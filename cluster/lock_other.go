//go:build !unix

package cluster

// lockDir does nothing where flock is missing: the WAL's meta file is
// then the only guard against a second process on the data dir.
func lockDir(string) (unlock func(), err error) { return func() {}, nil }
