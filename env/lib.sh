#!/usr/bin/env bash
# Shared helpers for the environment bootstrap (sourced, never executed).
# Why shell: this code runs before Python dependencies exist and mostly drives
# apt, go and docker; each helper stays small and fails loudly.
set -euo pipefail

ENV_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_DIR="$(cd "$ENV_DIR/.." && pwd)"
# shellcheck source=versions.env
source "$ENV_DIR/versions.env"

CACHE_DIR="${REHEARSAL_CACHE_DIR:-$HOME/.cache/rollback-rehearsal}"
BIN_DIR="$CACHE_DIR/bin"
STATE_DIR="$CACHE_DIR/state"
mkdir -p "$CACHE_DIR" "$BIN_DIR" "$STATE_DIR"

# Local image names: no registry host, so nothing ever tries to pull them.
IMAGE_PREFIX="${REHEARSAL_IMAGE_PREFIX:-rollback-rehearsal}"

log()  { printf '\033[1;34m[env]\033[0m %s\n' "$*" >&2; }
warn() { printf '\033[1;33m[env] warning:\033[0m %s\n' "$*" >&2; }
die()  { printf '\033[1;31m[env] error:\033[0m %s\n' "$*" >&2; exit 1; }

# hash_inputs FILE_OR_DIR... : a stable content hash of recipe files plus the
# pinned versions, used as the cache key of a built artifact. The "leaf tools"
# section of versions.env is left out: no other artifact is built from those
# tools, and their own keys name their version (env/go/build-helm.sh).
hash_inputs() {
  {
    sed '/^# ── leaf tools ──/,$d' "$ENV_DIR/versions.env"
    for p in "$@"; do
      if [ -d "$p" ]; then
        (cd "$p" && find . -type f -print0 | LC_ALL=C sort -z | xargs -0 sha256sum)
      else
        sha256sum <"$p"  # content only: the key must not depend on where the clone lives
      fi
    done
  } | sha256sum | cut -c1-16
}

# image_has_key IMAGE KEY : true when IMAGE exists and was built from KEY.
image_has_key() {
  local got
  got="$(docker image inspect --format '{{ index .Config.Labels "rollback-rehearsal.recipe-key" }}' "$1" 2>/dev/null || true)"
  [ "$got" = "$2" ]
}

# Timings of every step, printed as a table at the end of bootstrap.
TIMINGS_FILE="${TIMINGS_FILE:-$STATE_DIR/timings.$$}"
record_timing() { printf '%s\t%s\t%s\n' "$1" "$2" "$3" >>"$TIMINGS_FILE"; }

# step NAME COMMAND... : runs one bootstrap step with a header and its duration.
step() {
  local name="$1"; shift
  local t0 t1 status=built
  t0=$(date +%s)
  log "── $name"
  "$@" || { t1=$(date +%s); record_timing "$name" "$((t1 - t0))" FAILED; die "step '$name' failed after $((t1 - t0))s (rerun 'make env' to resume; finished steps are cached)"; }
  t1=$(date +%s)
  [ -f "$STATE_DIR/last-step-cached" ] && status=cached && rm -f "$STATE_DIR/last-step-cached"
  record_timing "$name" "$((t1 - t0))" "$status"
}
mark_cached() { touch "$STATE_DIR/last-step-cached"; }

# need CMD FIX : stops with a message naming the missing tool and the fix.
need() { command -v "$1" >/dev/null 2>&1 || die "missing prerequisite: '$1' not found. Fix: $2"; }

# with_heartbeat LABEL COMMAND... : long steps print a line every 30 s so CI
# logs show progress even when the command itself is silent (go build).
with_heartbeat() {
  local label="$1"; shift
  local t0; t0=$(date +%s)
  ( while sleep 30; do log "   … $label still running ($(( $(date +%s) - t0 ))s)"; done ) &
  local hb=$!
  local rc=0
  "$@" || rc=$?
  kill "$hb" 2>/dev/null || true
  wait "$hb" 2>/dev/null || true
  return "$rc"
}

# promote_partial IMAGE : move the final tag onto IMAGE-partial (built just
# before), drop the temporary tag and the previous build unless something
# still uses it. An interrupted build never reaches this point, so the final
# name only ever points at a complete image.
promote_partial() {
  local image="$1" old
  old="$(docker image inspect --format '{{.Id}}' "$image" 2>/dev/null || true)"
  docker tag "$image-partial" "$image"
  docker rmi "$image-partial" >/dev/null
  if [ -n "$old" ] && [ "$old" != "$(docker image inspect --format '{{.Id}}' "$image")" ]; then
    docker rmi "$old" >/dev/null 2>&1 || true
  fi
  log "built $image ($(docker image inspect --format '{{.Size}}' "$image" | numfmt --to=si)B)"
}
