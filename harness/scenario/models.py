"""Typed, frozen scenario models (the `scenario.yaml` format).

Loading follows kind's config flow: parse → apply defaults → validate the
whole document, collecting every problem before anything runs (see loader.py).
Unknown keys are errors (`extra="forbid"`) so a typo never silently disables
a check.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from enum import Enum
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ModelWrapValidatorHandler,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_core import InitErrorDetails

SCHEMA_VERSION = 1
_NAME_PATTERN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
_VAR_PATTERN = r"^[A-Z_][A-Z0-9_]*$"


class Model(BaseModel):
    """Base of every scenario model: immutable and strict about keys."""

    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)


class Verdict(str, Enum):
    READY = "READY"
    NOT_READY = "NOT_READY"
    ERROR = "ERROR"


class Expect(str, Enum):
    READY = "READY"
    NOT_READY = "NOT_READY"


class Workload(Model):
    """A workload whose running image the rehearsal tracks."""

    deployment: Annotated[str, Field(pattern=_NAME_PATTERN, description="Deployment name.")]
    container: Annotated[
        str | None,
        Field(default=None, description="Container to track; default: the first container."),
    ] = None


class Smoke(Model):
    """An HTTP request that must succeed when the app is healthy."""

    service: Annotated[str, Field(pattern=_NAME_PATTERN)]
    port: Annotated[int, Field(ge=1, le=65535)] = 8080
    path: Annotated[str, Field(description="Request path; any 2xx answer through the API server's service proxy passes.")] = "/healthz"


# Helm's own rule for release names (DNS-1123 label, at most 53 characters: helm appends suffixes).
_RELEASE_PATTERN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
# A `--set` key as helm's strvals reads it: names, dots, list indexes; no `=` or `,` (they would add keys).
SET_KEY_PATTERN = r"^[A-Za-z0-9_-]+(\[[0-9]+\])*(\.[A-Za-z0-9_-]+(\[[0-9]+\])*)*$"


class Helm(Model):
    """The app as a Helm release: each version is deployed with `helm upgrade --install` (docs/helm.md)."""

    chart: Annotated[Path, Field(description="Chart directory or packaged chart (.tgz), relative to the "
                                             "scenario directory.")]
    release: Annotated[str, Field(pattern=_RELEASE_PATTERN, max_length=53,
                                  description="Release name (the runbook's `helm rollback <release>`).")]
    values: Annotated[list[Path], Field(description="Values files for every version (`-f`, in this order, "
                                                    "before the version's own).")] = []
    wait: Annotated[bool, Field(description="`--wait`: helm waits for the release's resources to be ready.")] = False
    timeout_s: Annotated[float | None, Field(gt=0, le=3600, description="`--timeout`, in seconds (helm's "
                                                                        "default: 300).")] = None
    atomic: Annotated[bool, Field(description="`--atomic` (helm v4: `--rollback-on-failure`): a failed upgrade "
                                              "rolls itself back; implies `--wait`.")] = False
    rollback_on_failure: Annotated[bool, Field(description="helm v4's name of `--atomic`: the same setting; set "
                                                           "either.")] = False
    history_max: Annotated[int | None, Field(ge=0, description="`--history-max`: revisions helm keeps per "
                                                               "release (0: no limit; helm's default: 10).")] = None

    @property
    def rolls_back_on_failure(self) -> bool:
        """`--atomic` / `--rollback-on-failure`, whichever spelling the scenario uses."""
        return self.atomic or self.rollback_on_failure


class App(Model):
    manifests: Annotated[
        Path | None,
        Field(description="Kubernetes manifest file or directory (kustomization.yaml → -k), "
                          "relative to the scenario directory. ${VAR} placeholders are "
                          "substituted from the rehearsal variables. Exactly one of `manifests` and `helm`."),
    ] = None
    helm: Annotated[Helm | None, Field(description="The app as a Helm chart instead of manifests.")] = None
    workloads: Annotated[list[Workload], Field(min_length=1)]
    smoke: Smoke | None = None


class Build(Model):
    """A Docker build of a version's image."""

    context: Path
    dockerfile: str = "Dockerfile"
    args: dict[str, str] = Field(default_factory=dict)


