// Package bench holds parley's load generators and measurements, used by
// `parley bench` and the Go benchmarks: publishing through a broker against
// the same workload through the raw client (franz-go, amqp091-go, a batched
// SQL insert), HTTP ingest at a fixed rate with latency percentiles, and
// consuming through the REST consumer API. Results print as a table or
// JSON; docs/benchmarks.md records a run.
package bench
