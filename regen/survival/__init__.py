"""Survival models for interval-censored episodes."""

from regen.survival.aft import RecoveryFit, fit_recovery
from regen.survival.npmle import TurnbullFit, turnbull

__all__ = ["RecoveryFit", "TurnbullFit", "fit_recovery", "turnbull"]
