#!/usr/bin/env bash
# Distribution v2 registry image from Debian's docker-registry package, FROM
# our debootstrap base (no image can be pulled here). Tag:
# rollback-rehearsal/registry:2; plain HTTP on :5000, deletion enabled.
source "$(dirname "$0")/../lib.sh"
RECIPE="$ENV_DIR/images/registry"
BASE="$IMAGE_PREFIX/debian:$DEBIAN_SUITE"
IMAGE="$IMAGE_PREFIX/registry:2"

docker image inspect "$BASE" >/dev/null 2>&1 || die "base image $BASE is missing. Fix: run env/images/base.sh first"
# The key covers the recipe, the pinned versions and the base image itself:
# rebuilding the base rebuilds everything on top of it.
BASE_ID="$(docker image inspect --format '{{.Id}}' "$BASE")"
KEY="$(printf '%s\n' "$(hash_inputs "$0" "$RECIPE")" "$BASE_ID" | sha256sum | cut -c1-16)"

if image_has_key "$IMAGE" "$KEY"; then log "$IMAGE up to date"; mark_cached; exit 0; fi

BUILD_LOG="$STATE_DIR/registry.build.log"
log "building $IMAGE from Debian's docker-registry (log: $BUILD_LOG)"
# Build under a temporary tag, then move the final tag: an interrupted run
# never leaves a half-made image under the final name.
with_heartbeat "registry build" \
  docker build --force-rm --label "rollback-rehearsal.recipe-key=$KEY" \
    --build-arg "BASE_IMAGE=$BASE" -t "$IMAGE-partial" "$RECIPE" >"$BUILD_LOG" 2>&1 || {
  tail -n 20 "$BUILD_LOG" >&2
  die "building $IMAGE failed (log: $BUILD_LOG). Fix: check that the Debian mirror is reachable from containers"
}
promote_partial "$IMAGE"
