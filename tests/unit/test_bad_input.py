"""Every bad input → exit 2, every problem listed (file, field, fix), no traceback.

A corpus of malformed scenarios is generated from the CASES table (symlink
loops and NUL bytes can only be made at test time) and run through
`rehearse validate`, `list`, `check` and pytest collection.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner

from harness.cli import cli
from harness.preflight import INPUTS, run_checks
from harness.scenario import ScenarioError, load_all, load_scenario
from harness.runbook_commands import MAX_RUNBOOK_BYTES, MAX_SHELL_BLOCKS
from harness.scenario.reading import MAX_SCENARIO_BYTES, MAX_TEXT_FILE_BYTES

pytest_plugins = ["pytester"]
REPO = Path(__file__).resolve().parents[2]

Mutate = Callable[[Path], None]
LATIN1 = "caf\xe9 cr\xe8me".encode("latin-1")  # valid Latin-1, invalid UTF-8
RUNBOOK = "# demo\n\n## Rollback\n\n```sh\nkubectl rollout undo deployment/demo\n```\n"


def _minimal(**overrides: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "app": {"manifests": "app.yaml", "workloads": [{"deployment": "demo"}]},
        "versions": {"good": {"image": "demo:v1"}, "bad": {"image": "demo:v2"}},
        "failure": {"mode": "crashloop"},
    }
    doc.update(overrides)
    return doc


# ── mutations: each makes one scenario directory bad in one way ─────────
def doc(**overrides: Any) -> Mutate:
    return raw(yaml.safe_dump(_minimal(**overrides), sort_keys=False))


def nested(path: str, value: Any) -> Mutate:
    """The minimal document with one dotted field set (e.g. versions.good.build)."""
    d = _minimal()
    *parents, last = path.split(".")
    cur = d
    for part in parents:
        cur = cur.setdefault(part, {})
    cur[last] = value
    return raw(yaml.safe_dump(d, sort_keys=False))


def raw(content: str | bytes) -> Mutate:
    return put("scenario.yaml", content)


def put(rel: str, content: str | bytes) -> Mutate:
    def apply(d: Path) -> None:
        target = d / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        if target.is_symlink() or target.is_file():
            target.unlink()
        target.write_bytes(content if isinstance(content, bytes) else content.encode())
    return apply


def mkdir(rel: str) -> Mutate:
    def apply(d: Path) -> None:
        target = d / rel
        if target.is_file():
            target.unlink()
        target.mkdir(parents=True, exist_ok=True)
    return apply


def loop(rel: str, via: str | None = None) -> Mutate:
    """rel → rel (or rel → via → rel): a symlink loop."""
    def apply(d: Path) -> None:
        target = d / rel
        if target.exists() or target.is_symlink():
            target.unlink()
        if via is None:
            target.symlink_to(rel)
        else:
            (d / via).symlink_to(rel)
            target.symlink_to(via)
    return apply


def both(*mutations: Mutate) -> Mutate:
    def apply(d: Path) -> None:
        for m in mutations:
            m(d)
    return apply


@dataclass(frozen=True)
class Case:
    id: str
    mutate: Mutate
    expect: tuple[tuple[str, str], ...]  # (field, words in the message), each must be listed


def case(id: str, mutate: Mutate, *expect: tuple[str, str]) -> Case:
    return Case(id, mutate, expect)


def _deep(levels: int) -> list[Any]:
    out: list[Any] = []
    for _ in range(levels):
        out = [out]
    return out


DEEP_FLOW = "app: " + "[" * 5000 + "]" * 5000 + "\n"
DEEP_BLOCK = "".join("  " * i + f"k{i}:\n" for i in range(200)) + "  " * 200 + "x: 1\n"
MANY_BLOCKS = "# demo\n\n## Rollback\n\n```sh\ntrue\n```\n" + "~~~\n~~~\n" * MAX_SHELL_BLOCKS  # within the size limit
KUSTOMIZE = both(mkdir("k"), put("k/kustomization.yaml", b"resources: [app.yaml]\n# " + LATIN1),
                 put("k/app.yaml", "kind: List\n"), doc(app={"manifests": "k", "workloads": [{"deployment": "demo"}]}))
MIGRATIONS = {"up": "migrate up", "files": "migrations"}

CASES: list[Case] = [
    # decoding
    case("yaml-latin1", raw(b"description: " + LATIN1 + b"\n"), ("(file)", "not UTF-8")),
    case("yaml-utf16", raw("name: x\n".encode("utf-16")), ("(file)", "not UTF-8")),
    case("runbook-latin1", put("runbook.md", b"# R\n## Rollback\n" + LATIN1), ("runbook.file", "not UTF-8")),
    case("manifest-latin1", put("app.yaml", b"kind: List # " + LATIN1), ("app.manifests", "not UTF-8")),
    case("manifest-dir-latin1", both(mkdir("m"), put("m/a.yaml", "kind: List\n"), put("m/b.yml", LATIN1),
                                     doc(app={"manifests": "m", "workloads": [{"deployment": "demo"}]})),
         ("app.manifests", "b.yml is not UTF-8")),
    case("kustomization-latin1", KUSTOMIZE, ("app.manifests", "kustomization.yaml is not UTF-8")),
    case("migration-latin1", both(mkdir("migrations"), put("migrations/0001_a.up.sql", b"-- " + LATIN1),
                                  doc(migrations=MIGRATIONS)), ("migrations.files", "0001_a.up.sql is not UTF-8")),
    case("yaml-nul-byte", raw("name: a\x00b\n"), ("(yaml)", "special characters")),
    # nesting, shape, emptiness, syntax
    case("deep-flow", raw(DEEP_FLOW), ("(yaml)", "nested more than")),
    case("deep-block", raw(DEEP_BLOCK), ("(yaml)", "nested more than")),
    case("deep-in-field", doc(description=_deep(80)),
         ("(yaml)", "nested more than")),
    case("yaml-list", raw("- app\n- versions\n"), ("(document)", "mapping")),
    case("yaml-scalar", raw("just text\n"), ("(document)", "mapping")),
    case("yaml-empty", raw(""), ("(document)", "empty")),
    case("yaml-comments-only", raw("# nothing here\n"), ("(document)", "empty")),
    case("yaml-syntax", raw("app: [unclosed\n"), ("(yaml)", "line")),
    case("app-is-a-list", doc(app=["manifests"]), ("app", "")),
    # duplicate keys
    case("dup-top-key", raw(yaml.safe_dump(_minimal(), sort_keys=False) + "failure: {mode: smoke}\n"),
         ("(yaml)", "duplicate key 'failure'")),
    case("dup-nested-key", raw("app: {manifests: app.yaml, manifests: b.yaml, workloads: [{deployment: demo}]}\n"),
         ("(yaml)", "duplicate key 'manifests'")),
    case("dup-variable", raw(yaml.safe_dump(_minimal(), sort_keys=False) + "variables:\n  A: x\n  A: y\n"),
         ("(yaml)", "duplicate key 'A' (first on line")),
    # symlink loops
    case("loop-scenario-yaml", loop("scenario.yaml"), ("(path)", "symlink loop")),
    case("loop-runbook", loop("runbook.md"), ("runbook.file", "symlink loop")),
    case("loop-manifests", loop("app.yaml", via="other.yaml"), ("app.manifests", "symlink loop")),
    case("loop-migrations", both(loop("migrations"), doc(migrations=MIGRATIONS)), ("migrations.files", "symlink loop")),
    # wrong file types
    case("scenario-yaml-is-dir", mkdir("scenario.yaml"), ("(file)", "is a directory")),
    case("runbook-is-dir", mkdir("runbook.md"), ("runbook.file", "is a directory, not a file")),
    case("seed-is-dir", both(mkdir("seed.sql"), doc(database={"seed": "seed.sql"})), ("database.seed", "a directory")),
    case("migrations-is-file", both(put("migrations", "x"), doc(migrations=MIGRATIONS)),
         ("migrations.files", "a file, not a directory")),
    case("build-context-is-file", both(put("ctx", "x"), nested("versions.good.build", {"context": "ctx"})),
         ("versions.good.build.context", "a file, not a directory")),
    # NUL bytes and over-long names in path fields
    case("runbook-nul", doc(runbook={"file": "run\x00book.md"}), ("runbook.file", "NUL byte")),
    case("manifests-nul", doc(app={"manifests": "app\x00.yaml", "workloads": [{"deployment": "demo"}]}),
         ("app.manifests", "NUL byte")),
    case("runbook-long-name", doc(runbook={"file": "r" * 300 + ".md"}), ("runbook.file", "more than the limit")),
    case("manifests-long-path", doc(app={"manifests": "a/" * 2100 + "x.yaml", "workloads": [{"deployment": "demo"}]}),
         ("app.manifests", "more than the limit")),
    case("seed-long-name", doc(database={"seed": "s" * 256}), ("database.seed", "more than the limit")),
    # runbook structure
    case("unclosed-fence", put("runbook.md", "# R\n\n## Rollback\n\n```sh\nkubectl rollout undo deployment/demo\n"),
         ("runbook.file", "line 5")),
    case("unclosed-fence-swallows-section",
         put("runbook.md", "# R\n\n## Deploy\n\n```sh\nkubectl apply -f x\n\n## Rollback\n\n```sh\nundo\n```\n"),
         ("runbook.file", "line 5: the code fence ```sh opened here is never closed")),
    case("unclosed-tilde-fence", put("runbook.md", "# R\n## Rollback\n~~~bash\nundo\n```\n"), ("runbook.file", "line 3")),
    case("too-many-blocks", put("runbook.md", MANY_BLOCKS), ("runbook.file", "code blocks, more than the limit")),
    case("runbook-missing-section", put("runbook.md", "# R\n## Deploy\n```sh\nx\n```\n"),
         ("runbook.section", "no section 'Rollback'")),
    # size limits
    case("scenario-too-big", raw("description: '" + "x" * MAX_SCENARIO_BYTES + "'\n"), ("(file)", "more than the limit")),
    case("runbook-too-big", put("runbook.md", RUNBOOK + "x" * MAX_RUNBOOK_BYTES), ("runbook.file", "more than the limit")),
    case("manifest-too-big", put("app.yaml", b"#" * (MAX_TEXT_FILE_BYTES + 1)), ("app.manifests", "more than the limit")),
    # variable values substituted into manifests
    case("variable-newline", doc(variables={"X": "a\nkind: Secret"}), ("variables.X.value", "'\\n'")),
    case("variable-document", doc(variables={"X": {"value": "x\n---\nkind: Secret", "secret": True}}),
         ("variables.X.value", "line break")),
    case("variable-line-separator", doc(variables={"X": "a\u2028b"}), ("variables.X.value", "'\\u2028'")),
    case("variable-escape", doc(variables={"X": "\x1b[31mred"}), ("variables.X.value", "control character")),
    # cross-field rules beside a sibling field's error
    case("reserved-beside-bad-value", doc(variables={"NAMESPACE": "x", "Y": "a\nb"}),
         ("variables", "NAMESPACE is set by the harness"), ("variables.Y.value", "line break")),
    case("registry-beside-bad-version",
         doc(registry={"repository": "demo"}, versions={"good": {"tag": "abc"}, "bad": {"image": "demo:v2"}}),
         ("registry", "versions.bad.tag is required"), ("versions.good.image", "required")),
    case("pass-env-beside-bad-variables", doc(pass_env=["PATH"], variables={"lower": "x"}),
         ("pass_env", "cannot pass PATH"), ("variables.lower.[key]", "pattern")),
    case("many-problems-at-once",
         both(put("runbook.md", LATIN1), loop("app.yaml"), doc(expect="MAYBE", variables={"HOME": "x"})),
         ("runbook.file", "not UTF-8"), ("app.manifests", "symlink loop"), ("expect", "READY"),
         ("variables", "HOME")),
]


def _write_case(base: Path, c: Case) -> Path:
    d = base / c.id
    d.mkdir(parents=True)
    (d / "scenario.yaml").write_text(yaml.safe_dump(_minimal(), sort_keys=False))
    (d / "runbook.md").write_text(RUNBOOK)
    (d / "app.yaml").write_text("apiVersion: v1\nkind: List\nitems: []\n")
    c.mutate(d)
    return d


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    base = tmp_path_factory.mktemp("corpus")
    for c in CASES:
        _write_case(base, c)
    dup_a, dup_b = base / "dup-name-a", base / "dup-name-b"
    for d in (dup_a, dup_b):
        _write_case(base, Case(d.name, doc(name="same-name"), ()))
    return base


def _invoke(*args: str) -> tuple[int, str]:
    res = CliRunner().invoke(cli, list(args))
    assert res.exception is None or isinstance(res.exception, SystemExit), res.exc_info
    return res.exit_code, res.output


def _listed(output: str, c: Case) -> None:
    flat = " ".join(output.split())  # rich may fold long lines
    for field, words in c.expect:
        assert f": {field}: " in flat, f"{c.id}: no problem on {field}\n{output}"
        line = next(ln for ln in output.splitlines() if f": {field}: " in ln)
        assert " ".join(words.split()) in flat, f"{c.id}: {field}: expected {words!r}\n{output}"
        assert line.strip()
    assert "fix: " in output and "Traceback" not in output


def test_the_corpus_is_big_enough() -> None:
    assert len(CASES) >= 40 and len({c.id for c in CASES}) == len(CASES)


@pytest.mark.parametrize("c", CASES, ids=[c.id for c in CASES])
def test_validate_lists_every_problem_fast(corpus: Path, c: Case) -> None:
    t0 = time.monotonic()
    code, out = _invoke("validate", str(corpus / c.id))
    elapsed = time.monotonic() - t0
    assert code == 2, out
    _listed(out, c)
    assert elapsed < 2, f"{c.id}: {elapsed:.2f} s"


@pytest.mark.parametrize("command", ["list", "check"])
@pytest.mark.parametrize("c", CASES[::5], ids=[c.id for c in CASES[::5]])
def test_list_and_check_exit_2(corpus: Path, c: Case, command: str) -> None:
    code, out = _invoke(command, str(corpus / c.id))
    assert code == 2, out
    _listed(out, c)


def test_one_bad_scenario_hides_no_other(corpus: Path) -> None:
    """The whole corpus at once: every case's problems, both duplicate names, one exit 2."""
    code, out = _invoke("validate", str(corpus))
    assert code == 2
    for c in CASES:
        _listed(out, c)
    flat = " ".join(out.split())
    assert flat.count("scenario name 'same-name' is used 2 times") == 2


