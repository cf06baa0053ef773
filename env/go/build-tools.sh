#!/usr/bin/env bash
# Builds the other Go programs the environment needs: kind, etcd, CoreDNS and
# the pause program. Usage: build-tools.sh [kind|etcd|coredns|pause]...
# Output: $BIN_DIR/<tool>-<version>-<key>/<tool>, reused when the key matches.
source "$(dirname "$0")/../lib.sh"
need go "install Go 1.24 or newer (https://go.dev/doc/install or 'apt-get install golang')"

# tool_dir NAME VERSION : the cache directory of one tool's build.
tool_dir() {
  local inputs=("$ENV_DIR/go/build-tools.sh")
  [ -d "$ENV_DIR/go/$1" ] && inputs+=("$ENV_DIR/go/$1")
  echo "$BIN_DIR/$1-$2-$(hash_inputs "${inputs[@]}")"
}

# finish DIR : publish a build directory only when it is complete.
finish() { touch "$1.partial/.complete"; rm -rf "$1"; mv "$1.partial" "$1"; }

# current NAME VERSION DIR : $BIN_DIR/NAME-VERSION names the build of the
# current recipe (older builds of other recipes may still sit beside it).
current() { ln -sfn "$3" "$BIN_DIR/$1-$2"; }

# wrapper_build NAME VERSION MODULE : builds env/go/NAME/main.go inside a
# throwaway module that requires MODULE@VERSION.
wrapper_build() {
  local name="$1" version="$2" module="$3" out; out="$(tool_dir "$name" "$version")"
  if [ -f "$out/.complete" ]; then log "$name $version cached"; current "$name" "$version" "$out"; mark_cached; return; fi
  local work="$CACHE_DIR/src/$name-$version"
  rm -rf "$work"; mkdir -p "$work" "$out.partial"
  cp "$ENV_DIR/go/$name/main.go" "$work/"
  (cd "$work" && printf 'module rollback-rehearsal.local/%s\n\ngo 1.24.0\n' "$name" > go.mod &&
    if [ -n "$module" ]; then go get "$module@$version" >/dev/null 2>&1 || go get "$module@$version"; fi &&
    go mod tidy >/dev/null &&
    CGO_ENABLED=0 with_heartbeat "go build $name" go build -trimpath -ldflags "-s -w" -o "$out.partial/$name" .)
  finish "$out"; current "$name" "$version" "$out"; log "$name $version built"
}

# install_build NAME VERSION PACKAGE : `go install PACKAGE@VERSION`.
install_build() {
  local name="$1" version="$2" pkg="$3" out; out="$(tool_dir "$name" "$version")"
  if [ -f "$out/.complete" ]; then log "$name $version cached"; current "$name" "$version" "$out"; mark_cached; return; fi
  mkdir -p "$out.partial"
  CGO_ENABLED=0 GOBIN="$out.partial" with_heartbeat "go install $pkg" go install -trimpath -ldflags "-s -w" "$pkg@$version"
  finish "$out"; current "$name" "$version" "$out"; log "$name $version built"
}

# crictl follows the Kubernetes minor it is tested with.
: "${CRICTL_VERSION:=v1.34.0}"
tools=("$@"); [ ${#tools[@]} -gt 0 ] || tools=(kind pause etcd coredns crictl)
for t in "${tools[@]}"; do
  case "$t" in
    kind) install_build kind "$KIND_VERSION" sigs.k8s.io/kind ;;
    etcd) wrapper_build etcd "$ETCD_VERSION" go.etcd.io/etcd/server/v3 ;;
    pause) wrapper_build pause v1 "" ;;
    coredns) install_build coredns "$COREDNS_VERSION" github.com/coredns/coredns ;;
    # kind asks crictl in the node whether an image is already loaded.
    crictl) install_build crictl "$CRICTL_VERSION" sigs.k8s.io/cri-tools/cmd/crictl ;;
    path) ;;
    *) die "unknown tool '$t' (known: kind etcd pause coredns crictl)" ;;
  esac
done
