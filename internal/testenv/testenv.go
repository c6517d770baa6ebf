// Package testenv gives integration tests the addresses of the real
// services started by scripts/services.sh.
package testenv

import (
	"os"
	"testing"
)

// RequireServices is the environment variable CI sets so that a missing
// service fails the run instead of skipping the test.
const RequireServices = "PARLEY_REQUIRE_SERVICES"

// Get returns the value of the environment variable name, which
// scripts/services.sh prints. When it is unset the test is skipped, or
// fails if PARLEY_REQUIRE_SERVICES=1.
func Get(t testing.TB, name string) string {
	t.Helper()
	v := os.Getenv(name)
	if v != "" {
		return v
	}
	if os.Getenv(RequireServices) == "1" {
		t.Fatalf("%s is not set but %s=1: start the services with `eval \"$(scripts/services.sh up)\"`", name, RequireServices)
	}
	t.Skipf("%s not set; run `eval \"$(scripts/services.sh up)\"` to run this test against the real service", name)
	return ""
}
