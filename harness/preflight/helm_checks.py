"""Preflight checks of a scenario with `app.helm`: the Helm traps a runbook's `helm rollback` walks into.

- helm-history: the revision the runbook rolls back to is not in the history helm holds by then (helm's
  pruning by `--history-max`, simulated: it never prunes the last deployed revision), or is the failed release;
- helm-crd-in-templates: a CRD rendered from templates/ is deleted or changed by a rollback;
- helm-rollback-schema: an upgrade hook migrates the schema, and the runbook rolls back with helm only, or
  relies on --atomic (helm never runs a down migration);
- helm-rollback-hooks: rollback hooks run the *target* (older) release's chart and image, which does not
  know the newer release's down migration.
"""

from __future__ import annotations

from dataclasses import dataclass

from harness.journal import Finding
from harness.preflight.ids import FAILURE, HELM_CRDS, HELM_HISTORY, HELM_ROLLBACK_HOOKS, HELM_ROLLBACK_SCHEMA, WARNING
from harness.preflight.inputs import Inputs
from harness.preflight.manifests import K8sObject
from harness.preflight.shell import migrates_down, restores_database, simple_commands
from harness.runbook_commands import Step
from harness.scenario.models import FailureMode

HELM_DEFAULT_HISTORY_MAX = 10  # helm upgrade's default --history-max
# helm flags that take a separate value (`--timeout 5m`); `--flag=value` needs no entry.
_VALUE_FLAGS = {"-n", "--namespace", "--kubeconfig", "--kube-context", "--timeout", "--history-max",
                "--kube-apiserver", "--kube-token", "--kube-as-user", "--kube-ca-file", "--registry-config",
                "--repository-config", "--repository-cache", "--burst-limit", "--qps"}
_UPGRADE_EVENTS = {"pre-upgrade", "post-upgrade"}
_ROLLBACK_EVENTS = {"pre-rollback", "post-rollback"}


@dataclass(frozen=True)
class HelmRollback:
    """One `helm rollback RELEASE [REVISION]` of the runbook; revision None: the previous one (also for 0)."""

    step: Step
    release: str
    revision: int | None
    revision_text: str  # as written (a placeholder or variable is not a number: left unchecked)


def helm_rollbacks(steps: list[Step]) -> list[HelmRollback]:
    out: list[HelmRollback] = []
    for step in steps:
        for words in simple_commands(step.command):
            if not words or words[0].rsplit("/", 1)[-1] != "helm" or "rollback" not in words:
                continue
            args = _positionals(words[words.index("rollback") + 1:])
            if not args:
                continue
            text = args[1] if len(args) > 1 else ""
            number = int(text) if text.isdigit() else None
            out.append(HelmRollback(step, args[0], number or None, text))
    return out


def _positionals(words: list[str]) -> list[str]:
    out: list[str] = []
    skip = False
    for w in words:
        if skip:
            skip = False
        elif w in _VALUE_FLAGS:
            skip = True
        elif not w.startswith("-"):
            out.append(w)
    return out


def create_revision(history: dict[int, str], revision: int, status: str, limit: int) -> None:
    """A new revision as helm's storage records it (pkg/storage/storage.go, Create): with --history-max it first
    removes the oldest revisions, but never the last deployed one, until one more fits."""
    if limit > 0:
        deployed = max((r for r, st in history.items() if st == "deployed"), default=None)
        for r in sorted(history):
            if len(history) <= limit - 1:
                break
            if r != deployed:
                del history[r]
    history[revision] = status


def rehearsal_history(history_max: int | None, upgrade_fails: bool, atomic: bool) -> tuple[dict[int, str], int]:
    """(revision → status when the runbook starts, the current revision) after the rehearsal's releases: the good
    one installed (1), the bad upgrade (2), failed when helm waits for it (--wait, --atomic), and with --atomic its
    own rollback (3), which helm creates without --history-max (pkg/action/upgrade.go, failRelease)."""
    limit = HELM_DEFAULT_HISTORY_MAX if history_max is None else history_max
    history: dict[int, str] = {1: "deployed"}
    create_revision(history, 2, "pending-upgrade", limit)
    if not upgrade_fails:
        history.update({1: "superseded", 2: "deployed"})
        return history, 2
    history[2] = "failed"
    if not atomic:
        return history, 2
    create_revision(history, 3, "pending-rollback", 0)
    history.update({r: "superseded" for r, st in history.items() if st == "deployed"})
    history[3] = "deployed"
    return history, 3


