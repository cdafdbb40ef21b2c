"""Survival models for interval-censored episodes."""

from regen.survival.aft import (
    RecoveryFit,
    choose_distribution,
    compare_distributions,
    fit_recovery,
)
from regen.survival.npmle import TurnbullFit, turnbull
from regen.survival.regeneration import RegenerationFit, fit_regeneration

__all__ = [
    "RecoveryFit",
    "RegenerationFit",
    "TurnbullFit",
    "choose_distribution",
    "compare_distributions",
    "fit_recovery",
    "fit_regeneration",
    "turnbull",
]
