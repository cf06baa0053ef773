"""Preflight checks (harness/preflight/): every check on positive and negative
cases, the fixtures under tests/data/preflight, the phase and `rehearse check`.

Pure files only: nothing here starts a cluster, a container or a database.
"""

from __future__ import annotations

import shutil
import textwrap
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import yaml
from click.testing import CliRunner

from harness import preflight as pf
from harness.cli import cli
from harness import judge, pipeline
from harness.phases import OnFailure
from harness.phases.preflight import PreflightPhase
from harness.preflight.manifests import load_manifests
from harness.preflight.sql import is_noop, non_transactional, split_sql, statement_hazards
from harness.journal import Difference, Finding, Journal
from harness.scenario import load_scenario

REPO = Path(__file__).resolve().parents[2]
FIXTURES = REPO / "tests" / "data" / "preflight"
EXAMPLES = REPO / "scenarios"

INIT_UP = "CREATE TABLE users (id bigserial PRIMARY KEY, email text NOT NULL);\n"
INIT_DOWN = "DROP TABLE users;\n"
UNDO = 'kubectl -n "$NAMESPACE" rollout undo deployment/demo'
STATUS = 'kubectl -n "$NAMESPACE" rollout status deployment/demo --timeout=120s'


def deployment(name: str = "demo", limit: Any = None, extra: str = "") -> str:
    history = "" if limit is None else f"  revisionHistoryLimit: {limit}\n"
    return (f"apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: {name}\nspec:\n  replicas: 1\n{history}"
            f"  selector:\n    matchLabels: {{app: {name}}}\n  template:\n    metadata:\n      labels: {{app: {name}}}\n"
            f"    spec:\n      containers:\n        - name: app\n          image: ${{APP_IMAGE}}\n{extra}")


def service(name: str = "demo") -> str:
    return f"apiVersion: v1\nkind: Service\nmetadata:\n  name: {name}\nspec:\n  selector: {{app: {name}}}\n"


def runbook(*commands: str, deploy: tuple[str, ...] = ()) -> str:
    """A runbook whose Rollback commands start on line 6 (step k is on line 5 + k) unless `deploy` is given."""
    text = "# runbook\n\n## Rollback\n\n```sh\n" + "\n".join(commands) + "\n```\n"
    if deploy:
        text += "\n## Deploy\n\n```sh\n" + "\n".join(deploy) + "\n```\n"
    return text


@pytest.fixture
def make(tmp_path: Path):
    """make(migrations={file: sql}, runbook=..., manifests=..., **scenario overrides) → loaded Scenario."""
    counter = iter(range(1000))

    def _make(migrations: dict[str, str] | None = None, rb: str | None = None,
              manifests: str | dict[str, str] | None = None, workloads: tuple[str, ...] = ("demo",),
              **doc: Any) -> Any:
        d = tmp_path / f"s{next(counter)}"
        (d / "migrations").mkdir(parents=True)
        for name, sql in (migrations if migrations is not None else
                          {"0001_init.up.sql": INIT_UP, "0001_init.down.sql": INIT_DOWN}).items():
            (d / "migrations" / name).write_text(sql)
        (d / "runbook.md").write_text(rb if rb is not None else runbook(UNDO, STATUS))
        if isinstance(manifests, dict):
            (d / "k8s").mkdir()
            for name, text in manifests.items():
                (d / "k8s" / name).parent.mkdir(parents=True, exist_ok=True)
                (d / "k8s" / name).write_text(text)
            manifest_path = "k8s"
        else:
            (d / "app.yaml").write_text(manifests if manifests is not None else deployment() + "---\n" + service())
            manifest_path = "app.yaml"
        scenario = {
            "name": d.name,
            "app": {"manifests": manifest_path, "workloads": [{"deployment": w} for w in workloads]},
            "versions": {"good": {"image": "demo:v1"}, "bad": {"image": "demo:v2"}},
            "migrations": {"up": "migrate up", "down": "migrate down 1", "files": "migrations"},
            "failure": {"mode": "readiness"},
        }
        scenario.update(doc)
        (d / "scenario.yaml").write_text(yaml.safe_dump(scenario))
        return load_scenario(d)

    return _make


def found(findings: list[Finding], check: str | None = None) -> list[tuple[str, str]]:
    return [(f.check, f.severity) for f in findings if check is None or f.check == check]


# ══ SQL tokenizer layer ═══════════════════════════════════════════════════
def hazards(sql: str) -> list[tuple[str, str]]:
    return [(h.kind, h.target) for st in split_sql(sql) for h in statement_hazards(st)]


