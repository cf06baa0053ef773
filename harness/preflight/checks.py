"""The preflight checks, the CHECKS table and `run_checks`.

Every check reads what the team wrote (migrations, manifests, runbook),
gathered once into `Inputs`, and returns `Finding`s with a concrete fix.
Findings are advice: they are kept apart from the rehearsal's verdict,
which only the real state decides (see docs/preflight.md).
"""

from __future__ import annotations

import re
import string
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from harness.journal import Finding
from harness.preflight.ids import (
    DESTRUCTIVE,
    DOUBLE_UNDO,
    DOWN_WITH_GOOD_IMAGE,
    FAILURE,
    FRAMEWORK_DESTRUCTIVE,
    FRAMEWORK_DOWN,
    HELM_CRDS,
    HELM_HISTORY,
    HELM_ROLLBACK_HOOKS,
    HELM_ROLLBACK_SCHEMA,
    MIGRATION_PAIRS,
    NON_TRANSACTIONAL,
    NOOP_DOWN,
    PLACEHOLDERS,
    REVISION_HISTORY,
    RUNBOOK_NAMESPACE,
    RUNBOOK_OBJECTS,
    SHELLCHECK,
    SKIPPED_STEP,
    STATUS_AFTER_UNDO,
    WARNING,
    WORKLOADS,
    Severity,
)
from harness.placeholders import env_names, unbound
from harness.preflight import shellcheck
from harness.preflight.inputs import Inputs, gather
from harness.preflight.manifests import K8sObject
from harness.preflight.helm_checks import (
    check_helm_crds,
    check_helm_history,
    check_helm_rollback_hooks,
    check_helm_rollback_schema,
)
from harness.preflight.shell import (
    Kubectl,
    backup_steps,
    kubectl_calls,
    migrates_down,
    restores_database,
    simple_commands,
)
from harness.preflight.destructive import destructive_finding
from harness.preflight.framework_checks import check_framework_destructive, check_framework_down
from harness.preflight.sql import SCHEMA_CHANGING, is_noop, non_transactional, statement_hazards
from harness.runbook_commands import Step
from harness.scenario.models import FailureMode, Scenario

DEFAULT_REVISION_HISTORY_LIMIT = 10  # Kubernetes' default for apps/v1 Deployments
# Revisions the rehearsal creates before the runbook runs: the good release, then the bad one.
REHEARSAL_REVISIONS = ((1, "good release"), (2, "bad release"))


def check_migration_pairs(inp: Inputs) -> list[Finding]:
    """Every up has a down (failure); every down has an up (warning); one file per version and direction."""
    out: list[Finding] = []
    for mig in inp.migrations:
        if mig.up and not mig.downs:
            want = mig.up.name.replace(".up.sql", ".down.sql")
            out.append(Finding(
                check=MIGRATION_PAIRS, severity=FAILURE, file=str(mig.up),
                message=f"migration {mig.version} has no down migration: nothing can revert {mig.up.name}",
                fix=f"add {want} beside it with the statements that undo the up migration"))
        if mig.down and not mig.ups:
            out.append(Finding(
                check=MIGRATION_PAIRS, severity=WARNING, file=str(mig.down),
                message=f"down migration {mig.down.name} has no up migration {mig.version}: "
                        "a typo in the name, or a leftover",
                fix=f"name the matching up migration {mig.version}_<name>.up.sql, or delete {mig.down.name}"))
        for files, direction in ((mig.ups, "up"), (mig.downs, "down")):
            if len(files) > 1:
                out.append(Finding(
                    check=MIGRATION_PAIRS, severity=FAILURE, file=str(files[1]),
                    message=f"version {mig.version} has {len(files)} {direction} migrations "
                            f"({', '.join(f.name for f in files)}): migrate tools refuse duplicate versions",
                    fix="give each migration its own version number"))
    return out


