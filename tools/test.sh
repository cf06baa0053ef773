#!/usr/bin/env bash
# `make test`: the whole suite as two pytest processes side by side.
#   - the session-cluster tests: every test that uses the session's kind cluster (environment, cleanup,
#     interrupts, mutations, steady state, shards) and the demo scenarios, `--jobs N` at a time on it;
#   - the others: the unit tests (CPU), the Postgres/Docker-only e2e tests (pg_dump fidelity, version
#     tables, ladder, images, report browser, actionlint) and the ownership and `pytest -n` tests, which make clusters of
#     their own under other names (and check that a live session's cluster is left alone: this one's is).
# Most of the cluster tests' time is waiting on the kubelet, so the second process costs them little.
# Both must pass; each prints its own summary.
set -uo pipefail
cd "$(dirname "$0")/.." || exit 2
PYTEST=${PYTEST:-.venv/bin/pytest}
JOBS=${JOBS:-3}
export REHEARSAL_REQUIRE_E2E=1
NO_CLUSTER=(tests/unit tests/e2e/test_actionlint.py tests/e2e/test_db_snapshot.py tests/e2e/test_fidelity.py
            tests/e2e/test_images.py tests/e2e/test_ladder_e2e.py tests/e2e/test_migration_tables.py
            tests/e2e/test_report_browser.py tests/e2e/test_ownership.py tests/e2e/test_xdist.py)
ignore=()
for path in "${NO_CLUSTER[@]}"; do
  [[ $path == tests/e2e/* ]] && ignore+=(--ignore "$path")
done

log=$(mktemp -t rr-test-no-cluster.XXXXXX)
# Job control: each pytest runs in its own process group with SIGINT not ignored (a non-interactive shell
# would start background jobs with SIGINT ignored), and this script hands Ctrl-C and SIGTERM on to both;
# each then tears down what it made and ends with 130.
set -m
"$PYTEST" "${NO_CLUSTER[@]}" -p no:cacheprovider --durations=10 >"$log" 2>&1 &
local_pid=$!
"$PYTEST" tests/e2e scenarios "${ignore[@]}" --jobs "$JOBS" --durations=25 &
cluster_pid=$!
# The same signal on: the project's pytest plugin stops pytest gracefully on SIGTERM as on SIGINT
# (fixtures torn down: test containers removed), and a SIGINT ignored on entry stays ignored in children.
trap 'kill -INT "$cluster_pid" "$local_pid" 2>/dev/null' INT
trap 'kill -TERM "$cluster_pid" "$local_pid" 2>/dev/null' TERM
trap 'rm -f "$log"' EXIT

ended() {  # the exit status of process $1, once it has ended (a trapped signal interrupts `wait`)
  local rc
  while :; do
    wait "$1"; rc=$?
    kill -0 "$1" 2>/dev/null || return "$rc"
  done
}
ended "$cluster_pid"; cluster=$?
ended "$local_pid"; no_cluster=$?
echo
echo "════ tests without the session cluster (ran alongside) ════"
cat "$log"
echo "make test: session-cluster tests exit $cluster, the others exit $no_cluster"
[ "$cluster" -eq 0 ] && [ "$no_cluster" -eq 0 ]
