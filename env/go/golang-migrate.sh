#!/usr/bin/env bash
# Builds the real golang-migrate CLI from Go modules, with only the postgres
# database driver (the file source is always built in): the `migrate` that Go
# teams run, shipped by the demo's gomigrate images (env/images/frameworks.sh).
# Its own script, not a case of build-tools.sh: that file is part of every
# other tool's cache key, and adding a tool must not rebuild kind or etcd.
# Output: $BIN_DIR/golang-migrate-<version>-<key>/migrate, linked as
# $BIN_DIR/golang-migrate (the current recipe's build); reused when the key matches.
source "$(dirname "$0")/../lib.sh"
need go "install Go 1.24 or newer (https://go.dev/doc/install or 'apt-get install golang')"
: "${GOLANG_MIGRATE_VERSION:=v4.18.3}"
# The key is this script alone (versions.env is in every key: pinning here
# keeps a new version from rebuilding Kubernetes).
out="$BIN_DIR/golang-migrate-$GOLANG_MIGRATE_VERSION-$(hash_inputs "$0")"
if [ -f "$out/.complete" ]; then
  log "golang-migrate $GOLANG_MIGRATE_VERSION cached"
  ln -sfn "$out" "$BIN_DIR/golang-migrate"; mark_cached; exit 0
fi
rm -rf "$out.partial"; mkdir -p "$out.partial"
CGO_ENABLED=0 GOBIN="$out.partial" with_heartbeat "go install golang-migrate" \
  go install -trimpath -ldflags "-s -w -X main.Version=$GOLANG_MIGRATE_VERSION" -tags postgres \
  "github.com/golang-migrate/migrate/v4/cmd/migrate@$GOLANG_MIGRATE_VERSION"
"$out.partial/migrate" -version >/dev/null 2>&1 || die "the built golang-migrate does not run ($out.partial/migrate)"
touch "$out.partial/.complete"; rm -rf "$out"; mv "$out.partial" "$out"
ln -sfn "$out" "$BIN_DIR/golang-migrate"
log "golang-migrate $GOLANG_MIGRATE_VERSION built ($out/migrate)"
