#!/usr/bin/env bash
# Debian base image made with debootstrap and `docker import`: the root of
# every other image we build, because no base image can be pulled here.
source "$(dirname "$0")/../lib.sh"
IMAGE="$IMAGE_PREFIX/debian:$DEBIAN_SUITE"
MIRROR="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
SECURITY_MIRROR="${DEBIAN_SECURITY_MIRROR:-http://deb.debian.org/debian-security}"
KEY="$(hash_inputs "$0")"

if image_has_key "$IMAGE" "$KEY"; then log "$IMAGE up to date"; mark_cached; exit 0; fi
need debootstrap "apt-get install debootstrap"
[ "$(id -u)" = 0 ] || die "debootstrap needs root. Fix: run 'make env' as root"

ROOT="$(mktemp -d "$CACHE_DIR/debootstrap.XXXXXX")"
trap 'rm -rf "$ROOT"' EXIT
log "debootstrap --variant=minbase $DEBIAN_SUITE (mirror $MIRROR)"
with_heartbeat debootstrap debootstrap --variant=minbase "$DEBIAN_SUITE" "$ROOT" "$MIRROR" >"$STATE_DIR/debootstrap.log" 2>&1 ||
  { tail -n 20 "$STATE_DIR/debootstrap.log" >&2; die "debootstrap failed (log: $STATE_DIR/debootstrap.log). Fix: check that $MIRROR is reachable or set DEBIAN_MIRROR"; }
cat >"$ROOT/etc/apt/sources.list" <<SRC
deb $MIRROR $DEBIAN_SUITE main
deb $MIRROR $DEBIAN_SUITE-updates main
deb $SECURITY_MIRROR $DEBIAN_SUITE-security main
SRC
# Keep images small: no docs, no apt lists left behind.
mkdir -p "$ROOT/etc/dpkg/dpkg.cfg.d"
printf 'path-exclude /usr/share/doc/*\npath-exclude /usr/share/man/*\npath-exclude /usr/share/locale/*\n' \
  >"$ROOT/etc/dpkg/dpkg.cfg.d/01-nodoc"
rm -rf "$ROOT"/var/lib/apt/lists/* "$ROOT"/var/cache/apt/archives/*.deb
# Import under a temporary tag, then move the final tag: an interrupted run
# never leaves a half-made image under the final name.
tar -C "$ROOT" -c . | docker import \
  --change "LABEL rollback-rehearsal.recipe-key=$KEY" \
  --change 'CMD ["/bin/bash"]' - "$IMAGE-partial" >/dev/null
docker tag "$IMAGE-partial" "$IMAGE"
docker rmi "$IMAGE-partial" >/dev/null
log "built $IMAGE"
