"""Preflight checks of a scenario with `app.helm`: the Helm traps a runbook's `helm rollback` walks into.

- helm-history: the revision a runbook `helm rollback` goes to is not in the history helm holds by then, or is the
  failed release. The history is simulated as helm's storage keeps it, over every operation on the release in order
  (`simulate`); checked against helm v3.19.5's source and against the real helm on a cluster (tests);
- helm-pending-release (reported by the same simulation): a runbook `helm upgrade` of a release left pending-*;
- helm-crd-in-templates: a CRD rendered from templates/ that the bad release or the rollback deletes or changes;
- helm-rollback-schema: an upgrade hook migrates the schema, and the runbook goes back with helm only (`helm
  rollback`, a `helm upgrade` of the good version) or relies on --atomic (helm never runs a down migration);
- helm-rollback-hooks: rollback hooks run the *target* (older) release's chart and image, which does not know the
  newer release's migrations; a rollback hook only the bad release has never runs.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from harness.journal import Finding
from harness.preflight.ids import (
    FAILURE,
    HELM_CRDS,
    HELM_HISTORY,
    HELM_PENDING,
    HELM_ROLLBACK_HOOKS,
    HELM_ROLLBACK_SCHEMA,
    WARNING,
)
from harness.preflight.inputs import Inputs
from harness.preflight.manifests import K8sObject
from harness.preflight.shell import migrates_down, restores_database, simple_commands
from harness.runbook_commands import Step
from harness.scenario.models import FailureMode, FaultKind

HELM_DEFAULT_HISTORY_MAX = 10  # helm's --history-max when neither the flag nor HELM_MAX_HISTORY sets it
# helm flags that take a separate value (`--timeout 5m`); `--flag=value` needs no entry.
_VALUE_FLAGS = {"-n", "--namespace", "--kubeconfig", "--kube-context", "--timeout", "--history-max",
                "--kube-apiserver", "--kube-token", "--kube-as-user", "--kube-as-group", "--kube-ca-file",
                "--registry-config", "--repository-config", "--repository-cache", "--burst-limit", "--qps",
                "-f", "--values", "--set", "--set-string", "--set-file", "--set-json", "--set-literal", "--version",
                "--repo", "--username", "--password", "--ca-file", "--cert-file", "--key-file", "--keyring",
                "--post-renderer", "--post-renderer-args", "--description", "-o", "--output", "--wait-retries"}
_UPGRADE_EVENTS = {"pre-upgrade", "post-upgrade"}
_ROLLBACK_EVENTS = {"pre-rollback", "post-rollback"}
# The subcommands that write a revision of a release, and what kind of operation each is.
_WRITES = {"upgrade": "upgrade", "install": "upgrade", "rollback": "rollback"}


@dataclass(frozen=True)
class HelmCommand:
    """One helm command line: its subcommand, positional arguments after it, and its flags (value or "")."""

    subcommand: str
    args: list[str]
    flags: dict[str, str]


def parse_helm(words: list[str]) -> HelmCommand | None:
    """A simple command's words as helm reads them; None when it is not helm or has no subcommand."""
    if not words or words[0].rsplit("/", 1)[-1] != "helm":
        return None
    positionals: list[str] = []
    flags: dict[str, str] = {}
    rest = iter(words[1:])
    for w in rest:
        if w.startswith("-") and "=" in w:
            name, value = w.split("=", 1)
            flags[name] = value
        elif w in _VALUE_FLAGS:
            flags[w] = next(rest, "")
        elif w.startswith("-"):
            flags[w] = ""
        else:
            positionals.append(w)
    return HelmCommand(positionals[0], positionals[1:], flags) if positionals else None


# ── the release history, as helm's storage keeps it ──────────────────────────
@dataclass(frozen=True)
class Operation:
    """One helm operation that writes a revision of the release, in the order the rehearsal performs them."""

    where: str          # "the good release", "versions.bad.pre_release", "runbook step 2 (line 14)"
    kind: str           # upgrade | rollback
    history_max: int    # the limit helm prunes to when it writes the revision (0: none)
    ends: str = "deployed"  # an upgrade's outcome: deployed, failed (its --wait gave up), pending-upgrade (killed)
    atomic: bool = False    # failed, then rolled back by helm itself (to the newest superseded/deployed revision)
    target: int | None = None  # a rollback's revision; None: the previous one
    target_known: bool = True  # False: a variable or placeholder (`"$REV"`): not judged before the run
    written: str = ""   # the command as written, for findings
    step: Step | None = None  # the runbook's own operations


