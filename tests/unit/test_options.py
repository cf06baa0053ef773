"""The option table (harness/options.py): `rehearse run` and pytest offer the same session options.

Nothing here starts a session: `open_session` is replaced by a recorder.
"""

from __future__ import annotations

import argparse
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import click
import pytest
from click.testing import CliRunner
from pytest_kind import plugin as pytest_kind_plugin

from harness import options, pytest_plugin, session
from harness.cli import cli
from harness.options import OPTIONS, SessionOptions, session_options, session_options_from_pytest

CLI_ONLY = {"--against-expect"}


def _click_params() -> dict[str, click.Option]:
    command = cli.commands["run"]
    return {opt: p for p in command.params if isinstance(p, click.Option) for opt in p.opts}


def _pytest_parser(kind_first: bool = False) -> pytest.Parser:
    """A fresh parser with the plugin's options (after pytest-kind's own, when it came first)."""
    parser = pytest.Parser(_ispytest=True)
    if kind_first:
        pytest_kind_plugin.pytest_addoption(parser)
    options.add_pytest_options(parser.getgroup("rollback-rehearsal"), kind_options_present=kind_first)
    return parser


def _pytest_arguments(parser: pytest.Parser) -> dict[str, Any]:
    return {name: arg for group in parser._groups for arg in group.options for name in arg.names()}


def _pytest_config(parser: pytest.Parser, args: list[str]) -> Any:
    """What session_options_from_pytest reads of a pytest.Config: getoption(dest, default)."""
    ns = parser.parse(args, argparse.Namespace())
    return SimpleNamespace(getoption=lambda name, default=None: getattr(ns, name, default))


def test_every_shared_option_has_the_same_name_default_and_help() -> None:
    clicks = _click_params()
    pytests = _pytest_arguments(_pytest_parser())
    shorts = {o.short for o in OPTIONS if o.short}  # `rehearse run` only: pytest reserves lower-case short options
    assert shorts == {"-j"} and all(clicks[o.short] is clicks[o.flag] for o in OPTIONS if o.short)
    assert set(clicks) - CLI_ONLY - shorts == set(pytests) == {o.flag for o in OPTIONS}
    for flag, arg in pytests.items():
        param, attrs = clicks[flag], arg.attrs()
        assert param.default == attrs["default"], flag
        assert param.is_flag == (attrs.get("nargs") == 0), flag  # store_true takes no argument
        assert param.help and attrs["help"].startswith(param.help), flag
    assert pytests["--cluster-name"].attrs()["default"] == "rehearsal" == SessionOptions().cluster_name


def test_both_sides_build_the_same_default_session_options() -> None:
    assert session_options_from_pytest(_pytest_config(_pytest_parser(), [])) == SessionOptions()
    assert session_options({}) == SessionOptions()


def test_pytest_options_reach_session_options(tmp_path: Path) -> None:
    args = ["--cluster-name", "c1", "--keep-cluster", "--reuse-cluster", "--kubeconfig", str(tmp_path),
            "--kind-image", "node:v1", "--database-dsn", "postgresql://u:p@db:6543/postgres",
            "--database-cluster-host", "pods.example", "--report-dir", "out"]
    opts = session_options_from_pytest(_pytest_config(_pytest_parser(), args))
    assert opts == SessionOptions(cluster_name="c1", keep_cluster=True, reuse_cluster=True, kubeconfig=tmp_path,
                                  node_image="node:v1", database_dsn="postgresql://u:p@db:6543/postgres",
                                  database_cluster_host="pods.example", report_dir=Path("out"))


def test_pytest_kinds_definitions_stand_when_it_came_first(tmp_path: Path) -> None:
    parser = _pytest_parser(kind_first=True)
    ours = {n for arg in parser.getgroup("rollback-rehearsal").options for n in arg.names()}
    assert ours == {o.flag for o in OPTIONS if not o.pytest_kind}
    kinds = {n for arg in parser.getgroup("kind").options for n in arg.names()}
    assert {o.flag for o in OPTIONS if o.pytest_kind} <= kinds  # each defined once, by pytest-kind
    # pytest-kind's default name means "not chosen": the rehearsal default applies.
    assert session_options_from_pytest(_pytest_config(parser, [])) == SessionOptions()
    opts = session_options_from_pytest(_pytest_config(parser, ["--cluster-name", "mine", "--kubeconfig",
                                                               str(tmp_path), "--kind-image", "img"]))
    assert (opts.cluster_name, opts.kubeconfig, opts.node_image) == ("mine", tmp_path, "img")


class _PluginManager:
    def __init__(self, kind: object | None) -> None:
        self.plugins = {"pytest-kind": kind} if kind is not None else {}
        self.blocked: list[str] = []

    def get_plugin(self, name: str) -> object | None:
        return self.plugins.get(name)

    def unregister(self, plugin: object) -> None:
        self.plugins = {k: v for k, v in self.plugins.items() if v is not plugin}

    def set_blocked(self, name: str) -> None:
        self.blocked.append(name)


def test_the_plugin_takes_pytest_kinds_place(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pytest_plugin, "_kind_options_present", False)
    pm = _PluginManager(kind=object())  # pytest-kind registered first: unregistered, its options stay
    pytest_plugin.pytest_addhooks(pm)  # type: ignore[arg-type]
    assert pm.plugins == {} and pm.blocked == [] and pytest_plugin._kind_options_present is True
    pm = _PluginManager(kind=None)  # not yet registered: blocked, our options are added
    pytest_plugin.pytest_addhooks(pm)  # type: ignore[arg-type]
    assert pm.blocked == ["pytest-kind"] and pytest_plugin._kind_options_present is False


