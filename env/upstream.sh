#!/usr/bin/env bash
# REHEARSAL_PREFER_UPSTREAM=1: machines that can pull images skip the local
# builds. Each upstream image is pulled and tagged with the local name the
# harness uses, so everything downstream is identical. Never used by default:
# in air-gapped CI nothing may try to reach a registry.
# Usage: upstream.sh pull
source "$(dirname "$0")/lib.sh"
: "${REHEARSAL_UPSTREAM_BASE:=debian:$DEBIAN_SUITE}"
: "${REHEARSAL_UPSTREAM_POSTGRES:=postgres:15-bookworm}"
: "${REHEARSAL_UPSTREAM_REGISTRY:=registry:2}"
: "${REHEARSAL_UPSTREAM_NODE:=kindest/node:v1.34.0}"

pull_as() {
  local local_name="$1" ref="$2"
  log "pulling $ref as $local_name"
  docker pull -q "$ref" >/dev/null || die "could not pull $ref. Fix: unset REHEARSAL_PREFER_UPSTREAM to build locally, or set a reachable mirror image"
  docker tag "$ref" "$local_name"
}

pull_as "$IMAGE_PREFIX/debian:$DEBIAN_SUITE" "$REHEARSAL_UPSTREAM_BASE"
pull_as "$IMAGE_PREFIX/postgres:15" "$REHEARSAL_UPSTREAM_POSTGRES"
pull_as "$IMAGE_PREFIX/registry:2" "$REHEARSAL_UPSTREAM_REGISTRY"
docker pull -q "$REHEARSAL_UPSTREAM_NODE" >/dev/null || die "could not pull $REHEARSAL_UPSTREAM_NODE"
# The node image keeps its upstream name: its Kubernetes version is its own.
echo "REHEARSAL_NODE_IMAGE=$REHEARSAL_UPSTREAM_NODE" >"$STATE_DIR/upstream-images.env"
