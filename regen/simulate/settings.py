"""The settings of :func:`regen.simulate.cohort`: the population's parameters, and the check
of every argument (the first bad one raises, naming it and what it must be)."""

from __future__ import annotations

import datetime as _dt
import math
import numbers
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

__all__ = ["BASELINE_PAIN", "DEFAULT_NERVE_MIX", "NERVE_DISTANCES", "PROBABILITIES", "RATIOS",
           "RETREAT_GAP_DAYS", "Settings", "check_settings"]

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

#: Days from a treatment to its retreatment of the same nerve and side (uniform).
RETREAT_GAP_DAYS = (90, 300)
#: The recorded baseline pain score, normal then rounded and clipped (0-10 scale).
BASELINE_PAIN = {"mean": 6.5, "sd": 1.5, "min": 3, "max": 10}
#: The velocity ratios, and the probabilities, that cohort() takes as keyword settings.
RATIOS = ("age_velocity_ratio_per_decade", "diabetes_velocity_ratio", "smoker_velocity_ratio")
PROBABILITIES = ("p_bilateral", "p_retreat", "p_decompression", "p_missed", "dropout_per_year",
                  "p_misclassified", "p_response")


@dataclass(frozen=True, eq=False)
class Settings:
    """The checked settings of :func:`regen.simulate.cohort` (days as numbers counted from 1970-01-01)."""

    n_patients: int
    seed: int
    velocity_mm_per_day: float
    velocity_sd_log: float
    lag_days: float
    ratios: dict[str, float]
    probabilities: dict[str, float]
    relief_extension_days: float
    baseline_pain_mean: float
    baseline_pain_sd: float
    pain_noise_sd: float
    pain_noise_crosses: bool
    jitter_days: int
    nerves: dict[str, float]
    schedule: list[int]
    time_columns: tuple[str, ...]
    start: np.int64
    end: np.int64
    span_days: int


def check_settings(arguments: Mapping[str, Any]) -> Settings:
    """Check the arguments of :func:`regen.simulate.cohort`; the first bad one raises."""
    n = _check_number("n_patients", arguments["n_patients"], low=1, integer=True)
    seed = _check_seed(arguments["seed"])
    v_ref = _check_number("velocity_mm_per_day", arguments["velocity_mm_per_day"], low=0, low_open=True)
    sd_log = _check_number("velocity_sd_log", arguments["velocity_sd_log"], low=0)
    lag = _check_number("lag_days", arguments["lag_days"], low=0)
    ratios = {k: _check_number(k, arguments[k], low=0, low_open=True) for k in RATIOS}
    probs = {k: _check_number(k, arguments[k], low=0, high=1) for k in PROBABILITIES}
    extension = _check_number("relief_extension_days", arguments["relief_extension_days"], low=0)
    pain_mean = _check_number("baseline_pain_mean", arguments["baseline_pain_mean"],
                              low=BASELINE_PAIN["min"], high=BASELINE_PAIN["max"])
    pain_sd = _check_number("baseline_pain_sd", arguments["baseline_pain_sd"], low=0)
    noise_sd = _check_number("pain_noise_sd", arguments["pain_noise_sd"], low=0)
    crosses = arguments["pain_noise_crosses"]
    if not isinstance(crosses, bool | np.bool_):
        raise TypeError(f"pain_noise_crosses must be True or False, got {crosses!r}")
    jitter = _check_number("jitter_days", arguments["jitter_days"], low=0, integer=True)
    nerves = arguments["nerves"]
    mix = _check_nerves(DEFAULT_NERVE_MIX if nerves is None else nerves)
    slots = _check_schedule(arguments["schedule"])
    times = _check_time_columns(arguments["time_columns"])
    start = _check_date("start_date", arguments["start_date"])
    end = _check_date("end_date", arguments["end_date"])
    span = int(end - start)
    if span < 0:
        raise ValueError(f"end_date {arguments['end_date']!r} is before start_date "
                         f"{arguments['start_date']!r}")
    if probs["p_retreat"] > 0 and span < RETREAT_GAP_DAYS[1]:
        raise ValueError(
            f"start_date to end_date spans {span} days; retreatments need at least "
            f"{RETREAT_GAP_DAYS[1]}. Widen the range or set p_retreat=0."
        )
    return Settings(
        n_patients=n, seed=seed, velocity_mm_per_day=v_ref, velocity_sd_log=sd_log, lag_days=lag,
        ratios=ratios, probabilities=probs, relief_extension_days=extension,
        baseline_pain_mean=pain_mean, baseline_pain_sd=pain_sd, pain_noise_sd=noise_sd,
        pain_noise_crosses=bool(crosses), jitter_days=jitter, nerves=mix, schedule=slots,
        time_columns=times, start=start, end=end, span_days=span,
    )


def _check_number(
    name: str, value: Any, *, low: float | None = None, high: float | None = None,
    low_open: bool = False, integer: bool = False,
) -> Any:
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


def _check_seed(seed: Any) -> int:
    if seed is None:
        return int(np.random.SeedSequence().entropy)
    return _check_number("seed", seed, low=0, integer=True)


def _check_nerves(nerves: Any) -> dict[str, float]:
    if not isinstance(nerves, Mapping):
        raise TypeError(f"nerves must map nerve names to shares, got {type(nerves).__name__}")
    unknown = [name for name in nerves if name not in NERVE_DISTANCES]
    if unknown:
        raise ValueError(
            f"nerves: no distance table for {unknown}; use names from {', '.join(NERVE_DISTANCES)}"
        )
    shares = {str(name): _check_number(f"nerves[{name!r}]", v, low=0) for name, v in nerves.items()}
    total = sum(shares.values())
    if total <= 0:
        raise ValueError("nerves: the shares must sum to more than 0")
    return {name: share / total for name, share in shares.items()}


def _check_schedule(schedule: Any) -> list[int]:
    if isinstance(schedule, str | bytes) or not isinstance(schedule, Sequence | np.ndarray):
        raise TypeError(f"schedule must be a sequence of days, got {type(schedule).__name__}")
    days = [_check_number("schedule day", day, low=1, integer=True) for day in schedule]
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