# ── rehearse run ────────────────────────────────────────────────────────────
@pytest.fixture
def opened(monkeypatch: pytest.MonkeyPatch) -> list[SessionOptions]:
    """Replace open_session: record its options and fail as if the infrastructure could not be provided."""
    seen: list[SessionOptions] = []

    @contextmanager
    def fake(opts: SessionOptions) -> Iterator[Any]:
        seen.append(opts)
        raise RuntimeError("no infrastructure in unit tests")
        yield  # pragma: no cover

    monkeypatch.setattr(session, "open_session", fake)
    return seen


def test_rehearse_run_builds_session_options_from_the_table(opened: list[SessionOptions], tmp_path: Path,
                                                             kit: Any) -> None:
    d = kit.write_scenario(tmp_path, "one")
    args = ["run", str(d), "--cluster-name", "c2", "--kind-image", "node:v2", "--database-cluster-host", "h.example",
            "--report-dir", str(tmp_path / "r"), "--reuse-cluster"]
    result = CliRunner().invoke(cli, args, env={"REHEARSAL_DATABASE_DSN": "postgresql://a:b@c/d"})
    assert result.exit_code == 3, result.output  # EXIT_INFRA: the recorder refused to start
    assert opened == [SessionOptions(cluster_name="c2", node_image="node:v2", database_cluster_host="h.example",
                                     database_dsn="postgresql://a:b@c/d", report_dir=tmp_path / "r",
                                     reuse_cluster=True)]


def test_rehearse_run_defaults_are_the_session_defaults(opened: list[SessionOptions], tmp_path: Path,
                                                        kit: Any) -> None:
    d = kit.write_scenario(tmp_path, "one")
    result = CliRunner().invoke(cli, ["run", str(d)], env={"REHEARSAL_DATABASE_DSN": None})
    assert result.exit_code == 3, result.output
    assert opened == [SessionOptions()]


def test_rehearse_run_refuses_a_missing_kubeconfig(opened: list[SessionOptions], tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["run", "--kubeconfig", str(tmp_path / "nope")])
    assert result.exit_code == 2 and "does not exist" in result.output and opened == []


def test_empty_optional_path_is_not_given_but_an_empty_report_dir_is_the_cwd() -> None:
    assert session_options({"kubeconfig": "", "report_dir": ""}) == SessionOptions(report_dir=Path("."))


# ── values that cannot be used: exit 2 (CLI) or a usage error (pytest), before anything starts ──
@pytest.mark.parametrize("name", ["../x", "", "Rehearsal", "a/b", "x" * 51, "-x", "a..b", "a_b", "a\0b"])
def test_a_bad_cluster_name_is_a_usage_error_before_anything_starts(name: str, opened: list[SessionOptions],
                                                                      tmp_path: Path, kit: Any) -> None:
    d = kit.write_scenario(tmp_path, "one")
    result = CliRunner().invoke(cli, ["run", str(d), f"--cluster-name={name}"])
    assert result.exit_code == 2, result.output
    assert "is not a kind cluster name" in result.output and opened == []
    with pytest.raises(options.OptionError, match="Fix: "):
        session_options_from_pytest(_pytest_config(_pytest_parser(), [f"--cluster-name={name}"]))


@pytest.mark.parametrize("name", ["rehearsal", "rr-dev", "c1", "a.b-2", "x" * 50])
def test_kind_cluster_names_are_accepted(name: str) -> None:
    assert session_options({"cluster_name": name}).cluster_name == name



def test_an_infrastructure_error_never_prints_the_admin_password(monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                                                  kit: Any) -> None:
    @contextmanager
    def refuse(opts: SessionOptions) -> Iterator[Any]:
        raise RuntimeError(f"connection to {opts.database_dsn} refused")
        yield  # pragma: no cover

    monkeypatch.setattr(session, "open_session", refuse)
    d = kit.write_scenario(tmp_path, "one")
    result = CliRunner().invoke(cli, ["run", str(d), "--database-dsn", "postgresql://admin:s3cr%40tpw@db:5432/x"])
    assert result.exit_code == 3 and "connection to" in result.output
    assert "s3cr" not in result.output, result.output


def test_jobs_is_a_whole_number_from_one_both_ways() -> None:
    parser = _pytest_parser()
    assert session_options_from_pytest(_pytest_config(parser, ["--jobs", "3"])).jobs == 3
    assert session_options({}).jobs == 1 == SessionOptions().jobs
    for bad in (0, -1, 33, "x", True):
        with pytest.raises(options.OptionError, match="--jobs .* Fix: a whole number from 1 to 32"):
            session_options({"jobs": bad})
    assert session_options({"jobs": "4"}).jobs == 4  # as pytest-kind style string options arrive


@pytest.mark.parametrize(("given", "host", "port"), [("db.internal", "db.internal", None), ("10.0.0.5:5432", "10.0.0.5", 5432),
                                                     ("[fd00::5]:6543", "fd00::5", 6543)])
def test_the_database_cluster_host_may_name_a_port(given: str, host: str, port: int | None) -> None:
    assert session_options({"database_cluster_host": given}).database_cluster_host == given
    assert options.split_host_port(given) == (host, port)


@pytest.mark.parametrize("bad", ["db:x", "db:70000", ":5432", "u:p@db", "db/x", ""])
def test_a_database_cluster_host_that_is_not_host_port_is_refused(bad: str) -> None:
    with pytest.raises(options.OptionError, match="--database-cluster-host .* is not HOST or HOST:PORT. Fix: "):
        session_options({"database_cluster_host": bad})