def check_helm_history(inp: Inputs) -> list[Finding]:
    s = inp.scenario
    h = s.app.helm
    if h is None:
        return []
    # helm waits for the bad release and fails it, unless it becomes ready and only the smoke request fails.
    fails = (h.wait or h.atomic) and s.failure.mode is not FailureMode.SMOKE
    history, current = rehearsal_history(h.history_max, fails, h.atomic)
    out: list[Finding] = []
    for rb in helm_rollbacks(inp.steps):
        if rb.revision_text and rb.revision is None and rb.revision_text != "0":
            continue  # `helm rollback demo "$REV"`: the value is not known before the run
        target = rb.revision if rb.revision is not None else current - 1  # helm's "previous": current - 1
        written = " ".join(["helm rollback", rb.release, rb.revision_text]).strip()
        if history.get(target) == "failed":
            out.append(Finding(
                check=HELM_HISTORY, severity=FAILURE, file=str(inp.runbook_path),
                message=f"{inp.step_where(rb.step)}: `{written}` goes to revision {target}, the bad release (failed): "
                        "after --atomic rolled the upgrade back, helm's \"previous revision\" is the failed one",
                fix="name the last good revision: `helm rollback <release> <revision>` (see `helm history`)"))
        if target in history:
            continue
        flag = "helm's default --history-max=10" if h.history_max is None else f"--history-max={h.history_max}"
        out.append(Finding(
            check=HELM_HISTORY, severity=FAILURE, file=str(inp.runbook_path),
            message=f"{inp.step_where(rb.step)}: `{written}` needs revision {target}, but with {flag} helm holds "
                    f"only revision(s) {', '.join(f'{r} ({st})' for r, st in sorted(history.items()))} when the "
                    f"runbook starts: the rollback fails (`release has no {target} version`)",
            fix="raise app.helm.history_max (the team's --history-max), or roll back to a revision helm keeps "
                "(it never prunes the last deployed one)"))
    return out


def _hook_events(obj: K8sObject) -> set[str]:
    meta = obj.doc.get("metadata")
    annotations = meta.get("annotations") if isinstance(meta, dict) else None
    hook = annotations.get("helm.sh/hook") if isinstance(annotations, dict) else None
    return {e.strip() for e in hook.split(",")} if isinstance(hook, str) else set()


def _hook_jobs(inp: Inputs, events: set[str]) -> list[K8sObject]:
    return [o for o in inp.manifests or [] if o.kind == "job" and _hook_events(o) & events]


def check_helm_crds(inp: Inputs) -> list[Finding]:
    if inp.scenario.app.helm is None:
        return []
    return [Finding(check=HELM_CRDS, severity=WARNING, file=str(inp.manifests_path),
                    message=f"the chart renders CustomResourceDefinition {o.name} from templates/: a `helm rollback` "
                            "to a revision without it deletes it, and every custom resource of it with it",
                    fix="ship CRDs in the chart's crds/ directory (helm installs them and never deletes them) or "
                        "in a chart of their own")
            for o in inp.manifests or [] if o.kind == "customresourcedefinition"]


def _touches_schema(inp: Inputs) -> bool:
    return any(migrates_down(words, inp.scenario) or restores_database(words, inp.scenario)
               for step in inp.steps for words in simple_commands(step.command))


def check_helm_rollback_schema(inp: Inputs) -> list[Finding]:
    h = inp.scenario.app.helm
    hooks = _hook_jobs(inp, _UPGRADE_EVENTS) if h is not None else []
    rollbacks = helm_rollbacks(inp.steps)
    if not hooks or not (rollbacks or h.atomic) or _touches_schema(inp):  # type: ignore[union-attr]
        return []
    names = ", ".join(o.name for o in hooks)
    how = (f"{inp.step_where(rollbacks[0].step)} rolls back with `helm rollback` only" if rollbacks else
           "the runbook relies on --atomic (app.helm.atomic), which rolls back the release only")
    return [Finding(
        check=HELM_ROLLBACK_SCHEMA, severity=WARNING, file=str(inp.runbook_path),
        message=f"{how}, but the chart's upgrade hook Job {names} migrates the database: helm never runs a down "
                "migration, so the good release would start on the bad release's schema",
        fix="migrate down with the bad release's image before `helm rollback` (e.g. a Job or `kubectl run` of "
            "the bad image running the down migration), or restore the database from a backup")]


def check_helm_rollback_hooks(inp: Inputs) -> list[Finding]:
    if inp.scenario.app.helm is None:
        return []
    return [Finding(
        check=HELM_ROLLBACK_HOOKS, severity=WARNING, file=str(inp.manifests_path),
        message=f"hook Job {o.name} runs on {', '.join(sorted(_hook_events(o) & _ROLLBACK_EVENTS))}: helm runs "
                "the rollback hooks of the target (older) release, with its image and its migrations, which do not "
                "know the newer release's schema changes; it cannot migrate them down",
        fix="migrate down in the runbook with the bad release's image before `helm rollback`, and keep migrations "
            "out of rollback hooks")
        for o in _hook_jobs(inp, _ROLLBACK_EVENTS)]
