"""Survival models for interval-censored episodes."""

from regen.survival.npmle import TurnbullFit, turnbull

__all__ = ["TurnbullFit", "turnbull"]
