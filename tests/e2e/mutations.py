"""Mutations of the READY scenarios, for the harness's self-test (test_mutations.py).

Each mutation breaks one READY scenario in exactly one way (its runbook, its
migrations or its manifests) and names the difference the harness must report
for it: an area and a substring of the message. `mutated_scenario` writes the
broken copy under a temporary directory:

- the scenario directory is copied and renamed `mut-<id>-<slug>` (the name the
  namespace `rr-<name>-<run id>` and the database `rr_<name>_<run id>` derive from, so mutations
  never collide with each other or with the real scenarios);
- relative paths in scenario.yaml that point outside the scenario directory
  (the demo's manifests, seed, migrations) are rewritten to the originals,
  except for the files the mutation changes, which are copied and edited;
- a migration mutation copies demo/ (the image's build context), edits the
  migrations there and builds the bad release again with them, tagged
  `rollback-rehearsal/demo-app:mut-<id>` with the same APP_VERSION and
  MAX_MIGRATION as the original bad image (read from its labels), like
  env/images/demo.sh does. The image is removed from Docker when the context
  exits; `remove_from_nodes` removes it from the kind nodes.

Mutations are data, so the catalogue can be checked without a cluster
(`mutated_scenario(..., build=False)` writes the files and builds nothing).
"""

from __future__ import annotations

import copy
import os
import re
import shutil
import subprocess
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[2]
SCENARIOS = REPO / "scenarios"
DEMO = REPO / "demo"
IMAGE_REPO = "rollback-rehearsal/demo-app"
MUTATION_LABEL = "rollback-rehearsal.mutation"

# scenario.yaml fields that hold a path relative to the scenario directory.
PATH_FIELDS = ("app.manifests", "database.seed", "migrations.files", "runbook.file",
               "versions.good.build.context", "versions.bad.build.context")

# Budget for mutations that leave the app unhealthy (or a runbook step that
# blocks): the harness would otherwise wait its full default timeouts.
UNHEALTHY = {"timeouts": {"verify_s": 15}, "failure": {"within_s": 60}}


@dataclass(frozen=True)
class Mutation:
    """One way to break one READY scenario, and the difference that must show it."""

    id: str                      # "01": image tag mut-01, scenario name mut-01-<slug>
    slug: str
    base: str                    # directory under scenarios/
    kind: str                    # runbook | migration | manifest
    what: str                    # what changed, for the report table
    expect: tuple[str, str]      # (difference area, substring of its message)
    # Exact text replacements in the runbook: each `old` must occur exactly once.
    runbook: tuple[tuple[str, str], ...] = ()
    # Migration file name -> function(old text) -> new text; the bad release is rebuilt with them.
    migrations: Mapping[str, Callable[[str], str]] = field(default_factory=dict)
    # function(manifest text) -> new manifest text.
    manifests: Callable[[str], str] | None = None
    # Deep-merged into scenario.yaml (budget: timeouts of unhealthy outcomes).
    settings: Mapping[str, Any] = field(default_factory=dict)
    # More differences that must all show too (a group of leftovers of several kinds in one rehearsal).
    also: tuple[tuple[str, str], ...] = ()

    @property
    def expected(self) -> tuple[tuple[str, str], ...]:
        return (self.expect, *self.also)

    @property
    def name(self) -> str:
        return f"mut-{self.id}-{self.slug}"

    @property
    def image(self) -> str:
        return f"{IMAGE_REPO}:mut-{self.id}"

    def __str__(self) -> str:
        return self.name


# ── text edits ──────────────────────────────────────────────────────────────

