"""Survival models for interval-censored episodes."""

from regen.survival.aft import (
    RecoveryFit,
    choose_distribution,
    compare_distributions,
    fit_recovery,
)
from regen.survival.frailty import FrailtyFit
from regen.survival.logrank import LogrankResult, logrank_test
from regen.survival.npmle import TurnbullFit, turnbull
from regen.survival.ph import PHFit, fit_ph
from regen.survival.regeneration import RegenerationFit, fit_regeneration

__all__ = [
    "FrailtyFit",
    "LogrankResult",
    "PHFit",
    "RecoveryFit",
    "RegenerationFit",
    "TurnbullFit",
    "choose_distribution",
    "compare_distributions",
    "fit_ph",
    "fit_recovery",
    "fit_regeneration",
    "logrank_test",
    "turnbull",
]
