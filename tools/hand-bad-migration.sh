#!/usr/bin/env bash
# The bad-migration rehearsal (scenarios/bad-migration) written as a team would script it by hand, with the
# same steps and checks as `rehearse run scenarios/bad-migration`: `make bench` (tools/bench.py) times the
# two against each other on one warm kind cluster.
#
#   tools/hand-bad-migration.sh CLUSTER_NAME
#
# On the existing kind cluster CLUSTER_NAME: a Postgres container of its own (the harness's image, joined to
# the `kind` network, as the harness starts one per run), a namespace and a database with their own role, the
# good release (kind load, migration Job, seed, apply, healthy), the baseline (pg_dump -s, migration version,
# table checksums, sequence positions, declared image, replicas, running image digests, the referenced
# Secret's hash), the bad release (kind load, migration Job, apply), its readiness failure, the good version
# started on the bad schema (the harness's compat phase), the runbook's commands (copied from
# scenarios/bad-migration/runbook.md § Rollback), the same comparison, a 5 s steady-state watch, teardown.
#
# Exit: 0 the rollback restored the schema, the data, the migration version and the image (READY);
#       1 it did not, or the bad release did not fail as described (NOT_READY; the differences are printed);
#       2 usage; 3 a step of the rehearsal itself failed (ERROR); 130/143 interrupted.
# Everything it creates (container, namespace, database, kubeconfig, temp files) is removed on every exit path.
# Each step's time is printed as `hand-step NAME SECONDS` on stdout (tools/bench.py reads them).
# shellcheck disable=SC2317  # the steps are called through `timed` and the traps
set -Eeuo pipefail

