#!/usr/bin/env bash
# Builds actionlint (pinned as ACTIONLINT_VERSION in versions.env) from its Go module: the
# linter of the GitHub Actions workflow in docs/ci/, run by tests/e2e/test_actionlint.py.
# Like helm: `go install` through the Go module proxy, nothing else downloaded. It runs
# shellcheck on the workflow's `run:` blocks when shellcheck is on PATH (bootstrap's preflight
# installs it). Output: $BIN_DIR/actionlint-<version>-<key>/actionlint, reused when the key
# matches, and the stable link $BIN_DIR/actionlint-<version> that link-tools.sh reads.
source "$(dirname "$0")/../lib.sh"
need go "install Go 1.24 or newer (https://go.dev/doc/install or 'apt-get install golang')"
[ -n "${ACTIONLINT_VERSION:-}" ] || die "ACTIONLINT_VERSION is not set in env/versions.env"

KEY="$( (hash_inputs "$0"; echo "$ACTIONLINT_VERSION") | sha256sum | cut -c1-16)"
OUT="$BIN_DIR/actionlint-$ACTIONLINT_VERSION-$KEY"
publish() { ln -sfn "$OUT" "$BIN_DIR/actionlint-$ACTIONLINT_VERSION"; }
if [ -f "$OUT/.complete" ]; then log "actionlint $ACTIONLINT_VERSION cached"; publish; mark_cached; exit 0; fi

rm -rf "$OUT.partial"; mkdir -p "$OUT.partial"
# -mod=mod (after the caller's GOFLAGS, so it wins): actionlint's own go.mod decides its dependencies,
# even when the caller set -mod=vendor or -mod=readonly for a module of its own.
CGO_ENABLED=0 GOFLAGS="${GOFLAGS:+$GOFLAGS }-mod=mod" GOBIN="$OUT.partial" with_heartbeat "go install actionlint" \
  go install -trimpath -ldflags "-s -w" "github.com/rhysd/actionlint/cmd/actionlint@$ACTIONLINT_VERSION"
got="$("$OUT.partial/actionlint" -version | head -n1)"
[ "$got" = "$ACTIONLINT_VERSION" ] || die "the built actionlint reports '$got', not $ACTIONLINT_VERSION"
touch "$OUT.partial/.complete"; rm -rf "$OUT"; mv "$OUT.partial" "$OUT"; publish
log "actionlint $ACTIONLINT_VERSION built"
