"""The settings of :func:`regen.simulate.cohort`: the population's parameters, the check
of every argument (the first bad one raises, naming it and what it must be), and the record of
them all (``sim.truth``)."""

from __future__ import annotations

import datetime as _dt
import math
import numbers
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

__all__ = ["BASELINE_PAIN", "BASELINE_WINDOW_DAYS", "DEFAULT_NERVE_MIX", "DEFAULT_P_RETREAT",
           "HEADACHE_NERVES", "MIDLINE_NERVES", "NERVE_DISTANCES", "POPULATION", "PROBABILITIES",
           "RATIOS", "REFERENCE_AGE", "RELIEF_EXTENSION_SHAPE", "RELIEF_THRESHOLD",
           "RELIEVED_PAIN_FRACTION", "RETREAT_GAP_DAYS", "RETREAT_MODES", "Settings",
           "scheduled_visits",
           "check_number", "check_schedule", "check_seed", "check_settings"]

#: Freeze site to skin territory, mm: lognormal ``(median_mm, sd_log)`` per nerve.
#: Chosen so that, for the simulated population (median velocity about
#: 1.33 mm/day, 10-day lag), median sensory recovery falls at about 5-6 weeks
#: for occipital nerves (relief 6.5-8 weeks; about a third of greater occipital
#: treatments still relieved at 8 weeks, as in the occipital pilot), 8 weeks for
#: facial nerves, 10-11 weeks for the knee nerves (relief about 85-90 days, "up
#: to 90 days") and 6 months (about 185 days) for intercostal nerves.
NERVE_DISTANCES: dict[str, tuple[float, float]] = {
    "greater_occipital": (40.0, 0.25),
    "lesser_occipital": (35.0, 0.25),
    "third_occipital": (30.0, 0.25),
    "supraorbital": (60.0, 0.20),
    "supratrochlear": (55.0, 0.20),
    "auriculotemporal": (50.0, 0.25),
    "infrapatellar_saphenous": (80.0, 0.25),
    "anterior_femoral_cutaneous": (90.0, 0.25),
    "intercostal": (230.0, 0.12),
}

#: Default share of treatments per nerve (the mix of a headache and knee practice).
DEFAULT_NERVE_MIX: dict[str, float] = {
    "greater_occipital": 0.35,
    "lesser_occipital": 0.10,
    "third_occipital": 0.05,
    "supraorbital": 0.10,
    "infrapatellar_saphenous": 0.20,
    "anterior_femoral_cutaneous": 0.10,
    "intercostal": 0.10,
}

#: Treated on the midline (no side), and with headache days recorded at each visit.
MIDLINE_NERVES = ("third_occipital",)
HEADACHE_NERVES = ("greater_occipital", "lesser_occipital", "third_occipital")
#: The patients: sex, age at the first treatment, diabetes, smoking and BMI.
POPULATION = {
    "p_female": 0.6, "age_mean": 52.0, "age_sd": 13.0, "age_range": [25, 85],
    "p_diabetes": 0.15, "p_smoker": 0.2, "bmi_mean": 27.0, "bmi_sd": 5.0, "bmi_range": [16, 50],
}
#: Age of the reference velocity; days of the baseline visit; relieved means pain at most
#: this fraction of baseline; shape of the Gamma relief beyond recovery; relieved pain as a
#: fraction of baseline (uniform).
REFERENCE_AGE = 50
BASELINE_WINDOW_DAYS = (-14, 0)
RELIEF_THRESHOLD = 0.5
RELIEF_EXTENSION_SHAPE = 2.0
RELIEVED_PAIN_FRACTION = (0.25, 0.35)
#: Days from a treatment to its retreatment of the same nerve and side (uniform), and the
#: default chance of that retreatment (``retreat="random"``).
RETREAT_GAP_DAYS = (90, 300)
DEFAULT_P_RETREAT = 0.2
#: How retreatments are scheduled: at random, or when relief is seen to have ended.
RETREAT_MODES = ("random", "on_relief_end")
#: The recorded baseline pain score, normal then rounded and clipped (0-10 scale).
BASELINE_PAIN = {"mean": 6.5, "sd": 1.5, "min": 3, "max": 10}
#: The velocity ratios, and the probabilities, that cohort() takes as keyword settings.
RATIOS = ("age_velocity_ratio_per_decade", "diabetes_velocity_ratio", "smoker_velocity_ratio",
          "retreatment_velocity_ratio")
