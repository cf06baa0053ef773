#!/usr/bin/env bash
# Builds helm (v3, pinned as HELM_VERSION in versions.env) from its Go module with
# `go install`, the way build-tools.sh builds kind: no network beyond the Go
# module proxy. Output: $BIN_DIR/helm-<version>-<key>/helm, reused when the key
# matches, and the stable link $BIN_DIR/helm-<version> that link-tools.sh reads.
source "$(dirname "$0")/../lib.sh"
need go "install Go 1.24 or newer (https://go.dev/doc/install or 'apt-get install golang')"
[ -n "${HELM_VERSION:-}" ] || die "HELM_VERSION is not set in env/versions.env"

KEY="$( (hash_inputs "$0"; echo "$HELM_VERSION") | sha256sum | cut -c1-16)"
OUT="$BIN_DIR/helm-$HELM_VERSION-$KEY"
publish() { ln -sfn "$OUT" "$BIN_DIR/helm-$HELM_VERSION"; }
if [ -f "$OUT/.complete" ]; then log "helm $HELM_VERSION cached"; publish; mark_cached; exit 0; fi

rm -rf "$OUT.partial"; mkdir -p "$OUT.partial"
# Without the -X, `helm version` prints the module's placeholder instead of the pinned version.
LDFLAGS="-s -w -X helm.sh/helm/v3/internal/version.version=$HELM_VERSION -X helm.sh/helm/v3/internal/version.gitTreeState=clean"
CGO_ENABLED=0 GOBIN="$OUT.partial" with_heartbeat "go install helm" \
  go install -trimpath -ldflags "$LDFLAGS" "helm.sh/helm/v3/cmd/helm@$HELM_VERSION"
got="$("$OUT.partial/helm" version --template '{{ .Version }}')"
[ "$got" = "$HELM_VERSION" ] || die "the built helm reports '$got', not $HELM_VERSION"
touch "$OUT.partial/.complete"; rm -rf "$OUT"; mv "$OUT.partial" "$OUT"; publish
log "helm $HELM_VERSION built"