@pytest.mark.parametrize(("sql", "expected"), [
    ("ALTER TABLE users DROP COLUMN nickname;", [("DROP COLUMN", "users.nickname")]),
    ("ALTER TABLE IF EXISTS ONLY public.users DROP IF EXISTS nickname;", [("DROP COLUMN", "public.users.nickname")]),
    ("DROP TABLE IF EXISTS orders, public.users CASCADE;", [("DROP TABLE", "orders"), ("DROP TABLE", "public.users")]),
    ("TRUNCATE TABLE orders RESTART IDENTITY;", [("TRUNCATE", "orders")]),
    ("DELETE FROM orders;", [("DELETE without WHERE", "orders")]),
    ("ALTER TABLE users ALTER COLUMN email TYPE varchar(10);", [("ALTER COLUMN TYPE", "users.email to varchar(10)")]),
    ("ALTER TABLE t ALTER c SET DATA TYPE int USING c::int;", [("ALTER COLUMN TYPE", "t.c to int")]),
    ("ALTER TABLE users ALTER COLUMN email SET NOT NULL;", [("SET NOT NULL", "users.email")]),
    ("ALTER TABLE users ADD COLUMN age int NOT NULL;", [("ADD COLUMN NOT NULL without DEFAULT", "users.age")]),
    ("ALTER TABLE users RENAME COLUMN email TO mail;", [("RENAME COLUMN", "users.email to mail")]),
    ("ALTER TABLE users RENAME TO accounts;", [("RENAME TABLE", "users to accounts")]),
    ("ALTER TABLE users ADD COLUMN a int, DROP COLUMN b;", [("DROP COLUMN", "users.b")]),
])
def test_destructive_statements_are_recognised(sql: str, expected: list[tuple[str, str]]) -> None:
    assert hazards(sql) == expected


@pytest.mark.parametrize("sql", [
    "ALTER TABLE users ADD COLUMN nickname text;",
    "ALTER TABLE users ADD COLUMN age int NOT NULL DEFAULT 0;",
    "ALTER TABLE users ADD COLUMN id2 bigserial NOT NULL;",
    "ALTER TABLE users ADD CONSTRAINT c CHECK (email IS NOT NULL);",
    "ALTER TABLE users DROP CONSTRAINT users_email_key;",
    "ALTER TABLE users ALTER COLUMN email DROP NOT NULL, ALTER COLUMN email DROP DEFAULT;",
    "ALTER TABLE users RENAME CONSTRAINT a TO b;",
    "DELETE FROM orders WHERE amount_cents < 0;",
    "DROP INDEX IF EXISTS users_nickname_idx;",
    "CREATE TABLE t (id int NOT NULL, c text NOT NULL);",
    "-- ALTER TABLE users DROP COLUMN nickname;\n/* DROP TABLE users; TRUNCATE users; */\nSELECT 1;",
    "INSERT INTO log (m) VALUES ('DROP TABLE users; DELETE FROM users');",
    "CREATE FUNCTION f() RETURNS void AS $$ BEGIN DROP TABLE users; END $$ LANGUAGE plpgsql;",
    "CREATE FUNCTION g() RETURNS void AS $body$ DELETE FROM users; $body$ LANGUAGE sql;",
])
def test_comments_literals_and_safe_changes_are_not_destructive(sql: str) -> None:
    assert hazards(sql) == []


def test_statements_know_their_line() -> None:
    sts = split_sql("-- header\n\nCREATE TABLE a (id int);\n\n-- x\nALTER TABLE a\n  DROP COLUMN id;\n")
    assert [(s.first, s.line) for s in sts] == [("CREATE", 3), ("ALTER", 6)]
    assert sts[1].text == "ALTER TABLE a DROP COLUMN id"


@pytest.mark.parametrize(("sql", "noop"), [
    ("SELECT 1", True), ("select 'nothing to do'", True), ("SELECT NULL", True), ("BEGIN", True),
    ("COMMIT", True), ("SELECT count(*) FROM users", False), ("DROP TABLE users", False),
])
def test_noop_statements(sql: str, noop: bool) -> None:
    assert is_noop(split_sql(sql)[0]) is noop


@pytest.mark.parametrize(("sql", "major", "what"), [
    ("CREATE INDEX CONCURRENTLY i ON t (a)", 15, "CREATE INDEX CONCURRENTLY"),
    ("CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS i ON t (a)", 15, "CREATE INDEX CONCURRENTLY"),
    ("DROP INDEX CONCURRENTLY IF EXISTS i", 15, "DROP INDEX CONCURRENTLY"),
    ("VACUUM ANALYZE users", 15, "VACUUM"),
    ("ALTER TYPE mood ADD VALUE 'meh'", 11, "ALTER TYPE ... ADD VALUE (before PostgreSQL 12, postgres 11 here)"),
    ("ALTER TYPE mood ADD VALUE 'meh'", 15, None),
    ("CREATE INDEX i ON t (a)", 15, None),
    ("INSERT INTO t VALUES ('VACUUM CONCURRENTLY')", 15, None),
])
def test_non_transactional_statements(sql: str, major: int, what: str | None) -> None:
    assert non_transactional(split_sql(sql)[0], major) == what


# ══ migration pairs ═══════════════════════════════════════════════════════
def test_up_without_down_is_a_failure(make) -> None:
    s = make({"0001_init.up.sql": INIT_UP, "0001_init.down.sql": INIT_DOWN,
              "0002_add.up.sql": "ALTER TABLE users ADD COLUMN n text;"})
    f = pf.run_checks(s, only=[pf.MIGRATION_PAIRS])
    assert found(f) == [(pf.MIGRATION_PAIRS, "failure")]
    assert "0002 has no down migration" in f[0].message and "0002_add.down.sql" in f[0].fix
    assert f[0].file.endswith("0002_add.up.sql")


