#!/usr/bin/env bash
# Demo application images rollback-rehearsal/demo-app:v1, :v2 and :v3, built
# from demo/ on top of the Debian base image (see demo/README.md).
#   v1  good release, ships migration 0001
#   v2  bad release: needs migration 0002 (ships 0001-0002), fails readiness
#   v3  bad image: crash-loops on start (ships 0001)
#   v4  bad release: its 0003 drops users.created_at (ships 0001 + 0003)
#   v5  bad release: its 0003 fails half-way, leaving version 3 dirty (0001 + 0003)
#   v6  bad release: its 0003 down migration is a no-op (0001 + 0003)
#   v7  bad release: ready (its rollout completes) but GET /users fails (0001)
#   v8  bad release: its 0003 adds orders.coupon_code, its down file is empty (0001 + 0003)
#   (v4..v6 and v8 take 0003 from demo/release-migrations/<version>/)
source "$(dirname "$0")/../lib.sh"
DEMO_DIR="$REPO_DIR/demo"
BASE="$IMAGE_PREFIX/debian:$DEBIAN_SUITE"
IMAGE="$IMAGE_PREFIX/demo-app"
# version:max-migration it ships
RELEASES="v1:1 v2:2 v3:1 v4:1 v5:1 v6:1 v7:1 v8:1"

BASE_ID="$(docker image inspect --format '{{.Id}}' "$BASE" 2>/dev/null)" ||
  die "base image $BASE is missing. Fix: build it first (env/images/base.sh)"
# The key covers the recipe, the app sources, the migrations and the base
# image, so a rebuilt base image rebuilds the demo images too.
KEY="$( { hash_inputs "$0" "$DEMO_DIR/app" "$DEMO_DIR/migrations" "$DEMO_DIR/release-migrations" "$DEMO_DIR/seed.sql" "$DEMO_DIR/.dockerignore"
          echo "$BASE_ID" "$RELEASES"; } | sha256sum | cut -c1-16)"

todo=""
for r in $RELEASES; do image_has_key "$IMAGE:${r%%:*}" "$KEY" || todo="$todo $r"; done
if [ -z "$todo" ]; then log "$IMAGE:{v1..v8} up to date"; mark_cached; exit 0; fi

for r in $todo; do
  version="${r%%:*}" max="${r#*:}"
  log "building $IMAGE:$version (migrations up to $max)"
  # Classic builder on purpose: it never tries to reach a registry for a base
  # image that exists locally. Build under a temporary tag, then move the
  # final tag: an interrupted run never leaves a half-made image.
  DOCKER_BUILDKIT=0 docker build --force-rm \
    --build-arg "APP_VERSION=$version" --build-arg "MAX_MIGRATION=$max" \
    --label "rollback-rehearsal.recipe-key=$KEY" \
    -f "$DEMO_DIR/app/Dockerfile" -t "$IMAGE:$version-partial" "$DEMO_DIR" >"$STATE_DIR/demo-$version.build.log" 2>&1 ||
    { tail -n 30 "$STATE_DIR/demo-$version.build.log" >&2; die "building $IMAGE:$version failed (log: $STATE_DIR/demo-$version.build.log)"; }
  old="$(docker image inspect --format '{{.Id}}' "$IMAGE:$version" 2>/dev/null || true)"
  docker tag "$IMAGE:$version-partial" "$IMAGE:$version"
  docker rmi "$IMAGE:$version-partial" >/dev/null
  # The replaced image, now untagged (kept if a container still uses it).
  [ -z "$old" ] || docker rmi "$old" >/dev/null 2>&1 || true
  log "built $IMAGE:$version"
done
# The classic builder leaves each build's first stage as a dangling image.
docker image prune -f --filter "label=rollback-rehearsal.stage=demo-app-files" >/dev/null || true
