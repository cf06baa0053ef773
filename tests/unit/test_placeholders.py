"""Placeholders (harness/placeholders.py) and skip markers (harness/runbook_commands.py): found, bound,
substituted, validated. Substitution is checked against bash itself: the word bash sees is the value.

Pure files and bash only: nothing here starts a cluster, a container or a database.
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from harness import placeholders as ph
from harness import tools
from harness.cli import cli
from harness.context import RehearsalContext
from harness.journal import Journal
from harness.providers.database import DatabaseHandle, ExistingDsnProvider
from harness.providers.factory import Infrastructure
from harness.runbook_commands import MarkerError, Step, all_commands, parse_runbook
from harness.scenario import ScenarioError, load_all, load_scenario

REPO = Path(__file__).resolve().parents[2]
UNBOUND_FIXTURE = REPO / "tests" / "data" / "placeholders" / "unbound"
ENV = ph.env_names(["FEATURE"], ["CI_TOKEN"], registry=False)


def found(*commands: str, bound: dict[str, str] | None = None, skip: dict[int, str] | None = None,
          env: frozenset[str] = ENV) -> list[tuple[str, str, int]]:
    """(form, text, line) of each unbound placeholder; command k is step k on line 10 * k."""
    steps = [Step(k, c, 10 * k, skip=(skip or {}).get(k)) for k, c in enumerate(commands, 1)]
    return [(p.form, p.text, p.line) for p in ph.unbound(steps, bound or {}, env)]


# ══ what is a placeholder ══════════════════════════════════════════════════
@pytest.mark.parametrize(("command", "want"), [
    ('kubectl -n "$NAMESPACE" rollout undo deployment/web --to-revision=<N>', [("angle", "<N>", 10)]),
    ("kubectl rollout undo deployment/<name> -n x", [("angle", "<name>", 10)]),
    ("pg_restore -d db /backups/<date>.dump", [("angle", "<date>", 10)]),
    ('helm rollback "<release>" 3', [("angle", "<release>", 10)]),
    ("kubectl patch x -p '{\"spec\":{\"replicas\":<N>}}'", [("angle", "<N>", 10)]),
    ("echo {{ release }} \"{{release}}\"", [("braces", "{{ release }}", 10), ("braces", "{{release}}", 10)]),
    ("cat <<EOF\nrevision: <N>\nEOF", [("angle", "<N>", 11)]),
    ("cat <<'EOF'\nrevision: <N>\nEOF", [("angle", "<N>", 11)]),  # a person still fills it in
    ('echo "$TICKET"', [("variable", "$TICKET", 10)]),
    ("echo ${TICKET}", [("variable", "${TICKET}", 10)]),
    ('echo "${TICKET:?set the ticket}"', [("variable", "${TICKET}", 10)]),  # :? demands a value
    ("echo $USER $TERM", [("variable", "$USER", 10), ("variable", "$TERM", 10)]),  # not in the runbook env
    ("X=1 echo $X", [("variable", "$X", 10)]),  # a prefix assignment is not set for the command's own words
    ("cat <<EOF\nby $OPERATOR\nEOF", [("variable", "$OPERATOR", 11)]),
    ('echo "$(kubectl get deploy <name>)"', [("angle", "<name>", 10)]),
    ("echo $REGISTRY", [("variable", "$REGISTRY", 10)]),  # only set with `registry`
])
def test_placeholders_people_fill_in_are_found(command: str, want: list[tuple[str, str, int]]) -> None:
    assert found(command) == want


@pytest.mark.parametrize("command", [
    "cat <<EOF\nplain text\nEOF",
    "cat <<-EOF\n\tplain\n\tEOF",
    "cat <<EOF>out.txt\nplain\nEOF",
    "sort < in.txt > out.txt 2>&1",
    "cmd >/dev/null 2>&1 </dev/null",
    "diff <(ls a) <(ls b)",
    "cat <<<word",
    "cat <<<word>out",
    "a=1; b=2; [[ $a < $b ]] && echo less",
    "n=3; (( i<n )) && echo less",
    "echo $(( 1<2 )) $(( 4>3 ))",
    "(( a<b>c )) || true",
    "kubectl get x  # fill in <N> and $LATER",
    "echo '$NOT_EXPANDED' \\$ESCAPED \"\\$ESCAPED_TOO\"",
    "cat <<'EOF'\n$NOT_EXPANDED\nEOF",
    'echo "${MAYBE:-default}" ${UNSET:+x} ${D:=1}',
    "kubectl get pods -o go-template='{{range .items}}{{.metadata.name}}{{end}}' {{ else }}",
    "echo '<b>bold</b>'",
    "grep '\\<word\\>' file",
    "cat <in>>out",
    "echo $1 $? $@ $# $$ $! $0 $PWD $RANDOM $HOME $NAMESPACE $DATABASE_URL $FEATURE $CI_TOKEN $REPLY",
    "for d in a b; do echo \"$d\"; done",
    'read -r -p "revision? " REV; echo "$REV"',
    "read -a ARR; echo ${ARR[0]}",
    "export X=1; echo $X",
    "f() { local Y=2; echo $Y; }",
    "declare -A M; echo ${M[k]}",
    "mapfile -t LINES < f; echo ${LINES[0]}",
    "printf -v P %s x; echo $P",
    "K+=1; L[0]=x; echo $K ${L[0]}",
    "while read -r ns name; do echo \"$ns/$name\"; done < list",
])
def test_what_is_not_a_placeholder(command: str) -> None:
    assert found(command) == []


def test_an_assignment_counts_from_where_it_is_made() -> None:
    assert found("NS=prod", 'kubectl -n "$NS" get pods') == []
    assert found('kubectl -n "$NS" get pods', "NS=prod") == [("variable", "$NS", 10)]
    assert found('echo "$NS"; NS=prod') == [("variable", "$NS", 10)]
    assert found("NS=$NS-x") == [("variable", "$NS", 10)]


def test_skipped_steps_need_no_binding_and_assign_nothing() -> None:
    assert found("page --to <oncall> $PAGER_KEY", skip={1: "paging"}) == []
    assert found("NS=prod", 'echo "$NS"', skip={1: "not here"}) == [("variable", "$NS", 20)]


def test_bindings_and_the_environment_bind() -> None:
    assert found("undo --to-revision=<N> {{ rel }} $TICKET", bound={"N": "1", "rel": "v1", "TICKET": "T-1"}) == []
    assert found("echo $REGISTRY $GOOD_TAG", env=ph.env_names([], [], registry=True)) == []
    assert ph.exported({"N": "1", "release-name": "x", "_x": "y"}) == {"N": "1", "_x": "y"}


# ══ substitution ══════════════════════════════════════════════════════════
def bound(command: str, **values: str) -> str:
    return ph.bind(Step(1, command, 1), values).command


def test_a_safe_value_goes_in_as_it_is() -> None:
    assert bound("kubectl rollout undo deployment/demo --to-revision=<N>", N="1") == \
        "kubectl rollout undo deployment/demo --to-revision=1"
    assert bound("echo {{ rel }} '<rel>' \"<rel>\"", rel="v1.2") == "echo v1.2 'v1.2' \"v1.2\""


def test_an_unsafe_value_is_quoted_as_one_word() -> None:
    assert bound("undo --to-revision=<N>", N="1 2") == "undo --to-revision='1 2'"
    assert bound("echo <N>", N="$(reboot)") == "echo '$(reboot)'"
    assert bound("cat <<EOF\n<N>\nEOF", N="$(x) `y` \\z") == "cat <<EOF\n\\$(x) \\`y\\` \\\\z\nEOF"


def test_comments_arithmetic_skipped_steps_and_unbound_names_are_left() -> None:
    assert bound("echo <N> # <N>", N="1") == "echo 1 # <N>"
    assert bound("(( a<N>b ))", N="1") == "(( a<N>b ))"
    assert bound("echo <M>", N="1") == "echo <M>"
    skipped = Step(1, "page <N>", 1, skip="paging")
    assert ph.bind(skipped, {"N": "1"}) is skipped


def words(script: str) -> list[str]:
    """The words bash gives `printf` (the script's `P` is printf with one word per line)."""
    out = subprocess.run(["bash", "-c", script.replace("P ", "printf '%s\\n' ", 1)], capture_output=True,
                         text=True, timeout=10, check=True)
    return out.stdout.split("\n")[:-1]


_VALUE = st.text(st.characters(blacklist_categories=("Cs", "Cc")), min_size=0, max_size=20).filter(
    lambda v: "\x85" not in v and "\u2028" not in v and "\u2029" not in v and "\n" not in v)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(value=_VALUE)
def test_any_value_is_one_literal_word_in_every_quoting(value: str) -> None:
    """Whatever the value, bash sees exactly it where the placeholder stood: unquoted, in double, single and
    $'...' quotes, inside $(...), and in an unquoted and a quoted heredoc."""
    script = bound("P x=<N> \"a <N> b\" 'c <N> d' $'e <N> f' \"$(echo \"<N>\")\"", N=value)
    assert words(script) == [f"x={value}", f"a {value} b", f"c {value} d", f"e {value} f", value.rstrip("\n")]
    for delimiter in ("EOF", "'EOF'"):
        heredoc = bound(f"cat <<{delimiter}\n[<N>]\nEOF", N=value)
        out = subprocess.run(["bash", "-c", heredoc], capture_output=True, text=True, timeout=10, check=True)
        assert out.stdout == f"[{value}]\n"


# ══ skip markers ══════════════════════════════════════════════════════════
RUNBOOK = """\
# runbook

## Rollback

<!-- rehearse: skip paging the on-call -->
```sh
page-oncall --now
page-oncall --again
```

Tell the channel. <!-- rehearse: skip chat is not for rehearsals -->

```sh
post-to-chat "rolling back"
```

```sh
kubectl rollout undo deployment/demo
# rehearse: skip   the ticket system is production's
#   (a plain comment may follow the marker)
open-ticket "rolled back"

kubectl rollout status deployment/demo
```

```console
# rehearse: skip a console block's marker has no prompt
$ notify
sample output
$ kubectl get pods
```
"""


def test_markers_skip_a_block_or_a_command_with_their_reason() -> None:
    steps = parse_runbook(RUNBOOK, "Rollback")
    assert [(s.index, s.line, s.skip) for s in steps] == [
        (1, 7, "paging the on-call"), (2, 8, "paging the on-call"), (3, 14, "chat is not for rehearsals"),
        (4, 18, None), (5, 21, "the ticket system is production's"), (6, 23, None),
        (7, 28, "a console block's marker has no prompt"), (8, 30, None)]


@pytest.mark.parametrize(("runbook", "line", "words"), [
    ("## Rollback\n\n<!-- rehearse: skip -->\n```sh\na\n```\n", 3, "without a reason"),
    ("## Rollback\n\n<!-- rehearse: skip   -->\n```sh\na\n```\n", 3, "without a reason"),
    ("## Rollback\n\n```sh\n# rehearse: skip\na\n```\n", 4, "without a reason"),
    ("## Rollback\n\n<!-- rehearse: run twice -->\n```sh\na\n```\n", 3, "unknown marker"),
    ("## Rollback\n\n<!-- rehearse: skip x -->\n\nSome text.\n\n```sh\na\n```\n", 3, "not followed by a shell"),
    ("## Rollback\n\n<!-- rehearse: skip x -->\n```yaml\na: 1\n```\n```sh\nb\n```\n", 3, "not followed by a shell"),
    ("## Rollback\n\n```sh\na\n# rehearse: skip x\n```\n", 5, "followed by no command"),
])
def test_a_wrong_marker_is_an_error_with_its_line(runbook: str, line: int, words: str) -> None:
    with pytest.raises(MarkerError) as exc:
        parse_runbook(runbook, "Rollback")
    (problem,) = exc.value.problems
    assert problem.line == line and words in problem.message and problem.fix


def test_every_wrong_marker_is_listed_and_other_sections_skip_nothing() -> None:
    runbook = ("## Rollback\n\n<!-- rehearse: skip -->\n```sh\na\n```\n\n```sh\nb\n# rehearse: skip\nc\n```\n\n"
               "## Other\n\n<!-- rehearse: nonsense -->\n```sh\nd\n```\n")
    with pytest.raises(MarkerError) as exc:
        parse_runbook(runbook, "Rollback")
    assert [p.line for p in exc.value.problems] == [3, 10]
    assert [s.skip for s in all_commands(runbook)] == [None, None, None, None]  # lenient outside the section


def test_an_html_comment_that_is_no_marker_changes_nothing() -> None:
    steps = parse_runbook("## Rollback\n\n<!-- TODO: rehearse this -->\n```sh\na\n```\n", "Rollback")
    assert [(s.command, s.skip) for s in steps] == [("a", None)]


# ══ validation: every problem at once, exit 2 ═══════════════════════════════
def test_validate_lists_every_unbound_placeholder_of_every_scenario(tmp_path: Path, kit: Any) -> None:
    rb = "## Rollback\n\n```sh\nkubectl rollout undo deployment/demo --to-revision=<REV>\necho $WHO\n```\n"
    kit.write_scenario(tmp_path, "second", runbook=rb)
    kit.write_scenario(tmp_path, "bound", kit.minimal_doc(runbook={"placeholders": {"REV": 2, "WHO": "me"}}),
                       runbook=rb)
    res = CliRunner().invoke(cli, ["validate", str(UNBOUND_FIXTURE), str(tmp_path)])
    assert res.exit_code == 2, res.output
    out = " ".join(res.output.split())
    for where in ("line 8: <N>", "line 9: {{ release }}", "line 10: $TICKET", "line 4: <REV>", "line 5: $WHO"):
        assert where in out
    assert "/bound/scenario.yaml" not in out and "runbook.placeholders: {N: \"...\"}" in out
    assert "Traceback" not in res.output


def test_loader_reports_markers_and_a_section_that_skips_everything(tmp_path: Path, kit: Any) -> None:
    bad = kit.write_scenario(tmp_path, "bad", runbook="## Rollback\n\n<!-- rehearse: skip -->\n```sh\na\n```\n"
                                                      "\n```sh\nb\n# rehearse: skip\n```\n")
    with pytest.raises(ScenarioError) as exc:
        load_scenario(bad)
    assert [p.message.split(":")[0] for p in exc.value.problems] == ["runbook.md line 3", "runbook.md line 10"]
    every = kit.write_scenario(tmp_path, "every", runbook="## Rollback\n\n<!-- rehearse: skip all -->\n```sh\na\n```\n")
    with pytest.raises(ScenarioError, match="would run nothing"):
        load_scenario(every)


@pytest.mark.parametrize(("placeholders", "words"), [
    ({"NAMESPACE": "x"}, "set by the harness"),
    ({"FEATURE": "x"}, "in `variables`"),
    ({"bad name": "x"}, "pattern"),
    ({"N": "1\nrm -rf /"}, "line break"),
])
def test_a_binding_that_cannot_be_used_is_a_problem(tmp_path: Path, kit: Any, placeholders: dict[str, str],
                                                    words: str) -> None:
    d = kit.write_scenario(tmp_path, "p", kit.minimal_doc(variables={"FEATURE": "on"},
                                                          runbook={"placeholders": placeholders}))
    with pytest.raises(ScenarioError) as exc:
        load_scenario(d)
    assert any(p.field.startswith("runbook.placeholders") and words in str(p) for p in exc.value.problems)


@pytest.mark.parametrize("pass_env", [["WHO"], [{"name": "WHO", "secret": True}]])
def test_a_passed_variable_is_bound(tmp_path: Path, kit: Any, pass_env: list[Any]) -> None:
    rb = "## Rollback\n\n```sh\necho \"$WHO\"\n```\n"
    assert load_scenario(kit.write_scenario(tmp_path, "p", kit.minimal_doc(pass_env=pass_env), runbook=rb))


def test_the_demo_scenarios_validate_and_bind(kit: Any) -> None:
    (session, paging) = load_all([kit.EXAMPLES / "runbook-session", kit.EXAMPLES / "skip-paging"])
    assert session.runbook.placeholders == {"N": "1"}
    assert [s.skip is not None for s in parse_runbook(
        (paging.directory / "runbook.md").read_text(), "Rollback")] == [True, False, True, False]


# ══ the environment the rehearsal gives the runbook ═════════════════════════
def test_the_builtins_are_what_the_runbook_environment_holds(tmp_path: Path, kit: Any,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    """RUNBOOK_BUILTINS / REGISTRY_BUILTINS and a bound placeholder's export, against ctx.runbook_env()."""
    monkeypatch.setattr(tools, "tool", lambda name: tmp_path / "bin" / name)
    monkeypatch.setenv("DOCKER_HOST", "unix:///x.sock")
    doc = kit.minimal_doc(registry={"repository": "demo"}, runbook={"placeholders": {"N": 1, "rel-name": "v"}},
                          versions={"good": {"image": "demo:v1", "tag": "a"}, "bad": {"image": "demo:v2", "tag": "b"}})
    scenario = load_scenario(kit.write_scenario(tmp_path, "env", doc))
    handle = DatabaseHandle(name="d", role="r", password="p", host_dsn="postgresql://h/d", cluster_dsn="postgresql://c/d")
    infra = Infrastructure(cluster=SimpleNamespace(kubeconfig=Path("/k"), name="k"),  # type: ignore[arg-type]
                           database=ExistingDsnProvider("postgresql://a:b@h/postgres"),
                           registry=SimpleNamespace(address="127.0.0.1:5001"))  # type: ignore[arg-type]
    ctx = RehearsalContext(scenario=scenario, infra=infra, journal=Journal(scenario="env", expect="READY"),
                           report_dir=tmp_path, namespace="rr-env", db=handle)
    with ctx.cleanup:
        env = ctx.runbook_env()
    assert set(env) == ph.RUNBOOK_BUILTINS | ph.REGISTRY_BUILTINS | {"N"} and env["N"] == "1"