class HelmValues(Model):
    """A version's own chart values (with `app.helm`), after the chart's and `app.helm.values`."""

    values: Annotated[list[Path], Field(description="Values files (`-f`), relative to the scenario directory.")] = []
    set: Annotated[
        dict[Annotated[str, Field(pattern=SET_KEY_PATTERN)], str],
        Field(description="`--set KEY=VALUE` pairs. `${VAR}` in a value is replaced by the rehearsal variable "
                          "(`${APP_IMAGE}`: this version's image), with `,` and `\\` escaped so a value never "
                          "adds a key."),
    ] = Field(default_factory=dict)

    @field_validator("set", mode="before")
    @classmethod
    def _plain_strings(cls, v: object) -> object:
        """`replicaCount: 2` means the text "2", as on helm's command line."""
        if isinstance(v, dict):
            return {k: (str(x).lower() if isinstance(x, bool) else str(x))
                    if isinstance(x, (str, int, float)) else x for k, x in v.items()}
        return v

    @field_validator("set")
    @classmethod
    def _one_line(cls, v: dict[str, str]) -> dict[str, str]:
        return _one_line_values(v, "values are passed to helm's --set")


class Version(Model):
    """One release of the app: its image, and how it reaches the cluster."""

    image: Annotated[str, Field(min_length=1, description="Local image reference (loaded into kind).")]
    build: Build | None = None
    tag: Annotated[
        str | None,
        Field(default=None, pattern=r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$",
              description="Commit-SHA tag pushed to the rehearsal registry (promotion scenarios)."),
    ] = None
    pre_release: Annotated[
        str | None,
        Field(default=None, min_length=1,
              description="Shell command the team's deploy procedure runs right before this release "
                          "(e.g. a pg_dump backup): on the host, in the runbook environment."),
    ] = None
    helm: Annotated[HelmValues | None, Field(description="Chart values of this version (with `app.helm`).")] = None


class Versions(Model):
    good: Version
    bad: Version


class Database(Model):
    postgres: Annotated[str, Field(pattern=r"^\d+$", description="Postgres major version.")] = "15"
    seed: Annotated[Path | None, Field(description="SQL run once after the good version's migrations.")] = None
    tracked_tables: Annotated[
        list[str], Field(description="Tables whose rows must survive the rollback.")
    ] = Field(default_factory=list)
    schemas: Annotated[
        list[Annotated[str, Field(min_length=1, max_length=63)]] | None,
        Field(min_length=1,
              description="Schemas whose objects are compared (and where a bare tracked table is looked up, "
                          "in this order). Default: every schema of the database except the system ones "
                          "(pg_catalog, information_schema, pg_toast*, pg_temp*)."),
    ] = None

    @field_validator("schemas")
    @classmethod
    def _application_schemas(cls, v: list[str] | None) -> list[str] | None:
        if v is None:
            return v
        system = [s for s in v if s == "information_schema" or s.startswith("pg_")]
        if system:
            raise ValueError(f"{', '.join(system)}: system schemas are never compared; list only the "
                             "application's schemas, or leave `schemas` out to compare every one")
        twice = sorted({s for s in v if v.count(s) > 1})
        if twice:
            raise ValueError(f"{', '.join(twice)} listed more than once; list each schema once")
        return v


class MigrationPlace(str, Enum):
    JOB = "job"
    HOST = "host"


def _up_one_needs_down_schema(schema: dict) -> None:  # type: ignore[type-arg]
    """JSON Schema twin of the rule `migrations.up_one` (CROSS_FIELD_RULES): the ladder runs `down` after each up."""
    schema["if"] = {"required": ["up_one"], "properties": {"up_one": {"type": "string"}}}
    schema["then"] = {"required": ["down"], "properties": {"down": {"type": "string"}}}


class Migrations(Model):
    model_config = ConfigDict(json_schema_extra=_up_one_needs_down_schema)

    up: Annotated[str | None, Field(min_length=1, description="Command that migrates up (shell syntax). Required "
                                                               "unless app.helm's chart migrates in a hook Job "
                                                               "(then `down` and `files` still serve the checks).")] = None
    down: Annotated[str | None, Field(description="Command that migrates down one step.")] = None
    up_one: Annotated[
        str | None,
        Field(min_length=1,
              description="Command that applies the next pending migration only (`alembic upgrade +1`, "
                          "`migrate ... up 1`). Only `rehearse ladder` runs it, with `down`, once per migration; "
                          "needs `down`."),
    ] = None
    runs_in: Annotated[
        MigrationPlace,
        Field(description="`job`: a Kubernetes Job using the version's image; `host`: run here."),
    ] = MigrationPlace.JOB
    files: Annotated[Path | None, Field(description="Migration files, for preflight checks: golang-migrate's "
                                                    ".up.sql/.down.sql, or a framework's (Alembic, knex, "
                                                    "node-pg-migrate, db-migrate, Sequelize, TypeORM, goose, "
                                                    "Flyway).")] = None


