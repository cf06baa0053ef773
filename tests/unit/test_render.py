"""Manifest rendering (harness/render.py): a variable's value is data inside a YAML scalar, never structure."""

from __future__ import annotations

from typing import Any

import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from harness.render import render_manifests

TEMPLATE = """\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web  # a comment
  labels: {plain: ${V}, quoted: "${V}", inside: x-$V}
spec:
  replicas: ${N}
  template:
    spec:
      containers:
      - name: app
        image: ${IMG}
        env:
        - {name: A, value: "${V}"}
        - name: B
          value: ${V}
        - name: C
          value: '$$HOME ${UNKNOWN} $HOME'
---
kind: ConfigMap
data:
  ${V}-key: fixed
  text: |
    line ${N}
    ${V}
"""


def expected(v: Any, n: Any, plain_v: Any) -> list[Any]:
    """What TEMPLATE means with V and N in place, each value left as the data it is."""
    return [
        {"apiVersion": "apps/v1", "kind": "Deployment",
         "metadata": {"name": "web", "labels": {"plain": plain_v, "quoted": v, "inside": f"x-{v}"}},
         "spec": {"replicas": n, "template": {"spec": {"containers": [{
             "name": "app", "image": "127.0.0.1:5000/demo:abc",
             "env": [{"name": "A", "value": v}, {"name": "B", "value": plain_v},
                     {"name": "C", "value": "$HOME ${UNKNOWN} $HOME"}]}]}}}},
        {"kind": "ConfigMap", "data": {f"{v}-key": "fixed", "text": f"line {n}\n{v}\n"}},
    ]


def render(v: str, n: str = "3") -> list[Any]:
    return list(yaml.safe_load_all(render_manifests(TEMPLATE, {"V": v, "N": n, "IMG": "127.0.0.1:5000/demo:abc"})))


def test_a_plain_scalar_takes_the_type_of_its_text_and_a_quoted_one_stays_a_string() -> None:
    assert render("true") == expected("true", 3, True)
    assert render("v1") == expected("v1", 3, "v1")


def test_yaml_special_values_stay_one_scalar() -> None:
    for value in ["a: b", "x # not a comment", "[1, 2]", "{k: v}", "- item", "*alias", "&anchor", "!!python/x",
                  "'quoted'", '"dq"', "%directive", "@at", "`tick`", "---", "...", "a: b\nc: d", "|", ">-",
                  " leading and trailing ", ""]:
        out = render(value)
        assert out[1]["data"]["text"] == f"line 3\n{value}\n" or "\n" in value, value
        assert out[0]["spec"]["template"]["spec"]["containers"][0]["env"][0] == {"name": "A", "value": value}
        assert len(out) == 2 and set(out[1]["data"]) == {f"{value}-key", "text"}, value


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=40))
def test_no_value_changes_the_structure(value: str) -> None:
    out = render(value)
    assert len(out) == 2
    assert set(out[0]) == {"apiVersion", "kind", "metadata", "spec"} and set(out[1]) == {"kind", "data"}
    env = out[0]["spec"]["template"]["spec"]["containers"][0]["env"]
    assert [e["name"] for e in env] == ["A", "B", "C"] and env[0]["value"] == value
    assert out[0]["metadata"]["labels"]["quoted"] == value


def test_aliases_are_substituted_once_and_unknown_names_and_escapes_are_kept() -> None:
    text = "a: &x ${V}-1\nb: *x\nc: $$V $OTHER\n"
    assert yaml.safe_load(render_manifests(text, {"V": "7"})) == {"a": "7-1", "b": "7-1", "c": "$V $OTHER"}


def test_text_that_is_not_yaml_is_substituted_as_text() -> None:
    assert render_manifests("a: [unclosed ${V}", {"V": "x"}) == "a: [unclosed x"
