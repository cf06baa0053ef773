#!/usr/bin/env bash
# Entrypoint of rollback-rehearsal/postgres. On the first start it runs initdb
# and the one-off setup (password, database, /docker-entrypoint-initdb.d) on a
# temporary server that listens on a private Unix socket only; then it execs
# the real server in the foreground as PID 1, so signals reach Postgres itself.
# Only that final server logs "database system is ready to accept connections"
# and answers on TCP, which is what readiness checks (testcontainers runs
# `psql --host 127.0.0.1 ...` inside the container) rely on.
set -Eeuo pipefail

log() { printf '%s [entrypoint] %s\n' "$(date -u '+%F %T UTC')" "$*" >&2; }
die() { log "error: $*"; exit 1; }

# `docker run IMAGE -c work_mem=64MB` means `postgres -c work_mem=64MB`;
# anything else (psql, pg_dump, bash, ...) runs as asked.
if [ "${1:0:1}" = '-' ]; then set -- postgres "$@"; fi
if [ "$1" != postgres ]; then exec "$@"; fi

# Started with `--user root` (or a volume owned by root): fix the data dir and
# drop to postgres; Postgres refuses to run as root anyway.
if [ "$(id -u)" = 0 ]; then
  install -d -o postgres -g postgres -m 0700 "$PGDATA"
  chown -R postgres:postgres "$PGDATA" /run/postgresql
  exec setpriv --reuid=postgres --regid=postgres --init-groups "$0" "$@"
fi

POSTGRES_USER="${POSTGRES_USER:-postgres}"
POSTGRES_DB="${POSTGRES_DB:-$POSTGRES_USER}"

# Any failure during initialisation: show the temporary server's log, stop it
# and empty the data dir, so the next start initialises again instead of
# serving a half-made cluster.
init_failed() {
  local rc=$?
  trap - ERR
  log "initialisation failed (exit $rc); temporary server log:"
  cat "$work/init.log" >&2 2>/dev/null || true
  pg_ctl --pgdata="$PGDATA" --mode=immediate --wait --silent stop >/dev/null 2>&1 || true
  find "$PGDATA" -mindepth 1 -delete 2>/dev/null || true
  exit "$rc"
}

work=""  # scratch dir of the initialisation: password file, socket, logs
init_cluster() {
  [ -n "${POSTGRES_PASSWORD:-}" ] ||
    die "POSTGRES_PASSWORD is empty; this image only accepts password (scram-sha-256) logins over TCP. Fix: docker run -e POSTGRES_PASSWORD=..."
  { mkdir -p "$PGDATA" && chmod 0700 "$PGDATA"; } ||
    die "cannot prepare $PGDATA as $(id -un). Fix: mount a directory owned by uid $(id -u), or start with --user root once"
  [ -z "$(ls -A "$PGDATA")" ] ||
    die "$PGDATA is not empty but holds no cluster (no PG_VERSION). Fix: mount an empty directory"

  work="$(mktemp -d)"
  trap init_failed ERR

  log "initialising $PGDATA (superuser $POSTGRES_USER, database $POSTGRES_DB)"
  (umask 077; printf '%s\n' "$POSTGRES_PASSWORD" >"$work/pw")
  # shellcheck disable=SC2086  # POSTGRES_INITDB_ARGS is a list of flags
  initdb --pgdata="$PGDATA" --username="$POSTGRES_USER" --pwfile="$work/pw" \
    --encoding=UTF8 --locale=C.UTF-8 --auth-local=trust --auth-host=scram-sha-256 \
    ${POSTGRES_INITDB_ARGS:-} >"$work/initdb.log" 2>&1 || { cat "$work/initdb.log" >&2; false; }
  rm -f "$work/pw"

  cat >>"$PGDATA/postgresql.conf" <<CONF

# Added by the rollback-rehearsal entrypoint.
listen_addresses = '*'
password_encryption = 'scram-sha-256'
jit = off  # the image ships without the LLVM JIT provider
CONF
  cat >>"$PGDATA/pg_hba.conf" <<HBA

# Added by the rollback-rehearsal entrypoint: password logins from anywhere.
host all all all scram-sha-256
HBA

  # Temporary server: no TCP at all and a private socket directory, so no
  # client or readiness probe can reach it; its log goes to a file.
  pg_ctl --pgdata="$PGDATA" --wait --silent --log="$work/init.log" \
    -o "-c listen_addresses='' -c unix_socket_directories=$work" start

  local psql=(psql -v ON_ERROR_STOP=1 --no-psqlrc --quiet --host="$work" --username="$POSTGRES_USER")
  "${psql[@]}" --dbname=postgres --set=db="$POSTGRES_DB" <<'SQL'
SELECT format('CREATE DATABASE %I', :'db')
 WHERE NOT EXISTS (SELECT 1 FROM pg_database WHERE datname = :'db') \gexec
SQL

  local f
  for f in /docker-entrypoint-initdb.d/*; do
    [ -f "$f" ] || continue
    case "$f" in
      *.sh)     log "running $f"; PGHOST="$work" PGUSER="$POSTGRES_USER" PGDATABASE="$POSTGRES_DB" bash "$f" ;;
      *.sql)    log "running $f"; "${psql[@]}" --dbname="$POSTGRES_DB" -f "$f" ;;
      *.sql.gz) log "running $f"; gzip -dc "$f" | "${psql[@]}" --dbname="$POSTGRES_DB" ;;
      *)        log "ignoring $f" ;;
    esac
  done

  pg_ctl --pgdata="$PGDATA" --mode=fast --wait --silent stop
  trap - ERR
  rm -rf "$work"
  log "initialisation done; starting the server"
}

if [ ! -s "$PGDATA/PG_VERSION" ]; then init_cluster; fi
exec "$@"