UNDO = 'kubectl -n "$NAMESPACE" rollout undo deployment/demo\n'
STATUS = 'kubectl -n "$NAMESPACE" rollout status deployment/demo --timeout=120s\n'
MIGRATE_DOWN_STEP = """1. Undo the schema change with the migrate tool **of the release that added
   it** (older images do not contain its down script):

```sh
docker run --rm --network host -e DATABASE_URL "$BAD_IMAGE" migrate down 1
```

2. Put"""
PROMOTE_GOOD = ('docker pull "$REGISTRY/demo:abc123"\n'
                'docker tag "$REGISTRY/demo:abc123" "$REGISTRY/demo:production"\n'
                'docker push "$REGISTRY/demo:production"\n')


def append_sql(extra: str) -> Callable[[str], str]:
    return lambda text: text.rstrip("\n") + "\n" + extra.strip("\n") + "\n"


def replace_sql(new: str) -> Callable[[str], str]:
    return lambda _text: new.strip("\n") + "\n"


def with_settings_configmap(text: str) -> str:
    """The app reads a ConfigMap (mounted as a volume) whose content each
    release rewrites; `rollout undo` restores the pod template, not the ConfigMap."""
    docs = [d for d in yaml.safe_load_all(text) if d]
    docs.insert(0, {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "demo-settings"},
                    "data": {"release": "${APP_IMAGE}", "max_connections": "20"}})
    dep = next(d for d in docs if d["kind"] == "Deployment")
    pod = dep["spec"]["template"]["spec"]
    pod.setdefault("volumes", []).append({"name": "settings", "configMap": {"name": "demo-settings"}})
    app = next(c for c in pod["containers"] if c["name"] == "app")
    app.setdefault("volumeMounts", []).append({"name": "settings", "mountPath": "/etc/demo", "readOnly": True})
    return "---\n".join(yaml.safe_dump(d, sort_keys=False) for d in docs)


# ── the catalogue ───────────────────────────────────────────────────────────

DOWN_0002 = "0002_add_nickname.down.sql"
UP_0002 = "0002_add_nickname.up.sql"

# Leftovers of every kind the pg_dump differential suite added, for mutation 27 (one statement, one expected
# difference each).
GROUP: tuple[tuple[str, tuple[str, str]], ...] = (
    ("GRANT SELECT ON users TO PUBLIC;", ("schema", "GRANT SELECT ON TABLE users TO PUBLIC is still in place")),
    ("CREATE POLICY orders_owner ON orders USING (true);", ("schema", "policy orders_owner on orders is still present")),
    ("ALTER TABLE orders SET (fillfactor = 70);",
     ("schema", "table orders storage parameters changed: [] -> [fillfactor=70]")),
    ("CREATE SCHEMA reporting;\nCREATE TABLE reporting.daily (day date);", ("schema", "schema reporting is still present")),
    ("COMMENT ON TABLE orders IS 'v2 orders';", ("schema", "table orders has a comment added after baseline")),
    ("ALTER TABLE users REPLICA IDENTITY FULL;", ("schema", "table users replica identity changed: DEFAULT -> FULL")),
    ("ALTER TABLE orders ALTER COLUMN created_at SET STATISTICS 1000;",
     ("schema", "column orders.created_at statistics target changed: none -> 1000")),
    ("ALTER DEFAULT PRIVILEGES GRANT SELECT ON TABLES TO PUBLIC;", ("schema", "DEFAULT PRIVILEGES")),
    ("GRANT UPDATE (email) ON users TO PUBLIC;", ("schema", "GRANT UPDATE (email) ON TABLE users TO PUBLIC")),
)
GROUP_SQL = "\n".join(statement for statement, _ in GROUP)
GROUP_EXPECT = tuple(expected for _, expected in GROUP)