class FailureMode(str, Enum):
    CRASHLOOP = "crashloop"
    READINESS = "readiness"
    ROLLOUT_DEADLINE = "rollout_deadline"
    SMOKE = "smoke"


class Failure(Model):
    """How the bad version is expected to fail, and how long detection may take."""

    mode: FailureMode
    within_s: Annotated[float, Field(gt=0, le=1800)] = 120


# Line breaks and control characters: values reach runbook commands, helm's --set and the runbook environment
# (and manifests, where harness/render.py keeps any value inside its scalar); a line break there would make a
# command or a value nobody reviewed.
_UNSAFE_IN_VALUE = re.compile("[\x00-\x08\x0a-\x1f\x7f\x85\u2028\u2029]")
PLACEHOLDER_PATTERN = r"^[A-Za-z_][A-Za-z0-9_-]*$"


def _unsafe_value_message(v: str, where: str) -> str | None:
    bad = _UNSAFE_IN_VALUE.search(v)
    if bad is None:
        return None
    return (f"the value contains {bad.group()!r} at character {bad.start() + 1}: {where}, and a line break or "
            "control character would change their structure; use a single line of printable text")


def _one_line_values(values: dict[str, str], where: str) -> dict[str, str]:
    """`values` unchanged, or ValueError naming the first key whose value is not one line of printable text."""
    for key, value in values.items():
        bad = _unsafe_value_message(value, where)
        if bad:
            raise ValueError(f"{key}: {bad}")
    return values


# One line of printable text: an answer is typed followed by Enter; a line break would answer two prompts.
_ONE_LINE = r"^[^\x00-\x1f\x7f]*$"


class Answer(Model):
    """The answer typed when a runbook command waits for input (harness/shell_session.py)."""

    line: Annotated[int | None, Field(ge=1, description="A line of the command in runbook.md (any of its "
                                                         "lines); the answer is typed once.")] = None
    prompt: Annotated[str | None, Field(min_length=1, description="Text, or a Python regular expression, "
                                                                  "that the last output line shows.")] = None
    answer: Annotated[str, Field(pattern=_ONE_LINE, description="What to type; Enter follows.")]

    @model_validator(mode="after")
    def _says_where(self) -> Answer:
        if self.line is None and self.prompt is None:
            raise ValueError("an answer needs `line` (the command's line in the runbook) or `prompt` "
                             "(the text the command asks with), or both")
        return self


class Runbook(Model):
    file: Path = Path("runbook.md")
    section: Annotated[str, Field(min_length=1, description="Heading of the section to run.")] = "Rollback"
    step_timeout_s: Annotated[float, Field(gt=0, le=3600)] = 180
    placeholders: Annotated[
        dict[Annotated[str, Field(pattern=PLACEHOLDER_PATTERN)], str],
        Field(description="Values for the runbook's placeholders: `<N>` and `{{ N }}` are replaced by the "
                          "shell-quoted value in the commands the rehearsal runs, and every name that is a shell "
                          "variable name is also exported to the runbook environment (for `$N`). The report "
                          "records the bindings."),
    ] = Field(default_factory=dict)
    answers: Annotated[list[Answer], Field(description="Answers for commands that wait for input, by line or "
                                                       "by prompt; without one such a command fails within "
                                                       "seconds.")] = []

    @field_validator("placeholders", mode="before")
    @classmethod
    def _plain_strings(cls, v: object) -> object:
        """`N: 1` means the text "1": a revision number is written as a number in YAML."""
        if isinstance(v, dict):
            return {k: str(x) if isinstance(x, (str, int, float)) and not isinstance(x, bool) else x
                    for k, x in v.items()}
        return v

    @field_validator("placeholders")
    @classmethod
    def _one_line(cls, v: dict[str, str]) -> dict[str, str]:
        return _one_line_values(v, "values are substituted into the runbook's commands")