def test_loader_raises_only_scenario_errors(corpus: Path) -> None:
    for c in CASES:
        with pytest.raises(ScenarioError):
            load_scenario(corpus / c.id)
    with pytest.raises(ScenarioError):
        load_all([corpus])


@pytest.mark.parametrize(("arg", "words"), [
    ("bad\x00path", "NUL byte"),
    ("n" * 300, "more than the limit"),
    ("does/not/exist", "does not exist"),
])
def test_command_line_paths(corpus: Path, arg: str, words: str) -> None:
    for command in ("validate", "list", "check"):
        code, out = _invoke(command, str(corpus / "yaml-list"), arg)
        assert code == 2 and ": (path): " in out and words in " ".join(out.split()), out
        assert "(document)" in out  # the other path's problems are still listed


def test_pytest_collection_errors_for_every_bad_scenario(corpus: Path, pytester: pytest.Pytester,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    # the subprocess must import this checkout's harness, not whichever one the venv has installed
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]))
    result = pytester.runpytest_subprocess("--collect-only", "-q", "-p", "no:cacheprovider", str(corpus))
    out = result.stdout.str()
    # pytest collects files: a scenario.yaml that is a symlink loop or a directory is not one (validate reports them)
    not_files = {"loop-scenario-yaml", "scenario-yaml-is-dir"}
    bad = len(CASES) + 2 - len(not_files)
    assert result.ret == pytest.ExitCode.INTERRUPTED, out
    assert f"{bad} errors" in out, out
    assert "Traceback" not in out and "RecursionError" not in out
    assert out.count("scenario name 'same-name' is used 2 times") >= 2
    flat = " ".join(out.split())
    for c in CASES:
        if c.id not in not_files:
            assert f"{c.id}/scenario.yaml" in out, c.id
            assert all(f": {field}: " in flat and " ".join(words.split()) in flat for field, words in c.expect), c.id


