"""Scenario format: models and loader."""

from harness.scenario.loader import Problem, ScenarioError, discover, load_all, load_scenario
from harness.scenario.models import Expect, Scenario, Verdict

__all__ = ["Expect", "Problem", "Scenario", "ScenarioError", "Verdict", "discover", "load_all", "load_scenario"]
