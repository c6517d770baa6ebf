// Package server assembles parley's HTTP API: the ingest endpoint
// (POST /events), Rasa's conversation API and the REST consumer API
// (mounted from their packages), health and readiness, Prometheus metrics,
// and graceful shutdown. cmd/parley's serve command builds a Server from
// endpoints.yml and flags; everything else is here.
package server