def test_down_without_up_is_a_warning(make) -> None:
    s = make({"0001_init.up.sql": INIT_UP, "0001_init.down.sql": INIT_DOWN, "0003_x.down.sql": "SELECT 1;"})
    assert found(pf.run_checks(s, only=[pf.MIGRATION_PAIRS])) == [(pf.MIGRATION_PAIRS, "warning")]


def test_duplicate_versions_are_a_failure(make) -> None:
    s = make({"0001_a.up.sql": INIT_UP, "0001_b.up.sql": INIT_UP, "0001_a.down.sql": INIT_DOWN})
    f = pf.run_checks(s, only=[pf.MIGRATION_PAIRS])
    assert found(f) == [(pf.MIGRATION_PAIRS, "failure")] and "2 up migrations" in f[0].message


def test_complete_pairs_have_no_findings(make) -> None:
    s = make({"0001_init.up.sql": INIT_UP, "0001_init.down.sql": INIT_DOWN, "README.md": "notes", "seed.sql": ""})
    assert pf.run_checks(s, only=[pf.MIGRATION_PAIRS]) == []


# ══ no-op downs ═══════════════════════════════════════════════════════════
@pytest.mark.parametrize("down", ["SELECT 1;", "", "-- nothing to do\n\n/* really */\n", "BEGIN;\nSELECT 1;\nCOMMIT;"])
def test_noop_down_of_a_schema_change_is_a_failure(make, down: str) -> None:
    s = make({"0001_init.up.sql": INIT_UP, "0001_init.down.sql": INIT_DOWN,
              "0002_nick.up.sql": "ALTER TABLE users ADD COLUMN nickname text;", "0002_nick.down.sql": down})
    f = pf.run_checks(s, only=[pf.NOOP_DOWN])
    assert found(f) == [(pf.NOOP_DOWN, "failure")]
    assert f[0].message.startswith("down migration 0002 is a no-op but 0002 up changes the schema")
    assert "ADD COLUMN nickname" in f[0].message


@pytest.mark.parametrize(("up", "down"), [
    ("ALTER TABLE users ADD COLUMN nickname text;", "ALTER TABLE users DROP COLUMN nickname;"),
    ("INSERT INTO users (email) VALUES ('a@b.c');", "SELECT 1;"),  # data only: no schema change to revert
])
def test_real_down_or_data_only_up_is_fine(make, up: str, down: str) -> None:
    s = make({"0001_init.up.sql": INIT_UP, "0001_init.down.sql": INIT_DOWN, "0002_x.up.sql": up, "0002_x.down.sql": down})
    assert pf.run_checks(s, only=[pf.NOOP_DOWN]) == []


# ══ destructive up migrations ═════════════════════════════════════════════
DROP_NICK = {"0001_init.up.sql": INIT_UP, "0001_init.down.sql": INIT_DOWN,
             "0002_drop.up.sql": "-- v2\nALTER TABLE users DROP COLUMN nickname;\n",
             "0002_drop.down.sql": "ALTER TABLE users ADD COLUMN nickname text;\n"}


def test_destructive_up_without_backup_is_a_failure(make) -> None:
    f = pf.run_checks(make(DROP_NICK), only=[pf.DESTRUCTIVE])
    assert found(f) == [(pf.DESTRUCTIVE, "failure")]
    assert "migration 0002 up (line 2) runs DROP COLUMN on users.nickname" in f[0].message
    assert "no backup/restore step" in f[0].message and "pg_dump" in f[0].fix


@pytest.mark.parametrize("backup", [
    'pg_dump -Fc "$DATABASE_URL" > before.dump',
    'docker run --rm postgres:15 pg_restore --clean -d "$DATABASE_URL" before.dump',
    'psql "$DATABASE_URL" -f before.sql',
    'psql "$DATABASE_URL" < before.sql',
])
def test_destructive_up_with_backup_step_is_a_warning(make, backup: str) -> None:
    f = pf.run_checks(make(DROP_NICK, rb=runbook(UNDO, deploy=(backup, "migrate up"))), only=[pf.DESTRUCTIVE])
    assert found(f) == [(pf.DESTRUCTIVE, "warning")]
    assert "has a backup/restore step" in f[0].message


def test_psql_without_file_is_no_backup(make) -> None:
    rb = runbook(UNDO, deploy=('psql "$DATABASE_URL" -c "select 1"',))
    assert found(pf.run_checks(make(DROP_NICK, rb=rb), only=[pf.DESTRUCTIVE])) == [(pf.DESTRUCTIVE, "failure")]


