"""regen: nerve recovery after percutaneous cryoneurolysis.

Read the practice's follow-up tables with :func:`read_cohort`, turn them into
interval-censored episodes with :meth:`Cohort.episodes`, and simulate cohorts
with a known truth with :func:`regen.simulate.cohort`.
"""

from regen import simulate
from regen._version import __version__
from regen.cohort import Cohort, read_cohort
from regen.exceptions import (
    CohortValidationError,
    ConvergenceWarning,
    DataWarning,
    ModelError,
    RegenError,
    RegenWarning,
)
from regen.serialize import ModelFileError, load_model
from regen.survival import (
    RecoveryFit,
    RegenerationFit,
    TurnbullFit,
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
    "RegenError",
    "RecoveryFit",
    "RegenWarning",
    "RegenerationFit",
    "__version__",
    "compare_distributions",
    "fit_recovery",
    "fit_regeneration",
    "load_model",
    "read_cohort",
    "simulate",
    "turnbull",
    "TurnbullFit",
]