class Variable(Model):
    value: str
    secret: bool = False

    @field_validator("value")
    @classmethod
    def _one_line(cls, v: str) -> str:
        bad = _unsafe_value_message(v, "values reach the manifests and the runbook environment")
        if bad:
            raise ValueError(f"{bad} (for a multi-line value, keep it in a Secret or ConfigMap manifest instead)")
        return v


class PassEnv(Model):
    """One of the user's environment variables the runbook may see; `NAME` is short for `{name: NAME}`."""

    name: Annotated[str, Field(description="The variable's name in your environment and in the runbook's.")]
    secret: Annotated[bool, Field(description="Mask its value in every output (the default: it is how a team "
                                              "hands a runbook a credential). `false` for plain settings.")] = True


class Registry(Model):
    """The rehearsal registry stands in for production's: runbooks name it ${REGISTRY}."""

    repository: Annotated[str, Field(pattern=r"^[a-z0-9]+([._/-][a-z0-9]+)*$")]
    production_tag: str = "production"


class Timeouts(Model):
    deploy_s: Annotated[float, Field(gt=0, le=3600)] = 180
    migrate_s: Annotated[float, Field(gt=0, le=3600)] = 180
    verify_s: Annotated[float, Field(gt=0, le=3600)] = 180


class Checks(Model):
    """Checks the rehearsal runs besides the rollback itself."""

    old_version_on_new_schema: Annotated[
        bool,
        Field(description="Before the rollback, start the good version against the bad release's schema (phase "
                          "compat); if it does not run, report the risk old_version_on_new_schema "
                          "(expand/contract broken). Runs only when the bad release changed the schema."),
    ] = True
    old_version_timeout_s: Annotated[
        float, Field(gt=0, le=600, description="How long the good version may take to become ready there.")
    ] = 60
    # 5 s: two readiness-probe periods of a typical app (the demo's: every 2 s, unready after 2 failures)
    # and time for a container that dies right after it became ready to be restarted; each READY
    # scenario pays it once, so the demo's 7 READY scenarios cost about 35 s more per run.
    stable_for_s: Annotated[
        float,
        Field(ge=0, le=600,
              description="After verify found the state equal to the baseline, keep watching the app this long: "
                          "a container restart, a pod going unready or being replaced, or the pod template or "
                          "running image changing (a controller or GitOps sync putting the bad release back) is "
                          "a `stability` difference. 0 turns the watch off."),
    ] = 5


class RiskKind(str, Enum):
    OLD_VERSION_ON_NEW_SCHEMA = "old_version_on_new_schema"
    HELM_RELEASE_PENDING = "helm_release_pending"


class Objectives(Model):
    max_recover_s: Annotated[float | None, Field(gt=0)] = None


class FaultKind(str, Enum):
    TERMINATE_DB_CONNECTIONS = "terminate_db_connections"
    PAUSE_POSTGRES = "pause_postgres"
    DELETE_APP_POD = "delete_app_pod"
    PAUSE_CONTROL_PLANE = "pause_control_plane"
    NETWORK_LATENCY = "network_latency"
    KILL_HELM = "kill_helm"


# Faults that happen once: `duration_s` does not apply to them.
INSTANT_FAULTS = frozenset({FaultKind.DELETE_APP_POD, FaultKind.KILL_HELM})
# The phases a fault may hit, and the kinds each allows: kill_helm is the only one that can interrupt the bad
# release's `helm upgrade` (a CI runner that dies mid-release); the others are about the rollback.
FAULT_PHASES: dict[str, frozenset[FaultKind]] = {
    "runbook": frozenset(FaultKind),
    "deploy_bad": frozenset({FaultKind.KILL_HELM}),
}
MAX_FAULT_DURATION_S = 120


def _fault_rules(schema: dict) -> None:  # type: ignore[type-arg]
    """JSON Schema twin of Fault._latency: latency_ms is required by, and only allowed for, network_latency; a
    phase other than the runbook takes only the kinds FAULT_PHASES allows it."""
    schema["allOf"] = [
        {"if": {"required": ["kind"], "properties": {"kind": {"const": "network_latency"}}},
         "then": {"required": ["latency_ms"], "properties": {"latency_ms": {"type": "integer"}}},
         "else": {"properties": {"latency_ms": {"type": "null"}}}},
        *({"if": {"required": ["during"], "properties": {"during": {"const": phase}}},
           "then": {"properties": {"kind": {"enum": sorted(k.value for k in kinds)}}}}
          for phase, kinds in FAULT_PHASES.items() if kinds != frozenset(FaultKind)),
    ]


