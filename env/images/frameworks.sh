#!/usr/bin/env bash
# The demo's framework releases: the demo service with the migration tools
# teams actually run (demo/node, demo/alembic, demo/gomigrate READMEs).
#   rollback-rehearsal/demo-node:v1..v3       node-pg-migrate behind `npm run migrate:up|down`
#   rollback-rehearsal/demo-alembic:v1..v3    Alembic (`alembic upgrade head`, `alembic downgrade -1`)
#   rollback-rehearsal/demo-gomigrate:v1,v2,v8  demo-app:<v> with the real golang-migrate CLI as `migrate`
# Each family is cached on its own key (the recipe, its sources, the base or
# demo-app image IDs); only images lacking their key's label are rebuilt.
source "$(dirname "$0")/../lib.sh"
DEMO_DIR="$REPO_DIR/demo"
BASE="$IMAGE_PREFIX/debian:$DEBIAN_SUITE"
NODE_RELEASES="v1 v2 v3"
ALEMBIC_RELEASES="v1 v2 v3"
# The demo/app/app.py release each demo-alembic image runs: v3's revision adds
# orders.discount_cents with `def downgrade(): pass`, the story of app.py's v6.
declare -A ALEMBIC_APP_RELEASE=([v1]=v1 [v2]=v2 [v3]=v6)
GOMIGRATE_RELEASES="v1 v2 v8"
MIGRATE_BIN="$BIN_DIR/golang-migrate/migrate"

BUILT=0
# Build contexts made here, removed on every exit path.
TMP_DIRS=()
trap 'rm -rf "${TMP_DIRS[@]}"' EXIT

BASE_ID="$(docker image inspect --format '{{.Id}}' "$BASE" 2>/dev/null)" ||
  die "base image $BASE is missing. Fix: build it first (env/images/base.sh)"

# stale IMAGE KEY VERSION... : the versions whose image lacks KEY.
stale() {
  local image="$1" key="$2" v; shift 2
  for v in "$@"; do image_has_key "$image:$v" "$key" || echo "$v"; done
}

# build IMAGE VERSION KEY DOCKERFILE CONTEXT [BUILD-ARG...] : one image, built under
# a temporary tag and then moved to its final one (an interrupted run never
# leaves a half-made image). The classic builder never reaches for a registry
# when the base image is local.
build() {
  local image="$1" version="$2" key="$3" dockerfile="$4" context="$5" a args=(); shift 5
  for a in "$@"; do args+=(--build-arg "$a"); done
  local logf="$STATE_DIR/${image##*/}-$version.build.log"
  BUILT=1
  log "building $image:$version"
  DOCKER_BUILDKIT=0 docker build --force-rm "${args[@]}" --label "rollback-rehearsal.recipe-key=$key" \
    -f "$dockerfile" -t "$image:$version-partial" "$context" >"$logf" 2>&1 ||
    { tail -n 30 "$logf" >&2; die "building $image:$version failed (log: $logf)"; }
  promote_partial "$image:$version"
}

node_images() {
  local image="$IMAGE_PREFIX/demo-node" key todo ctx v
  key="$( { hash_inputs "$0" "$DEMO_DIR/node"; echo "$BASE_ID"; } | sha256sum | cut -c1-16)"
  # shellcheck disable=SC2086 # a list of words
  todo="$(stale "$image" "$key" $NODE_RELEASES)"
  if [ -z "$todo" ]; then log "$image:{${NODE_RELEASES// /,}} up to date"; return 0; fi
  # npm ci runs here, on the host, from the committed package-lock.json: the
  # build's containers need not reach the npm registry (nor trust a proxy's CA).
  need npm "apt-get install npm (Debian's npm; any npm 7+ reads lockfile v3)"
  ctx="$(mktemp -d "$CACHE_DIR/src/demo-node-ctx.XXXXXX")"; TMP_DIRS+=("$ctx")
  cp -r "$DEMO_DIR/node/." "$ctx/"
  (cd "$ctx/app" && npm ci --ignore-scripts --omit=dev --no-audit --no-fund --loglevel=error >"$STATE_DIR/demo-node.npm-ci.log" 2>&1) ||
    { tail -n 30 "$STATE_DIR/demo-node.npm-ci.log" >&2; die "npm ci for demo/node/app failed (log: $STATE_DIR/demo-node.npm-ci.log)"; }
  for v in $todo; do build "$image" "$v" "$key" "$ctx/Dockerfile" "$ctx" "APP_VERSION=$v"; done
}

alembic_images() {
  local image="$IMAGE_PREFIX/demo-alembic" key todo v
  key="$( { hash_inputs "$0" "$DEMO_DIR/alembic" "$DEMO_DIR/app" "$DEMO_DIR/seed.sql" "$DEMO_DIR/.dockerignore"
            echo "$BASE_ID"; } | sha256sum | cut -c1-16)"
  # shellcheck disable=SC2086 # a list of words
  todo="$(stale "$image" "$key" $ALEMBIC_RELEASES)"
  if [ -z "$todo" ]; then log "$image:{${ALEMBIC_RELEASES// /,}} up to date"; return 0; fi
  for v in $todo; do
    build "$image" "$v" "$key" "$DEMO_DIR/alembic/Dockerfile" "$DEMO_DIR" "APP_VERSION=$v" "APP_RELEASE=${ALEMBIC_APP_RELEASE[$v]}"
  done
}

gomigrate_images() {
  local image="$IMAGE_PREFIX/demo-gomigrate" ids="" key todo ctx v id
  [ -x "$MIGRATE_BIN" ] || die "golang-migrate is missing ($MIGRATE_BIN). Fix: env/go/golang-migrate.sh"
  for v in $GOMIGRATE_RELEASES; do
    id="$(docker image inspect --format '{{.Id}}' "$IMAGE_PREFIX/demo-app:$v" 2>/dev/null)" ||
      die "$IMAGE_PREFIX/demo-app:$v is missing. Fix: env/images/demo.sh"
    ids="$ids $id"
  done
  key="$( { hash_inputs "$0" "$DEMO_DIR/gomigrate" "$MIGRATE_BIN"; echo "$ids"; } | sha256sum | cut -c1-16)"
  # shellcheck disable=SC2086 # a list of words
  todo="$(stale "$image" "$key" $GOMIGRATE_RELEASES)"
  if [ -z "$todo" ]; then log "$image:{${GOMIGRATE_RELEASES// /,}} up to date"; return 0; fi
  ctx="$(mktemp -d "$CACHE_DIR/src/demo-gomigrate-ctx.XXXXXX")"; TMP_DIRS+=("$ctx")
  cp "$DEMO_DIR/gomigrate/Dockerfile" "$MIGRATE_BIN" "$ctx/"
  for v in $todo; do build "$image" "$v" "$key" "$ctx/Dockerfile" "$ctx" "BASE_IMAGE=$IMAGE_PREFIX/demo-app:$v"; done
}

mkdir -p "$CACHE_DIR/src"
node_images
alembic_images
gomigrate_images
# The classic builder leaves each build's first stage as a dangling image.
docker image prune -f --filter "label=rollback-rehearsal.stage=demo-framework-files" >/dev/null || true
[ "$BUILT" = 1 ] || mark_cached