@dataclass
class History:
    """Revision → status as helm's storage holds it (pkg/storage/storage.go), and which operation pruned what."""

    revisions: dict[int, str] = field(default_factory=dict)
    pruned_by: dict[int, Operation] = field(default_factory=dict)

    @property
    def last(self) -> int:
        return max(self.revisions, default=0)

    def create(self, op: Operation, status: str, limit: int) -> int:
        """A new revision (the newest + 1, numbered before pruning): with a limit helm first removes the oldest
        revisions until one more fits, but never the newest deployed one (Storage.Create, removeLeastRecent)."""
        number = self.last + 1
        if limit > 0:
            deployed = max((r for r, st in self.revisions.items() if st == "deployed"), default=None)
            doomed = [r for r in sorted(self.revisions) if r != deployed][:max(len(self.revisions) - (limit - 1), 0)]
            for r in doomed:
                del self.revisions[r]
                self.pruned_by[r] = op
        self.revisions[number] = status
        return number

    def deploy(self, number: int) -> None:
        """The revision succeeded: every other deployed one is superseded."""
        self.revisions.update({r: "superseded" for r, st in self.revisions.items() if st == "deployed"})
        self.revisions[number] = "deployed"

    def text(self) -> str:
        return ", ".join(f"{r} ({st})" for r, st in sorted(self.revisions.items())) or "none"


def helm_operations(text: str | None, release: str, where: str, default_max: int,
                     step: Step | None = None) -> list[Operation]:
    """The revision-writing helm commands of a command text on the release, with their own --history-max."""
    out = []
    for words in simple_commands(text or ""):
        cmd = parse_helm(words)
        if cmd is None or cmd.subcommand not in _WRITES or not cmd.args or cmd.args[0] != release:
            continue
        limit = cmd.flags.get("--history-max", "")
        target = cmd.args[1] if cmd.subcommand == "rollback" and len(cmd.args) > 1 else ""
        out.append(Operation(where, _WRITES[cmd.subcommand], int(limit) if limit.isdigit() else default_max,
                             target=(int(target) or None) if target.isdigit() else None,
                             target_known=target.isdigit() or not target,
                             written=" ".join(["helm", cmd.subcommand, *cmd.args[:2 if target else 1]]), step=step))
    return out


def rehearsal_operations(inp: Inputs) -> list[Operation]:
    """Every helm operation on the release, in order: each version's pre_release, the good release, the bad one
    (failed when helm waits for it, rolled back by helm with --atomic, pending when a fault kills it), then the
    runbook's own helm upgrades and rollbacks (their --history-max, else HELM_MAX_HISTORY, else helm's 10)."""
    s = inp.scenario
    h = s.app.helm
    assert h is not None, "only for app.helm"
    pipeline_max = HELM_DEFAULT_HISTORY_MAX if h.history_max is None else h.history_max
    env_max = s.variables.get("HELM_MAX_HISTORY")
    runbook_max = int(env_max.value) if env_max is not None and env_max.value.isdigit() else HELM_DEFAULT_HISTORY_MAX
    killed = any(f.kind is FaultKind.KILL_HELM and f.during == "deploy_bad" for f in s.faults)
    fails = (h.wait or h.rolls_back_on_failure) and s.failure.mode is not FailureMode.SMOKE
    bad_ends = "pending-upgrade" if killed else "failed" if fails else "deployed"
    ops = helm_operations(s.versions.good.pre_release, h.release, "versions.good.pre_release", runbook_max)
    ops.append(Operation("the good release", "upgrade", pipeline_max))
    ops += helm_operations(s.versions.bad.pre_release, h.release, "versions.bad.pre_release", runbook_max)
    ops.append(Operation("the bad release", "upgrade", pipeline_max, ends=bad_ends,
                         atomic=h.rolls_back_on_failure and bad_ends == "failed"))
    for step in inp.steps:
        ops += helm_operations(step.command, h.release, inp.step_where(step), runbook_max, step)
    return ops


