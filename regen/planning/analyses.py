"""One simulated study: simulate it, run the plan's analysis, keep what the summary needs.

Each analysis gives, per study, an estimate with its standard error and confidence
interval (on the scale the model estimates: the log of a velocity, time or hazard
ratio; days for a median) and the p-value of the test of no effect (not for the
median). What the truth is, where the simulator fixes it, is in :func:`truth`.

A study whose fit fails (a :class:`~regen.exceptions.RegenError` or a ``ValueError``,
such as a sample without a diabetic patient) is kept as failed, with the message; one
that warns (:class:`~regen.exceptions.RegenWarning`) is kept as warned. Nothing is
dropped: every seed gives one row.
"""

from __future__ import annotations

import math
import time
import warnings
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from regen.exceptions import RegenError, RegenWarning
from regen.planning.spec import Analysis
from regen.simulate import cohort, trial
from regen.simulate.settings import DEFAULT_NERVE_MIX
from regen.survival import (
    fit_ph,
    fit_recovery,
    fit_regeneration,
    logrank_test,
)

__all__ = ["RECORD_COLUMNS", "analysis_term", "null_effect", "run_chunk", "simulation_seed",
           "truth"]

#: One row per simulated study.
RECORD_COLUMNS = ("point", "sim", "estimate", "std_err", "ci_lower", "ci_upper", "p_value",
                  "n_episodes", "warned", "failed", "message", "seconds")
#: The simulator's velocity ratio behind each kinetics term (per decade for age).
_COHORT_RATIOS = {"diabetes": "diabetes_velocity_ratio", "smoker": "smoker_velocity_ratio",
                  "treatment_number": "retreatment_velocity_ratio",
                  "age": "age_velocity_ratio_per_decade"}
#: The simulator's defaults of those ratios.
_RATIO_DEFAULTS = {"diabetes_velocity_ratio": 0.8, "smoker_velocity_ratio": 0.95,
                   "retreatment_velocity_ratio": 1.0, "age_velocity_ratio_per_decade": 0.93}
_MESSAGE_CHARS = 200


def analysis_term(analysis: Analysis, model: str) -> str:
    """The covariate the analysis is about."""
    return analysis.term or ("group" if model == "trial" else "diabetes")


def simulation_seed(seed: int, sim: int) -> int:
    """Study ``sim``'s seed: the ``sim``-th child of the plan's seed (as
    ``SeedSequence(seed).spawn``), the same at every design point (common random numbers)
    and whatever the workers."""
    state = np.random.SeedSequence(seed, spawn_key=(sim,)).generate_state(1, dtype=np.uint64)
    return int(state[0])


def null_effect(point: Mapping[str, Any], analysis: Analysis) -> bool:
    """Whether the design point has no effect of the analysis's term (its rejection rate is
    then a type-I error). None where the simulator does not say."""
    term = analysis_term(analysis, point.get("model", "cohort"))
    if point.get("model", "cohort") == "trial":
        return term == "group" and float(point.get("hazard_ratio", 1.0)) == 1.0
    if term == "procedure":
        return True  # the simulator gives the decompression no effect
    key = _COHORT_RATIOS.get(term)
    return key is not None and float(point.get(key, _RATIO_DEFAULTS[key])) == 1.0


def truth(point: Mapping[str, Any], analysis: Analysis) -> float:
    """The value the analysis estimates, where the simulator fixes it; NaN where not.

    - kinetics, cohort model: the log velocity ratio of the term (per year of age);
    - ph, trial: log hazard_ratio; aft, trial, Weibull: -log(hazard_ratio) / shape;
    - median, trial: the group's median; median, cohort: see :func:`cohort_median`;
    - any coefficient of a term without effect (:func:`null_effect`): 0.
    """
    model = point.get("model", "cohort")
    term = analysis_term(analysis, model)
    name = analysis.name
    if name == "median":
        return _trial_median(point, analysis) if model == "trial" else cohort_median(point, analysis)
    if name == "logrank":
        return math.nan
    if null_effect(point, analysis):
        return 0.0
    if model == "cohort" and name == "kinetics" and term in _COHORT_RATIOS:
        key = _COHORT_RATIOS[term]
        ratio = float(point.get(key, _RATIO_DEFAULTS[key]))
        return math.log(ratio) / (10 if term == "age" else 1)
    if model == "trial" and term == "group":
        log_hr = math.log(float(point.get("hazard_ratio", 1.0)))
        if name == "ph":
            return log_hr
        if name == "aft" and (analysis.dist or "weibull") == "weibull":
            return -log_hr / float(point.get("shape", 1.0))
    return math.nan


def _trial_median(point: Mapping[str, Any], analysis: Analysis) -> float:
    median = float(point.get("median_days", 60.0))
    if (analysis.level or "control") == "control":
        return median
    return median * float(point.get("hazard_ratio", 1.0)) ** (-1 / float(point.get("shape", 1.0)))


#: Patients of the reference cohort behind a cohort model's true median.
REFERENCE_PATIENTS = 50_000


def cohort_median(point: Mapping[str, Any], analysis: Analysis) -> float:
    """The true median time of one nerve in a cohort design: the median of the latent
    recovery days (numbness) or relief end days among responders (relief) of the
    nerve's treatments in a reference cohort of 50,000 patients (its Monte-Carlo error
    is well below a day)."""
    arguments = {k: v for k, v in point.items() if k not in ("model", "n_patients")}
    events = cohort(REFERENCE_PATIENTS, seed=20_261_202, **arguments).events
    events = events[events["nerve"] == median_level(point, analysis)]
    column = "recovery_day" if analysis.outcome == "numbness" else "relief_end_day"
    return float(np.nanmedian(events[column].to_numpy(dtype=float)))


