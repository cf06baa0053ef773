"""The table of migration frameworks as the ladder drives them: their up, down and up-one commands.

One row per tool of the table of version tables (`harness/snapshot/migration_tools.py`, `SHAPES`; a unit
test keeps both lists and docs/scenario-format.md's framework table in step). The ladder itself runs the
scenario's own commands; this table only serves what it says about them: the fix when `migrations.up_one`
is missing (the command to write for the framework `migrations.up` runs), and how each tool says that an
up-one found nothing left to apply when it says so with a failing exit code.
"""

from __future__ import annotations

import re
from dataclasses import dataclass


@dataclass(frozen=True)
class Framework:
    tool: str            # as SHAPES names it: the version table's owner
    name: str            # as its users write it
    up: str
    down: str | None     # None: the tool keeps no down migrations
    up_one: str | None   # None: it cannot apply only the next migration without naming it
    recognise: str       # a regular expression that finds the tool in a `migrations.up` command
    # What it prints when an up-one finds nothing to apply (a regular expression, ^ and $ per line): only
    # read after an up-one that failed and changed nothing (one that succeeded and changed nothing is the end).
    nothing_left: str | None = None
    # How a scenario's own `migrations.up` becomes its up-one: (pattern, replacement) pairs, the first that
    # matches wins (`npm run migrate:up` -> `npm run migrate:up -- 1`, npm handing the `1` to the tool).
    derive: tuple[tuple[str, str], ...] = ()


# `recognised` takes the first row that matches: golang-migrate's generic `migrate ... up` comes after every
# tool whose own command also says "migrate" (`knex migrate:latest`, `manage.py migrate`, `flyway migrate`).
FRAMEWORKS: tuple[Framework, ...] = (
    Framework("knex", "knex", "knex migrate:latest", "knex migrate:down", "knex migrate:up", r"\bknex\b",
              nothing_left=r"Already up to date", derive=((r"\bmigrate:latest\b", "migrate:up"),)),
    Framework("node-pg-migrate", "node-pg-migrate", "node-pg-migrate up", "node-pg-migrate down",
              "node-pg-migrate up 1", r"node-pg-migrate|npm run [\w:.-]*migrate", nothing_left=r"No migrations to run",
              derive=((r"^(npm run \S+)\s*$", r"\1 -- 1"), (r"\bup\s*$", "up 1"))),
    Framework("db-migrate", "db-migrate", "db-migrate up", "db-migrate down", "db-migrate up -c 1", r"\bdb-migrate\b",
              nothing_left=r"No migrations to run", derive=((r"\bup\s*$", "up -c 1"),)),
    Framework("typeorm", "TypeORM", "typeorm migration:run -d DATA_SOURCE", "typeorm migration:revert -d DATA_SOURCE",
              None, r"\btypeorm\b"),
    Framework("sequelize", "Sequelize", "sequelize-cli db:migrate", "sequelize-cli db:migrate:undo", None,
              r"\bsequelize\b"),
    Framework("prisma", "Prisma", "prisma migrate deploy", None, None, r"\bprisma\b"),
    Framework("drizzle", "Drizzle", "drizzle-kit migrate", None, None, r"\bdrizzle"),
    Framework("django", "Django", "python manage.py migrate", "python manage.py migrate APP PREVIOUS", None,
              r"manage\.py|django-admin"),
    Framework("alembic", "Alembic", "alembic upgrade head", "alembic downgrade -1", "alembic upgrade +1",
              r"\balembic\b", nothing_left=r"Relative revision \S+ didn't produce \d+ migrations",
              derive=((r"\bupgrade\s+head\b", "upgrade +1"),)),
    Framework("liquibase", "Liquibase", "liquibase update", "liquibase rollback-count --count=1",
              "liquibase update-count --count=1", r"\bliquibase\b",
              derive=((r"\bupdate\s*$", "update-count --count=1"),)),
    Framework("sqitch", "sqitch", "sqitch deploy", "sqitch revert --to @HEAD^ -y", None, r"\bsqitch\b"),
    Framework("flyway", "Flyway", "flyway migrate", "flyway undo", "flyway migrate -target=next", r"\bflyway\b",
              nothing_left=r"No migration necessary",
              derive=((r"\bmigrate\s*$", "migrate -target=next"),)),
    Framework("golang-migrate", "golang-migrate", "migrate -path DIR -database URL up",
              "migrate -path DIR -database URL down 1", "migrate -path DIR -database URL up 1",
              r"(^|[\s/])migrate\b.*\bup\b",
              # `up N` past the last migration: os.ErrNotExist (migrate.go, readUp: "reached end, and didn't
              # apply any migrations"); the demo's own work-alike (demo/app/migrate.py, plan_up) says so itself.
              nothing_left=r"^error: file does not exist$|cannot apply \d+ migration\(s\): only 0 pending",
              derive=((r"\bup\s*$", "up 1"),)),
    Framework("goose", "goose", "goose up", "goose down", "goose up-by-one", r"\bgoose\b",
              nothing_left=r"no next version found", derive=((r"\bup\s*$", "up-by-one"),)),
    Framework("ecto", "Ecto", "mix ecto.migrate", "mix ecto.rollback", "mix ecto.migrate --step 1",
              r"\becto\.migrate\b", nothing_left=r"Migrations already up",
              derive=((r"\becto\.migrate\s*$", "ecto.migrate --step 1"),)),
    Framework("rails", "Rails", "bin/rails db:migrate", "bin/rails db:rollback", "bin/rails db:forward",
              r"\b(rails|rake) db:migrate\b", derive=((r"\bdb:migrate\s*$", "db:forward"),)),
)