@dataclass(frozen=True)
class Refusal:
    """What goes wrong with an operation, in helm's words where it has them; `fails`: helm refuses it (the runbook
    stops there, as a person would), else it runs and does the wrong thing."""

    op: Operation
    why: str
    check: str
    fails: bool = True


def _rollback(history: History, op: Operation) -> Refusal | None:
    """pkg/action/rollback.go: the target is read before the new revision is written (so pruning it then is
    harmless), and a pending release is not refused."""
    if not op.target_known:  # it goes somewhere: the history goes on, nothing is judged
        history.deploy(history.create(op, "pending-rollback", op.history_max))
        return None
    target = op.target if op.target is not None else history.last - 1  # helm's "previous": the newest - 1
    status = history.revisions.get(target)
    if status is None:
        by = history.pruned_by.get(target)
        gone = (f"{by.where} pruned it (--history-max={by.history_max}: helm keeps that many revisions and never "
                "the newest deployed one)" if by is not None else "it never existed here")
        return Refusal(op, f"`{op.written}` needs revision {target}, but {gone}; helm holds only revision(s) "
                           f"{history.text()} by then: the rollback fails (`release has no {target} version`)",
                       HELM_HISTORY)
    history.deploy(history.create(op, "pending-rollback", op.history_max))
    if status != "failed":
        return None
    after = (" after --atomic rolled the upgrade back, helm's \"previous revision\" is the failed one;"
             if op.target is None else "")
    return Refusal(op, f"`{op.written}` goes to revision {target}, the bad release (failed):{after} it puts the bad "
                       "release back", HELM_HISTORY, fails=False)


def _upgrade(history: History, op: Operation) -> Refusal | None:
    newest = history.revisions.get(history.last, "")
    if newest.startswith("pending-"):  # pkg/action/upgrade.go: errPending
        return Refusal(op, f"`{op.written}` is refused: the release is {newest} at revision {history.last} (the bad "
                           "release was interrupted), and helm answers \"another operation (install/upgrade/"
                           "rollback) is in progress\"", HELM_PENDING)
    number = history.create(op, "pending-upgrade", op.history_max)
    if op.ends == "deployed":
        history.deploy(number)
    else:
        history.revisions[number] = op.ends
    if op.atomic:  # pkg/action/upgrade.go failRelease: its Rollback has no --history-max (nothing is pruned)
        history.deploy(history.create(op, "pending-rollback", 0))
    return None


OPERATIONS = {"upgrade": _upgrade, "rollback": _rollback}


def simulate(ops: list[Operation]) -> tuple[History, list[Refusal]]:
    """Run the operations against helm's storage rules; the runbook stops at the first operation helm refuses."""
    history, found = History(), []
    for op in ops:
        why = OPERATIONS[op.kind](history, op)
        if why is not None:
            found.append(why)
            if why.fails and op.step is not None:
                break
    return history, found


def check_helm_history(inp: Inputs) -> list[Finding]:
    if inp.scenario.app.helm is None:
        return []
    _, refused = simulate(rehearsal_operations(inp))
    return [Finding(check=r.check, severity=FAILURE, file=str(inp.runbook_path), message=f"{r.op.where}: {r.why}",
                    fix=FIXES[r.check])
            for r in refused if r.op.step is not None]  # the runbook's: the pipeline's steps are the scenario's


FIXES = {
    HELM_HISTORY: "name the last good revision as `helm history` shows it when the runbook starts (helm never prunes "
                  "the newest deployed one), or raise the --history-max that pruned it (app.helm.history_max, the "
                  "runbook's own --history-max, HELM_MAX_HISTORY)",
    HELM_PENDING: "repair the release first: `helm rollback <release> <last deployed revision>` (rollback does not "
                  "refuse a pending release) or, with care, delete the pending revision's Secret "
                  "sh.helm.release.v1.<release>.v<revision>",
}


