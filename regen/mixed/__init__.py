"""Longitudinal models of visit scores: linear mixed models and GEE."""

from regen.mixed.gee import ProbabilityFit, fit_probability
from regen.mixed.trajectory import TrajectoryFit, fit_trajectory

__all__ = ["ProbabilityFit", "TrajectoryFit", "fit_probability", "fit_trajectory"]
