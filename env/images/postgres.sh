#!/usr/bin/env bash
# Postgres images from Debian's packages, FROM our debootstrap base (no image
# can be pulled here). Usage: postgres.sh [MAJOR...]  (default: 15; bookworm
# ships only postgresql-15). Tag: rollback-rehearsal/postgres:MAJOR.
source "$(dirname "$0")/../lib.sh"
RECIPE="$ENV_DIR/images/postgres"
BASE="$IMAGE_PREFIX/debian:$DEBIAN_SUITE"

docker image inspect "$BASE" >/dev/null 2>&1 || die "base image $BASE is missing. Fix: run env/images/base.sh first"
# The key covers the recipe, the pinned versions, the major and the base image
# itself: rebuilding the base rebuilds everything on top of it.
BASE_ID="$(docker image inspect --format '{{.Id}}' "$BASE")"

build_major() {
  local major="$1" image="$IMAGE_PREFIX/postgres:$1" key buildlog
  [[ "$major" =~ ^[0-9]+$ ]] || die "'$major' is not a Postgres major version. Usage: $0 [MAJOR...] (e.g. 15)"
  key="$(printf '%s\n' "$(hash_inputs "$0" "$RECIPE")" "$major" "$BASE_ID" | sha256sum | cut -c1-16)"
  if image_has_key "$image" "$key"; then log "$image up to date"; return 0; fi

  buildlog="$STATE_DIR/postgres-$major.build.log"
  log "building $image from Debian's postgresql-$major (log: $buildlog)"
  # Build under a temporary tag, then move the final tag: an interrupted run
  # never leaves a half-made image under the final name.
  with_heartbeat "postgres:$major build" \
    docker build --force-rm --label "rollback-rehearsal.recipe-key=$key" \
      --build-arg "BASE_IMAGE=$BASE" --build-arg "PG_MAJOR=$major" \
      -t "$image-partial" "$RECIPE" >"$buildlog" 2>&1 || {
    tail -n 20 "$buildlog" >&2
    grep -q "Unable to locate package postgresql-$major" "$buildlog" &&
      die "Debian $DEBIAN_SUITE has no postgresql-$major. Fix: use a major it ships (bookworm: 15)"
    die "building $image failed (log: $buildlog). Fix: check that the Debian mirror is reachable from containers"
  }
  promote_partial "$image"
  BUILT=1
}

BUILT=0
for major in "${@:-15}"; do build_major "$major"; done
[ "$BUILT" = 1 ] || mark_cached