def _annotations(obj: K8sObject) -> dict[str, Any]:
    meta = obj.doc.get("metadata")
    annotations = meta.get("annotations") if isinstance(meta, dict) else None
    return annotations if isinstance(annotations, dict) else {}


def _hook_events(obj: K8sObject) -> set[str]:
    hook = _annotations(obj).get("helm.sh/hook")
    return {e.strip() for e in hook.split(",")} if isinstance(hook, str) else set()


def _kept(obj: K8sObject) -> bool:
    """`helm.sh/resource-policy: keep`: helm never deletes the object (upgrade, rollback, uninstall)."""
    return _annotations(obj).get("helm.sh/resource-policy") == "keep"


def _hook_jobs(objects: list[K8sObject] | None, events: set[str]) -> list[K8sObject]:
    return [o for o in objects or [] if o.kind == "job" and _hook_events(o) & events]


# ── CRDs rendered from templates/ ───────────────────────────────────────────
def _crds(objects: list[K8sObject] | None) -> dict[str, K8sObject]:
    return {o.name: o for o in objects or [] if o.kind == "customresourcedefinition"}


def _crd_message(name: str, good: K8sObject | None, bad: K8sObject | None) -> str | None:
    """What the bad release and the rollback to the good one do to a CRD rendered from templates/ (helm deletes what
    the target revision does not render, unless kept), by the releases that render it; None: nothing."""
    kept = any(o is not None and _kept(o) for o in (good, bad))
    if good is not None and bad is not None and good.doc.get("spec") != bad.doc.get("spec"):
        return (f"the bad release changes CustomResourceDefinition {name} (rendered from templates/): `helm rollback` "
                "puts the good release's definition back, and what the bad release added to it (a version, a field) "
                "disappears from the API while the custom resources stored with it stay")
    if kept:
        return None
    if good is None:
        return (f"the bad release adds CustomResourceDefinition {name} from templates/: `helm rollback` to the good "
                "revision deletes it, and every custom resource of it with it")
    if bad is None:
        return (f"the bad release no longer renders CustomResourceDefinition {name}: its upgrade deletes it with every "
                "custom resource of it, and `helm rollback` re-creates it empty")
    return (f"the chart renders CustomResourceDefinition {name} from templates/: a `helm rollback` to a revision "
            "without it (or `helm uninstall`) deletes it, and every custom resource of it with it")


def check_helm_crds(inp: Inputs) -> list[Finding]:
    if inp.scenario.app.helm is None:
        return []
    good = _crds(inp.manifests)
    bad = _crds(inp.bad_manifests) if inp.bad_manifests is not None else good
    found = ((name, _crd_message(name, good.get(name), bad.get(name))) for name in sorted(good.keys() | bad.keys()))
    return [Finding(check=HELM_CRDS, severity=WARNING, file=str(inp.manifests_path), message=message,
                    fix="ship CRDs in the chart's crds/ directory (helm installs them and never deletes or changes "
                        "them) or in a chart of their own, and change them only in releases that keep the old versions "
                        "served")
            for name, message in found if message]


# ── migrations in hooks ────────────────────────────────────────────────────
# Words of a container's command that name a migration tool, and those that make it go down.
_MIGRATION_WORDS = ("migrat", "alembic", "flyway", "liquibase", "knex", "sequelize", "prisma", "goose", "dbmate")
_DOWN_WORDS = ("down", "downgrade", "rollback", "undo")


def _container_words(obj: K8sObject) -> list[str]:
    """The words of every container's command and args (a `sh -c` script split into its words too)."""
    spec = ((obj.doc.get("spec") or {}).get("template") or {}).get("spec") or {}
    words: list[str] = []
    for c in [*(spec.get("initContainers") or []), *(spec.get("containers") or [])]:
        for text in [*(c.get("command") or []), *(c.get("args") or [])]:
            words += [w for cmd in simple_commands(str(text)) for w in cmd]
    return words


def migration_direction(obj: K8sObject) -> str | None:
    """"down" or "up" when a Job's containers run a migration tool, None when they run none."""
    words = [w.lower() for w in _container_words(obj)]
    if not any(m in w for w in words for m in _MIGRATION_WORDS):
        return None
    return "down" if any(w.rsplit(":", 1)[-1] in _DOWN_WORDS for w in words) else "up"


