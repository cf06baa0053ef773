#!/usr/bin/env bash
# Builds the kind node image for Kubernetes $KUBE_VERSION with no registry:
#   1. component images (apiserver, controller-manager, scheduler, proxy, etcd,
#      CoreDNS, pause) from the binaries built by env/go/*.sh;
#   2. the node base (Dockerfile in node/): systemd, containerd, kubelet...;
#   3. a container of the node base runs containerd, the component images are
#      imported under exactly the names `kubeadm config images list` prints,
#      and the container is committed as the final image.
source "$(dirname "$0")/../lib.sh"

IMAGE="$IMAGE_PREFIX/kind-node:$KUBE_VERSION"
BASE_IMAGE="$IMAGE_PREFIX/debian:$DEBIAN_SUITE"
kube_bins() { [ -f "$BIN_DIR/kubernetes-$KUBE_VERSION/.complete" ] && readlink -f "$BIN_DIR/kubernetes-$KUBE_VERSION"; }
# tool_bin NAME VERSION : the current recipe's build of a tool, or nothing.
tool_bin() { if [ -f "$BIN_DIR/$1-$2/.complete" ]; then readlink -f "$BIN_DIR/$1-$2/$1"; fi; }

KBIN="$(kube_bins || true)"; [ -n "$KBIN" ] || die "Kubernetes binaries missing. Fix: run env/go/build-kubernetes.sh (make env does)"
ETCD="$(tool_bin etcd "$ETCD_VERSION")"; COREDNS="$(tool_bin coredns "$COREDNS_VERSION")"; PAUSE="$(tool_bin pause v1)"
CRICTL="$(tool_bin crictl "${CRICTL_VERSION:-v1.34.0}")"
for b in "$ETCD" "$COREDNS" "$PAUSE" "$CRICTL"; do [ -n "$b" ] || die "etcd/coredns/pause/crictl binary missing. Fix: run env/go/build-tools.sh"; done

# The key covers the recipe and the exact binaries (their directories are
# named by their own recipe keys).
KEY="$( (hash_inputs "$ENV_DIR/images/node" "$0"; echo "$KBIN $ETCD $COREDNS $PAUSE $CRICTL") | sha256sum | cut -c1-16)"
if image_has_key "$IMAGE" "$KEY"; then log "$IMAGE up to date"; mark_cached; exit 0; fi
docker image inspect "$BASE_IMAGE" >/dev/null 2>&1 || die "$BASE_IMAGE missing. Fix: run env/images/base.sh"

