"""The analysis scripts account for every treatment."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import regen

ROOT = Path(__file__).resolve().parents[1]


def load(name: str):
    spec = importlib.util.spec_from_file_location(name, ROOT / "analyses" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_episode_overview_accounts_for_every_treatment():
    cohort = regen.read_cohort(ROOT / "data" / "example")
    table = load("episode_overview").overview(cohort, threshold=0.5)
    assert table["treatments"].sum() == len(cohort.treatments)
    numbness = table.filter(regex="^numbness_").sum(axis=1)
    assert (numbness == table["treatments"]).all()
    relief = table["responders"] + table.filter(regex="^relief_excluded_").sum(axis=1)
    assert (relief == table["treatments"]).all()
    assert table["responder_rate"].between(0, 1).all()