PROBABILITIES = ("p_bilateral", "p_retreat", "p_decompression", "p_missed", "dropout_per_year",
                  "p_misclassified", "p_response")


@dataclass(frozen=True, eq=False)
class Settings:
    """The checked settings of :func:`regen.simulate.cohort` (days as numbers counted from 1970-01-01)."""

    n_patients: int
    seed: int
    velocity_mm_per_day: float
    velocity_sd_log: float
    patient_sd_log: float
    lag_days: float
    ratios: dict[str, float]
    probabilities: dict[str, float]
    relief_extension_days: float
    baseline_pain_mean: float
    baseline_pain_sd: float
    pain_noise_sd: float
    pain_noise_crosses: bool
    retreat: str  # one of RETREAT_MODES
    retreat_delay_days: int
    max_treatments: int
    jitter_days: int
    nerves: dict[str, float]
    schedule: list[int]
    time_columns: tuple[str, ...]
    start: np.int64
    end: np.int64
    span_days: int

    def truth(self) -> dict[str, Any]:
        """Every parameter used, JSON-serialisable (``SimulatedCohort.truth``)."""
        pain_mean, pain_sd = self.baseline_pain_mean, self.baseline_pain_sd
        return {
            "n_patients": self.n_patients, "seed": self.seed,
            "velocity_mm_per_day": self.velocity_mm_per_day,
            "velocity_sd_log": self.velocity_sd_log, "patient_sd_log": self.patient_sd_log,
            "lag_days": self.lag_days,
            "reference_age": REFERENCE_AGE, **self.ratios,
            "nerves": dict(self.nerves),
            "nerve_distances": {
                k: {"median_mm": m, "sd_log": s} for k, (m, s) in NERVE_DISTANCES.items()
            },
            "midline_nerves": list(MIDLINE_NERVES), "headache_nerves": list(HEADACHE_NERVES),
            **self.probabilities, "retreat": self.retreat,
            "retreat_delay_days": self.retreat_delay_days,
            "max_treatments": self.max_treatments,
            "retreat_gap_days": list(RETREAT_GAP_DAYS), "schedule": list(self.schedule),
            "jitter_days": self.jitter_days,
            "baseline_window_days": list(BASELINE_WINDOW_DAYS),
            "relief_extension_days": self.relief_extension_days,
            "relief_extension_shape": RELIEF_EXTENSION_SHAPE,
            "relief_threshold": RELIEF_THRESHOLD,
            "relieved_pain_fraction": list(RELIEVED_PAIN_FRACTION),
            "baseline_pain": {**BASELINE_PAIN, "mean": pain_mean, "sd": pain_sd},
            "baseline_pain_mean": pain_mean, "baseline_pain_sd": pain_sd,
            "pain_noise_sd": self.pain_noise_sd, "pain_noise_crosses": self.pain_noise_crosses,
            "population": dict(POPULATION),
            "procedure_effect": "none", "time_columns": list(self.time_columns),
            "start_date": str(self.start.astype("datetime64[D]")),
            "end_date": str(self.end.astype("datetime64[D]")),
        } | ({"p_retreat": None, "retreat_gap_days": None}  # not used in this mode
             if self.retreat == "on_relief_end" else {})


