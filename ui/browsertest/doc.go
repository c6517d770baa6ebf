// Package browsertest drives parley's web UI in a real headless Chromium
// (github.com/chromedp/chromedp) against a real `parley serve`: logins,
// transcripts, live updates, a broker's backlog and recovery, script
// injection. The tests skip without chromium (scripts/chromium.sh
// installs Debian's) unless PARLEY_REQUIRE_SERVICES=1; `make browser` runs
// them and `make screenshots` saves a picture of each page in docs/img/.
package browsertest