@pytest.mark.parametrize(("transcript", "severity"), [
    ("$ pg_dump -Fc \"$DATABASE_URL\" > before.dump\n", "warning"),
    ("$ cat restore.sh\npg_restore --clean -d \"$DATABASE_URL\" before.dump\n", "failure"),  # output, not run
])
def test_console_blocks_are_transcripts_for_the_backup_search(make, transcript: str, severity: str) -> None:
    """Backup steps are searched with the runbook's own parser: in a `console` block only `$ ` lines are commands."""
    rb = runbook(UNDO) + "\n## Before\n\n```console\n" + transcript + "```\n"
    assert found(pf.run_checks(make(DROP_NICK, rb=rb), only=[pf.DESTRUCTIVE])) == [(pf.DESTRUCTIVE, severity)]


def test_destructive_words_in_comments_strings_and_downs_are_ignored(make) -> None:
    s = make({"0001_init.up.sql": INIT_UP + "-- DROP TABLE users;\nINSERT INTO users (email) VALUES ('TRUNCATE x');\n",
              "0001_init.down.sql": "DROP TABLE users; TRUNCATE users;"})
    assert pf.run_checks(s, only=[pf.DESTRUCTIVE]) == []


# ══ non-transactional statements ══════════════════════════════════════════
def test_concurrent_index_mixed_with_ddl_is_a_warning(make) -> None:
    s = make({"0001_init.up.sql": INIT_UP + "CREATE INDEX CONCURRENTLY users_email_idx ON users (email);\n",
              "0001_init.down.sql": INIT_DOWN})
    f = pf.run_checks(s, only=[pf.NON_TRANSACTIONAL])
    assert found(f) == [(pf.NON_TRANSACTIONAL, "warning")]
    assert "CREATE INDEX CONCURRENTLY" in f[0].message and "half applied" in f[0].message


def test_concurrent_index_alone_is_fine(make) -> None:
    s = make({"0001_init.up.sql": INIT_UP, "0001_init.down.sql": INIT_DOWN,
              "0002_idx.up.sql": "-- own file\nCREATE INDEX CONCURRENTLY i ON users (email);\n",
              "0002_idx.down.sql": "DROP INDEX CONCURRENTLY IF EXISTS i;\n"})
    assert pf.run_checks(s, only=[pf.NON_TRANSACTIONAL]) == []


@pytest.mark.parametrize(("postgres", "n"), [("11", 1), ("15", 0)])
def test_enum_add_value_is_non_transactional_before_pg12(make, postgres: str, n: int) -> None:
    s = make({"0001_t.up.sql": "CREATE TYPE mood AS ENUM ('ok');\nALTER TYPE mood ADD VALUE 'meh';\n",
              "0001_t.down.sql": "DROP TYPE mood;"}, database={"postgres": postgres})
    assert len(pf.run_checks(s, only=[pf.NON_TRANSACTIONAL])) == n


# ══ revisionHistoryLimit vs --to-revision ═════════════════════════════════
TO_REV_1 = 'kubectl -n "$NAMESPACE" rollout undo deployment/demo --to-revision=1'
RESTART = 'kubectl -n "$NAMESPACE" rollout restart deployment/demo'


def test_to_revision_pruned_by_history_limit_is_a_failure(make) -> None:
    s = make(rb=runbook(RESTART, TO_REV_1), manifests=deployment(limit=1))
    f = pf.run_checks(s, only=[pf.REVISION_HISTORY])
    assert found(f) == [(pf.REVISION_HISTORY, "failure")]
    msg = f[0].message
    assert msg.startswith("runbook step 2 (line 7) rolls deployment/demo back to revision 1")
    assert "revisionHistoryLimit 1 keeps the current revision and 1 old one" in msg
    assert "1 (good release), 2 (bad release), 3 (step 1: rollout restart)" in msg
    assert "at least 2" in f[0].fix


@pytest.mark.parametrize(("limit", "commands"), [
    (1, (TO_REV_1,)),            # two releases: limit 1 keeps revision 1 next to the current revision 2
    (10, (RESTART, TO_REV_1)),
    (None, (RESTART, RESTART, TO_REV_1)),  # unset: Kubernetes' default, 10
    (2, (RESTART, TO_REV_1)),
    ("${HISTORY}", (RESTART, TO_REV_1)),   # a placeholder: unknown, not guessed
])
def test_to_revision_still_kept_is_fine(make, limit: Any, commands: tuple[str, ...]) -> None:
    s = make(rb=runbook(*commands), manifests=deployment(limit=limit))
    assert pf.run_checks(s, only=[pf.REVISION_HISTORY]) == []


def test_to_revision_that_was_never_made_is_a_failure(make) -> None:
    s = make(rb=runbook('kubectl -n "$NAMESPACE" rollout undo deployment/demo --to-revision 5'))
    f = pf.run_checks(s, only=[pf.REVISION_HISTORY])
    assert found(f) == [(pf.REVISION_HISTORY, "failure")] and "does not exist" in f[0].message


def test_undo_renumbers_the_revision_it_brings_back(make) -> None:
    # After `--to-revision=1` revision 1 becomes revision 3: asking for 1 again fails.
    s = make(rb=runbook(TO_REV_1, TO_REV_1), manifests=deployment(limit=10))
    f = pf.run_checks(s, only=[pf.REVISION_HISTORY])
    assert found(f) == [(pf.REVISION_HISTORY, "failure")] and "step 2" in f[0].message


