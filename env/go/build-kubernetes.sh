#!/usr/bin/env bash
# Builds the Kubernetes binaries for the node image from the Go module proxy.
# k8s.io/kubernetes requires its staging modules at v0.0.0 with local replace
# directives, so `go install` refuses it; a throwaway wrapper module that
# replaces each staging module with its published v0.x release builds it.
# Output: $BIN_DIR/kubernetes-<key>/{kubeadm,kubelet,...}; reused when the key
# (versions + this script) is unchanged.
source "$(dirname "$0")/../lib.sh"
need go "install Go 1.24 or newer (https://go.dev/doc/install or 'apt-get install golang')"

# KUBE_COMMANDS="kubectl" builds a subset (upstream-image mode needs only kubectl).
read -r -a CMDS <<<"${KUBE_COMMANDS:-kubeadm kubelet kubectl kube-apiserver kube-controller-manager kube-scheduler kube-proxy}"
KEY="$( (hash_inputs "$0"; echo "${CMDS[*]}") | sha256sum | cut -c1-16)"
OUT="$BIN_DIR/kubernetes-$KUBE_VERSION-$KEY"

# Stable names for consumers: kubernetes-<version> (full set, for the node
# image) and kubectl-<version>.
publish_links() {
  [ -z "${KUBE_COMMANDS:-}" ] && ln -sfn "$OUT" "$BIN_DIR/kubernetes-$KUBE_VERSION"
  ln -sfn "$OUT/kubectl" "$BIN_DIR/kubectl-$KUBE_VERSION"
}
if [ -f "$OUT/.complete" ]; then
  log "kubernetes $KUBE_VERSION binaries cached in $OUT"
  publish_links; mark_cached; exit 0
fi

WORK="$CACHE_DIR/src/kubernetes-$KUBE_VERSION"
mkdir -p "$WORK"
cd "$WORK"
KMOD_DIR="$(go mod download -json "k8s.io/kubernetes@$KUBE_VERSION" | sed -n 's/^\t"Dir": "\(.*\)",$/\1/p')"
[ -n "$KMOD_DIR" ] || die "could not download k8s.io/kubernetes@$KUBE_VERSION from the Go module proxy"

{
  echo "module rollback-rehearsal.local/kubernetes-build"
  echo
  echo "go 1.24.0"
  echo
  echo "require k8s.io/kubernetes $KUBE_VERSION"
  echo
  # Every 'k8s.io/x => ./staging/src/k8s.io/x' line becomes a module replace.
  sed -n 's#^[[:space:]]*\(k8s.io/[a-z0-9-]*\) => ./staging/src/.*#\1#p' "$KMOD_DIR/go.mod" |
    while read -r m; do echo "replace $m v0.0.0 => $m $KUBE_STAGING_VERSION"; done
} > go.mod
cat > main.go <<'GO'
// Package main exists only so this wrapper module is a valid build root.
package main

func main() {}
GO

log "resolving module graph for k8s.io/kubernetes $KUBE_VERSION"
GOFLAGS=-mod=mod with_heartbeat "go mod download" go mod download
minor="${KUBE_VERSION#v1.}"; minor="${minor%%.*}"
LDFLAGS="-s -w"
for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
  LDFLAGS+=" -X $pkg.gitVersion=$KUBE_VERSION -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor"
  LDFLAGS+=" -X $pkg.gitCommit=0000000000000000000000000000000000000000 -X $pkg.gitTreeState=clean"
  LDFLAGS+=" -X $pkg.buildDate=$KUBE_BUILD_DATE"
done

TMP_OUT="$OUT.partial"
rm -rf "$TMP_OUT"; mkdir -p "$TMP_OUT"
for c in "${CMDS[@]}"; do
  log "go build $c ($KUBE_VERSION)"
  CGO_ENABLED=0 GOFLAGS=-mod=mod with_heartbeat "go build $c" \
    go build -trimpath -tags selinux,notest -ldflags "$LDFLAGS" -o "$TMP_OUT/$c" "k8s.io/kubernetes/cmd/$c"
done
"$TMP_OUT/${CMDS[0]}" version --client -o json 2>/dev/null | grep -q "\"gitVersion\": \"$KUBE_VERSION\"" ||
  "$TMP_OUT/${CMDS[0]}" version -o short 2>/dev/null | grep -qx "$KUBE_VERSION" ||
  die "built ${CMDS[0]} does not report $KUBE_VERSION"
touch "$TMP_OUT/.complete"
rm -rf "$OUT"; mv "$TMP_OUT" "$OUT"   # the final name appears only when complete
publish_links
log "kubernetes binaries ready in $OUT"