def check_settings(arguments: Mapping[str, Any]) -> Settings:
    """Check the arguments of :func:`regen.simulate.cohort`; the first bad one raises."""
    n = check_number("n_patients", arguments["n_patients"], low=1, integer=True)
    seed = check_seed(arguments["seed"])
    v_ref = check_number("velocity_mm_per_day", arguments["velocity_mm_per_day"], low=0, low_open=True)
    sd_log = check_number("velocity_sd_log", arguments["velocity_sd_log"], low=0)
    patient_sd = check_number("patient_sd_log", arguments["patient_sd_log"], low=0)
    lag = check_number("lag_days", arguments["lag_days"], low=0)
    ratios = {k: check_number(k, arguments[k], low=0, low_open=True) for k in RATIOS}
    probs = {k: check_number(k, arguments[k], low=0, high=1) for k in PROBABILITIES}
    extension = check_number("relief_extension_days", arguments["relief_extension_days"], low=0)
    pain_mean = check_number("baseline_pain_mean", arguments["baseline_pain_mean"],
                              low=BASELINE_PAIN["min"], high=BASELINE_PAIN["max"])
    pain_sd = check_number("baseline_pain_sd", arguments["baseline_pain_sd"], low=0)
    noise_sd = check_number("pain_noise_sd", arguments["pain_noise_sd"], low=0)
    crosses = arguments["pain_noise_crosses"]
    if not isinstance(crosses, bool | np.bool_):
        raise TypeError(f"pain_noise_crosses must be True or False, got {crosses!r}")
    retreat = _check_retreat(arguments["retreat"], probs["p_retreat"])
    delay = check_number("retreat_delay_days", arguments["retreat_delay_days"], low=1,
                          integer=True)
    max_treatments = check_number("max_treatments", arguments["max_treatments"], low=1,
                                   integer=True)
    jitter = check_number("jitter_days", arguments["jitter_days"], low=0, integer=True)
    nerves = arguments["nerves"]
    mix = _check_nerves(DEFAULT_NERVE_MIX if nerves is None else nerves)
    slots = check_schedule(arguments["schedule"])
    times = _check_time_columns(arguments["time_columns"])
    start = _check_date("start_date", arguments["start_date"])
    end = _check_date("end_date", arguments["end_date"])
    span = int(end - start)
    if span < 0:
        raise ValueError(f"end_date {arguments['end_date']!r} is before start_date "
                         f"{arguments['start_date']!r}")
    if retreat == "on_relief_end":
        probs["p_retreat"] = 0.0  # not used: _patients then lays out index procedures only
    elif probs["p_retreat"] > 0 and span < RETREAT_GAP_DAYS[1]:
        raise ValueError(
            f"start_date to end_date spans {span} days; retreatments need at least "
            f"{RETREAT_GAP_DAYS[1]}. Widen the range or set p_retreat=0."
        )
    return Settings(
        n_patients=n, seed=seed, velocity_mm_per_day=v_ref, velocity_sd_log=sd_log,
        patient_sd_log=patient_sd, lag_days=lag, ratios=ratios, probabilities=probs,
        relief_extension_days=extension, baseline_pain_mean=pain_mean, baseline_pain_sd=pain_sd,
        pain_noise_sd=noise_sd, pain_noise_crosses=bool(crosses), retreat=retreat,
        retreat_delay_days=delay, max_treatments=max_treatments, jitter_days=jitter, nerves=mix,
        schedule=slots, time_columns=times, start=start, end=end, span_days=span,
    )


def check_number(
    name: str, value: Any, *, low: float | None = None, high: float | None = None,
    low_open: bool = False, integer: bool = False,
) -> Any:
    """``value`` as an int (``integer``) or float, or the error naming ``name``: TypeError for
    what is not a number (booleans included), ValueError for a value not finite or out of
    ``[low, high]`` (``(low, high]`` with ``low_open``)."""
    kind = "a whole number" if integer else "a number"
    wanted = numbers.Integral if integer else numbers.Real
    if isinstance(value, bool) or not isinstance(value, wanted):
        raise TypeError(f"{name} must be {kind}, got {type(value).__name__} {value!r}")
    result = int(value) if integer else float(value)
    if not math.isfinite(result):
        raise ValueError(f"{name} must be finite, got {value!r}")
    if low is not None and (result < low or (low_open and result == low)):
        raise ValueError(f"{name} must be {'>' if low_open else '>='} {low:g}, got {value!r}")
    if high is not None and result > high:
        raise ValueError(f"{name} must be <= {high:g}, got {value!r}")
    return result


def check_seed(seed: Any) -> int:
    """A seed for :func:`numpy.random.default_rng`; ``None`` draws fresh entropy to record."""
    if seed is None:
        return int(np.random.SeedSequence().entropy)
    return check_number("seed", seed, low=0, integer=True)


