#!/usr/bin/env bash
# Tools the test suite drives for real: headless Chromium (Debian's package)
# renders the HTML reports in tests/e2e/test_report_browser.py.
source "$(dirname "$0")/lib.sh"
if command -v chromium >/dev/null 2>&1; then log "chromium present"; mark_cached; exit 0; fi
command -v apt-get >/dev/null || die "chromium missing and no apt-get. Fix: install Chromium so that 'chromium' is on PATH"
log "installing chromium from Debian"
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium >/dev/null 2>&1 ||
  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium >/dev/null; } ||
  die "could not install chromium. Fix: apt-get install chromium"