def test_history_limit_zero_warns_and_fails_a_fixed_revision(make) -> None:
    assert found(pf.run_checks(make(manifests=deployment(limit=0)), only=[pf.REVISION_HISTORY])) == [
        (pf.REVISION_HISTORY, "warning")]
    f = pf.run_checks(make(rb=runbook(TO_REV_1), manifests=deployment(limit=0)), only=[pf.REVISION_HISTORY])
    assert sorted(found(f)) == [(pf.REVISION_HISTORY, "failure"), (pf.REVISION_HISTORY, "warning")]
    assert any("rollout undo impossible" in x.message for x in f)


# ══ runbook objects ═══════════════════════════════════════════════════════
def test_renamed_deployment_in_runbook_is_a_failure(make) -> None:
    rb = runbook('kubectl -n "$NAMESPACE" rollout undo deployment/demo',
                 'kubectl -n "$NAMESPACE" rollout status deployment/api --timeout=60s')
    f = pf.run_checks(make(rb=rb), only=[pf.RUNBOOK_OBJECTS])
    assert found(f) == [(pf.RUNBOOK_OBJECTS, "failure")]
    assert f[0].message.startswith("runbook step 2 (line 7) refers to deployment/api which the manifests do not define")
    assert "deployment/demo" in f[0].fix


@pytest.mark.parametrize("command", [
    'kubectl -n "$NAMESPACE" get deploy api',
    'kubectl --namespace "$NAMESPACE" rollout undo deployment api',
    'kubectl --namespace=$NAMESPACE rollout undo deployments.apps/api',
    'kubectl -n "${NAMESPACE}" scale deployment api --replicas=0 && echo done',
    'kubectl -n "$NAMESPACE" get svc api',
])
def test_reference_forms(make, command: str) -> None:
    assert found(pf.run_checks(make(rb=runbook(command)), only=[pf.RUNBOOK_OBJECTS])) == [
        (pf.RUNBOOK_OBJECTS, "failure")]


@pytest.mark.parametrize("command", [
    'kubectl -n "$NAMESPACE" rollout undo deployment demo',
    'kubectl -n "$NAMESPACE" get deploy,svc',
    'kubectl -n "$NAMESPACE" get pods -l app=demo',
    'kubectl -n "$NAMESPACE" create deployment scratch --image=busybox',
    'kubectl -n "$NAMESPACE" exec deploy/demo -- sh -c "kubectl get deployment/ghost"',
    'kubectl -n "$NAMESPACE" rollout status deployment/$APP',   # resolved from the scenario's variables
    'kubectl -n "$NAMESPACE" get svc/demo -o name',
])
def test_existing_or_unknowable_objects_are_fine(make, command: str) -> None:
    s = make(rb=runbook(command), variables={"APP": "demo"})
    assert pf.run_checks(s, only=[pf.RUNBOOK_OBJECTS]) == []


@pytest.mark.parametrize(("command", "words"), [
    ("kubectl rollout undo deployment/demo", "without -n"),
    ("kubectl -n production rollout undo deployment/demo", "fixed namespace production"),
])
def test_namespace_other_than_the_rehearsals_is_a_warning(make, command: str, words: str) -> None:
    f = pf.run_checks(make(rb=runbook(command)), only=[pf.RUNBOOK_OBJECTS])
    assert found(f) == [(pf.RUNBOOK_NAMESPACE, "warning")] and words in f[0].message


def test_objects_of_a_kustomize_directory(make) -> None:
    s = make(manifests={
        "kustomization.yaml": "namePrefix: shop-\nresources: [base, https://example.com/remote.yaml]\n",
        "base/kustomization.yaml": "resources: [deploy.yaml, svc.yaml]\n",
        "base/deploy.yaml": deployment("demo"), "base/svc.yaml": service("demo"),
        "unlisted.yaml": deployment("ghost"),
    }, workloads=("shop-demo",), rb=runbook('kubectl -n "$NAMESPACE" rollout undo deployment/shop-demo',
                                             'kubectl -n "$NAMESPACE" get deployment/ghost'))
    objs = {(o.kind, o.name) for o in load_manifests(s.path(s.app.manifests))}
    assert objs == {("deployment", "shop-demo"), ("service", "shop-demo")}
    f = pf.run_checks(s)
    assert found(f) == [(pf.RUNBOOK_OBJECTS, "failure")] and "deployment/ghost" in f[0].message


