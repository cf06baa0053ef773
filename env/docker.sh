#!/usr/bin/env bash
# Makes a Docker engine answer: installs Debian's docker.io when no engine is
# present, starts dockerd when none runs. Usage: docker.sh ensure | fix-caps
source "$(dirname "$0")/lib.sh"

DOCKERD_LOG="$STATE_DIR/dockerd.log"
CAPWRAP_BIN=/usr/local/bin/rollback-rehearsal-capwrap
DAEMON_JSON=/etc/docker/daemon.json

engine_answers() { timeout 10 docker info >/dev/null 2>&1; }

as_root() {
  if [ "$(id -u)" = 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else
    die "'$*' needs root. Fix: run 'make env' as root or install sudo"; fi
}

install_engine() {
  command -v apt-get >/dev/null || die "no Docker engine and no apt-get. Fix: install Docker Engine by hand, start it, rerun 'make env'"
  log "installing Docker Engine from Debian (docker.io)"
  as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq docker.io >/dev/null
}

start_dockerd() {
  if [ -d /run/systemd/system ] && command -v systemctl >/dev/null; then
    as_root systemctl start docker || true
  else
    log "starting dockerd (log: $DOCKERD_LOG)"
    # setsid: dockerd must outlive this script and the make process.
    as_root setsid nohup dockerd >"$DOCKERD_LOG" 2>&1 </dev/null &
  fi
  local i
  for i in $(seq 1 60); do engine_answers && return 0; sleep 1; done
  tail -n 20 "$DOCKERD_LOG" >&2 2>/dev/null || true
  die "dockerd did not answer within 60 s (log above: $DOCKERD_LOG). Fix: check the log, free /var/lib/docker, or start Docker yourself and rerun 'make env'"
}

stop_dockerd() {
  if [ -d /run/systemd/system ] && command -v systemctl >/dev/null; then as_root systemctl stop docker; return; fi
  local pid; pid="$(cat /var/run/docker.pid 2>/dev/null || true)"
  [ -n "$pid" ] || return 0
  as_root kill "$pid" || true
  local i
  for i in $(seq 1 30); do kill -0 "$pid" 2>/dev/null || return 0; sleep 1; done
  die "dockerd (pid $pid) did not stop within 30 s"
}

ensure() {
  if engine_answers; then log "Docker engine answers ($(docker version --format '{{.Server.Version}}'))"; mark_cached; return; fi
  command -v dockerd >/dev/null || install_engine
  start_dockerd
  log "Docker engine answers ($(docker version --format '{{.Server.Version}}'))"
}

# missing_caps: names the capabilities the kernel knows but the bounding set
# lacks. A privileged container asks for all of them, so any name here means
# `docker run --privileged` would fail.
missing_caps() {
  local last bnd i
  last="$(cat /proc/sys/kernel/cap_last_cap)"
  bnd=$((16#$(awk '/^CapBnd:/{print $2}' /proc/self/status)))
  for i in $(seq 0 "$last"); do (( (bnd >> i) & 1 )) || echo "$i"; done
}

# fix_caps IMAGE: checks `docker run --privileged` for real with IMAGE and,
# only if it fails for capability reasons, registers the wrapper runtime.
fix_caps() {
  local image="$1" out
  if out="$(docker run --rm --privileged "$image" true 2>&1)"; then
    log "privileged containers work"; mark_cached; return
  fi
  if ! grep -q "apply caps" <<<"$out"; then
    die "docker run --privileged failed for a reason other than capabilities: $out"
  fi
  log "privileged containers fail ($out); bounding set lacks capability numbers: $(missing_caps | tr '\n' ' ')"
  need go "install Go to build the capability wrapper runtime"
  log "building the capability-dropping OCI runtime wrapper ($CAPWRAP_BIN)"
  (cd "$ENV_DIR/capwrap" && CGO_ENABLED=0 go build -trimpath -o "$STATE_DIR/capwrap" .)
  as_root install -m 0755 "$STATE_DIR/capwrap" "$CAPWRAP_BIN"
  as_root mkdir -p /etc/docker
  # Merge, do not overwrite: keep whatever else the admin configured.
  as_root python3 - "$DAEMON_JSON" "$CAPWRAP_BIN" <<'PY'
import json, os, sys
path, wrapper = sys.argv[1], sys.argv[2]
cfg = json.load(open(path)) if os.path.exists(path) and os.path.getsize(path) else {}
cfg.setdefault("runtimes", {})["capwrap"] = {"path": wrapper}
cfg["default-runtime"] = "capwrap"
json.dump(cfg, open(path + ".tmp", "w"), indent=2)
os.replace(path + ".tmp", path)
PY
  stop_dockerd
  start_dockerd
  out="$(docker run --rm --privileged "$image" true 2>&1)" ||
    die "privileged containers still fail after registering $CAPWRAP_BIN: $out"
  log "privileged containers work through the capwrap runtime"
}

case "${1:-ensure}" in
  ensure) ensure ;;
  fix-caps) fix_caps "${2:?image}" ;;
  *) die "usage: docker.sh ensure | fix-caps IMAGE" ;;
esac