CATALOGUE: tuple[Mutation, ...] = (
    # runbook ──────────────────────────────────────────────────────────────
    Mutation("01", "no-migrate-down", "bad-migration", "runbook",
             "runbook: the `migrate down 1` step is removed",
             ("schema", "column users.nickname is still present"),
             runbook=((MIGRATE_DOWN_STEP, "1. Put"),)),
    Mutation("02", "undo-typo", "bad-image", "runbook",
             "runbook: typo `kubectl rollout undoo`",
             ("runbook", "runbook drift: step 1"),
             runbook=((UNDO, UNDO.replace("undo", "undoo")),), settings=UNHEALTHY),
    Mutation("03", "step-hangs", "bad-image", "runbook",
             "runbook: an extra step `sleep 600` (step_timeout_s 15)",
             ("runbook", "`sleep 600` failed: timed out after 15s"),
             runbook=((STATUS, STATUS + "sleep 600\n"),), settings={"runbook": {"step_timeout_s": 15}}),
    Mutation("04", "undo-twice", "bad-image", "runbook",
             "runbook: `rollout undo` a second time after the rollout",
             ("app", "(bad version)"),
             runbook=((STATUS, STATUS + UNDO),), settings=UNHEALTHY),
    Mutation("05", "scale-not-restored", "bad-image", "runbook",
             "runbook: scales the deployment to 2 replicas during the rollback",
             ("app", "replicas"),
             runbook=((UNDO, UNDO + 'kubectl -n "$NAMESPACE" scale deployment/demo --replicas=2\n'),)),
    Mutation("06", "promote-wrong-sha", "promotion", "runbook",
             "runbook: re-tags def456 (the bad SHA) to production",
             ("registry", "(the bad version)"),
             runbook=((PROMOTE_GOOD, PROMOTE_GOOD.replace("abc123", "def456")),)),
    Mutation("07", "promote-no-push", "promotion", "runbook",
             "runbook: re-tags abc123 locally but never pushes production",
             ("registry", "(the bad version)"),
             runbook=((PROMOTE_GOOD, PROMOTE_GOOD.replace('docker push "$REGISTRY/demo:production"\n', "")),)),
    # manifests ────────────────────────────────────────────────────────────
    Mutation("08", "release-configmap", "bad-image", "manifest",
             "manifests: a ConfigMap volume whose content each release rewrites",
             ("config", "configmap/demo-settings (used by deployment demo) content differs"),
             manifests=with_settings_configmap),
    # migrations (the bad release is rebuilt with them) ──────────────────────
    Mutation("09", "down-noop", "bad-migration", "migration",
             "0002 down is a no-op (`SELECT 1`)",
             ("schema", "column users.nickname is still present"),
             migrations={DOWN_0002: replace_sql("-- mutation: reverts nothing\nSELECT 1;")}),
    Mutation("10", "down-wrong-index", "bad-migration", "migration",
             "0002 down drops orders_created_idx instead of reverting 0002",
             ("schema", "index orders_created_idx is missing"),
             migrations={DOWN_0002: replace_sql("DROP INDEX IF EXISTS orders_created_idx;")}),
    Mutation("11", "up-rewrites-emails", "bad-migration", "migration",
             "0002 up: UPDATE users SET email = ...; down does not restore it",
             ("data", "table users: content changed"),
             migrations={UP_0002: append_sql(
                 "UPDATE users SET email = replace(email, '@example.com', '@example.net');")}),
    Mutation("12", "up-deletes-orders", "bad-migration", "migration",
             "0002 up: DELETE FROM orders WHERE amount_cents < 500",
             ("data", "table orders: 2 rows lost"),
             migrations={UP_0002: append_sql("DELETE FROM orders WHERE amount_cents < 500;")}),
    # One rehearsal for every kind the pg_dump differential suite added (issue 13: a full rehearsal per kind,
    # grouped to keep CI short): the bad release's up migration leaves one of each; each must be named.
    Mutation("27", "up-leaves-every-new-kind", "bad-migration", "migration",
             "0002 up also grants, adds a policy, storage parameter, schema, comment, replica identity, "
             "statistics target and default privileges; down undoes none of them",
             GROUP_EXPECT[0], migrations={UP_0002: append_sql(GROUP_SQL)}, also=GROUP_EXPECT[1:]),
)