if [[ $# -ne 1 || $1 == -* ]]; then
    echo "usage: $0 CLUSTER_NAME  (an existing kind cluster; the demo images built by \`make env\`)" >&2
    exit 2
fi
CLUSTER=$1
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
SCENARIO=$REPO/scenarios/bad-migration
BIN=${REHEARSAL_CACHE_DIR:-$HOME/.cache/rollback-rehearsal}/bin/current
tool() { if [[ -x $BIN/$1 ]]; then echo "$BIN/$1"; else command -v "$1"; fi; }
KIND=$(tool kind) KUBECTL=$(tool kubectl)
# The Postgres image as the harness names it (harness/tools.py): environment, then images.env, then the default.
PG_IMAGE=${REHEARSAL_POSTGRES_IMAGE:-$(sed -n 's/^REHEARSAL_POSTGRES_IMAGE=//p' "$BIN/images.env" 2>/dev/null || true)}
PG_IMAGE=${PG_IMAGE:-'rollback-rehearsal/postgres:{major}'}
PG_IMAGE=${PG_IMAGE//\{major\}/15}
GOOD_IMAGE=rollback-rehearsal/demo-app:v1
BAD_IMAGE=rollback-rehearsal/demo-app:v2
TABLES=(users orders)
DEPLOY_S=180 MIGRATE_S=180 VERIFY_S=180 DETECT_S=90 COMPAT_S=60 MAX_RECOVER_S=180 STABLE_S=5

ID=$(od -An -N4 -tx1 /dev/urandom | tr -d ' \n')
NS=hand-bad-migration-$ID
DB=hand_$ID
PG=rr-hand-pg-$ID
ADMIN_PW=$(od -An -N12 -tx1 /dev/urandom | tr -d ' \n')
DB_PW=$(od -An -N12 -tx1 /dev/urandom | tr -d ' \n')
DIFFERENCES=()
# The runbook's commands, as scenarios/bad-migration/runbook.md § Rollback writes them (checked below).
# shellcheck disable=SC2016  # expanded by the runbook's own shell, as when pasted into a terminal
RUNBOOK=('docker run --rm --network host -e DATABASE_URL "$BAD_IMAGE" migrate down 1'
    'kubectl -n "$NAMESPACE" rollout undo deployment/demo'
    'kubectl -n "$NAMESPACE" rollout status deployment/demo --timeout=120s')
for cmd in "${RUNBOOK[@]}"; do
    grep -qxF "$cmd" "$SCENARIO/runbook.md" || { echo "the runbook no longer says: $cmd (update $0)" >&2; exit 2; }
done

log() { printf '%s hand: %s\n' "$(date +%T)" "$*" >&2; }
differs() { DIFFERENCES+=("$1"); log "DIFFERENCE: $1"; }
since() { awk -v now="$EPOCHREALTIME" -v t0="$1" 'BEGIN {printf "%.3f", now - t0}'; }
# `timed NAME cmd...`: run one step and print its time for the bench.
timed() {
    local name=$1 t0=$EPOCHREALTIME
    shift
    "$@"
    echo "hand-step $name $(since "$t0")"
}

teardown() {
    local rc=$?
    trap - EXIT ERR
    trap '' INT TERM  # a second Ctrl-C must not stop the cleanup half-way
    set +e
    local t0=$EPOCHREALTIME
    if [[ -s ${KUBECONFIG:-} ]]; then
        "$KUBECTL" delete namespace "$NS" --ignore-not-found --wait=true --timeout=90s >/dev/null 2>&1 \
            || { log "namespace $NS not deleted"; rc=3; }
    fi
    if docker inspect "$PG" >/dev/null 2>&1; then
        docker exec "$PG" psql -U rehearsal -d postgres -qAtc \
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '$DB'" >/dev/null 2>&1
        docker exec "$PG" psql -U rehearsal -d postgres -qc "DROP DATABASE IF EXISTS $DB" >/dev/null 2>&1
        docker exec "$PG" psql -U rehearsal -d postgres -qc "DROP ROLE IF EXISTS $DB" >/dev/null 2>&1
        docker rm -f -v "$PG" >/dev/null 2>&1 || { log "container $PG not removed"; rc=3; }
    fi
    [[ -z ${WORK:-} ]] || rm -rf "$WORK"
    echo "hand-step teardown $(since "$t0")"
    exit "$rc"
}
trap teardown EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
trap 'log "ERROR: line $LINENO: $BASH_COMMAND failed"; exit 3' ERR
WORK=$(mktemp -d "${TMPDIR:-/tmp}/rr-hand-$ID.XXXX")
export KUBECONFIG=$WORK/kubeconfig  # this run's own, never the user's

# ── infrastructure: kubeconfig of the warm cluster, a Postgres container, namespace, database ──────────────
start_postgres() {
    "$KIND" export kubeconfig --name "$CLUSTER" --kubeconfig "$KUBECONFIG" >/dev/null 2>&1
    docker run -d --name "$PG" --network kind -p 127.0.0.1::5432 --label rr-bench.hand="$ID" \
        -e POSTGRES_USER=rehearsal -e POSTGRES_PASSWORD="$ADMIN_PW" -e POSTGRES_DB=postgres "$PG_IMAGE" >/dev/null
    local i
    for ((i = 0; i < 60; i++)); do  # TCP answers only once initdb's temporary server is gone
        docker exec "$PG" pg_isready -q -h 127.0.0.1 -U rehearsal && break
        sleep 0.5
    done
    docker exec "$PG" pg_isready -q -h 127.0.0.1 -U rehearsal
    PG_PORT=$(docker port "$PG" 5432/tcp | head -n1 | sed 's/.*://')
    PG_IP=$(docker inspect -f '{{(index .NetworkSettings.Networks "kind").IPAddress}}' "$PG")
}

provision() {
    "$KUBECTL" create namespace "$NS" >/dev/null
    psql_admin postgres -c "CREATE ROLE $DB LOGIN PASSWORD '$DB_PW'" -c "CREATE DATABASE $DB OWNER $DB"
    HOST_DSN=postgresql://$DB:$DB_PW@127.0.0.1:$PG_PORT/$DB
    CLUSTER_DSN=postgresql://$DB:$DB_PW@$PG_IP:5432/$DB
    "$KUBECTL" -n "$NS" create secret generic rehearsal-db --from-literal=DATABASE_URL="$CLUSTER_DSN" >/dev/null
}

psql_admin() { local db=$1; shift; docker exec -i "$PG" psql -U rehearsal -d "$db" -v ON_ERROR_STOP=1 -qAt "$@"; }

# ── releases ─────────────────────────────────────────────────────────────────────────────────────────────
migrate_job() {  # IMAGE LABEL: `migrate up` in a Job with the release's image, as a deploy pipeline does
    local image=$1 name=migrate-$2
    "$KUBECTL" -n "$NS" apply -f - >/dev/null <<EOF
apiVersion: batch/v1
kind: Job
metadata: {name: $name}
spec:
  backoffLimit: 0
  activeDeadlineSeconds: $MIGRATE_S
  template:
    spec:
      restartPolicy: Never
      containers:
        - name: migrate
          image: $image
          imagePullPolicy: IfNotPresent
          command: [sh, -c, migrate up]
          env:
            - name: DATABASE_URL
              valueFrom: {secretKeyRef: {name: rehearsal-db, key: DATABASE_URL}}
EOF
    "$KUBECTL" -n "$NS" wait --for=condition=complete "job/$name" --timeout="${MIGRATE_S}s" >/dev/null
}

apply_app() { sed "s|\${APP_IMAGE}|$1|" "$REPO/demo/k8s/app.yaml" | "$KUBECTL" -n "$NS" apply -f - >/dev/null; }

smoke() { "$KUBECTL" get --raw "/api/v1/namespaces/$NS/services/demo:8080/proxy/healthz" >/dev/null 2>&1; }

wait_healthy() {  # TIMEOUT: rolled out, every replica ready, and the smoke request answered
    local deadline=$((SECONDS + $1))
    "$KUBECTL" -n "$NS" rollout status deployment/demo --timeout="${1}s" >/dev/null 2>&1 || return 1
    until smoke; do
        ((SECONDS < deadline)) || return 1
        sleep 1
    done
}

deploy_good() {
    "$KIND" load docker-image --name "$CLUSTER" "$GOOD_IMAGE" >/dev/null
    migrate_job "$GOOD_IMAGE" good
    psql_admin "$DB" <"$REPO/demo/seed.sql" >/dev/null
    apply_app "$GOOD_IMAGE"
    wait_healthy "$DEPLOY_S" || { log "ERROR: the good version did not become healthy"; exit 3; }
}

# ── what is compared: one directory per moment ──────────────────────────────────────────────────────────
app_pods() {  # one line per running, not terminating pod of the app: name ready restarts image digest
    "$KUBECTL" -n "$NS" get pods -l app=demo -o go-template='{{range .items}}{{if not .metadata.deletionTimestamp}}{{if eq .status.phase "Running"}}{{.metadata.name}}{{range .status.containerStatuses}}{{if eq .name "app"}} {{.ready}} {{.restartCount}} {{.imageID}}{{end}}{{end}}{{"\n"}}{{end}}{{end}}{{end}}'
}

snapshot() {  # DIR
    local dir=$WORK/$1 t
    mkdir -p "$dir"
    # \restrict lines carry a random key per dump (pg_dump >= 15.14): not part of the schema.
    docker exec "$PG" pg_dump -s -U rehearsal "$DB" | grep -v '^\\\(un\)\?restrict ' >"$dir/schema.sql"
    psql_admin "$DB" -c "SELECT version, dirty FROM schema_migrations" >"$dir/version"
    for t in "${TABLES[@]}"; do
        psql_admin "$DB" -F ' ' -c "SELECT '$t', count(*), md5(coalesce(string_agg(h, '' ORDER BY h), ''))
                                     FROM (SELECT md5(r::text) AS h FROM $t r) x"
    done >"$dir/data"
    psql_admin "$DB" -F ' ' -c "SELECT schemaname || '.' || sequencename, coalesce(last_value, 0)
                                 FROM pg_sequences ORDER BY 1" >"$dir/sequences"
    "$KUBECTL" -n "$NS" get deployment demo \
        -o jsonpath='{.spec.template.spec.containers[?(@.name=="app")].image} {.spec.replicas}{"\n"}' >"$dir/declared"
    app_pods | awk '{print $4}' | sort -u >"$dir/digests"
    "$KUBECTL" -n "$NS" get secret rehearsal-db -o jsonpath='{.data}' | sha256sum >"$dir/config"
}

compare() {  # BASE AFTER: every difference of AFTER from BASE
    local base=$WORK/$1 after=$WORK/$2 f
    for f in schema.sql version data declared digests config; do
        if ! cmp -s "$base/$f" "$after/$f"; then
            differs "$f differs from the baseline: $(diff "$base/$f" "$after/$f" | grep '^[<>]' | head -n 6 | tr '\n' ' ' || true)"
        fi
    done
    # A sequence may have moved on; one left behind the baseline hands out ids again.
    local behind
    behind=$(awk 'NR == FNR {now[$1] = $2; next}
                  !($1 in now) || now[$1] + 0 < $2 + 0 {print $1 " at " ($1 in now ? now[$1] : "none") " (baseline " $2 ")"}' \
        "$after/sequences" "$base/sequences")
    [[ -z $behind ]] || differs "sequence behind the baseline: $behind"
}

# ── the bad release and its failure ─────────────────────────────────────────────────────────────────────
deploy_bad() {
    "$KIND" load docker-image --name "$CLUSTER" "$BAD_IMAGE" >/dev/null
    app_pods | awk '{print $1}' >"$WORK/pods-before-bad"
    migrate_job "$BAD_IMAGE" bad
    BAD_AT=$SECONDS
    apply_app "$BAD_IMAGE"
}

detect() {  # a readiness probe failure of a pod the bad release created, within failure.within_s
    local deadline=$((BAD_AT + DETECT_S))
    while ((SECONDS < deadline)); do
        if "$KUBECTL" -n "$NS" get events --field-selector reason=Unhealthy \
            -o jsonpath='{range .items[*]}{.involvedObject.name} {.message}{"\n"}{end}' \
            | grep 'Readiness probe failed' | awk '{print $1}' | grep -qvxF -f "$WORK/pods-before-bad"; then
            log "bad release failed readiness after $((SECONDS - BAD_AT))s"
            return 0
        fi
        sleep 1
    done
    differs "the bad version did not fail readiness within ${DETECT_S}s"
}

compat() {  # the good version against the bad release's schema, before the rollback (expand/contract)
    if cmp -s "$WORK/baseline/schema.sql" "$WORK/bad/schema.sql"; then
        log "the bad release did not change the schema: nothing to check"
        return 0
    fi
    sed -e "s|\${APP_IMAGE}|$GOOD_IMAGE|" -e 's|name: demo$|name: demo-compat-check|' \
        -e 's|{app: demo}|{compat-check: demo}|g' "$REPO/demo/k8s/app.yaml" \
        | awk '/^---/{exit} {print}' | "$KUBECTL" -n "$NS" apply -f - >/dev/null
    local deadline=$((SECONDS + COMPAT_S)) runs=no pod status ready restarts failures
    while ((SECONDS < deadline)); do
        pod=$("$KUBECTL" -n "$NS" get pods -l compat-check=demo -o jsonpath='{.items[0].metadata.name}' 2>/dev/null || true)
        if [[ -n $pod ]]; then
            status=$("$KUBECTL" -n "$NS" get pod "$pod" -o jsonpath='{.status.containerStatuses[0].ready} {.status.containerStatuses[0].restartCount}' 2>/dev/null || true)
            read -r ready restarts <<<"$status"
            [[ $ready == true ]] && { runs=yes; break; }
            [[ ${restarts:-0} -ge 1 ]] && break
            failures=$("$KUBECTL" -n "$NS" get events --field-selector "reason=Unhealthy,involvedObject.name=$pod" \
                -o jsonpath='{range .items[*]}{.count} {.message}{"\n"}{end}' \
                | awk '/Readiness probe failed/ && !/connection refused/ {n += $1} END {print n + 0}' || true)
            ((failures >= 3)) && break
        fi
        sleep 1
    done
    if [[ $runs == yes ]] && ! "$KUBECTL" get --raw "/api/v1/namespaces/$NS/pods/$pod:8080/proxy/healthz" >/dev/null 2>&1; then
        runs=no
    fi
    log "the good version $([[ $runs == yes ]] && echo runs || echo 'does NOT run (risk)') on the bad release's schema"
    "$KUBECTL" -n "$NS" delete deployment demo-compat-check --cascade=foreground --wait=true --timeout=60s >/dev/null
}

# ── the runbook (scenarios/bad-migration/runbook.md § Rollback), its commands as written ────────────────
runbook() {
    RUNBOOK_AT=$SECONDS
    local cmd
    for cmd in "${RUNBOOK[@]}"; do
        if ! env -i PATH="$(dirname "$KUBECTL"):/usr/local/bin:/usr/bin:/bin" HOME="$WORK" KUBECONFIG="$KUBECONFIG" \
            ${DOCKER_HOST:+DOCKER_HOST="$DOCKER_HOST"} \
            NAMESPACE="$NS" DATABASE_URL="$HOST_DSN" BAD_IMAGE="$BAD_IMAGE" GOOD_IMAGE="$GOOD_IMAGE" \
            bash --noprofile --norc -o pipefail -c "$cmd" >>"$WORK/runbook.log" 2>&1; then
            differs "runbook drift: \`$cmd\` failed: $(tail -n1 "$WORK/runbook.log")"
            return 0
        fi
    done
}

verify() {
    if wait_healthy "$VERIFY_S"; then
        local recovered=$((SECONDS - RUNBOOK_AT))
        ((recovered <= MAX_RECOVER_S)) || differs "recovery took ${recovered}s, above max_recover_s=${MAX_RECOVER_S}"
    else
        differs "the app did not become healthy again within ${VERIFY_S}s"
    fi
    snapshot after
    compare baseline after
}

steady() {  # only when READY so far: the app must stay as verify saw it (no restart, unready, new pod, image)
    ((${#DIFFERENCES[@]} == 0)) || return 0
    local ref now i
    ref=$(app_pods; "$KUBECTL" -n "$NS" get deployment demo -o jsonpath='{.metadata.generation}')
    for ((i = 0; i < STABLE_S; i++)); do
        sleep 1
        now=$(app_pods; "$KUBECTL" -n "$NS" get deployment demo -o jsonpath='{.metadata.generation}')
        [[ $now == "$ref" ]] || { differs "the app changed $((i + 1))s after verify: $now"; return 0; }
    done
}

timed provision_db start_postgres
timed provision provision
timed deploy_good deploy_good
timed baseline snapshot baseline
timed deploy_bad deploy_bad
timed detect detect
timed after_bad snapshot bad
timed compat compat
timed runbook runbook
timed verify verify
timed steady steady
if ((${#DIFFERENCES[@]} == 0)); then
    log "READY: schema, migration version, data checksums, sequences, image and digests are back to the baseline"
    exit 0
fi
log "NOT_READY: ${#DIFFERENCES[@]} difference(s)"
exit 1