def check_noop_down(inp: Inputs) -> list[Finding]:
    """A down that is empty or a no-op (comments, `SELECT 1`) while its up changes the schema."""
    out: list[Finding] = []
    for mig in inp.migrations:
        if not (mig.up and mig.down):
            continue
        ddl = [s for s in inp.sql(mig.up) if s.first in SCHEMA_CHANGING]
        if not ddl:
            continue
        down = inp.sql(mig.down)
        if all(is_noop(s) for s in down):
            what = "is empty" if not down else "is a no-op (" + "; ".join(s.text for s in down)[:60] + ")"
            out.append(Finding(
                check=NOOP_DOWN, severity=FAILURE, file=str(mig.down),
                message=f"down migration {mig.version} is a no-op but {mig.version} up changes the schema: "
                        f"{mig.down.name} {what} while {mig.up.name} runs `{ddl[0].text[:80]}`"
                        + (f" and {len(ddl) - 1} more" if len(ddl) > 1 else ""),
                fix=f"write the statements that revert {mig.up.name} into {mig.down.name} "
                    "(e.g. DROP COLUMN for ADD COLUMN); if it cannot be reverted, say so in the runbook "
                    "and document the restore from a backup"))
    return out


def check_destructive(inp: Inputs) -> list[Finding]:
    """Destructive statements of up migrations: failure without a backup/restore step in the runbook."""
    backups = backup_steps(inp.all_commands)
    return [destructive_finding(DESTRUCTIVE, inp, mig.up, f"migration {mig.version} up (line {st.line}) runs "
                                f"{hz.kind} on {hz.target}", hz.kind, backups)
            for mig in inp.migrations if mig.up is not None
            for st in inp.sql(mig.up) for hz in statement_hazards(st)]


def check_non_transactional(inp: Inputs) -> list[Finding]:
    """A statement that cannot run in a transaction, mixed with other statements in one file."""
    out: list[Finding] = []
    for mig in inp.migrations:
        for path, direction in ((mig.up, "up"), (mig.down, "down")):
            if path is None:
                continue
            stmts = [s for s in inp.sql(path) if not is_noop(s)]
            if len(stmts) < 2:
                continue
            for st in stmts:
                what = non_transactional(st, inp.postgres_major)
                if what:
                    out.append(Finding(
                        check=NON_TRANSACTIONAL, severity=WARNING, file=str(path),
                        message=f"migration {mig.version} {direction} (line {st.line}) runs {what}, which cannot run "
                                f"inside a transaction, with {len(stmts) - 1} other statement(s) in the same file: "
                                "a tool that runs the file in one transaction fails on it every time, one that runs "
                                "it statement by statement can leave it half applied (version marked dirty)",
                        fix=f"move the {what.split(' (')[0]} statement (line {st.line}) of {path.name} into a "
                            "migration file of its own"))
    return out


def _deployments(inp: Inputs) -> dict[str, K8sObject]:
    return {o.name: o for o in inp.manifests or [] if o.kind == "deployment"}


def check_workloads(inp: Inputs) -> list[Finding]:
    """The deployments the scenario tracks are defined by the manifests."""
    if inp.manifests is None:
        return []
    deps = _deployments(inp)
    if any("$" in n for n in deps):
        return []
    out: list[Finding] = []
    for w in inp.scenario.app.workloads:
        if w.deployment not in deps:
            known = ", ".join(sorted(deps)) or "none"
            out.append(Finding(
                check=WORKLOADS, severity=FAILURE, file=str(inp.scenario.directory / "scenario.yaml"),
                message=f"the scenario tracks deployment/{w.deployment}, which the manifests do not define "
                        f"(their deployments: {known})",
                fix=f"set app.workloads[].deployment to one of: {known}"))
    return out


def _history_limit(dep: K8sObject) -> int | None:
    spec = dep.doc.get("spec")
    value = (spec if isinstance(spec, dict) else {}).get("revisionHistoryLimit", DEFAULT_REVISION_HISTORY_LIMIT)
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _kept(revisions: dict[int, str], current: int, limit: int) -> set[int]:
    """What Kubernetes keeps once a rollout completes: the current revision and the `limit` newest old ones."""
    return {current, *sorted((r for r in revisions if r != current), reverse=True)[:limit]}


