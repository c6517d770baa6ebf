package faulttest

import "syscall"

// The services this package restarts must not inherit the lock on
// /tmp/parley-services.lock that `flock ... make fault` passes down (flock
// leaves its descriptor open in the command): a daemon holding it would
// keep every later locker waiting for as long as it runs. Every inherited
// descriptor above stderr is marked close-on-exec; the test process keeps
// the lock until it exits.
func init() {
	for fd := 3; fd < 256; fd++ {
		syscall.CloseOnExec(fd)
	}
}
