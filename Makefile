# parley's build and test entry points. `make test` needs nothing but Go;
# `make integration` needs the services from scripts/services.sh.
GO ?= go
PKGS ?= ./...

.PHONY: test vet integration fault services bench fuzz build client-compat rasa-plugin rasa-e2e

build:
	$(GO) build -o bin/parley ./cmd/parley

vet:
	$(GO) vet $(PKGS)
	@fmt=$$(gofmt -l . | grep -v '^vendor/'); if [ -n "$$fmt" ]; then echo "gofmt needed: $$fmt"; exit 1; fi

# Unit tests, race detector on. Integration tests skip themselves unless the
# services' env vars are set.
test: vet
	$(GO) test -race -count=1 $(PKGS)

# Every test against the real services, which must be up:
#   eval "$$(scripts/services.sh up)" && make integration
integration:
	PARLEY_REQUIRE_SERVICES=1 $(GO) test -race -count=1 -timeout 10m $(PKGS)

# The fault tests kill and restart the services, so they run alone, after
# everything else: 100,000 events each through a real parley serve.
fault:
	PARLEY_REQUIRE_SERVICES=1 PARLEY_FAULT_TESTS=1 $(GO) test -count=1 -timeout 30m -v ./faulttest

services:
	@scripts/services.sh up

# Third-party consumer clients (pymapr-kafkarest from PyPI, kafka-rest from
# npm, pinned, cached outside the clone) driven against parley serve.
client-compat:
	scripts/client-compat.sh

# parley_rasa (integrations/rasa): ruff and pytest in a Rasa 3.6.21 venv,
# against a real parley serve (and Kafka when the services are up).
rasa-plugin:
	integrations/rasa/test.sh

# A trained Rasa 3.6.21 bot end to end through parley_rasa and through
# Rasa's own Kafka broker (full Rasa from PyPI under python3.10; Kafka up).
rasa-e2e:
	integrations/rasa/examples/e2e.sh

fuzz:
	$(GO) test ./event -run '^$$' -fuzz FuzzParse -fuzztime 30s
	$(GO) test ./config -run '^$$' -fuzz FuzzParse -fuzztime 30s

# The short benchmark run of docs/benchmarks.md (services and reference
# Rasa included); scripts/bench.sh without --short is the full one.
bench:
	scripts/bench.sh --short