@dataclass
class _History:
    """A Deployment's revisions as the rehearsal, then the runbook, make them.

    Each template change makes a new revision; a rollback re-numbers the
    revision it brings back; after each, Kubernetes keeps only the current
    revision and the `limit` newest old ones (see docs/preflight.md: the rule).
    """

    limit: int
    made: dict[int, str]  # revision -> what made it; what would exist with no limit
    alive: set[int]       # what Kubernetes still has
    latest: int

    @classmethod
    def after_rehearsal_deploys(cls, limit: int) -> _History:
        made = dict(REHEARSAL_REVISIONS)
        return cls(limit, made, _kept(made, max(made), limit), max(made))

    def bring_back(self, revision: int) -> None:
        """A rollback to `revision`: it leaves the history, `record` gives it the next number."""
        self.alive.discard(revision)
        self.made.pop(revision)

    def record(self, label: str) -> None:
        self.latest = max([*self.made, self.latest]) + 1
        self.made[self.latest] = label
        self.alive = {r for r in _kept(self.made, self.latest, self.limit) if r in self.alive or r == self.latest}


def _limit_zero(dep: K8sObject) -> Finding:
    return Finding(
        check=REVISION_HISTORY, severity=WARNING, file=str(dep.file),
        message=f"deployment/{dep.name} has revisionHistoryLimit: 0: rollout undo impossible once a "
                "rollout completes (Kubernetes then deletes every old ReplicaSet)",
        fix=f"set revisionHistoryLimit to at least 2 in {dep.file.name} (Kubernetes' default is 10)")


def _missing_revision(inp: Inputs, dep: K8sObject, call: Kubectl, n: int, history: _History) -> Finding:
    """The failure of a `rollout undo --to-revision=n` whose revision is gone (pruned) or was never made."""
    created = ", ".join(f"{r} ({what})" for r, what in sorted(history.made.items()))
    if n in history.made:
        old = sorted((r for r in history.made if r != history.latest), reverse=True)
        need = old.index(n) + 1
        why = (f"which Kubernetes will have pruned: revisionHistoryLimit {history.limit} keeps the current "
               f"revision and {history.limit} old one(s), and by then the rehearsal has made revisions "
               f"{created}, so only {', '.join(str(r) for r in sorted(history.alive))} remain")
        fix = (f"set revisionHistoryLimit to at least {need} in {dep.file.name}, or roll back "
               f"without a revision number (`kubectl rollout undo deployment/{dep.name}` once)")
    else:
        why = f"which does not exist: by then the rehearsal has made revisions {created}"
        fix = (f"roll back without a revision number (`kubectl rollout undo deployment/{dep.name}`), "
               "or use the revision `kubectl rollout history` shows for the good release")
    return Finding(
        check=REVISION_HISTORY, severity=FAILURE, file=str(inp.runbook_path),
        message=f"{inp.step_where(call.step)} rolls deployment/{dep.name} back to revision {n}, {why}", fix=fix)


def _replay_rollouts(inp: Inputs, dep: K8sObject, limit: int, calls: list[Kubectl]) -> Finding | None:
    """Follow the runbook's rollouts of `dep`; the failure of the first `--to-revision` that cannot work."""
    history = _History.after_rehearsal_deploys(limit)
    for call in calls:
        if not any(r.kind == "deployment" and _resolve(r.name, inp.variables) == dep.name for r in call.refs):
            continue
        label = f"step {call.step.index}: {' '.join(call.positionals[:2])}"
        if call.is_undo and not call.plain_undo:
            try:
                n = int(call.to_revision or "")
            except ValueError:
                return None  # a variable: cannot follow the revisions any further
            if n not in history.alive:
                return _missing_revision(inp, dep, call, n, history)  # that step fails: the rehearsal stops there
            if n == history.latest:
                continue  # already the current revision: kubectl skips
            label += f" to revision {n}"
            history.bring_back(n)
        elif call.plain_undo:
            old = [r for r in history.alive if r != history.latest]
            if not old:
                return None  # nothing to undo to: the limit-0 warning says so
            history.bring_back(max(old))
        elif not call.changes_template:
            continue
        history.record(label)
    return None


def check_revision_history(inp: Inputs) -> list[Finding]:
    """revisionHistoryLimit vs the runbook's `rollout undo --to-revision=N` (see docs/preflight.md: the rule)."""
    out: list[Finding] = []
    deps = _deployments(inp)
    calls = kubectl_calls(inp.steps)
    for w in inp.scenario.app.workloads:
        dep = deps.get(w.deployment)
        limit = None if dep is None else _history_limit(dep)
        if dep is None or limit is None:
            continue
        if limit == 0:
            out.append(_limit_zero(dep))
        failure = _replay_rollouts(inp, dep, limit, calls)
        if failure:
            out.append(failure)
    return out


