#!/usr/bin/env bash
# Puts the built kind and kubectl at stable paths (.cache/rollback-rehearsal/bin/current)
# so the harness and users find them without knowing cache keys.
source "$(dirname "$0")/lib.sh"
CUR="$BIN_DIR/current"; mkdir -p "$CUR"
latest() { ls -d "$BIN_DIR/$1"*/ 2>/dev/null | while read -r d; do [ -f "$d/.complete" ] && echo "${d%/}"; done | tail -n1; }
KIND_DIR="$(latest "kind-$KIND_VERSION-")"; KUBE_DIR="$(latest "kubernetes-$KUBE_VERSION-")"
[ -n "$KIND_DIR" ] && [ -n "$KUBE_DIR" ] || die "kind or kubernetes binaries missing; rerun make env"
ln -sfn "$KIND_DIR/kind" "$CUR/kind"
ln -sfn "$KUBE_DIR/kubectl" "$CUR/kubectl"
cat >"$CUR/env.sh" <<ENV
# Written by make env: source it to use the rehearsal environment by hand.
export PATH="$CUR:\$PATH"
export REHEARSAL_NODE_IMAGE="$IMAGE_PREFIX/kind-node:$KUBE_VERSION"
export REHEARSAL_POSTGRES_IMAGE="$IMAGE_PREFIX/postgres:15"
export REHEARSAL_REGISTRY_IMAGE="$IMAGE_PREFIX/registry:2"
ENV
log "kind and kubectl linked in $CUR (source $CUR/env.sh)"
