"""Scenario format: models and loader."""

from harness.scenario.loader import (
    Problem,
    ScenarioError,
    discover,
    duplicate_names,
    load_all,
    load_or_problems,
    load_scenario,
    scenario_name,
)
from harness.scenario.models import Expect, Scenario, Verdict

__all__ = ["Expect", "Problem", "Scenario", "ScenarioError", "Verdict", "discover", "duplicate_names", "load_all",
           "load_or_problems", "load_scenario", "scenario_name"]