# What a migration hook Job of the good release does when `helm rollback` runs it (the target's hooks run).
_ROLLBACK_HOOK_DOES = {
    "down": ("its down migration is the good release's: it does not know the bad release's migrations and cannot "
             "revert them, and a tool that reverts \"the last\" migration by its own files reverts one of the good "
             "release's instead"),
    "up": ("its up migration runs the good release's migrations on the bad release's schema: at best nothing happens "
           "(it cannot migrate down); a tool that refuses a schema newer than it knows fails, and a failed pre-rollback "
           "hook fails `helm rollback` itself"),
    None: "which do not know the newer release's schema changes; it cannot migrate them down",
}


def check_helm_rollback_hooks(inp: Inputs) -> list[Finding]:
    if inp.scenario.app.helm is None:
        return []
    good = _hook_jobs(inp.manifests, _ROLLBACK_EVENTS)
    out = [Finding(
        check=HELM_ROLLBACK_HOOKS, severity=WARNING, file=str(inp.manifests_path),
        message=f"hook Job {o.name} runs on {', '.join(sorted(_hook_events(o) & _ROLLBACK_EVENTS))}: helm runs the "
                "rollback hooks of the target (older) release, with its image and its migrations; "
                f"{_ROLLBACK_HOOK_DOES[migration_direction(o)]}",
        fix="migrate down in the runbook with the bad release's image before `helm rollback`, and keep migrations "
            "out of rollback hooks")
        for o in good]
    names = {o.name for o in good}
    out += [Finding(
        check=HELM_ROLLBACK_HOOKS, severity=WARNING, file=str(inp.manifests_path),
        message=f"the bad release's hook Job {o.name} runs on {', '.join(sorted(_hook_events(o) & _ROLLBACK_EVENTS))}"
                ", but it never runs on a `helm rollback` to the good revision: helm runs the target release's hooks "
                "(pkg/action/rollback.go), and the good release has no such hook"
                + (" (so its down migration never runs)" if migration_direction(o) == "down" else ""),
        fix="migrate down in the runbook with the bad release's image before `helm rollback`")
        for o in _hook_jobs(inp.bad_manifests, _ROLLBACK_EVENTS) if o.name not in names]
    return out


def _touches_schema(inp: Inputs) -> bool:
    return any(migrates_down(words, inp.scenario) or restores_database(words, inp.scenario)
               for step in inp.steps for words in simple_commands(step.command))


def _helm_back(inp: Inputs) -> list[Operation]:
    """The runbook's operations that put the good release back through helm: `helm rollback`, or a `helm upgrade`
    of the release (a pipeline re-run with the good version), which runs the chart's upgrade hooks again."""
    h = inp.scenario.app.helm
    assert h is not None, "only for app.helm"
    return [op for step in inp.steps for op in helm_operations(step.command, h.release, inp.step_where(step), 0, step)]


def check_helm_rollback_schema(inp: Inputs) -> list[Finding]:
    h = inp.scenario.app.helm
    hooks = _hook_jobs(inp.manifests, _UPGRADE_EVENTS) if h is not None else []
    if h is None or not hooks or _touches_schema(inp):
        return []
    back = _helm_back(inp)
    if not back and not h.rolls_back_on_failure:
        return []
    names = ", ".join(o.name for o in hooks)
    how = (f"{back[0].where} rolls back with `{back[0].written}` only" if back else
           "the runbook relies on --atomic (app.helm.atomic or rollback_on_failure), which rolls back the release only")
    again = (f"; that `helm upgrade` runs {names} again, the good release's migration, which cannot migrate down"
             if back and back[0].kind == "upgrade" else "")
    return [Finding(
        check=HELM_ROLLBACK_SCHEMA, severity=WARNING, file=str(inp.runbook_path),
        message=f"{how}, but the chart's upgrade hook Job {names} migrates the database: helm never runs a down "
                f"migration, so the good release would start on the bad release's schema{again}",
        fix="migrate down with the bad release's image before `helm rollback` (e.g. a Job or `kubectl run` of "
            "the bad image running the down migration), or restore the database from a backup")]