# Every tool's "nothing left" message at once: after an up-one that failed and changed nothing, which tool
# ran is not known for sure (no version table yet on an empty set), and these messages are specific.
_NOTHING_LEFT = re.compile("|".join(f"(?:{f.nothing_left})" for f in FRAMEWORKS if f.nothing_left), re.MULTILINE)


def says_nothing_left(output: str) -> bool:
    """Whether a tool's output says its up-one found no migration to apply."""
    return _NOTHING_LEFT.search(output) is not None


def recognised(command: str) -> Framework | None:
    """The framework a `migrations.up` command runs, when the table knows it."""
    return next((f for f in FRAMEWORKS if re.search(f.recognise, command)), None)


_DOCS = "every framework's: docs/scenario-format.md#migration-frameworks"
_EXAMPLES = ("`alembic upgrade +1` (Alembic), `npm run migrate:up -- 1` (node-pg-migrate behind an npm script), "
             "`migrate -path DIR -database URL up 1` (golang-migrate; the demo's own: `migrate up 1`)")


def derived_up_one(framework: Framework, up: str) -> str:
    """The up-one to write for this `migrations.up` (the table's generic form when no rule fits it)."""
    for pattern, replacement in framework.derive:
        command, count = re.subn(pattern, replacement, up.strip(), count=1)
        if count:
            return command
    return framework.up_one or ""


def up_one_fix(up: str | None) -> str:
    """The fix for a scenario without `migrations.up_one`: the command to write, derived from the scenario's
    own `migrations.up` when the table recognises its framework."""
    framework = recognised(up or "")
    if framework is None or up is None:
        return (f"add migrations.up_one, the command that applies only the next pending migration, e.g. {_EXAMPLES} "
                f"({_DOCS})")
    if framework.up_one is None:
        return (f"{framework.name} cannot apply only the next migration without naming it, so the ladder cannot step "
                f"through its migrations ({_DOCS})")
    return (f"add migrations.up_one, the command that applies only the next pending migration; for this "
            f"{framework.name} `up`: `{derived_up_one(framework, up)}` ({_DOCS})")