def test_objects_of_a_plain_directory_and_lists(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text(deployment("demo") + "---\n" + service("demo"))
    (tmp_path / "b.yml").write_text("apiVersion: v1\nkind: List\nitems:\n  - {apiVersion: v1, kind: Service, "
                                    "metadata: {name: extra}}\n")
    (tmp_path / "notes.txt").write_text("kind: Deployment")
    assert {(o.kind, o.name) for o in load_manifests(tmp_path)} == {
        ("deployment", "demo"), ("service", "demo"), ("service", "extra")}


def test_tracked_workload_missing_from_manifests_is_a_failure(make) -> None:
    f = pf.run_checks(make(workloads=("demo", "worker")), only=[pf.WORKLOADS])
    assert found(f) == [(pf.WORKLOADS, "failure")] and "deployment/worker" in f[0].message


def test_unreadable_manifests_are_reported_not_raised(make) -> None:
    f = pf.run_checks(make(manifests="kind: Deployment\nmetadata: {name: [unclosed\n"))
    assert found(f) == [(pf.INPUTS, "warning")]


# ══ undo twice ════════════════════════════════════════════════════════════
def test_undo_twice_without_revision_is_a_failure(make) -> None:
    rb = runbook(UNDO, STATUS, 'kubectl -n "$NAMESPACE" rollout undo deploy demo')
    f = pf.run_checks(make(rb=rb), only=[pf.DOUBLE_UNDO])
    assert found(f) == [(pf.DOUBLE_UNDO, "failure")]
    assert f[0].message.startswith("runbook step 3 (line 8) runs `rollout undo` for deployment/demo a second time")
    assert "runbook step 1 (line 6)" in f[0].message


@pytest.mark.parametrize("commands", [
    (UNDO, STATUS),
    (UNDO, TO_REV_1),
    (UNDO, 'kubectl -n "$NAMESPACE" rollout undo deployment/worker'),
])
def test_single_undo_per_deployment_is_fine(make, commands: tuple[str, ...]) -> None:
    assert pf.run_checks(make(rb=runbook(*commands)), only=[pf.DOUBLE_UNDO]) == []


def test_undo_to_revision_zero_is_a_plain_undo(make) -> None:
    rb = runbook(UNDO, 'kubectl -n "$NAMESPACE" rollout undo deployment/demo --to-revision=0')
    assert found(pf.run_checks(make(rb=rb), only=[pf.DOUBLE_UNDO])) == [(pf.DOUBLE_UNDO, "failure")]



# ══ rollout status right after the undo, past the progress deadline ═══════
DEADLINE = {"mode": "rollout_deadline", "within_s": 120}


def test_status_right_after_undo_past_the_deadline_is_a_warning(make) -> None:
    f = pf.run_checks(make(rb=runbook(UNDO, STATUS), failure=DEADLINE), only=[pf.STATUS_AFTER_UNDO])
    assert found(f) == [(pf.STATUS_AFTER_UNDO, "warning")]
    assert f[0].message.startswith("runbook step 2 (line 7) runs `rollout status` for deployment/demo right after "
                                   "`rollout undo` (runbook step 1 (line 6))")
    assert "|| { sleep 10; kubectl rollout status deployment/demo --timeout=120s; }" in f[0].fix
    waits_for_nothing = runbook(UNDO, 'kubectl -n "$NAMESPACE" wait --for=condition=Available deployment/worker',
                                STATUS)  # `--for=` is no loop, and Available is true before the rollout ends
    assert len(pf.run_checks(make(rb=waits_for_nothing, failure=DEADLINE), only=[pf.STATUS_AFTER_UNDO])) == 1
    set_back = runbook('kubectl -n "$NAMESPACE" set image deployment/demo app="$GOOD_IMAGE"', STATUS)
    f = pf.run_checks(make(rb=set_back, failure=DEADLINE), only=[pf.STATUS_AFTER_UNDO])
    assert len(f) == 1 and "right after `set image` (runbook step 1 (line 6))" in f[0].message
    one_line = runbook(f"{UNDO} && {STATUS}")
    assert found(pf.run_checks(make(rb=one_line, failure=DEADLINE), only=[pf.STATUS_AFTER_UNDO])) == [
        (pf.STATUS_AFTER_UNDO, "warning")]


@pytest.mark.parametrize(("commands", "failure"), [
    ((UNDO, STATUS), {"mode": "readiness"}),  # undone long before the deadline: the race cannot show
    ((UNDO, f"{STATUS} || {{ sleep 10; {STATUS}; }}"), DEADLINE),  # the fix
    ((UNDO, "sleep 5", STATUS), DEADLINE),
    ((UNDO, f"until {STATUS}; do sleep 2; done"), DEADLINE),
    ((STATUS,), DEADLINE),  # no undo before it
    ((UNDO, 'kubectl -n "$NAMESPACE" rollout status deployment/worker'), DEADLINE),  # another deployment
    ((UNDO, 'kubectl -n "$NAMESPACE" get deployment/demo', STATUS), DEADLINE),  # something in between
    ((f"{UNDO} && sleep 5 && {STATUS}",), DEADLINE),
])
def test_status_after_undo_that_outwaits_the_condition_is_fine(make, commands: tuple[str, ...],
                                                               failure: dict[str, Any]) -> None:
    s = make(rb=runbook(*commands), failure=failure, workloads=("demo",))
    assert pf.run_checks(s, only=[pf.STATUS_AFTER_UNDO]) == []


def test_the_rollout_deadline_demo_retries_and_without_the_retry_is_warned(tmp_path: Path) -> None:
    demo = EXAMPLES / "rollout-deadline"
    assert pf.run_checks(load_scenario(demo)) == []
    copy = tmp_path / "rollout-deadline"
    shutil.copytree(demo, copy)
    text = (copy / "runbook.md").read_text()
    retry = ' || { sleep 10; kubectl -n "$NAMESPACE" rollout status deployment/demo --timeout=120s; }'
    assert retry in text
    (copy / "runbook.md").write_text(text.replace(retry, ""))
    (copy / "scenario.yaml").write_text((demo / "scenario.yaml").read_text().replace("../../", f"{REPO}/"))
    assert found(pf.run_checks(load_scenario(copy))) == [(pf.STATUS_AFTER_UNDO, "warning")]

# ══ migrate down with the good image ══════════════════════════════════════
@pytest.mark.parametrize("command", [
    'docker run --rm --network host -e DATABASE_URL "$GOOD_IMAGE" migrate down 1',
    'docker run --rm -e DATABASE_URL ${GOOD_IMAGE} migrate down',
    "docker run --rm demo:v1 migrate down 1",
    'kubectl -n "$NAMESPACE" run undo --image=demo:v1 --restart=Never -- migrate down 1',
    'docker run --rm "$REGISTRY/demo:abc123" migrate down 1',
])
def test_migrate_down_with_the_good_image_is_a_warning(make, command: str) -> None:
    s = make(rb=runbook(command), versions={"good": {"image": "demo:v1", "tag": "abc123"},
                                            "bad": {"image": "demo:v2", "tag": "def456"}},
             registry={"repository": "demo"})  # $REGISTRY is set only with a registry
    f = pf.run_checks(s, only=[pf.DOWN_WITH_GOOD_IMAGE])
    assert found(f) == [(pf.DOWN_WITH_GOOD_IMAGE, "warning")] and "BAD_IMAGE" in f[0].fix


@pytest.mark.parametrize("command", [
    'docker run --rm --network host -e DATABASE_URL "$BAD_IMAGE" migrate down 1',
    'docker run --rm "$REGISTRY/demo:def456" migrate down 1',
    'docker pull "$GOOD_IMAGE" && docker run --rm "$BAD_IMAGE" migrate down 1',
    'docker run --rm "$GOOD_IMAGE" migrate up',
])
def test_migrate_down_with_the_bad_image_is_fine(make, command: str) -> None:
    s = make(rb=runbook(command), versions={"good": {"image": "demo:v1", "tag": "abc123"},
                                            "bad": {"image": "demo:v2", "tag": "def456"}},
             registry={"repository": "demo"})  # $REGISTRY is set only with a registry
    assert pf.run_checks(s, only=[pf.DOWN_WITH_GOOD_IMAGE]) == []


# ══ the fixtures and the demo scenarios ═══════════════════════════════════
FIXTURE_FINDINGS = {
    "destructive": [(pf.NOOP_DOWN, "failure"), (pf.DESTRUCTIVE, "failure")],
    "pruned-revision": [(pf.REVISION_HISTORY, "failure")],
    "runbook-drift": [(pf.RUNBOOK_OBJECTS, "failure"), (pf.DOUBLE_UNDO, "failure"),
                      (pf.NON_TRANSACTIONAL, "warning"), (pf.DOWN_WITH_GOOD_IMAGE, "warning")],
}


@pytest.mark.parametrize("name", sorted(FIXTURE_FINDINGS))
def test_fixture_findings(name: str) -> None:
    assert sorted(found(pf.run_checks(load_scenario(FIXTURES / name)))) == sorted(FIXTURE_FINDINGS[name])


def test_fixture_destructive_ignores_comments_and_strings() -> None:
    f = pf.run_checks(load_scenario(FIXTURES / "destructive"), only=[pf.DESTRUCTIVE])
    assert len(f) == 1 and "DROP COLUMN on users.nickname" in f[0].message  # not the DROP TABLE in comments/strings


@pytest.mark.parametrize("name", ["bad-image", "bad-migration", "forgot-migrate-down", "promotion"])
def test_demo_scenarios_have_no_findings(name: str) -> None:
    # promotion undoes --to-revision=1 with revisionHistoryLimit 10: revision 1 is kept.
    assert pf.run_checks(load_scenario(EXAMPLES / name)) == []


# ══ rehearse check ════════════════════════════════════════════════════════
DEMOS = ["bad-image", "bad-migration", "forgot-migrate-down", "promotion"]


@pytest.mark.parametrize(("args", "code"), [
    ([str(EXAMPLES / d) for d in DEMOS], 0),
    ([str(FIXTURES / "pruned-revision")], 1),
    ([str(FIXTURES / "destructive")], 1),
    ([*(str(EXAMPLES / d) for d in DEMOS), *(str(p) for p in sorted(FIXTURES.iterdir()))], 1),
])
def test_cli_check_exit_codes(args: list[str], code: int) -> None:
    res = CliRunner().invoke(cli, ["check", *args])
    assert res.exit_code == code, res.output
    assert "preflight:" in res.output


def test_cli_check_warnings_only_exit_0(make) -> None:
    s = make(rb=runbook('docker run --rm "$GOOD_IMAGE" migrate down 1', UNDO))
    res = CliRunner().invoke(cli, ["check", str(s.directory)])
    assert res.exit_code == 0, res.output
    assert "0 failure(s), 1 warning(s)" in res.output


def test_cli_check_scenario_errors_exit_2(tmp_path: Path) -> None:
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "scenario.yaml").write_text("name: Bad_Name\n")
    assert CliRunner().invoke(cli, ["check", str(tmp_path / "broken")]).exit_code == 2
    assert CliRunner().invoke(cli, ["check", str(tmp_path / "nothing-here")]).exit_code == 2


