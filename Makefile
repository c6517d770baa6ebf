# parley's build and test entry points. `make test` needs nothing but Go;
# `make integration` needs the services from scripts/services.sh.
GO ?= go
PKGS ?= ./...

.PHONY: test vet integration browser screenshots fault powercut services bench fuzz fuzz-list build client-compat rasa-plugin rasa-e2e

build:
	$(GO) build -o bin/parley ./cmd/parley

vet:
	$(GO) vet $(PKGS)
	@fmt=$$(gofmt -l . | grep -v '^vendor/'); if [ -n "$$fmt" ]; then echo "gofmt needed: $$fmt"; exit 1; fi

# Unit tests, race detector on. Integration tests skip themselves unless the
# services' env vars are set.
test: vet
	@echo "== go test -race: building every package with the race detector first (minutes on a cold build cache), then testing"
	$(GO) test -race -count=1 $(PKGS)

# Every test against the real services, which must be up:
#   eval "$$(scripts/services.sh up)" && make integration
# The browser tests have their own stage (make browser).
INTEGRATION_PKGS ?= $(shell $(GO) list $(PKGS) | grep -v /ui/browsertest)
integration:
	PARLEY_REQUIRE_SERVICES=1 $(GO) test -race -count=1 -timeout 10m $(INTEGRATION_PKGS)

# The web UI in headless Chromium against a real parley serve; needs the
# services and chromium: eval "$$(scripts/chromium.sh)" && make browser
browser:
	PARLEY_REQUIRE_SERVICES=1 $(GO) test -race -count=1 -timeout 5m -v ./ui/browsertest -run TestBrowser

# A PNG of each page of the web UI in docs/img/ (shown in README); needs
# chromium only.
screenshots:
	@eval "$$(scripts/chromium.sh)" && PARLEY_SCREENSHOTS=$(CURDIR)/docs/img $(GO) test -count=1 -timeout 5m ./ui/browsertest -run TestScreenshots -v

# The fault tests kill and restart the services, so they run alone, after
# everything else: 100,000 events each through a real parley serve.
fault:
	PARLEY_REQUIRE_SERVICES=1 PARLEY_FAULT_TESTS=1 $(GO) test -count=1 -timeout 30m -v ./faulttest
	PARLEY_REQUIRE_SERVICES=1 PARLEY_FAULT_TESTS=1 $(GO) test -count=1 -timeout 5m -run TestRestartMidPublishLosesNothing ./broker/rabbitmq

# The spool's power-cut test over many more seeds than `make test` runs
# (50): each seed cuts the power at a random point of a loaded spool on an
# in-memory file system that loses what was not fsynced, then checks the
# recovery. POWERCUT_SEEDS=n to change the count; a failing seed is
# replayed with PARLEY_POWERCUT_FIRST_SEED=seed PARLEY_POWERCUT_SEEDS=1.
POWERCUT_SEEDS ?= 5000
powercut:
	PARLEY_POWERCUT_SEEDS=$(POWERCUT_SEEDS) $(GO) test -count=1 -timeout 60m -run '^TestPowerCut$$' ./spool

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

# Every fuzz target of the repository (found, not listed, so a new one is
# never left out), FUZZTIME each. Not part of .ci/run.
FUZZTIME ?= 30s
fuzz:
	@set -e; $(MAKE) -s fuzz-list | while read -r pkg fn; do \
		echo "== fuzz $$pkg $$fn ($(FUZZTIME))"; \
		$(GO) test "$$pkg" -run '^$$' -fuzz "^$$fn\$$" -fuzztime $(FUZZTIME) </dev/null; \
	done

# The fuzz targets, one "package function" a line.
fuzz-list:
	@grep -rHo --include='*_test.go' '^func Fuzz[A-Za-z0-9_]*' . | sed -E 's|^(.*)/[^/]*:func (Fuzz.*)$$|\1 \2|' | sort -u

# The short benchmark run of docs/benchmarks.md (services and reference
# Rasa included); scripts/bench.sh without --short is the full one.
bench:
	scripts/bench.sh --short