# Further mutations, run with REHEARSAL_MUTATIONS=all (26 in all, about 29 min):
# more ways to leave the bad version running, more kinds of schema objects,
# the dirty flag of the migration version table, and a rewound sequence. All
# but the last take the same detection path as one of CATALOGUE; keeping them
# out of it keeps the default run near 8 min.
EXTENDED: tuple[Mutation, ...] = (
    Mutation("13", "no-rollout-undo", "bad-image", "runbook",
             "runbook: `rollout undo` is removed (only `rollout status` is left)",
             ("app", "(bad version)"),
             runbook=((UNDO, ""),), settings={**UNHEALTHY, "runbook": {"step_timeout_s": 8}}),
    Mutation("14", "undo-wrong-revision", "promotion", "runbook",
             "runbook: `rollout undo --to-revision=2` (the bad revision) instead of 1",
             ("app", "(bad version)"),
             runbook=(("--to-revision=1", "--to-revision=2"),),
             settings={**UNHEALTHY, "runbook": {"step_timeout_s": 12}}),
    Mutation("15", "down-forgets-index", "bad-migration", "migration",
             "0002 up also creates users_created_idx; down drops the column but not that index",
             ("schema", "index users_created_idx is still present"),
             migrations={UP_0002: append_sql("CREATE INDEX users_created_idx ON users (created_at);")}),
    Mutation("16", "up-changes-type", "bad-migration", "migration",
             "0002 up widens orders.amount_cents to bigint; down does not narrow it",
             ("schema", "column orders.amount_cents type changed: integer -> bigint"),
             migrations={UP_0002: append_sql("ALTER TABLE orders ALTER COLUMN amount_cents TYPE bigint;")}),
    Mutation("17", "down-fails-dirty", "bad-migration", "migration",
             "0002 down drops a misspelt column (fails: schema left dirty)",
             ("migrations", "is dirty"),
             migrations={DOWN_0002: lambda t: t.replace("DROP COLUMN IF EXISTS nickname", "DROP COLUMN nick_name")},
             settings=UNHEALTHY),
    Mutation("18", "down-forgets-trigger", "bad-migration", "migration",
             "0002 up adds a trigger and its function; down leaves both",
             ("schema", "trigger users_touch on users is still present"),
             migrations={UP_0002: append_sql(
                 "CREATE FUNCTION users_touch() RETURNS trigger LANGUAGE plpgsql\n"
                 "    AS $$ BEGIN NEW.created_at := now(); RETURN NEW; END $$;\n"
                 "CREATE TRIGGER users_touch BEFORE UPDATE ON users\n"
                 "    FOR EACH ROW EXECUTE FUNCTION users_touch();")}),
    # The seed hands out orders ids 1..5; the snapshot records each sequence's
    # position and reports one that is behind the baseline's.
    Mutation("19", "up-rewinds-sequence", "bad-migration", "migration",
             "0002 up: setval('orders_id_seq', 1, false); down does not move it back",
             ("data", "sequence orders_id_seq was rewound: next value 1, baseline had handed out up to 5"),
             migrations={UP_0002: append_sql("SELECT setval('orders_id_seq', 1, false);")}),
    # Kinds the pg_dump differential suite (test_fidelity.py) added to the snapshot.
    Mutation("20", "up-grants-public", "bad-migration", "migration",
             "0002 up: GRANT SELECT ON users TO PUBLIC; down does not revoke it",
             ("schema", "GRANT SELECT ON TABLE users TO PUBLIC is still in place"),
             migrations={UP_0002: append_sql("GRANT SELECT ON users TO PUBLIC;")}),
    Mutation("21", "up-adds-policy", "bad-migration", "migration",
             "0002 up: a row-level-security policy on orders; down leaves it",
             ("schema", "policy orders_owner on orders is still present"),
             migrations={UP_0002: append_sql("CREATE POLICY orders_owner ON orders USING (true);")}),
    Mutation("22", "up-sets-fillfactor", "bad-migration", "migration",
             "0002 up: ALTER TABLE orders SET (fillfactor = 70); down does not reset it",
             ("schema", "table orders storage parameters changed: [] -> [fillfactor=70]"),
             migrations={UP_0002: append_sql("ALTER TABLE orders SET (fillfactor = 70);")}),
    Mutation("23", "up-other-schema", "bad-migration", "migration",
             "0002 up: a schema `reporting` with a table; down leaves both",
             ("schema", "schema reporting is still present"),
             migrations={UP_0002: append_sql("CREATE SCHEMA reporting;\nCREATE TABLE reporting.daily (day date);")}),
    Mutation("24", "up-comments", "bad-migration", "migration",
             "0002 up: COMMENT ON TABLE orders; down does not remove it",
             ("schema", "table orders has a comment added after baseline"),
             migrations={UP_0002: append_sql("COMMENT ON TABLE orders IS 'v2 orders';")}),
    Mutation("25", "up-replica-identity", "bad-migration", "migration",
             "0002 up: ALTER TABLE users REPLICA IDENTITY FULL; down does not reset it",
             ("schema", "table users replica identity changed: DEFAULT -> FULL"),
             migrations={UP_0002: append_sql("ALTER TABLE users REPLICA IDENTITY FULL;")}),
    Mutation("26", "up-statistics-target", "bad-migration", "migration",
             "0002 up: ALTER TABLE orders ALTER COLUMN created_at SET STATISTICS 1000; down does not reset it",
             ("schema", "column orders.created_at statistics target changed: none -> 1000"),
             migrations={UP_0002: append_sql("ALTER TABLE orders ALTER COLUMN created_at SET STATISTICS 1000;")}),
)


