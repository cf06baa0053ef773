#!/usr/bin/env bash
# Puts the built kind, kubectl, helm and actionlint at stable paths (.cache/rollback-rehearsal/bin/current)
# so the harness and users find them without knowing cache keys.
source "$(dirname "$0")/lib.sh"
CUR="$BIN_DIR/current"; mkdir -p "$CUR"
[ -f "$BIN_DIR/kind-$KIND_VERSION/.complete" ] && [ -e "$BIN_DIR/kubectl-$KUBE_VERSION" ] ||
  die "kind or kubectl missing. Fix: rerun make env"
[ -f "$BIN_DIR/helm-$HELM_VERSION/.complete" ] || die "helm $HELM_VERSION missing. Fix: rerun make env"
[ -f "$BIN_DIR/actionlint-$ACTIONLINT_VERSION/.complete" ] || die "actionlint $ACTIONLINT_VERSION missing. Fix: rerun make env"
ln -sfn "$(readlink -f "$BIN_DIR/kind-$KIND_VERSION/kind")" "$CUR/kind"
ln -sfn "$(readlink -f "$BIN_DIR/kubectl-$KUBE_VERSION")" "$CUR/kubectl"
ln -sfn "$(readlink -f "$BIN_DIR/helm-$HELM_VERSION/helm")" "$CUR/helm"
ln -sfn "$(readlink -f "$BIN_DIR/actionlint-$ACTIONLINT_VERSION/actionlint")" "$CUR/actionlint"
NODE_IMAGE="$IMAGE_PREFIX/kind-node:$KUBE_VERSION"
[ -f "$STATE_DIR/upstream-images.env" ] && source "$STATE_DIR/upstream-images.env" && NODE_IMAGE="$REHEARSAL_NODE_IMAGE"
# images.env is read by the harness (harness/tools.py) when the variables are unset.
cat >"$CUR/images.env" <<ENV
REHEARSAL_NODE_IMAGE=$NODE_IMAGE
REHEARSAL_POSTGRES_IMAGE=$IMAGE_PREFIX/postgres:{major}
REHEARSAL_REGISTRY_IMAGE=$IMAGE_PREFIX/registry:2
ENV
cat >"$CUR/env.sh" <<ENV
# Written by make env: source it to use the rehearsal environment by hand.
export PATH="$CUR:\$PATH"
ENV
log "kind, kubectl, helm and actionlint linked in $CUR (source $CUR/env.sh)"
