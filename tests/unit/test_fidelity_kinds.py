"""The kinds the pg_dump differential suite added (tests/e2e/test_fidelity.py): how a
name's schema is read, how each new property is worded, which children an added or
missing object covers, and the `database.schemas` setting."""

from __future__ import annotations

from typing import Any

import pytest

from harness.scenario import ScenarioError, load_scenario
from harness.snapshot.db_models import (
    DatabaseSnapshot,
    GrantInfo,
    SchemaFingerprint,
    SchemaInfo,
    TableInfo,
    TriggerInfo,
)
from harness.snapshot.diff_db import diff_database
from harness.snapshot.kinds import schema_of


def _fp(**kinds: Any) -> SchemaFingerprint:
    base: dict[str, Any] = {"schemas": ("app", "public"), "all_schemas": True,
                            "namespaces": (SchemaInfo(name="app", owner="o"), SchemaInfo(name="public"))}
    return SchemaFingerprint(**(base | kinds))


def _messages(before: SchemaFingerprint, after: SchemaFingerprint) -> list[str]:
    snaps = [DatabaseSnapshot(database="d", server_version="15", schema_fingerprint=fp) for fp in (before, after)]
    return [d.message for d in diff_database(*snaps)]


@pytest.mark.parametrize(("name", "schema"), [
    ("users", "public"), ("app.users", "app"), ('"a.b"', "public"), ('"My App"."t"', "My App"),
    ('"x""y".t', 'x"y'), ("app.f(integer)", "app"), ("f(app.t)", "public"), (None, None),
])
def test_schema_of_a_rendered_name(name: str | None, schema: str | None) -> None:
    assert schema_of(name) == schema


USERS = TableInfo(name="app.users", kind="table", persistence="permanent", owner="o")
GRANT = GrantInfo(statement="GRANT SELECT ON TABLE app.users TO PUBLIC", schema_name="app", parent="app.users")


def test_grants_are_said_as_statements() -> None:
    assert _messages(_fp(tables=(USERS,)), _fp(tables=(USERS,), privileges=(GRANT,))) == [
        "GRANT SELECT ON TABLE app.users TO PUBLIC is still in place (added after baseline)"]
    assert _messages(_fp(tables=(USERS,), privileges=(GRANT,)), _fp(tables=(USERS,))) == [
        "GRANT SELECT ON TABLE app.users TO PUBLIC is missing (in place at baseline)"]


def test_owner_comment_options_and_replica_identity_in_words() -> None:
    after = USERS.model_copy(update={"owner": "admin", "comment": "people", "options": ("fillfactor=70",),
                                     "replica_identity": "full"})
    assert _messages(_fp(tables=(USERS,)), _fp(tables=(after,))) == [
        "table app.users is owned by admin (baseline owner o)",
        "table app.users storage parameters changed: [] -> [fillfactor=70]",
        "table app.users replica identity changed: DEFAULT -> FULL",
        "table app.users has a comment added after baseline: 'people'",
    ]


def test_a_disabled_trigger_is_named_with_its_table() -> None:
    on = TriggerInfo(name="touch", table="app.users", definition="CREATE TRIGGER ...", enabled="origin")
    off = on.model_copy(update={"enabled": "disabled"})
    assert _messages(_fp(tables=(USERS,), triggers=(on,)), _fp(tables=(USERS,), triggers=(off,))) == [
        "trigger touch on app.users is DISABLED (baseline ENABLED)"]


def test_an_added_table_covers_its_grants_and_a_new_schema_covers_its_objects() -> None:
    assert _messages(_fp(), _fp(tables=(USERS,), privileges=(GRANT,))) == [
        "table app.users is still present (added after baseline)"]
    before = _fp(namespaces=(SchemaInfo(name="public"),), schemas=("public",))
    assert _messages(before, _fp(tables=(USERS,), privileges=(GRANT,))) == [
        "schema app is still present (added after baseline)"]


def test_the_default_scope_is_every_schema_and_a_list_is_compared() -> None:
    listed = _fp(all_schemas=False)
    assert _messages(_fp(), listed) == ["snapshot scope differs: every schema -> schemas [app, public]"]
    assert _messages(_fp(), _fp(schemas=("public",))) == []  # a schema less: the schema kind says it


def test_reports_written_before_schemas_had_properties_still_read() -> None:
    old = SchemaFingerprint.model_validate({"schemas": ["public"], "namespaces": ["public"]})
    assert old.namespaces == (SchemaInfo(name="public"),)


def test_database_schemas_setting(scenario_dir: Any, kit: Any) -> None:
    doc = kit.minimal_doc()
    assert load_scenario(scenario_dir("plain", doc)).database.schemas is None
    doc["database"] = {"schemas": ["app", "public"]}
    assert load_scenario(scenario_dir("listed", doc)).database.schemas == ["app", "public"]
    for bad, word in ((["pg_catalog"], "system schemas"), (["app", "app"], "more than once"), ([], "at least 1")):
        doc["database"] = {"schemas": bad}
        with pytest.raises(ScenarioError) as ei:
            load_scenario(scenario_dir(f"bad{len(bad)}{bad[:1]}", doc))
        assert any(p.field == "database.schemas" and word in p.message for p in ei.value.problems), (
            [str(p) for p in ei.value.problems])
