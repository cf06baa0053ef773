"""Where a ladder runs: a scratch Postgres container of its own (no cluster) and the scenario's migration
commands, where its migrations run in a rehearsal.

- `runs_in: job`: in the bad release's image, which holds every migration. One container per ladder,
  started sleeping in the Postgres container's network namespace (`--network container:<postgres>`, so
  the database is at 127.0.0.1:5432 for it, with no network to create or address to look up); each
  command is `docker exec <it> sh -c COMMAND`, as the migration Job runs `sh -c`, with `DATABASE_URL` as
  the Job gets it (the only variable the Job's Secret gives) and the image's own user and working directory.
- `runs_in: host`: on this machine, as a rehearsal runs a host migration (`shell_session.run_commands`:
  one bash session per command list, its own process group, killed on timeout), in the scenario directory,
  with the same environment (`context.command_environment`) less what needs a cluster (`KUBECONFIG`,
  `NAMESPACE`, `CLUSTER_DATABASE_URL`).

Every resource is recorded in a run state (`harness/runstate.py`) before it exists and removed by the
ladder's `TeardownStack` on every way out (Ctrl-C, SIGTERM and SIGHUP included); `rehearse cleanup`
removes what a `kill -9` left. Every command has the scenario's `timeouts.migrate_s`; every reading a
statement timeout.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
import uuid
from collections.abc import Callable
from contextlib import ExitStack
from typing import Any

import psycopg

from harness import release, runstate, tools
from harness.context import command_environment
from harness.ladder.climb import Fingerprint, LadderResult, Outcome, climb
from harness.ladder.frameworks import up_one_fix
from harness.progress import say
from harness.providers import factory
from harness.providers.database import DatabaseHandle, PostgresContainerProvider
from harness.redact import Redactor
from harness.scenario import Problem
from harness.scenario.loader import SCENARIO_FILE
from harness.scenario.models import MigrationPlace, Scenario
from harness.shell_session import run_commands
from harness.snapshot.database import snapshot_database
from harness.teardown import Teardown, TeardownStack

CONTAINER_LIFETIME_S = 24 * 3600  # the sleeping migration container ends (and --rm removes it) even if orphaned
DOCKER_TIMEOUT_S = 60
READ_TIMEOUT_MS = 60_000  # a reading blocked by a migration's lock fails instead of waiting forever
OUTPUT_KEPT = 20_000      # characters of a command's output kept (the end: where its error is)


class LadderInputError(Exception):
    """The scenario cannot be laddered as written: every problem, with its fix."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))


# ── input ────────────────────────────────────────────────────────────────────
def _image_missing(image: str) -> bool:
    return subprocess.run(["docker", "image", "inspect", image], capture_output=True,
                          timeout=DOCKER_TIMEOUT_S).returncode != 0


def input_problems(scenario: Scenario) -> list[Problem]:
    """What keeps the ladder from running this scenario (no image is pulled: there is no registry)."""
    file = scenario.directory / SCENARIO_FILE
    m = scenario.migrations
    if m is None:
        return [Problem(file, "migrations", "the scenario has no migrations: nothing to round-trip",
                        "add migrations.up, migrations.down and migrations.up_one")]
    problems = []
    if m.up_one is None:
        problems.append(Problem(file, "migrations.up_one", "missing: the ladder applies one migration at a time "
                                "with it", up_one_fix(m.up)))
    if m.down is None:
        problems.append(Problem(file, "migrations.down", "missing: the ladder undoes each migration with it",
                                "add the command that migrates down one step (e.g. `alembic downgrade -1`, "
                                "`migrate ... down 1`)"))
    postgres = tools.POSTGRES_IMAGE.format(major=scenario.database.postgres)
    if _image_missing(postgres):
        problems.append(Problem(file, "database.postgres", f"image {postgres} is not built here",
                                "build it (env/images/postgres.sh, or `make env`), or use a built major"))
    bad = scenario.versions.bad
    if m.runs_in == MigrationPlace.JOB and bad.build is None and _image_missing(bad.image):
        problems.append(Problem(file, "versions.bad.image", f"image {bad.image} is not built here: the ladder runs "
                                "the migrations in it (runs_in: job)",
                                "build it (`make env` builds the demo images), add versions.bad.build, or correct "
                                "the name"))
    return problems