class Fault(Model):
    """A fault injected for real while the rollback runs (harness/faults.py); always removed afterwards."""

    model_config = ConfigDict(json_schema_extra=_fault_rules)

    kind: Annotated[FaultKind, Field(description="What breaks (see docs/scenario-format.md#faults).")]
    during: Annotated[
        Literal["runbook", "deploy_bad"],
        Field(description="The phase the fault hits: the runbook (the rollback), or deploy_bad (the bad release's "
                          "`helm upgrade`; kill_helm only)."),
    ] = "runbook"
    at_step: Annotated[
        int | None,
        Field(ge=1, description="Apply just before this runbook step starts (1-based; null: when the runbook starts). "
                                "during deploy_bad: not used (the fault is armed when the bad release starts)."),
    ] = 1
    delay_s: Annotated[float, Field(ge=0, le=600, description="Wait this long after that point, then apply "
                                                              "(during deploy_bad: after the bad `helm upgrade` "
                                                              "started).")] = 0
    duration_s: Annotated[
        float,
        Field(ge=0, le=MAX_FAULT_DURATION_S,
              description="How long the fault lasts before it is removed. terminate_db_connections repeats "
                          "its sweep for this long (0: one sweep); delete_app_pod ignores it."),
    ] = 5
    latency_ms: Annotated[
        int | None, Field(ge=1, le=10000, description="network_latency only: the added delay per packet.")
    ] = None
    hold_lock_on: Annotated[
        list[Annotated[str, Field(pattern=r"^[A-Za-z_][A-Za-z0-9_$]*(\.[A-Za-z_][A-Za-z0-9_$]*)?$")]],
        Field(description="terminate_db_connections only: tables (optionally schema.table) the fault locks "
                          "(ACCESS EXCLUSIVE) while it lasts, so a migration touching them is still running, "
                          "connected, when the sweep terminates it. Use it when migrations take milliseconds "
                          "(real ones on big tables take minutes): without it the fault can miss."),
    ] = []

    @model_validator(mode="after")
    def _latency(self) -> Fault:
        if self.kind is FaultKind.NETWORK_LATENCY and self.latency_ms is None:
            raise ValueError("network_latency needs latency_ms (the delay to add, in milliseconds)")
        if self.kind is not FaultKind.NETWORK_LATENCY and self.latency_ms is not None:
            raise ValueError(f"latency_ms only applies to network_latency, not to {self.kind.value}; remove it")
        if self.hold_lock_on and self.kind is not FaultKind.TERMINATE_DB_CONNECTIONS:
            raise ValueError(f"hold_lock_on only applies to terminate_db_connections, not to {self.kind.value}; "
                             "remove it")
        if self.kind not in FAULT_PHASES[self.during]:
            raise ValueError(f"{self.kind.value} cannot hit {self.during}: only "
                             f"{', '.join(sorted(k.value for k in FAULT_PHASES[self.during]))} can; use "
                             "during: runbook")
        return self


def _reserved_variables(doc: dict[str, Any]) -> str | None:
    variables = doc.get("variables")
    clash = sorted(set(variables) & RESERVED_VARIABLES) if isinstance(variables, dict) else []
    return f"{', '.join(clash)} is set by the harness; rename the variable" if clash else None


def _unpassable_env(doc: dict[str, Any]) -> str | None:
    entries = doc.get("pass_env")
    names = [e.get("name") if isinstance(e, dict) else e for e in entries] if isinstance(entries, list) else []
    bad = sorted(n for n in names if isinstance(n, str) and (n in RESERVED_VARIABLES or not re.fullmatch(
        _VAR_PATTERN, n)))
    return f"cannot pass {', '.join(bad)}: reserved by the harness or not a variable name" if bad else None


def _promotion_needs_tags(doc: dict[str, Any]) -> str | None:
    versions = doc.get("versions")
    if doc.get("registry") is None or not isinstance(versions, dict):
        return None
    missing = [n for n in ("good", "bad") if isinstance(versions.get(n), dict) and not versions[n].get("tag")]
    if missing:
        return (f"versions.{missing[0]}.tag is required when `registry` is set "
                "(the commit-SHA tag that promotion re-tags to production)")
    return None


