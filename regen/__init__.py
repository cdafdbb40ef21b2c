"""regen: nerve recovery after percutaneous cryoneurolysis.

Read the practice's follow-up tables with :func:`read_cohort`, turn them into
interval-censored episodes with :meth:`Cohort.episodes`, and simulate cohorts
with a known truth with :func:`regen.simulate.cohort`. Fit survival models
(:func:`turnbull`, :func:`fit_recovery`, :func:`fit_regeneration`) to the
episodes, and longitudinal models (:func:`fit_trajectory`,
:func:`fit_probability`) to the visit scores of :meth:`Cohort.measurements`.
"""

from regen import plot, report, simulate
from regen._version import __version__
from regen._write import Outputs
from regen.cohort import Cohort, read_cohort
from regen.exceptions import (
    CohortValidationError,
    ConvergenceWarning,
    DataWarning,
    ModelError,
    OutputError,
    RegenError,
    RegenWarning,
)
from regen.io import ReadLimits
from regen.mixed import ProbabilityFit, TrajectoryFit, fit_probability, fit_trajectory
from regen.results import load_model
from regen.serialize import ModelFileError
from regen.survival import (
    RecoveryFit,
    RegenerationFit,
    TurnbullFit,
    choose_distribution,
    compare_distributions,
    fit_recovery,
    fit_regeneration,
    turnbull,
)

__all__ = [
    "Cohort",
    "CohortValidationError",
    "ConvergenceWarning",
    "DataWarning",
    "ModelError",
    "ModelFileError",
    "OutputError",
    "Outputs",
    "ProbabilityFit",
    "ReadLimits",
    "RegenError",
    "RecoveryFit",
    "RegenWarning",
    "RegenerationFit",
    "TrajectoryFit",
    "__version__",
    "choose_distribution",
    "compare_distributions",
    "fit_recovery",
    "fit_probability",
    "fit_regeneration",
    "fit_trajectory",
    "load_model",
    "plot",
    "read_cohort",
    "report",
    "simulate",
    "turnbull",
    "TurnbullFit",
]