def _resolve(name: str, variables: dict[str, str]) -> str:
    return string.Template(name).safe_substitute(variables)


_NAMESPACE_VARS = {"$NAMESPACE", "${NAMESPACE}"}  # what the rehearsal (and production) set


def check_runbook_objects(inp: Inputs) -> list[Finding]:
    """kubectl commands of the runbook section name objects the manifests define."""
    if inp.manifests is None:
        return []
    defined: dict[str, set[str]] = {}
    for o in inp.manifests:
        defined.setdefault(o.kind, set()).add(_resolve(o.name, inp.variables))
    out: list[Finding] = []
    for call in kubectl_calls(inp.steps):
        for ref in call.refs:
            name = _resolve(ref.name, inp.variables)
            names = defined.get(ref.kind, set())
            if "$" in name or any("$" in n for n in names) or name in names:
                continue
            others = ", ".join(f"{ref.kind}/{n}" for n in sorted(names)) or f"no {ref.kind}"
            out.append(Finding(
                check=RUNBOOK_OBJECTS, severity=FAILURE, file=str(inp.runbook_path),
                message=f"{inp.step_where(call.step)} refers to {ref.kind}/{ref.name} which the manifests do not "
                        f"define (they define {others})",
                fix=f"update the runbook to the current name ({others}), or add {ref.kind} {ref.name} to "
                    f"{inp.manifests_path.name if inp.manifests_path else 'the manifests'}"))
        if call.refs and call.namespace not in _NAMESPACE_VARS:
            where = ("without -n" if call.namespace is None else f"with the fixed namespace {call.namespace}")
            out.append(Finding(
                check=RUNBOOK_NAMESPACE, severity=WARNING, file=str(inp.runbook_path),
                message=f"{inp.step_where(call.step)} runs kubectl {where}: in the rehearsal the app lives in its "
                        "own namespace, so the step acts on "
                        + ("the kubeconfig's default namespace" if call.namespace is None else call.namespace),
                fix='pass -n "$NAMESPACE" (the rehearsal sets it; production sets it to the real namespace)'))
    return out


def check_double_undo(inp: Inputs) -> list[Finding]:
    """`rollout undo` twice for one deployment without --to-revision: the second flips back to the bad version."""
    first: dict[str, Kubectl] = {}
    out: list[Finding] = []
    for call in kubectl_calls(inp.steps):
        if not call.plain_undo:
            continue
        for ref in call.refs:
            if ref.kind != "deployment":
                continue
            name = _resolve(ref.name, inp.variables)
            prev = first.get(name)
            if prev is None:
                first[name] = call
                continue
            out.append(Finding(
                check=DOUBLE_UNDO, severity=FAILURE, file=str(inp.runbook_path),
                message=f"{inp.step_where(call.step)} runs `rollout undo` for deployment/{ref.name} a second time "
                        f"without --to-revision (first: {inp.step_where(prev.step)}): `rollout undo` goes to the "
                        "previous revision, which after the first undo is the bad version again",
                fix=f"undo once, or name the good revision: `kubectl rollout undo deployment/{ref.name} "
                    "--to-revision=<N>` with N from `kubectl rollout history`"))
    return out


# What lets `rollout status` outwait the stale condition: a retry (`||`, a loop) or a pause after the undo.
_WAITS_OUT = re.compile(r"\|\||(^|[;&|({]|\bdo|\bthen)\s*(until|while|for|sleep)\s", re.MULTILINE)