def median_level(point: Mapping[str, Any], analysis: Analysis) -> str:
    if analysis.level is not None:
        return analysis.level
    if point.get("model", "cohort") == "trial":
        return "control"
    mix = point.get("nerves") or DEFAULT_NERVE_MIX
    return max(mix, key=lambda nerve: mix[nerve])


# ---------------------------------------------------------------- one study --

def _episodes(point: Mapping[str, Any], analysis: Analysis, seed: int) -> pd.DataFrame:
    arguments = {k: v for k, v in point.items() if k not in ("model", "n_patients")}
    if point.get("model", "cohort") == "trial":
        return trial(point["n_patients"], seed=seed, **arguments)
    sim = cohort(point["n_patients"], seed=seed, **arguments)
    return sim.episodes(analysis.outcome)


def _coefficient(summary: pd.DataFrame, term: str) -> pd.Series:
    names = [name for name in summary.index if name == term or name.startswith(f"{term}[")]
    if len(names) != 1:
        raise ValueError(f"the model has {len(names)} coefficients for {term!r} "
                         f"({', '.join(map(str, summary.index))}); give a term with one")
    return summary.loc[names[0]]


def _fit(episodes: pd.DataFrame, point: Mapping[str, Any], analysis: Analysis, alpha: float
         ) -> tuple[float, float, float, float, float]:
    """(estimate, std_err, ci_lower, ci_upper, p_value) of one study, intervals at 1 - alpha."""
    term = analysis_term(analysis, point.get("model", "cohort"))
    formula = analysis.formula or f"~ {term}"
    nan = math.nan
    if analysis.name == "logrank":
        test = logrank_test(episodes, by=term, cluster=analysis.cluster)
        return nan, nan, nan, nan, float(test.p_value)
    if analysis.name == "median":
        # the group's own model: its median does not borrow the other groups' scale, and a
        # group seen too briefly to fit (a nerve whose relief outlasts the visits) is not in it
        level = median_level(point, analysis)
        mine = episodes[episodes[term].astype(str) == level]
        if mine.empty:
            raise ValueError(f"no episode of {term} {level!r} in this study")
        fit = fit_recovery("~ 1", mine, dist=analysis.dist or "lognormal")
        row = fit.predict_quantile(pd.DataFrame(index=[0]), q=[0.5], alpha=alpha).iloc[0]
        return (float(row["estimate"]), float(row["std_err_log"]) * float(row["estimate"]),
                float(row["ci_lower"]), float(row["ci_upper"]), nan)
    if analysis.name == "kinetics":
        fit = fit_regeneration(episodes, distance="distance_mm", formula=formula,
                               velocity_dist=analysis.dist or "lognormal", alpha=alpha,
                               cluster=analysis.cluster, frailty=analysis.frailty)
    elif analysis.name == "aft":
        fit = fit_recovery(formula, episodes, dist=analysis.dist or "weibull",
                           cluster=analysis.cluster, frailty=analysis.frailty)
    else:
        fit = fit_ph(formula, episodes, cluster=analysis.cluster)
    row = _coefficient(fit.coef_table(alpha), term)
    return (float(row["estimate"]), float(row["std_err"]), float(row["ci_lower"]),
            float(row["ci_upper"]), float(row["p_value"]))


def run_study(point: Mapping[str, Any], analysis: Analysis, seed: int, alpha: float = 0.05
              ) -> dict[str, Any]:
    """Simulate one study and analyse it; failures and warnings are recorded, not raised."""
    started = time.process_time()
    record: dict[str, Any] = dict.fromkeys(("estimate", "std_err", "ci_lower", "ci_upper",
                                            "p_value"), math.nan)
    record.update(n_episodes=0, warned=False, failed=False, message="")
    with warnings.catch_warnings(record=True) as caught, np.errstate(all="ignore"):
        warnings.simplefilter("always", RegenWarning)
        try:
            episodes = _episodes(point, analysis, seed)
            record["n_episodes"] = len(episodes)
            values = _fit(episodes, point, analysis, alpha)
            record.update(zip(("estimate", "std_err", "ci_lower", "ci_upper", "p_value"), values,
                              strict=True))
        except (RegenError, ValueError) as error:  # numpy's LinAlgError is a ValueError
            record.update(failed=True, message=f"{type(error).__name__}: {error}")
    ours = [w for w in caught if issubclass(w.category, RegenWarning)]
    if ours and not record["failed"]:
        record.update(warned=True, message=f"{ours[0].category.__name__}: {ours[0].message}")
    record["message"] = record["message"][:_MESSAGE_CHARS]
    record["seconds"] = time.process_time() - started
    return record


def run_chunk(task: Mapping[str, Any]) -> pd.DataFrame:
    """Run simulations ``task["sims"]`` of design point ``task["point_index"]``: one row each
    (:data:`RECORD_COLUMNS`). Module-level, so that dask workers can run it."""
    analysis = Analysis(**task["analysis"])
    rows = []
    for sim in task["sims"]:
        record = run_study(task["point"], analysis, simulation_seed(task["seed"], sim),
                           task["alpha"])
        rows.append({"point": task["point_index"], "sim": sim, **record})
    frame = pd.DataFrame(rows, columns=list(RECORD_COLUMNS))
    return frame.astype({"point": "int64", "sim": "int64", "n_episodes": "int64",
                         "warned": bool, "failed": bool})
