"""Survival models for interval-censored episodes."""

from regen.survival.aft import RecoveryFit, compare_distributions, fit_recovery
from regen.survival.npmle import TurnbullFit, turnbull

__all__ = ["RecoveryFit", "TurnbullFit", "compare_distributions", "fit_recovery", "turnbull"]