def _check_retreat(retreat: Any, p_retreat: float) -> str:
    if not isinstance(retreat, str):
        raise TypeError(f"retreat must be one of {', '.join(map(repr, RETREAT_MODES))}, "
                        f"got {type(retreat).__name__} {retreat!r}")
    if retreat not in RETREAT_MODES:
        raise ValueError(f"retreat must be one of {', '.join(map(repr, RETREAT_MODES))}, "
                         f"got {retreat!r}")
    if retreat == "on_relief_end" and p_retreat != DEFAULT_P_RETREAT:
        raise ValueError(
            f"p_retreat={p_retreat:g} is the chance of a random retreatment (retreat='random'); "
            "with retreat='on_relief_end' every responder whose relief is seen to end is "
            "retreated. Leave p_retreat out, or set max_treatments=1 for no retreatment."
        )
    return retreat


def _check_nerves(nerves: Any) -> dict[str, float]:
    if not isinstance(nerves, Mapping):
        raise TypeError(f"nerves must map nerve names to shares, got {type(nerves).__name__}")
    unknown = [name for name in nerves if name not in NERVE_DISTANCES]
    if unknown:
        raise ValueError(
            f"nerves: no distance table for {unknown}; use names from {', '.join(NERVE_DISTANCES)}"
        )
    shares = {str(name): check_number(f"nerves[{name!r}]", v, low=0) for name, v in nerves.items()}
    total = sum(shares.values())
    if total <= 0:
        raise ValueError("nerves: the shares must sum to more than 0")
    return {name: share / total for name, share in shares.items()}


def check_schedule(schedule: Any) -> list[int]:
    """Nominal visit days: positive whole numbers, strictly increasing, at least one."""
    if isinstance(schedule, str | bytes) or not isinstance(schedule, Sequence | np.ndarray):
        raise TypeError(f"schedule must be a sequence of days, got {type(schedule).__name__}")
    days = [check_number("schedule day", day, low=1, integer=True) for day in schedule]
    if not days or any(b <= a for a, b in zip(days, days[1:], strict=False)):
        raise ValueError(f"schedule must be non-empty, strictly increasing; got {list(schedule)!r}")
    return days


def _check_time_columns(time_columns: Any) -> tuple[str, ...]:
    if isinstance(time_columns, str):
        time_columns = (time_columns,)
    if not isinstance(time_columns, Sequence):
        raise TypeError(f"time_columns must be a sequence of column names, got {time_columns!r}")
    columns = tuple(time_columns)
    valid = set(columns) <= {"day", "visit_date"} and len(set(columns)) == len(columns)
    if not columns or not valid:
        raise ValueError(
            f"time_columns must name 'day', 'visit_date' or both, once each; got {time_columns!r}"
        )
    return tuple(c for c in ("day", "visit_date") if c in columns)


def _check_date(name: str, value: Any) -> np.int64:
    if not isinstance(value, str | _dt.date | np.datetime64):
        raise TypeError(f"{name} must be an ISO date text or a date, got {type(value).__name__}")
    try:
        day = np.datetime64(pd.Timestamp(value).date(), "D")
    except (ValueError, TypeError) as error:
        raise ValueError(f"{name} must be an ISO date like 2021-01-01, got {value!r}") from error
    return day.astype(np.int64)


def scheduled_visits(rng: np.random.Generator, n: int, schedule: Sequence[int], jitter: int,
                     p_missed: float) -> tuple[np.ndarray, np.ndarray]:
    """Each of ``n`` rows' visit days after the treatment (one column per ``schedule`` day,
    moved by a uniform whole number of days up to ``jitter``) and which were kept (each
    missed with ``p_missed``), drawn in that order: the jitter slot by slot, then the misses.

    Windows are disjoint: a visit never reaches day 0 or a neighbour's window.
    """
    days = np.empty((n, len(schedule)), dtype=np.int64)
    for k, nominal in enumerate(schedule):
        low = max(1, nominal - jitter, (schedule[k - 1] + nominal) // 2 + 1 if k else 1)
        high = nominal + jitter
        if k + 1 < len(schedule):
            high = min(high, (nominal + schedule[k + 1]) // 2)
        days[:, k] = np.clip(nominal + rng.integers(-jitter, jitter + 1, n), low, high)
    kept = rng.random((n, len(schedule))) >= p_missed
    return days, kept
