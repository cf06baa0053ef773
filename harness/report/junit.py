"""junit.xml: one <testsuite> per scenario, for CI test-report views.

Each suite holds the scenario's case (its verdict: it fails when the verdict
differs from ``expect``; the failure message names the first differences and
the failing runbook step, never a stack trace) and one case per runbook step
that the journal records, with the runbook's ``file`` and the step's ``line``
(the attributes pytest writes and GitHub/GitLab JUnit readers turn into
annotations). A step case never disagrees with its scenario's: a failed step
is a ``<failure>`` only when the scenario is not as expected; when it is (a
scenario that expects NOT_READY, or a second run that failed while the
verdict stayed as expected), the step is an expected failure, written as
pytest writes an xfail (``<skipped type="pytest.xfail">``). Steps the runbook
marks ``rehearse: skip`` are ``<skipped>``. So the file's failures are exactly
the scenarios ``--against-expect`` fails. Steps after a failed one never ran
and have no case. Written with xml.etree, which escapes text and attributes but
passes through characters XML 1.0 forbids; so every text and attribute value is
cleaned first (ANSI escape sequences and illegal characters removed, see
`xml_safe`), then redacted again: removing a colour code can join the two
halves of a secret that the first redaction saw apart.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from harness.journal import SteadyStateRecord, fault_moment
from harness.judge import as_expected
from harness.report.common import (
    Redact,
    failing_step,
    failure_message,
    fmt_s,
    placeholder_sentence,
    skip_sentence,
    skipped_steps,
    step_failed,
    step_sentence,
    step_skipped,
    total_duration,
)

SUITE = "rollback-rehearsal"
STEP_NAME_LIMIT = 100  # characters of a command's first line in a step case's name
OUTPUT_LINES = 40  # lines of a step's output tail in its case
# The two runs of the runbook a journal records, with the words that start their step cases' names.
RUNS = (("runbook_steps", "runbook step"), ("rerun_steps", "second run, step"))

# ANSI escape sequences: CSI (colours, cursor moves), OSC (titles, hyperlinks) and
# DCS/SOS/PM/APC strings ended by BEL or ST, and two-character ESC codes. An
# unterminated string loses only its introducer (the last branch), not the text after it.
# 8-bit C1 forms are not decoded (UTF-8 output does not use them); _NOT_XML drops the C1 byte.
_ANSI = re.compile(
    r"\x1b\[[0-?]*[ -/]*[@-~]"
    r"|\x1b[\]PX^_][^\x07\x1b\n]*(?:\x07|\x1b\\)"
    r"|\x1b[ -/]*[0-~]"
)
# What XML 1.0 forbids (C0 controls but tab/LF/CR, lone surrogates, U+FFFE/U+FFFF)
# plus what it discourages and CI viewers choke on (DEL and the C1 controls).
_NOT_XML = re.compile("[^\t\n\r\x20-\x7e\xa0-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
# Attributes that carry text from the journal (the others are counts and times).
_TEXT_ATTRIBUTES = ("name", "classname", "message", "type", "value", "hostname", "timestamp", "file")


def xml_safe(text: str) -> str:
    """`text` without ANSI sequences or characters XML 1.0 cannot carry; line ends as LF."""
    text = _ANSI.sub("", text).replace("\r\n", "\n").replace("\r", "\n")
    return _NOT_XML.sub("", text)


def _clean_tree(root: ET.Element, redact: Redact) -> None:
    """Every text and text attribute of the tree made XML-safe, then redacted."""
    for el in root.iter():
        if el.text:
            el.text = redact(xml_safe(el.text))
        for key in _TEXT_ATTRIBUTES:
            if key in el.attrib:
                el.set(key, redact(xml_safe(el.attrib[key])))


def _steady_lines(data: Mapping[str, Any]) -> list[str]:
    """The steady-state watch after verify, when it ran."""
    watch = data.get("steady_state")
    return [f"after the rollback: {SteadyStateRecord.model_validate(watch).summary()}"] if watch else []


def _risk_lines(data: Mapping[str, Any]) -> list[str]:
    """Readiness risks: reported, never a failure (they do not change the verdict)."""
    risks = data.get("risks") or []
    if not risks:
        return []
    lines = ["readiness risks (they do not change the verdict):"]
    for r in risks:
        lines.append(f"  [{r.get('kind')}] {r.get('object')}: {r.get('message')}")
        lines += ["    " + ln for ln in str(r.get("evidence") or "").rstrip().splitlines()[-10:]]
    return lines


def _fault_lines(data: Mapping[str, Any]) -> list[str]:
    """The faults and the fault-free second run, when the scenario had faults."""
    if not (data.get("faults") or data.get("rerun_steps")):
        return []
    lines = ["faults during the rollback:"]
    for f in data.get("faults") or []:
        hits = "" if f.get("hits") is None else f", hits {f.get('hits')}"
        lines.append(f"  {f.get('kind')} {fault_moment(f)}: {f.get('status')}{hits}")

    def yes_no(value: Any) -> str:
        return "not recorded" if value is None else ("yes" if value else "no")

    if data.get("rerun_steps") or data.get("runbook_converged") is not None:  # the runbook's faults: a second run
        lines.append(f"runbook converged despite the faults: {yes_no(data.get('runbook_converged'))}; "
                     f"second run idempotent: {yes_no(data.get('idempotent'))}; "
                     f"fault cost {fmt_s(data.get('fault_cost_s'))}")
    step = next((s for s in data.get("rerun_steps") or [] if step_failed(s)), None)
    if step is not None:
        lines.append("second run: " + step_sentence(step))
    return lines


def _details(data: Mapping[str, Any]) -> str:
    lines = [f"scenario {data.get('scenario')}: verdict {data.get('verdict')}, expected {data.get('expect')}"]
    lines.append(f"time to detect {fmt_s(data.get('time_to_detect_s'))}, "
                 f"time to recover {fmt_s(data.get('time_to_recover_s'))}")
    diffs = data.get("differences") or []
    if diffs:
        lines.append("differences:")
        lines += [f"  [{d.get('area')}] {d.get('message')}" for d in diffs]
    else:
        lines.append("reasons:")
        lines += [f"  {r}" for r in data.get("reasons") or []]
    step = failing_step(data)
    if step is not None:
        lines.append(step_sentence(step))
        tail = str(step.get("output_tail") or "").rstrip()
        if tail:
            lines += ["output (tail):", *("  " + ln for ln in tail.splitlines()[-20:])]
    skipped = skipped_steps(data)
    if skipped:
        lines.append(f"{len(skipped)} runbook step(s) skipped, as the runbook marks them (never run):")
        lines += [f"  {skip_sentence(s)}" for s in skipped]
    bound = placeholder_sentence(data)
    lines += [bound] if bound else []
    lines += _steady_lines(data) + _risk_lines(data) + _fault_lines(data)
    errored = [p for p in data.get("phases") or [] if p.get("status") == "error"]
    for p in errored:
        first = (str(p.get("detail") or "").splitlines() or [""])[0]  # the line, not a list's repr
        lines.append(f"phase {p.get('name')} could not run: {first}")
    return "\n".join(lines)


def _step_name(step: Mapping[str, Any], words: str) -> str:
    """A step case's name: its number and the command's first line, without the runbook line (a case keeps
    its name, and so its history in CI, when lines are added above it)."""
    lines = str(step.get("command") or "").strip().splitlines() or [""]
    head = lines[0] if len(lines[0]) <= STEP_NAME_LIMIT else lines[0][:STEP_NAME_LIMIT] + "…"
    return f"{words} {step.get('index')}: {head}{' …' if len(lines) > 1 else ''}"


def _step_outcome(step: Mapping[str, Any]) -> str:
    """How a step that ran ended, in a few words (a failure's `type`)."""
    if step.get("timed_out"):
        return "timed out"
    if step.get("waiting_for_input"):
        return "waiting for input"
    if step.get("ended_session"):
        return f"ended the shell session (exit {step.get('exit_code')})"
    return f"exit {step.get('exit_code')}"


def _step_text(step: Mapping[str, Any]) -> str:
    """The command as it ran and the last lines of its output (both redacted in the journal)."""
    lines = ["command:", *("  " + ln for ln in str(step.get("command") or "").splitlines())]
    tail = str(step.get("output_tail") or "").rstrip()
    if tail:
        lines += ["output (tail):", *("  " + ln for ln in tail.splitlines()[-OUTPUT_LINES:])]
    return "\n".join(lines)


def _step_case(suite: ET.Element, d: Mapping[str, Any], step: Mapping[str, Any], words: str,
               redact: Redact) -> str:
    """One step's testcase; returns its outcome: passed, failure, skipped."""
    case = ET.SubElement(suite, "testcase", classname=redact(str(d.get("scenario"))),
                         name=redact(_step_name(step, words)), time=f"{float(step.get('duration_s') or 0):.3f}")
    if d.get("runbook_file"):
        case.set("file", redact(str(d["runbook_file"])))
    if isinstance(step.get("line"), int) and step["line"] > 0:
        case.set("line", str(step["line"]))
    where = f"{words} {step.get('index')} (line {step.get('line')})"
    if step_skipped(step):
        ET.SubElement(case, "skipped", message=redact(f"{where} skipped, as the runbook marks it: "
                                                      f"{step.get('skipped')}"), type="rehearse: skip")
        return "skipped"
    outcome, out = _step_outcome(step), _step_text(step)
    if not step_failed(step):
        ET.SubElement(case, "system-out").text = redact(out)
        return "passed"
    if not as_expected(d):
        ET.SubElement(case, "failure", message=redact(f"{where} {outcome}"), type=outcome).text = redact(out)
        return "failure"
    # The scenario's outcome is as expected, so this failure is too: pytest's xfail.
    ET.SubElement(case, "skipped", type="pytest.xfail", message=redact(
        f"{where} {outcome}; not a failure: the scenario's verdict {d.get('verdict')} is as expected"))
    ET.SubElement(case, "system-out").text = redact(f"{outcome}\n{out}")
    return "skipped"


def _scenario_case(suite: ET.Element, d: Mapping[str, Any], redact: Redact) -> str:
    """The scenario's testcase, with its verdict; returns passed or failure."""
    case = ET.SubElement(suite, "testcase", classname=SUITE, name=redact(str(d.get("scenario"))),
                         time=f"{total_duration(d):.3f}")
    if d.get("scenario_file"):
        case.set("file", redact(str(d["scenario_file"])))
    props = ET.SubElement(case, "properties")
    for name in ("verdict", "expect", "time_to_detect_s", "time_to_recover_s"):
        value = d.get(name)
        ET.SubElement(props, "property", name=name, value="" if value is None else redact(str(value)))
    for name in ("run_id", "shard"):  # which run (and shard) judged it: a merged set has several
        if d.get(name):
            ET.SubElement(props, "property", name=name, value=redact(str(d.get(name))))
    if skipped_steps(d):
        ET.SubElement(props, "property", name="skipped_steps", value=str(len(skipped_steps(d))))
    if d.get("risks"):
        kinds = ",".join(sorted({str(r.get("kind")) for r in d.get("risks") or []}))
        ET.SubElement(props, "property", name="risks", value=redact(kinds))
    for name, value in (d.get("objectives") or {}).items():
        ET.SubElement(props, "property", name=f"objective.{redact(name)}",
                      value="" if value is None else str(value))
    if not as_expected(d):
        fail = ET.SubElement(case, "failure", message=failure_message(d, redact), type=str(d.get("verdict")))
        fail.text = redact(_details(d))
        return "failure"
    ET.SubElement(case, "system-out").text = redact(_details(d))
    return "passed"


def _suite_properties(suite: ET.Element, properties: Mapping[str, str], redact: Redact) -> None:
    if properties:
        props = ET.SubElement(suite, "properties")
        for name, value in properties.items():
            ET.SubElement(props, "property", name=name, value=redact(value))


def _scenario_suite(root: ET.Element, d: Mapping[str, Any], redact: Redact, *, hostname: str,
                    properties: Mapping[str, str]) -> list[str]:
    """One scenario's testsuite: its case, then one case per recorded step; returns the cases' outcomes.
    `properties`: the run's (run_id; a shard run's shard and partition; a merged set's runs)."""
    suite = ET.SubElement(root, "testsuite", name=redact(str(d.get("scenario"))),
                          time=f"{total_duration(d):.3f}")
    for key, value in (("timestamp", d.get("started_at")), ("hostname", hostname), ("file", d.get("scenario_file"))):
        if value:
            suite.set(key, redact(str(value)))
    _suite_properties(suite, properties, redact)
    outcomes = [_scenario_case(suite, d, redact)]
    for key, words in RUNS:
        outcomes += [_step_case(suite, d, step, words, redact) for step in d.get(key) or []]
    _set_counts(suite, outcomes)
    return outcomes


def _set_counts(element: ET.Element, outcomes: Sequence[str]) -> None:
    element.set("tests", str(len(outcomes)))
    element.set("failures", str(outcomes.count("failure")))
    element.set("errors", str(outcomes.count("error")))
    element.set("skipped", str(outcomes.count("skipped")))


def _missing_suite(root: ET.Element, name: str, why: str, redact: Redact,
                   properties: Mapping[str, str]) -> list[str]:
    """A scenario a merged set has no result for: a case in error, never left out (a lost shard would
    otherwise read as all ready)."""
    suite = ET.SubElement(root, "testsuite", name=redact(name), time="0.000")
    _suite_properties(suite, properties, redact)
    case = ET.SubElement(suite, "testcase", classname=SUITE, name=redact(name), time="0.000")
    ET.SubElement(case, "error", message=redact(f"no result: {why}"), type="missing").text = redact(why)
    _set_counts(suite, ["error"])
    return ["error"]


def render_junit(journals: Sequence[Mapping[str, Any]], redact: Redact, *, timestamp: str = "",
                 hostname: str = "", run_id: str = "", properties: Mapping[str, str] | None = None,
                 missing: Mapping[str, str] | None = None) -> str:
    """journals: redacted journal data (see common.journal_data). `properties`: more suite properties
    after run_id (a shard run's shard and partition, a merged set's runs). `missing`: scenarios a merged
    set has no result for, with why; each is a testcase in error, never left out."""
    suite_props = {**({"run_id": run_id} if run_id else {}), **(properties or {})}
    total_time = sum(total_duration(d) for d in journals)
    root = ET.Element("testsuites", name=SUITE, time=f"{total_time:.3f}")
    if timestamp:
        root.set("timestamp", redact(timestamp))
    outcomes = [o for d in journals
                for o in _scenario_suite(root, d, redact, hostname=hostname, properties=suite_props)]
    for name, why in (missing or {}).items():
        outcomes += _missing_suite(root, name, why, redact, suite_props)
    if not outcomes and suite_props:  # an empty shard still says which run and shard it was
        empty = ET.SubElement(root, "testsuite", name=SUITE, time="0.000")
        _suite_properties(empty, suite_props, redact)
        _set_counts(empty, [])
    _set_counts(root, outcomes)
    _clean_tree(root, redact)
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


def write_junit(journals: Sequence[Mapping[str, Any]], path: Path, redact: Redact, **kw: Any) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render_junit(journals, redact, **kw), encoding="utf-8")
    return path