# ── where the commands run ───────────────────────────────────────────────────
def _outcome(exit_code: int | None, output: str, redact: Callable[[str], str], timed_out: bool = False) -> Outcome:
    """Redacted whole, then cut (a secret cut in half would no longer be recognised)."""
    return Outcome(None if timed_out else exit_code, redact(output)[-OUTPUT_KEPT:], timed_out)


class ContainerShell:
    """The bad release's image, sleeping in the Postgres container's network namespace; a command is a
    `docker exec ... sh -c COMMAND` in it."""

    def __init__(self, image: str, name: str, timeout_s: float, redact: Callable[[str], str]) -> None:
        self.image, self.name, self.timeout_s, self.redact = image, name, timeout_s, redact

    def start(self, postgres_id: str, dsn: str, owner: str) -> None:
        # DATABASE_URL named, not valued, on the command line: docker takes the value from its environment.
        argv = ["docker", "run", "-d", "--rm", "--name", self.name, "--label", f"{tools.OWNER_LABEL}={owner}",
                "--network", f"container:{postgres_id}", "-e", "DATABASE_URL", "--entrypoint", "sleep",
                self.image, str(CONTAINER_LIFETIME_S)]
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=DOCKER_TIMEOUT_S,
                              env={**os.environ, "DATABASE_URL": dsn})
        if proc.returncode != 0:
            raise RuntimeError(self.redact(f"could not start {self.image} for the migrations: {proc.stderr.strip()}"))

    def run(self, command: str) -> Outcome:
        try:
            proc = subprocess.run(["docker", "exec", self.name, "sh", "-c", command], stdin=subprocess.DEVNULL,
                                  stdout=subprocess.PIPE,
                                  stderr=subprocess.STDOUT, timeout=self.timeout_s)
        except subprocess.TimeoutExpired as exc:
            self.remove()  # the command goes on inside the container otherwise; the ladder stops here anyway
            return _outcome(None, _text(exc.stdout), self.redact, timed_out=True)
        return _outcome(proc.returncode, _text(proc.stdout), self.redact)

    def remove(self) -> None:
        subprocess.run(["docker", "rm", "-f", self.name], capture_output=True, timeout=DOCKER_TIMEOUT_S)


def _text(out: bytes | str | None) -> str:
    return out.decode("utf-8", "replace") if isinstance(out, bytes) else (out or "")


class HostShell:
    """The scenario's commands on this machine, as a rehearsal runs a host migration."""

    def __init__(self, env: dict[str, str], scenario: Scenario, redact: Callable[[str], str]) -> None:
        self.env, self.scenario, self.redact = env, scenario, redact

    def run(self, command: str) -> Outcome:
        res = run_commands(command, self.env, self.scenario.directory, self.scenario.timeouts.migrate_s)
        note = "\n(waiting for input: the ladder answers nothing)" if res.waiting_for_input else ""
        exit_code = res.exit_code if res.ok else (res.exit_code or -1)  # ended the shell or waited: a failure
        return _outcome(exit_code, res.output + note, self.redact, timed_out=res.timed_out)


def _tool_dirs() -> list[str]:
    """Where a rehearsal's host migration finds kubectl and helm, when they are there (none is needed here)."""
    found = []
    for name in ("kubectl", "helm"):
        try:
            found.append(str(tools.tool(name).parent))
        except tools.ToolMissing:
            continue
    return list(dict.fromkeys(found))


def _host_env(scenario: Scenario, db: DatabaseHandle, stack: ExitStack, run: runstate.RunState) -> dict[str, str]:
    home = tempfile.mkdtemp(prefix=f"rehearsal-ladder-{scenario.name}-home-")
    run.add(runstate.TEMP_DIR, home)
    stack.callback(_remove_home, home, run)
    variables = {"DATABASE_URL": db.host_dsn, "GOOD_IMAGE": scenario.versions.good.image,
                 "BAD_IMAGE": scenario.versions.bad.image, **{k: v.value for k, v in scenario.variables.items()}}
    return command_environment(scenario, _tool_dirs(), home, {}, variables)