def _placeholder_clash(doc: dict[str, Any]) -> str | None:
    """A placeholder is exported to the runbook environment: it must not replace a harness name or a variable."""
    runbook = doc.get("runbook")
    names = runbook.get("placeholders") if isinstance(runbook, dict) else None
    variables = doc.get("variables")
    taken = RESERVED_VARIABLES | (set(variables) if isinstance(variables, dict) else set())
    clash = sorted(set(names) & taken) if isinstance(names, dict) else []
    return (f"{', '.join(clash)} is set by the harness or in `variables`; a placeholder would replace it in the "
            "runbook environment: rename the placeholder" if clash else None)


def _manifests_or_helm(doc: dict[str, Any]) -> str | None:
    app = doc.get("app")
    if not isinstance(app, dict):
        return None
    given = [k for k in ("manifests", "helm") if app.get(k) is not None]
    if len(given) == 1:
        return None
    return ("both app.manifests and app.helm are set: keep one (a release is either applied manifests or a "
            "Helm chart)" if given else "neither app.manifests nor app.helm is set: add one (manifests to "
            "`kubectl apply`, or a Helm chart)")


def _helm_values_need_helm(doc: dict[str, Any]) -> str | None:
    app, versions = doc.get("app"), doc.get("versions")
    if not isinstance(versions, dict) or (isinstance(app, dict) and app.get("helm") is not None):
        return None
    with_helm = [n for n in ("good", "bad") if isinstance(versions.get(n), dict) and versions[n].get("helm")]
    return (f"versions.{with_helm[0]}.helm is set but app.helm is not: chart values need a chart; add app.helm "
            "or remove them" if with_helm else None)


def _up_unless_helm(doc: dict[str, Any]) -> str | None:
    app, migrations = doc.get("app"), doc.get("migrations")
    helm = isinstance(app, dict) and app.get("helm") is not None
    if helm or not isinstance(migrations, dict) or migrations.get("up") is not None:
        return None
    return ("migrations.up is missing: add the command that migrates up (only a Helm chart's own hook Job can stand "
            "in for it, with app.helm)")


def _up_one_needs_down(doc: dict[str, Any]) -> str | None:
    migrations = doc.get("migrations")
    if not isinstance(migrations, dict) or migrations.get("up_one") is None or migrations.get("down"):
        return None
    return ("migrations.up_one is set but migrations.down is not: the ladder undoes each migration with `down` "
            "right after `up_one` applied it; add the command that migrates down one step")


def _kill_helm_needs_helm(doc: dict[str, Any]) -> str | None:
    app, faults = doc.get("app"), doc.get("faults")
    if (isinstance(app, dict) and app.get("helm") is not None) or not isinstance(faults, list):
        return None
    kills = [i for i, f in enumerate(faults) if isinstance(f, dict) and f.get("kind") == FaultKind.KILL_HELM.value]
    return (f"faults[{kills[0]}] is kill_helm but app.helm is not set: there is no helm release to interrupt; "
            "add app.helm or remove the fault" if kills else None)


# field → rule over the raw document (None: the rule holds). The JSON Schema twin of the registry rule is in schema.py.
CROSS_FIELD_RULES: dict[str, Callable[[dict[str, Any]], str | None]] = {
    "variables": _reserved_variables,
    "pass_env": _unpassable_env,
    "registry": _promotion_needs_tags,
    "runbook.placeholders": _placeholder_clash,
    "app": _manifests_or_helm,
    "versions": _helm_values_need_helm,
    "migrations": _up_unless_helm,
    "migrations.up_one": _up_one_needs_down,


    "faults": _kill_helm_needs_helm,
}


def cross_field_problems(doc: dict[str, Any]) -> list[tuple[str, str]]:
    """(field, message) of each rule between fields that the raw document breaks."""
    found = ((field, rule(doc)) for field, rule in CROSS_FIELD_RULES.items())
    return [(field, message) for field, message in found if message]


# Names the harness itself sets for manifests and runbooks (see context.py).
RESERVED_VARIABLES = frozenset({
    "NAMESPACE", "DATABASE_URL", "CLUSTER_DATABASE_URL", "GOOD_IMAGE", "BAD_IMAGE", "APP_IMAGE",
    "REGISTRY", "REPOSITORY", "GOOD_TAG", "BAD_TAG", "KUBECONFIG", "PATH", "HOME", "DOCKER_HOST", "HELM_NAMESPACE",
})