# Known blind spots: mutations the harness does NOT detect today (findings of
# this self-test, see test_known_blind_spot). None at the moment: the last one,
# a rewound sequence (19), is detected since sequence positions are snapshotted.
BLIND_SPOTS: tuple[Mutation, ...] = ()


def selected() -> tuple[Mutation, ...]:
    """The mutations to rehearse: CATALOGUE, plus EXTENDED with REHEARSAL_MUTATIONS=all."""
    return CATALOGUE + (EXTENDED if os.environ.get("REHEARSAL_MUTATIONS", "") == "all" else ())


# ── writing a mutated scenario ──────────────────────────────────────────────

def _get(doc: dict[str, Any], dotted: str) -> Any:
    cur: Any = doc
    for part in dotted.split("."):
        cur = cur.get(part) if isinstance(cur, dict) else None
    return cur


def _set(doc: dict[str, Any], dotted: str, value: Any) -> None:
    *parents, last = dotted.split(".")
    cur = doc
    for part in parents:
        cur = cur.setdefault(part, {})
    cur[last] = value


def _merge(doc: dict[str, Any], extra: Mapping[str, Any]) -> None:
    for key, value in extra.items():
        if isinstance(value, Mapping) and isinstance(doc.get(key), dict):
            _merge(doc[key], value)
        else:
            doc[key] = copy.deepcopy(value)


def _edit(text: str, replacements: tuple[tuple[str, str], ...], what: str) -> str:
    for old, new in replacements:
        count = text.count(old)
        if count != 1:  # a mutation that silently does nothing would "pass" for the wrong reason
            raise ValueError(f"{what}: expected exactly one {old!r}, found {count}")
        text = text.replace(old, new)
    return text


@dataclass
class Mutated:
    mutation: Mutation
    path: Path                     # the scenario directory to rehearse
    image: str | None = None       # the rebuilt bad image, if any
    build_log: str = ""