def test_symlinks_really_loop(corpus: Path) -> None:
    """The loop cases are what they claim (guards against a platform quietly making them plain files)."""
    with pytest.raises(OSError):
        os.stat(corpus / "loop-runbook" / "runbook.md")


def test_preflight_turns_files_unreadable_after_validation_into_inputs_findings(tmp_path: Path) -> None:
    """check reads manifests, migrations and the runbook again: a file that went bad meanwhile (or one
    validation does not read) is an `inputs` warning, never a crash."""
    d = _write_case(tmp_path, Case("ok", both(mkdir("migrations"), put("migrations/0001_a.up.sql", "select 1;"),
                                              put("migrations/0001_a.down.sql", "select 1;"),
                                              doc(migrations=MIGRATIONS)), ()))
    scenario = load_scenario(d)
    (d / "app.yaml").write_bytes(b"kind: List # " + LATIN1)
    (d / "migrations" / "0001_a.up.sql").write_bytes(LATIN1)
    (d / "runbook.md").unlink()
    (d / "runbook.md").symlink_to("runbook.md")
    findings = run_checks(scenario)
    inputs = sorted(f.message.split(":")[0] for f in findings if f.check == INPUTS)
    assert inputs == ["cannot read the manifests, manifest checks skipped",
                      "cannot read the migration, its checks skipped",
                      "cannot read the runbook, runbook checks skipped"], findings