SCENARIO_NAME_LENGTH = 40


def is_scenario_name(text: str) -> bool:
    """The rule for `name` (it names a namespace, a database and a report directory)."""
    return len(text) <= SCENARIO_NAME_LENGTH and re.fullmatch(_NAME_PATTERN, text) is not None


class Scenario(Model):
    """A rollback rehearsal: scenarios/<name>/scenario.yaml."""

    schema_version: Literal[1] = SCHEMA_VERSION
    name: Annotated[str, Field(pattern=_NAME_PATTERN, max_length=SCENARIO_NAME_LENGTH)]
    description: str = ""
    expect: Expect = Expect.READY
    expect_risks: Annotated[
        list[RiskKind],
        Field(description="The readiness risks this scenario must report, no more, no fewer (risks never change "
                          "the verdict; this lets the harness's own catalogue check them)."),
    ] = Field(default_factory=list)
    app: App
    versions: Versions
    database: Database = Field(default_factory=Database)
    migrations: Migrations | None = None
    failure: Failure
    runbook: Runbook = Field(default_factory=Runbook)
    registry: Registry | None = None
    variables: dict[Annotated[str, Field(pattern=_VAR_PATTERN)], Variable] = Field(default_factory=dict)
    pass_env: Annotated[
        list[PassEnv], Field(description="The user's environment variables the runbook may see (values masked "
                                         "in every output unless `secret: false`).")
    ] = Field(default_factory=list)
    timeouts: Timeouts = Field(default_factory=Timeouts)
    objectives: Objectives = Field(default_factory=Objectives)
    checks: Checks = Field(default_factory=Checks)
    faults: Annotated[
        list[Fault], Field(description="Faults applied while the rollback runs; with any, the runbook runs a second time.")
    ] = Field(default_factory=list)
    # Set by the loader, not by users: where the scenario lives.
    directory: Annotated[Path, Field(exclude=True, json_schema_extra={"readOnly": True})] = Path(".")

    @field_validator("variables", mode="before")
    @classmethod
    def _plain_values(cls, v: object) -> object:
        """`FOO: bar` is shorthand for `FOO: {value: bar}`."""
        if isinstance(v, dict):
            return {k: ({"value": str(x)} if isinstance(x, (str, int, float)) else x) for k, x in v.items()}
        return v

    @field_validator("pass_env", mode="before")
    @classmethod
    def _names(cls, v: object) -> object:
        """`- NAME` is shorthand for `- {name: NAME}`."""
        return [{"name": x} if isinstance(x, str) else x for x in v] if isinstance(v, list) else v

    @model_validator(mode="wrap")
    @classmethod
    def _cross_field(cls, data: Any, handler: ModelWrapValidatorHandler[Scenario]) -> Scenario:
        """Rules between fields, read from the raw document so they report even when a sibling field is invalid."""
        errors: list[Any] = []
        scenario: Scenario | None = None
        try:
            scenario = handler(data)
        except ValidationError as exc:
            errors = list(exc.errors())
        raw: dict[str, Any] = data if isinstance(data, dict) else {}
        rules = [InitErrorDetails(type="value_error", loc=(field,), input=raw.get(field),
                                  ctx={"error": ValueError(message)})
                 for field, message in cross_field_problems(raw)]
        if not errors and not rules and scenario is not None:
            return scenario
        raise ValidationError.from_exception_data(cls.__name__, [*errors, *rules])

    @property
    def pass_env_names(self) -> list[str]:
        return [e.name for e in self.pass_env]

    @property
    def secret_pass_env(self) -> list[str]:
        """Names of the passed variables whose values are masked."""
        return [e.name for e in self.pass_env if e.secret]

    @property
    def secret_values(self) -> list[str]:
        return [v.value for v in self.variables.values() if v.secret and v.value]

    def path(self, p: Path) -> Path:
        """Resolve a path written in the scenario file (as written when it cannot be resolved: a symlink loop
        raises RuntimeError before Python 3.13; the reader of the path then reports it)."""
        try:
            return (self.directory / p).resolve()
        except (OSError, RuntimeError):
            return self.directory / p