def _remove_home(home: str, run: runstate.RunState) -> None:
    shutil.rmtree(home, ignore_errors=True)
    run.forget(runstate.TEMP_DIR, home)


def _remove_container(shell: ContainerShell, run: runstate.RunState) -> None:
    shell.remove()
    run.forget(runstate.CONTAINER, shell.name)


def _drop_database(postgres: PostgresContainerProvider, db: DatabaseHandle, run: runstate.RunState) -> None:
    postgres.drop_database(db)
    run.forget(runstate.DATABASE, db.name)


# ── the ladder ───────────────────────────────────────────────────────────────
def _reading(conn: psycopg.Connection[Any], scenario: Scenario) -> Fingerprint:
    db = snapshot_database(conn, [], scenario.database.schemas)  # the verify snapshot's schema and version tables
    return Fingerprint(db.schema_fingerprint, db.migrations)


def _shell(scenario: Scenario, postgres: PostgresContainerProvider, db: DatabaseHandle, stack: ExitStack,
           run: runstate.RunState, redact: Redactor) -> ContainerShell | HostShell:
    m = scenario.migrations
    assert m is not None
    if m.runs_in == MigrationPlace.HOST:
        return HostShell(_host_env(scenario, db, stack, run), scenario, redact)
    release.ensure_image(scenario, scenario.versions.bad)  # built first when the scenario says how
    shell = ContainerShell(scenario.versions.bad.image, f"{run.owner}-migrate", scenario.timeouts.migrate_s,
                           redact)
    run.add(runstate.CONTAINER, shell.name)  # by name, before it exists: `docker rm -f` takes names
    stack.callback(_remove_container, shell, run)
    assert postgres.container_id is not None
    shell.start(postgres.container_id, db.dsn_at("127.0.0.1", 5432), run.owner)
    return shell


def _climb_on_scratch(scenario: Scenario, stack: ExitStack, run: runstate.RunState) -> LadderResult:
    m = scenario.migrations
    assert m is not None and m.up_one is not None and m.down is not None
    postgres = factory.start_scratch_postgres(scenario.database.postgres, stack, run.owner, run)
    run.add(runstate.DATABASE, runstate.database_name(scenario.name, run.run_id))  # in its own container
    db = postgres.create_database(runstate.resource_name(scenario.name, run.run_id))
    stack.callback(_drop_database, postgres, db, run)
    redact = (Redactor([db.password, *scenario.secret_values]).with_env(scenario.secret_pass_env, os.environ)
              .with_dsns([postgres.admin_dsn]))
    shell = _shell(scenario, postgres, db, stack, run, redact)
    conn = psycopg.connect(db.host_dsn, autocommit=True, connect_timeout=10,
                           options=f"-c statement_timeout={READ_TIMEOUT_MS}")
    stack.callback(conn.close)
    where = f"in {scenario.versions.bad.image}" if m.runs_in == MigrationPlace.JOB else "on this machine"
    say(f"ladder for {scenario.name}: each migration up, down and up again {where}")
    climbed = climb(shell.run, lambda: _reading(conn, scenario), m.up_one, m.down, say=lambda line: say(redact(line)))
    return LadderResult(scenario=scenario.name, runs_in=m.runs_in.value,
                        image=scenario.versions.bad.image if m.runs_in == MigrationPlace.JOB else None,
                        steps=climbed.steps, ended=climbed.ended, problem=climbed.problem)


def run_ladder(scenario: Scenario) -> LadderResult:
    """The ladder of one scenario on a scratch Postgres; LadderInputError when it cannot run as written.
    Raises harness.teardown.Interrupted (a signal) or TeardownIncomplete (a removal failed) after the
    cleanup, as a rehearsal session does."""
    problems = input_problems(scenario)
    if problems:
        raise LadderInputError(problems)
    t0 = time.monotonic()
    run = runstate.RunState(f"ladder-{uuid.uuid4().hex[:8]}").begin()
    try:
        with Teardown().installed() as teardown, TeardownStack(teardown) as stack:
            result = _climb_on_scratch(scenario, stack, run)
    finally:  # the record goes only if nothing is left in it; else the reaper finishes the job
        run.end()
    return result.model_copy(update={"seconds": round(time.monotonic() - t0, 3)})