def check_status_after_undo(inp: Inputs) -> list[Finding]:
    """`rollout status` straight after a rollback (`rollout undo`, or `set image` back) when the rehearsal waits for
    the bad release's progress deadline (failure mode rollout_deadline): right after it the Deployment may still
    carry the ProgressDeadlineExceeded condition, and kubectl fails on it at once although the rollback works (a
    race: 3 of 10 runs failed on the rehearsal cluster, docs/preflight.md). Other modes roll back long before the
    deadline, so it cannot show there."""
    if inp.scenario.failure.mode is not FailureMode.ROLLOUT_DEADLINE:
        return []
    undone: dict[str, Kubectl] = {}
    out: list[Finding] = []
    for call in kubectl_calls(inp.steps):
        for ref in (r for r in call.refs if r.kind == "deployment"):
            name = _resolve(ref.name, inp.variables)
            undo = undone.pop(name, None)
            if call.is_undo or call.positionals[:2] == ("set", "image"):  # back to a ReplicaSet that exists
                undone[name] = call
            elif undo is not None and call.verb == ("rollout", "status") and not any(
                    _WAITS_OUT.search(s.command) for s in inp.steps if undo.step.index <= s.index <= call.step.index):
                out.append(Finding(
                    check=STATUS_AFTER_UNDO, severity=WARNING, file=str(inp.runbook_path),
                    message=f"{inp.step_where(call.step)} runs `rollout status` for deployment/{ref.name} right after "
                            f"`{' '.join(undo.verb)}` ({inp.step_where(undo.step)}), once the bad release has "
                            "exceeded its progress deadline: until the controller sees the rollback progress, the "
                            "Deployment keeps its ProgressDeadlineExceeded condition and `rollout status` can fail at "
                            "once although the rollback works (in production too, whenever the bad release outlived "
                            "progressDeadlineSeconds)",
                    fix=f"let the check try again after a few seconds: `kubectl rollout status deployment/{ref.name} "
                        f"--timeout=120s || {{ sleep 10; kubectl rollout status deployment/{ref.name} "
                        "--timeout=120s; }`"))
    return out


def _good_image_patterns(s: Scenario) -> list[re.Pattern[str]]:
    pats = [re.compile(r"\$\{?GOOD_IMAGE\}?"), re.compile(r"\$\{?GOOD_TAG\}?"),
            re.compile(r"(^|=)" + re.escape(s.versions.good.image) + r"$")]
    if s.versions.good.tag:
        pats.append(re.compile(r":" + re.escape(s.versions.good.tag) + r"$"))
    return pats


def check_down_with_good_image(inp: Inputs) -> list[Finding]:
    """`migrate down` run with the good (old) image, which may not contain the down script."""
    pats = _good_image_patterns(inp.scenario)
    down_cmd = (inp.scenario.migrations.down or "") if inp.scenario.migrations else ""
    tool = down_cmd.split()[0] if down_cmd.split() else "migrate"
    out: list[Finding] = []
    for step in inp.steps:
        for words in simple_commands(step.command):
            hit = next((n for n, w in enumerate(words) if any(p.search(w) for p in pats)), None)
            if hit is None:
                continue
            rest = words[hit + 1:]
            if "down" in rest and any("migrate" in w or w == tool for w in words):
                out.append(Finding(
                    check=DOWN_WITH_GOOD_IMAGE, severity=WARNING, file=str(inp.runbook_path),
                    message=f"{inp.step_where(step)} migrates down with the good (old) image ({words[hit]}): "
                            "the old image may not contain the down script of the migration the bad release added",
                    fix='run the down migration with the bad release\'s image ("$BAD_IMAGE"), which ships it, '
                        "then roll the app back"))
                break
    return out


def check_placeholders(inp: Inputs) -> list[Finding]:
    """Placeholders of the section that nothing binds (`rehearse validate` reports them first, as problems)."""
    s = inp.scenario
    names = env_names(s.variables, s.pass_env_names, s.registry is not None)
    return [Finding(check=PLACEHOLDERS, severity=FAILURE, file=str(inp.runbook_path),
                    message=f"{inp.step_where(p.step)}: {p.text} is "
                            + ("a variable that nothing sets" if p.form == "variable" else
                               "a placeholder that nothing fills in") + f" (line {p.line})",
                    fix=p.fix())
            for p in unbound(inp.section, s.runbook.placeholders, names)]


def _kubectl_rollback(words: list[str], _: Scenario) -> bool:
    return any(c.is_undo or c.verb == ("set", "image") for c in kubectl_calls([Step(0, " ".join(words), 0)]))


def _helm_rollback(words: list[str], _: Scenario) -> bool:
    return [w.rsplit("/", 1)[-1] for w in words[:1]] == ["helm"] and "rollback" in words


# What makes a step part of the rollback itself (a skipped one of these is flagged): label → test on its words.
_ROLLBACK_ACTIONS: dict[str, Callable[[list[str], Scenario], bool]] = {
    "rolls the app back (kubectl rollout undo / set image)": _kubectl_rollback,
    "rolls the app back (helm rollback)": _helm_rollback,
    "migrates the schema down": migrates_down,
    "restores the database": restores_database,
}


