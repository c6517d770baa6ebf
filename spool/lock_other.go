//go:build !unix

package spool

// lockDir does nothing where flock is unavailable: run one parley per
// spool directory.
func lockDir(dir string) (func() error, error) { return func() error { return nil }, nil }
