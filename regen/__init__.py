"""regen: nerve recovery after percutaneous cryoneurolysis.

Read the practice's follow-up tables with :func:`read_cohort`, turn them into
interval-censored episodes with :meth:`Cohort.episodes`, and simulate cohorts
with a known truth with :func:`regen.simulate.cohort`. Fit survival models
(:func:`turnbull`, :func:`fit_recovery`, :func:`fit_regeneration`) to the
episodes, compare groups (:func:`fit_ph` for hazard ratios, :func:`logrank_test`),
and fit longitudinal models (:func:`fit_trajectory`,
:func:`fit_probability`) to the visit scores of :meth:`Cohort.measurements`. Plan a
study by simulation with :func:`plan` (power, precision, visit schedules).
"""

from typing import TYPE_CHECKING

from regen._version import __version__

#: Where each public name lives: it is imported on first use (PEP 562), so that
#: ``import regen`` and the command line's ``--help`` do not load pandas, scipy,
#: statsmodels or matplotlib before they are needed.
_HOMES = {
    "Cohort": "regen.cohort", "read_cohort": "regen.cohort",
    "CohortValidationError": "regen.exceptions", "ConvergenceWarning": "regen.exceptions",
    "DataWarning": "regen.exceptions", "ModelError": "regen.exceptions",
    "OutputError": "regen.exceptions", "RegenError": "regen.exceptions",
    "RegenWarning": "regen.exceptions",
    "ModelFileError": "regen.serialize",
    "Outputs": "regen._write",
    "ReadLimits": "regen.io",
    "ProbabilityFit": "regen.mixed", "TrajectoryFit": "regen.mixed",
    "fit_probability": "regen.mixed", "fit_trajectory": "regen.mixed",
    "load_model": "regen.results",
    "PlanResult": "regen.planning", "plan": "regen.planning",
    "FrailtyFit": "regen.survival",
    "LogrankResult": "regen.survival", "PHFit": "regen.survival",
    "fit_ph": "regen.survival", "logrank_test": "regen.survival",
    "RecoveryFit": "regen.survival", "RegenerationFit": "regen.survival",
    "TurnbullFit": "regen.survival", "choose_distribution": "regen.survival",
    "compare_distributions": "regen.survival", "fit_recovery": "regen.survival",
    "fit_regeneration": "regen.survival", "turnbull": "regen.survival",
}
_SUBMODULES = ("plot", "report", "simulate")

if TYPE_CHECKING:  # what static tools and editors see
    from regen import plot, report, simulate
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
    from regen.planning import PlanResult, plan
    from regen.results import load_model
    from regen.serialize import ModelFileError
    from regen.survival import (
        FrailtyFit,
        LogrankResult,
        PHFit,
        RecoveryFit,
        RegenerationFit,
        TurnbullFit,
        choose_distribution,
        compare_distributions,
        fit_ph,
        fit_recovery,
        fit_regeneration,
        logrank_test,
        turnbull,
    )


def __getattr__(name: str):
    import importlib

    if name in _SUBMODULES:
        return importlib.import_module(f"regen.{name}")
    if name in _HOMES:
        if name == "load_model":      # the result classes register their kinds when loaded
            for family in ("regen.survival", "regen.mixed"):
                importlib.import_module(family)
        value = getattr(importlib.import_module(_HOMES[name]), name)
        globals()[name] = value          # the next use is a plain attribute
        return value
    if not name.startswith("_"):      # regen.survival, regen.tables, ... as before: on use
        try:
            return importlib.import_module(f"regen.{name}")
        except ModuleNotFoundError as error:
            if error.name != f"regen.{name}":
                raise
    raise AttributeError(f"module 'regen' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


__all__ = [
    "Cohort",
    "CohortValidationError",
    "ConvergenceWarning",
    "DataWarning",
    "FrailtyFit",
    "LogrankResult",
    "ModelError",
    "ModelFileError",
    "OutputError",
    "Outputs",
    "PHFit",
    "PlanResult",
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
    "fit_ph",
    "fit_recovery",
    "fit_probability",
    "fit_regeneration",
    "fit_trajectory",
    "load_model",
    "logrank_test",
    "plan",
    "plot",
    "read_cohort",
    "report",
    "simulate",
    "turnbull",
    "TurnbullFit",
]
