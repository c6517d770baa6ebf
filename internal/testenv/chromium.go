package testenv

import (
	"os"
	"os/exec"
	"testing"
)

// Chromium returns the path of a Chromium browser for browser tests:
// $PARLEY_CHROMIUM (scripts/chromium.sh prints it), else chromium or
// chromium-browser on PATH. Without one the test is skipped, or fails if
// PARLEY_REQUIRE_SERVICES=1.
func Chromium(t testing.TB) string {
	t.Helper()
	if p := os.Getenv("PARLEY_CHROMIUM"); p != "" {
		return p
	}
	for _, name := range []string{"chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv(RequireServices) == "1" {
		t.Fatalf("no chromium found but %s=1: install it with `eval \"$(scripts/chromium.sh)\"`", RequireServices)
	}
	t.Skip("no chromium found; run `eval \"$(scripts/chromium.sh)\"` to run the browser tests")
	return ""
}
