// Package faulttest holds parley's end-to-end fault tests: a real
// `parley serve` process takes a stream of events over HTTP while the real
// brokers (and parley itself) are killed and restarted, and afterwards a
// consumer counts every accepted event at the broker. They need the
// services of scripts/services.sh and PARLEY_FAULT_TESTS=1 (set by
// .ci/run), and write their figures to the test log and, with
// PARLEY_FAULT_REPORT=file, as JSON lines for docs/reliability.md.
package faulttest