def _actions(step: Step, s: Scenario) -> set[str]:
    return {label for words in simple_commands(step.command)
            for label, test in _ROLLBACK_ACTIONS.items() if test(words, s)}


def check_skipped_steps(inp: Inputs) -> list[Finding]:
    """A step marked `rehearse: skip` that rolls something back: failure when no step that runs does the same
    (the rehearsal would not rehearse that part of the rollback), warning otherwise."""
    out: list[Finding] = []
    for step in (st for st in inp.section if st.skip is not None):
        for action in sorted(_actions(step, inp.scenario)):
            others = [st for st in inp.steps if action in _actions(st, inp.scenario)]
            also = f"; {inp.step_where(others[0])} does it too" if others else ", and no step that runs does it"
            out.append(Finding(
                check=SKIPPED_STEP, severity=WARNING if others else FAILURE, file=str(inp.runbook_path),
                message=f"{inp.step_where(step)} {action} but is marked `rehearse: skip` ({step.skip}){also}: "
                        + ("the rehearsal does not rehearse it as written" if others
                           else "the rehearsal would not rehearse that part of the rollback"),
                fix="remove the marker: skip only steps that reach outside the rehearsal (paging, chat, "
                    "tickets), never the rollback itself"))
    return out


def check_shellcheck(inp: Inputs) -> list[Finding]:
    """shellcheck's errors (failure) and warnings (warning) on the steps the rehearsal runs, at their runbook
    lines; without shellcheck, one warning that says so."""
    try:
        lints = shellcheck.lint(inp.steps)
    except shellcheck.ShellcheckUnavailable as exc:
        return [Finding(check=SHELLCHECK, severity=WARNING, file=str(inp.runbook_path),
                        message=f"the runbook's commands were not linted: {exc}",
                        fix="run `make env` (it installs Debian's shellcheck), or `apt-get install shellcheck`")]
    return [Finding(check=SHELLCHECK, severity=FAILURE if lint.level == "failure" else WARNING,
                    file=str(inp.runbook_path),
                    message=f"runbook step {lint.step.index} (line {lint.line}): {lint.code}: {lint.message}",
                    fix=f"correct the command (shellcheck's explanation: https://www.shellcheck.net/wiki/{lint.code})")
            for lint in lints]


Check = Callable[[Inputs], list[Finding]]
CHECKS: dict[str, Check] = {
    MIGRATION_PAIRS: check_migration_pairs,
    NOOP_DOWN: check_noop_down,
    DESTRUCTIVE: check_destructive,
    NON_TRANSACTIONAL: check_non_transactional,
    WORKLOADS: check_workloads,
    REVISION_HISTORY: check_revision_history,
    RUNBOOK_OBJECTS: check_runbook_objects,  # also reports RUNBOOK_NAMESPACE
    DOUBLE_UNDO: check_double_undo,
    STATUS_AFTER_UNDO: check_status_after_undo,
    DOWN_WITH_GOOD_IMAGE: check_down_with_good_image,
    PLACEHOLDERS: check_placeholders,
    SKIPPED_STEP: check_skipped_steps,
    SHELLCHECK: check_shellcheck,
    HELM_HISTORY: check_helm_history,  # also reports HELM_PENDING
    HELM_CRDS: check_helm_crds,
    HELM_ROLLBACK_SCHEMA: check_helm_rollback_schema,
    HELM_ROLLBACK_HOOKS: check_helm_rollback_hooks,
    FRAMEWORK_DOWN: check_framework_down,
    FRAMEWORK_DESTRUCTIVE: check_framework_destructive,
}


def run_checks(scenario: Scenario, only: Iterable[str] | None = None) -> list[Finding]:
    """Every check (or those named in `only`) on one scenario; failures first."""
    inp = gather(scenario)
    findings = list(inp.problems)
    gathered = len(inp.problems)
    for check_id, check in CHECKS.items():
        if only is None or check_id in set(only):
            findings.extend(check(inp))
    findings.extend(inp.problems[gathered:])  # files the checks found unreadable on the way (Inputs.sql)
    return sorted(findings, key=lambda f: f.severity != FAILURE)

