#!/usr/bin/env bash
# `make env`: builds, from nothing, everything the rehearsal tests need, with no
# container registry. Idempotent: each step is cached on its inputs, so a
# second run takes seconds. Set REHEARSAL_PREFER_UPSTREAM=1 to skip local
# builds of images that a configured mirror could provide (see docs/environment.md).
source "$(dirname "$0")/lib.sh"
: >"$TIMINGS_FILE"
rm -f "$STATE_DIR/last-step-cached"  # a marker left by an interrupted run
trap 'rm -f "$TIMINGS_FILE"' EXIT
T0=$(date +%s)

preflight() {
  local free_kb
  need go "install Go 1.24+ (Debian: apt-get install golang-1.24, or https://go.dev/dl)"
  need python3 "apt-get install python3"
  need make "apt-get install make"
  free_kb=$(df -Pk "$CACHE_DIR" | awk 'NR==2{print $4}')
  [ "$free_kb" -ge $((15 * 1024 * 1024)) ] || die "only $((free_kb / 1024)) MiB free under $CACHE_DIR; a fresh build needs about 15 GiB. Fix: free disk space or set REHEARSAL_CACHE_DIR to a larger disk"
  [ "$(id -u)" = 0 ] || command -v sudo >/dev/null || die "bootstrap needs root (apt, dockerd, debootstrap). Fix: run as root or install sudo"
  if ! command -v debootstrap >/dev/null; then
    log "installing debootstrap from Debian"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >/dev/null 2>&1 ||
      { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >/dev/null; } ||
      die "missing prerequisite: debootstrap. Fix: apt-get install debootstrap"
  fi
  if ! command -v shellcheck >/dev/null; then  # `rehearse check` and the preflight phase lint runbooks with it
    log "installing shellcheck from Debian"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq shellcheck >/dev/null 2>&1 ||
      { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq shellcheck >/dev/null; } ||
      die "missing prerequisite: shellcheck. Fix: apt-get install shellcheck"
  fi
  if ! command -v npm >/dev/null; then  # npm ci for the demo-node images runs on the host (env/images/frameworks.sh)
    log "installing npm from Debian"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq npm >/dev/null 2>&1 ||
      { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq npm >/dev/null; } ||
      die "missing prerequisite: npm. Fix: apt-get install npm"
  fi
}

step "preflight"                    preflight
step "docker engine"                "$ENV_DIR/docker.sh" ensure
if [ "${REHEARSAL_PREFER_UPSTREAM:-0}" = 1 ]; then
  step "upstream images"            "$ENV_DIR/upstream.sh"
  step "privileged containers"      "$ENV_DIR/docker.sh" fix-caps "$IMAGE_PREFIX/debian:$DEBIAN_SUITE"
  step "kind $KIND_VERSION"         "$ENV_DIR/go/build-tools.sh" kind
  step "kubectl $KUBE_VERSION"      env KUBE_COMMANDS=kubectl "$ENV_DIR/go/build-kubernetes.sh"
else
  rm -f "$STATE_DIR/upstream-images.env"
  step "debian base image"          "$ENV_DIR/images/base.sh"
  step "privileged containers"      "$ENV_DIR/docker.sh" fix-caps "$IMAGE_PREFIX/debian:$DEBIAN_SUITE"
  step "postgres image"             "$ENV_DIR/images/postgres.sh"
  step "registry image"             "$ENV_DIR/images/registry.sh"
  step "kind $KIND_VERSION"         "$ENV_DIR/go/build-tools.sh" kind
  step "etcd, coredns, pause, crictl" "$ENV_DIR/go/build-tools.sh" etcd coredns pause crictl
  step "kubernetes $KUBE_VERSION"   "$ENV_DIR/go/build-kubernetes.sh"
  step "kind node image"            "$ENV_DIR/images/node.sh"
fi
step "helm $HELM_VERSION"         "$ENV_DIR/go/build-helm.sh"
step "demo app images"              "$ENV_DIR/images/demo.sh"
step "golang-migrate"               "$ENV_DIR/go/golang-migrate.sh"
step "actionlint $ACTIONLINT_VERSION" "$ENV_DIR/go/actionlint.sh"
step "framework demo images"        "$ENV_DIR/images/frameworks.sh"
step "test tools (chromium)"        "$ENV_DIR/test-tools.sh"
step "tool links"                   "$ENV_DIR/link-tools.sh"

log "environment ready in $(( $(date +%s) - T0 ))s:"
awk -F'\t' '{ printf "  %-28s %6ss  %s\n", $1, $2, $3 }' "$TIMINGS_FILE" >&2
