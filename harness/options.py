"""The session's options, declared once: `rehearse run`'s click options and the
pytest plugin's options are both generated from `OPTIONS`, and both build a
`SessionOptions` through `session_options`. So an option has one name, one
default and one help text wherever it is given.

This module stays light (no providers, no Kubernetes client): the pytest
plugin imports it at startup, for every test run.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import urlsplit

import click

if TYPE_CHECKING:  # only for hints: `rehearse` does not pay for importing pytest
    import pytest

F = TypeVar("F", bound=Callable[..., Any])

# pytest-kind's `--cluster-name` default. When its option definition is the one
# present (see pytest_plugin), that default means "not chosen": ours applies.
PYTEST_KIND_DEFAULT_NAME = "pytest-kind"
DEFAULT_CLUSTER_NAME = "rehearsal"


@dataclass(frozen=True)
class SessionOptions:
    cluster_name: str = DEFAULT_CLUSTER_NAME
    keep_cluster: bool = False
    reuse_cluster: bool = False
    kubeconfig: Path | None = None      # use an existing cluster instead of kind
    database_dsn: str | None = None     # use an existing Postgres instead of a container
    database_cluster_host: str | None = None  # how pods reach that Postgres (default: the DSN's host)
    postgres_major: str = "15"
    node_image: str | None = None       # default: the image `make env` builds
    report_dir: Path = Path("reports")
    jobs: int = 1                       # scenarios rehearsed side by side (harness/parallel.py)
    shard: Shard | None = None          # rehearse only shard K of N of the scenarios (harness/shard.py)


MAX_SHARDS = 1000


@dataclass(frozen=True)
class Shard:
    """`--shard K/N`: the K-th (1-based) of N parts of the scenarios; every part computes the same split."""

    index: int
    count: int

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"

    @classmethod
    def parse(cls, text: str) -> Shard:
        """`K/N`; ValueError saying what is wrong (the message completes "--shard 'TEXT' ...")."""
        k, sep, n = str(text).strip().partition("/")
        if not sep or not k.strip().isdigit() or not n.strip().isdigit():
            raise ValueError("is not K/N (two whole numbers)")
        shard = cls(int(k), int(n))
        if not 1 <= shard.count <= MAX_SHARDS:
            raise ValueError(f"has N = {shard.count}: the number of shards must be from 1 to {MAX_SHARDS}")
        if not 1 <= shard.index <= shard.count:
            raise ValueError(f"has K = {shard.index}: the shard must be from 1 to N = {shard.count}")
        return shard


@dataclass(frozen=True)
class Option:
    """One option of a rehearsal session, as `rehearse run` and pytest both offer it."""

    flag: str                          # "--cluster-name"
    field: str                         # the SessionOptions field it sets
    help: str
    default: str | Path | bool | int | None = None
    is_flag: bool = False
    integer: bool = False              # a whole number (click and pytest both parse it)
    short: str | None = None           # `rehearse run`'s short form (pytest reserves lower-case ones)
    path: bool = False                 # a filesystem path: given to SessionOptions as a Path
    must_exist: bool = False           # the CLI refuses a path that does not exist
    envvar: str | None = None          # read by the CLI when the option is not given
    pytest_kind: bool = False          # pytest-kind defines it too (same name and meaning)
    check: Callable[[Any], str | None] | None = None  # the value's problem and its fix, None when fine
    parse: Callable[[str], Any] | None = None  # the SessionOptions value of a checked, given value
    metavar: str | None = None         # how the help shows the value

    @property
    def dest(self) -> str:
        """The parameter name under click and the attribute under pytest (pytest-kind's for its options)."""
        return self.flag.removeprefix("--").replace("-", "_")

    def value(self, raw: Any) -> Any:
        if self.path:
            if raw in (None, "") and self.default is None:
                return None  # an optional path left empty: not given (pytest-kind's --kubeconfig "")
            return Path(raw)
        if self.integer and isinstance(raw, str) and raw.strip().lstrip("-").isdigit():
            return int(raw)
        return bool(raw) if self.is_flag else raw


def _jobs_problem(value: Any) -> str | None:
    if isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= MAX_JOBS:
        return None
    return (f"--jobs {value!r} is not a number of scenarios to rehearse at once. Fix: a whole number from 1 "
            f"to {MAX_JOBS}, e.g. -j 2 (about one per CPU core: most of a rehearsal is waiting)")


MAX_JOBS = 32


# kind's own rule for cluster names (lower-case letters, digits, '.' and '-'), begun and ended by a letter or
# digit, short enough for the node container's name: the name also becomes paths the run creates and removes.
_CLUSTER_NAME = re.compile(r"[a-z0-9](?:[a-z0-9.-]{0,48}[a-z0-9])?")


def _cluster_name_problem(value: Any) -> str | None:
    if isinstance(value, str) and _CLUSTER_NAME.fullmatch(value) and ".." not in value:
        return None
    return (f"--cluster-name {value!r} is not a kind cluster name. Fix: 1-50 lower-case letters, digits, "
            "'.' or '-', beginning and ending with a letter or digit, e.g. rehearsal-2")


def _shard_problem(value: Any) -> str | None:
    if value is None:
        return None
    try:
        Shard.parse(value)
    except ValueError as exc:
        return (f"--shard {value!r} {exc}. Fix: --shard K/N with 1 <= K <= N, e.g. --shard 1/3 for the first "
                "of three shards (run every K from 1 to N, then `rehearse report merge`)")
    return None


def _cluster_host_problem(value: Any) -> str | None:
    """HOST or HOST:PORT (IPv6 in brackets), as pods reach the database."""
    if value is None:
        return None
    try:
        host, _ = split_host_port(value)
    except ValueError:
        host = ""
    if host:
        return None
    return (f"--database-cluster-host {value!r} is not HOST or HOST:PORT. Fix: e.g. db.internal, "
            "10.0.0.5:5432 or [fd00::5]:5432")


def split_host_port(text: str) -> tuple[str, int | None]:
    """("host", port or None) of `HOST[:PORT]`; ValueError for a port that is not one."""
    parts = urlsplit("//" + text)
    if parts.path or parts.query or parts.fragment or parts.username or parts.password:
        raise ValueError(text)
    return parts.hostname or "", parts.port  # .port raises ValueError when out of range or not a number


class OptionError(ValueError):
    """Option values that cannot be used; every problem, one per line."""


OPTIONS: tuple[Option, ...] = (
    Option("--report-dir", "report_dir", "Directory for the rehearsal reports.", default=Path("reports"), path=True),
    Option("--keep-cluster", "keep_cluster", "Keep the cluster, namespaces and databases for inspection.",
           default=False, is_flag=True, pytest_kind=True),
    Option("--reuse-cluster", "reuse_cluster", "Use an existing kind cluster of the same name; do not delete it.",
           default=False, is_flag=True),
    Option("--cluster-name", "cluster_name", "kind cluster name.", default=DEFAULT_CLUSTER_NAME, pytest_kind=True,
           check=_cluster_name_problem),
    Option("--kubeconfig", "kubeconfig", "Use this cluster (kubeconfig) instead of kind.", path=True,
           must_exist=True, pytest_kind=True),
    Option("--kind-image", "node_image", "kind node image (default: the one `make env` builds).", pytest_kind=True),
    Option("--database-dsn", "database_dsn", "Use this Postgres (admin DSN) instead of a container.",
           envvar="REHEARSAL_DATABASE_DSN"),
    Option("--database-cluster-host", "database_cluster_host",
           "With --database-dsn: HOST or HOST:PORT pods use to reach that Postgres (default: the DSN's host and "
           "port).", check=_cluster_host_problem),
    Option("--jobs", "jobs", "Scenarios rehearsed side by side on the one cluster and Postgres (each in its own "
           "namespace and database; scenarios whose faults freeze shared infrastructure run alone).",
           default=1, integer=True, short="-j", check=_jobs_problem),
    Option("--shard", "shard", "Rehearse only shard K/N of the scenarios (K from 1 to N), split in balance by "
           "the last durations in REPORT_DIR/history.jsonl; merge the shards' report directories with "
           "`rehearse report merge`.", check=_shard_problem, parse=Shard.parse, metavar="K/N"),
)


def session_options(values: Mapping[str, Any]) -> SessionOptions:
    """SessionOptions from option values keyed by `Option.dest` (absent: the default); OptionError
    lists every value that cannot be used."""
    given = {o: o.value(values.get(o.dest, o.default)) for o in OPTIONS}
    problems = [p for o, v in given.items() if o.check is not None and (p := o.check(v)) is not None]
    if problems:
        raise OptionError("\n".join(problems))
    return SessionOptions(**{o.field: o.parse(v) if o.parse is not None and v is not None else v
                             for o, v in given.items()})


# ── rehearse run ────────────────────────────────────────────────────────────
def _click_option(opt: Option) -> Callable[[F], F]:
    kwargs: dict[str, Any] = {"default": opt.default, "help": opt.help, "envvar": opt.envvar,
                              "show_envvar": opt.envvar is not None}
    if opt.is_flag:
        kwargs["is_flag"] = True
    else:
        kwargs["show_default"] = opt.default is not None
    if opt.path:
        kwargs["type"] = click.Path(path_type=Path, exists=opt.must_exist)
    if opt.integer:
        kwargs["type"] = int
    if opt.metavar:
        kwargs["metavar"] = opt.metavar
    names = [opt.flag, *([opt.short] if opt.short else [])]
    return click.option(*names, opt.dest, **kwargs)


def click_options(fn: F) -> F:
    """Decorate a click command with every session option (listed in table order)."""
    for opt in reversed(OPTIONS):
        fn = _click_option(opt)(fn)
    return fn


# ── pytest ──────────────────────────────────────────────────────────────────
def add_pytest_options(group: pytest.OptionGroup, kind_options_present: bool) -> None:
    """Add the session options to pytest, leaving out pytest-kind's when its definitions are already there."""
    for opt in OPTIONS:
        if opt.pytest_kind and kind_options_present:
            continue
        help_text = opt.help if opt.default in (None, False) else f"{opt.help} (default: {opt.default})"
        if opt.is_flag:
            group.addoption(opt.flag, action="store_true", default=opt.default, help=help_text)
        else:
            group.addoption(opt.flag, default=opt.default, help=help_text, **({"type": int} if opt.integer else {}),
                            **({"metavar": opt.metavar} if opt.metavar else {}))


def session_options_from_pytest(config: pytest.Config) -> SessionOptions:
    values = {o.dest: config.getoption(o.dest, o.default) for o in OPTIONS}
    if values["cluster_name"] == PYTEST_KIND_DEFAULT_NAME:
        values["cluster_name"] = DEFAULT_CLUSTER_NAME
    return session_options(values)