def write_scenario(m: Mutation, workdir: Path) -> Mutated:
    """Write the mutated copy of m.base under workdir (no Docker)."""
    src = SCENARIOS / m.base
    dst = workdir / m.name
    shutil.copytree(src, dst)
    doc = yaml.safe_load((src / "scenario.yaml").read_text(encoding="utf-8"))
    # Paths that leave the scenario directory point at the originals.
    for dotted in PATH_FIELDS:
        value = _get(doc, dotted)
        if isinstance(value, str) and not Path(value).is_absolute():
            resolved = (src / value).resolve()
            if not resolved.is_relative_to(src.resolve()):
                _set(doc, dotted, str(resolved))
    doc = {"name": m.name, **doc, "expect": "NOT_READY"}
    doc["description"] = f"mutation {m.id} of {m.base}: {m.what}. {doc.get('description', '')}".strip()

    if m.runbook:
        rb = dst / (_get(doc, "runbook.file") or "runbook.md")
        rb.write_text(_edit(rb.read_text(encoding="utf-8"), m.runbook, f"{m.name} runbook"), encoding="utf-8")

    if m.manifests is not None:
        original = Path(_get(doc, "app.manifests"))
        if not original.is_absolute():
            original = dst / original
        mutated = m.manifests(original.read_text(encoding="utf-8"))
        if mutated == original.read_text(encoding="utf-8"):
            raise ValueError(f"{m.name}: the manifest mutation changed nothing")
        target = dst / "manifests" / original.name
        target.parent.mkdir()
        target.write_text(mutated, encoding="utf-8")
        _set(doc, "app.manifests", str(target.relative_to(dst)))

    if m.migrations:
        context = workdir / f"{m.name}-demo"  # the bad image's build context, with the edited migrations
        shutil.copytree(DEMO, context, ignore=shutil.ignore_patterns("k8s", "__pycache__"))
        for fname, change in m.migrations.items():
            f = context / "migrations" / fname
            before = f.read_text(encoding="utf-8")
            after = change(before)
            if after == before:
                raise ValueError(f"{m.name}: the mutation of {fname} changed nothing")
            f.write_text(after, encoding="utf-8")
        _set(doc, "migrations.files", str(context / "migrations"))
        doc["versions"]["bad"]["image"] = m.image

    _merge(doc, m.settings)
    (dst / "scenario.yaml").write_text(yaml.safe_dump(doc, sort_keys=False), encoding="utf-8")
    return Mutated(m, dst)


def _docker(*args: str, timeout: float = 120, check: bool = True) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(["docker", *args], capture_output=True, text=True, timeout=timeout, check=False)
    if check and proc.returncode != 0:
        raise RuntimeError(f"docker {' '.join(args[:3])} ... failed ({proc.returncode}): {proc.stderr.strip()[-1500:]}")
    return proc


def _label(image: str, name: str) -> str:
    fmt = f'{{{{ index .Config.Labels "{name}" }}}}'
    value = _docker("image", "inspect", "--format", fmt, image).stdout.strip()
    if not value or value == "<no value>":
        raise RuntimeError(f"image {image} has no label {name} (built by env/images/demo.sh?)")
    return value


def _stage_images(log: str) -> list[str]:
    """IDs of the intermediate stage results of a classic multi-stage build:
    the last ` ---> <id>` before each later `FROM` step (left dangling)."""
    ids: list[str] = []
    last = None
    for line in log.splitlines():
        if re.match(r"^Step \d+/\d+ : FROM ", line) and last is not None:
            ids.append(last)
        m = re.match(r"^\s*---> ([0-9a-f]{12,})\s*$", line)
        if m:
            last = m.group(1)
    return ids


