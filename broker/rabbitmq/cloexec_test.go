package rabbitmq

import "syscall"

// RabbitMQ restarted by a test must not inherit the lock on
// /tmp/parley-services.lock that `flock ... go test` passes down: it would
// hold it for as long as it runs. Inherited descriptors above stderr are
// marked close-on-exec.
func init() {
	for fd := 3; fd < 256; fd++ {
		syscall.CloseOnExec(fd)
	}
}