# ══ the phase, the pipeline and the journal ═══════════════════════════════
def test_phase_records_findings_apart_from_differences() -> None:
    phase = PreflightPhase()
    scenario = load_scenario(FIXTURES / "runbook-drift")
    journal = Journal(scenario=scenario.name, expect=scenario.expect.value)
    ctx = SimpleNamespace(scenario=scenario, journal=journal, redactor=lambda s: s.replace("GOOD_IMAGE", "***"))
    detail = phase.execute(ctx)  # type: ignore[arg-type]
    assert detail.startswith("2 failure(s), 2 warning(s)")
    assert sorted(found(journal.findings)) == sorted(FIXTURE_FINDINGS["runbook-drift"])
    assert journal.differences == []  # advice never enters the verdict
    assert all("GOOD_IMAGE" not in f.message for f in journal.findings)  # redacted
    dumped = journal.model_dump(mode="json")
    assert dumped["findings"][0]["severity"] == "failure" and set(dumped["findings"][0]) == {
        "check", "severity", "message", "file", "fix"}


def test_phase_without_findings() -> None:
    phase = PreflightPhase()
    scenario = load_scenario(EXAMPLES / "bad-image")
    journal = Journal(scenario=scenario.name, expect=scenario.expect.value)
    assert phase.execute(SimpleNamespace(scenario=scenario, journal=journal, redactor=str)) == "no findings"  # type: ignore[arg-type]