def build_bad_image(mut: Mutated, base_bad_image: str) -> None:
    """Rebuild the bad release from the edited build context, like env/images/demo.sh."""
    m = mut.mutation
    version = _label(base_bad_image, "rollback-rehearsal.app-version")
    max_migration = _label(base_bad_image, "rollback-rehearsal.max-migration")
    context = mut.path.parent / f"{m.name}-demo"
    # Classic builder, as demo.sh: it never asks a registry about a local base image.
    proc = subprocess.run(
        ["docker", "build", "--force-rm", "--build-arg", f"APP_VERSION={version}",
         "--build-arg", f"MAX_MIGRATION={max_migration}", "--label", f"{MUTATION_LABEL}={m.name}",
         "-f", str(context / "app" / "Dockerfile"), "-t", m.image, str(context)],
        capture_output=True, text=True, timeout=600, env={**os.environ, "DOCKER_BUILDKIT": "0"}, check=False)
    mut.build_log = proc.stdout + proc.stderr
    # The classic builder leaves the first stage's result dangling: remove ours (only ours).
    for stage in _stage_images(proc.stdout):
        _docker("rmi", stage, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"building {m.image} failed:\n{mut.build_log[-3000:]}")
    mut.image = m.image


def remove_image(image: str) -> None:
    _docker("rmi", image, check=False)


def remove_from_nodes(nodes: list[str], images: list[str]) -> list[str]:
    """Remove the mutated images from the kind nodes' containerd; returns the ones that failed."""
    failed = []
    for node in nodes:
        for image in images:
            proc = _docker("exec", node, "crictl", "rmi", image, check=False)
            if proc.returncode != 0 and not any(m in proc.stderr.lower() for m in ("not found", "no such image")):
                failed.append(f"{node}: {image}: {proc.stderr.strip()[:200]}")
    return failed


@contextmanager
def mutated_scenario(m: Mutation, workdir: Path, build: bool = True) -> Iterator[Mutated]:
    """The mutated scenario; a rebuilt bad image is removed from Docker on exit."""
    mut = write_scenario(m, workdir)
    try:
        if m.migrations and build:
            base_doc = yaml.safe_load((SCENARIOS / m.base / "scenario.yaml").read_text(encoding="utf-8"))
            build_bad_image(mut, base_doc["versions"]["bad"]["image"])
        yield mut
    finally:
        if mut.image:
            remove_image(mut.image)


# ── judging a rehearsal ─────────────────────────────────────────────────────

@dataclass
class Outcome:
    mutation: Mutation
    verdict: str
    matched: str | None
    differences: list[str]
    seconds: float
    error: str = ""

    @property
    def detected(self) -> bool:
        return self.verdict == "NOT_READY" and self.matched is not None

    def explain(self) -> str:
        area, text = self.mutation.expect
        lines = [(f"{self.mutation.name}: verdict {self.verdict}; expected NOT_READY with a [{area}] "
                  f"difference containing {text!r}")]
        if self.error:
            lines.append(f"  error: {self.error}")
        lines += [f"  - {d}" for d in self.differences[:12]] or ["  (no differences)"]
        return "\n".join(lines)


def judge(m: Mutation, journal: Any, seconds: float) -> Outcome:
    """Detected: NOT_READY with a difference for each expected (area, text); `matched` is the first one's."""
    diffs = list(journal.differences)
    found = [next((d.message for d in diffs if d.area == area and text in d.message), None)
             for area, text in m.expected]
    missing = [f"[{area}] …{text}…" for (area, text), hit in zip(m.expected, found) if hit is None]
    return Outcome(m, journal.verdict, None if missing else found[0], [f"[{d.area}] {d.message}" for d in diffs],
                   seconds, error=("missing: " + "; ".join(missing)) if missing and len(m.expected) > 1 else "")


def table(outcomes: list[Outcome]) -> str:
    """The mutation table as Markdown."""
    rows = ["| id | base | what changed | expected difference | detected | verdict | time |",
            "|---|---|---|---|---|---|---|"]
    for o in outcomes:
        m = o.mutation
        rows.append(f"| {m.name} | {m.base} | {m.what} | [{m.expect[0]}] …{m.expect[1]}… | "
                    f"{'yes' if o.detected else 'NO'} | {o.verdict} | {o.seconds:.0f}s |")
    return "\n".join(rows)