# Names kubeadm will look for: taken from kubeadm itself, never spelled here.
mapfile -t WANT < <("$KBIN/kubeadm" config images list --kubernetes-version "$KUBE_VERSION" 2>/dev/null)
[ ${#WANT[@]} -ge 6 ] || die "kubeadm config images list returned too few images: ${WANT[*]}"
want_name() { printf '%s\n' "${WANT[@]}" | grep -E "/$1:" | head -n1; }
PAUSE_IMAGE="$(want_name pause)"

CTX="$(mktemp -d "$CACHE_DIR/node-build.XXXXXX")"
BUILD_CONTAINER="rollback-rehearsal-node-build-$$"
# Also on failure or Ctrl-C: the build container, the context and every
# intermediate image; only a finished build reaches the final tag.
cleanup() {
  docker rm -f "$BUILD_CONTAINER" >/dev/null 2>&1 || true
  rm -rf "$CTX"
  local c
  for c in kube-apiserver kube-controller-manager kube-scheduler kube-proxy etcd coredns pause node-base; do
    docker rmi "$IMAGE_PREFIX/build-$c:$KEY" >/dev/null 2>&1 || true
  done
}
trap cleanup EXIT

# component_image NAME BINARY [ENTRYPOINT]: a one-binary image FROM scratch.
component_image() {
  local name="$1" bin="$2" entry="${3:-}" dir="$CTX/c-$1"
  mkdir -p "$dir"; cp "$bin" "$dir/"
  {
    echo "FROM scratch"
    echo "COPY $(basename "$bin") /usr/local/bin/$(basename "$bin")"
    echo "ENV PATH=/usr/local/bin:/usr/bin:/bin"
    [ -n "$entry" ] && echo "ENTRYPOINT [\"/usr/local/bin/$(basename "$bin")\"]"
    true
  } >"$dir/Dockerfile"
  docker build -q -t "$IMAGE_PREFIX/build-$name:$KEY" "$dir" >/dev/null
}

log "building component images for $KUBE_VERSION"
component_image kube-apiserver "$KBIN/kube-apiserver"
component_image kube-controller-manager "$KBIN/kube-controller-manager"
component_image kube-scheduler "$KBIN/kube-scheduler"
component_image etcd "$ETCD"
component_image coredns "$COREDNS" entry
component_image pause "$PAUSE" entry
# kube-proxy programs iptables, so it needs the iptables tools (and the same
# backend as the node: the wrapper picks the one the kubelet wrote to).
mkdir -p "$CTX/c-kube-proxy"; cp "$KBIN/kube-proxy" "$CTX/c-kube-proxy/kube-proxy.real"
cp "$ENV_DIR/images/node/kube-proxy-wrapper" "$CTX/c-kube-proxy/kube-proxy"
cat >"$CTX/c-kube-proxy/Dockerfile" <<DF
FROM $BASE_IMAGE
RUN apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends iptables conntrack ipset kmod \
 && rm -rf /var/lib/apt/lists/*
COPY kube-proxy kube-proxy.real /usr/local/bin/
DF
with_heartbeat "kube-proxy image" docker build -q -t "$IMAGE_PREFIX/build-kube-proxy:$KEY" "$CTX/c-kube-proxy" >/dev/null

log "building node base image (systemd, containerd, kubelet)"
mkdir -p "$CTX/node/bin"
cp -r "$ENV_DIR/images/node/files" "$ENV_DIR/images/node/Dockerfile" "$CTX/node/"
for b in kubeadm kubelet kubectl; do cp "$KBIN/$b" "$CTX/node/bin/"; done
cp "$CRICTL" "$CTX/node/bin/"
with_heartbeat "node base image" docker build -q \
  --build-arg "BASE_IMAGE=$BASE_IMAGE" --build-arg "KUBE_VERSION=$KUBE_VERSION" \
  --build-arg "PAUSE_IMAGE=$PAUSE_IMAGE" -t "$IMAGE_PREFIX/build-node-base:$KEY" "$CTX/node" >/dev/null

log "preloading component images into the node's containerd"
# /run and /tmp on tmpfs so nothing transient is committed; no /var volume so
# containerd's store under /var/lib/containerd is part of the committed layer.
docker run -d --name "$BUILD_CONTAINER" --privileged --tmpfs /run --tmpfs /tmp \
  --label rollback-rehearsal.build=1 --entrypoint /usr/bin/containerd \
  "$IMAGE_PREFIX/build-node-base:$KEY" >/dev/null
for i in $(seq 1 30); do docker exec "$BUILD_CONTAINER" ctr version >/dev/null 2>&1 && break; sleep 1; done
for c in kube-apiserver kube-controller-manager kube-scheduler kube-proxy etcd coredns pause; do
  target="$(want_name "$c")"; [ -n "$target" ] || die "kubeadm lists no image for $c"
  src="$IMAGE_PREFIX/build-$c:$KEY"
  docker save "$src" | docker exec -i "$BUILD_CONTAINER" ctr -n k8s.io images import --no-unpack - >/dev/null
  # ctr names the import after Docker's default domain: look the name up.
  imported="$(docker exec "$BUILD_CONTAINER" ctr -n k8s.io images ls -q | grep -F "/$src" | head -n1)"
  [ -n "$imported" ] || die "image $src did not reach the node's containerd"
  docker exec "$BUILD_CONTAINER" ctr -n k8s.io images tag --force "$imported" "$target" >/dev/null
  docker exec "$BUILD_CONTAINER" ctr -n k8s.io images rm "$imported" >/dev/null
  log "   preloaded $target"
done
have="$(docker exec "$BUILD_CONTAINER" ctr -n k8s.io images ls -q)"
for w in "${WANT[@]}"; do grep -qx "$w" <<<"$have" || die "preload check failed: $w not in the node's containerd"; done
docker stop -t 30 "$BUILD_CONTAINER" >/dev/null
docker commit \
  --change 'ENTRYPOINT ["/usr/local/bin/entrypoint", "/sbin/init"]' --change 'CMD []' \
  --change "LABEL rollback-rehearsal.recipe-key=$KEY" \
  "$BUILD_CONTAINER" "$IMAGE-partial" >/dev/null
docker tag "$IMAGE-partial" "$IMAGE"; docker rmi "$IMAGE-partial" >/dev/null
log "built $IMAGE ($(docker image inspect --format '{{.Size}}' "$IMAGE" | awk '{printf "%.0f MB", $1/1e6}'))"