def test_preflight_is_the_first_phase_and_never_stops_the_rehearsal() -> None:
    assert isinstance(pipeline.PHASES[0], PreflightPhase)
    assert pipeline.PHASES[0].on_failure is OnFailure.EVIDENCE


def test_verdict_ignores_findings() -> None:
    journal = Journal(scenario="x", expect="READY")
    journal.findings.append(Finding(check=pf.DESTRUCTIVE, severity="failure", message="m", fix="f"))
    judge.decide(journal).record(journal)
    assert journal.verdict == "READY"
    journal.differences.append(Difference(area="schema", object="users", message="column nickname left over"))
    judge.decide(journal).record(journal)
    assert journal.verdict == "NOT_READY" and journal.reasons == ["column nickname left over"]


def test_docs_name_every_check() -> None:
    doc = (REPO / "docs" / "preflight.md").read_text()
    ids = [pf.MIGRATION_PAIRS, pf.NOOP_DOWN, pf.DESTRUCTIVE, pf.NON_TRANSACTIONAL, pf.WORKLOADS,
           pf.REVISION_HISTORY, pf.RUNBOOK_OBJECTS, pf.RUNBOOK_NAMESPACE, pf.DOUBLE_UNDO, pf.STATUS_AFTER_UNDO,
               pf.DOWN_WITH_GOOD_IMAGE,
           pf.PLACEHOLDERS, pf.SKIPPED_STEP, pf.SHELLCHECK, pf.HELM_HISTORY, pf.HELM_CRDS, pf.HELM_ROLLBACK_SCHEMA,
           pf.HELM_ROLLBACK_HOOKS, pf.FRAMEWORK_DOWN, pf.FRAMEWORK_DESTRUCTIVE]
    assert [i for i in ids if f"`{i}`" not in doc] == []
    assert set(pf.CHECKS) <= set(ids)


def test_runbook_helper_line_numbers() -> None:
    # The line numbers asserted above rely on this layout.
    text = runbook("a", "b")
    assert textwrap.dedent(text).splitlines()[5:7] == ["a", "b"]


def test_kubectl_calls_inside_multi_line_commands() -> None:
    """A command can span lines (loops, heredocs): each line is read as bash would, heredoc bodies are data."""
    from harness.preflight.shell import kubectl_calls
    from harness.runbook_commands import parse_runbook
    md = ("## Rollback\n\n```sh\nkubectl -n demo apply -f - <<YAML\nkind: ConfigMap\nkubectl delete deployment/x\nYAML\n"
          "for d in api worker; do\n  kubectl rollout undo deployment/$d\n  kubectl rollout status \\\n"
          "    deployment/web\ndone\n```\n")
    steps = parse_runbook(md, "Rollback")
    assert [s.line for s in steps] == [4, 8]
    calls = [(k.step.index, k.verb, k.refs) for k in kubectl_calls(steps)]
    assert [(i, v) for i, v, _ in calls] == [(1, ("apply", "<<")), (2, ("rollout", "undo")), (2, ("rollout", "status"))]
    assert calls[2][2][0].name == "web"
