"""When a fitted mean trajectory first crosses a threshold, with its interval.

:meth:`regen.TrajectoryFit.time_to` asks it: the mean of one profile is
evaluated on a fine grid over the fitted range of time, the first crossing is
refined by Brent's method, and its interval is the delta method (the crossing
day's gradient in the fixed effects) or a parametric bootstrap of the fixed
effects (:meth:`~regen.TrajectoryFit.bootstrap_fixed_effects`), whose
trajectories that never cross count as crossing at infinity.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
from scipy import optimize

from regen.exceptions import RegenWarning

__all__ = ["first_crossing", "time_to"]


def time_to(fit, threshold: float, profile: pd.DataFrame | dict, *, direction: str = "below",
            time: str = "day", relative_to: str | None = None, start: float | None = None,
            end: float | None = None, method: str = "delta", alpha: float = 0.05,
            n_bootstrap: int = 200, seed=None, n_jobs: int = 1,
            progress: bool | None = None) -> pd.Series:
    """The first ``time`` the mean trajectory of ``profile`` under ``fit`` crosses
    ``threshold``: :meth:`regen.TrajectoryFit.time_to`, where the parameters are described."""
    if direction not in ("below", "above"):
        raise ValueError(f"direction must be 'below' or 'above', not {direction!r}")
    if method not in ("delta", "bootstrap"):
        raise ValueError(f"method must be 'delta' or 'bootstrap', not {method!r}")
    profile = pd.DataFrame([profile]) if isinstance(profile, dict) else profile
    if len(profile) != 1:
        raise ValueError(f"profile must be one row; it has {len(profile)}")
    level = float(threshold)
    if relative_to is not None:
        if relative_to not in profile.columns:
            raise ValueError(f"relative_to={relative_to!r} is not a column of the profile")
        base = float(profile[relative_to].iloc[0])
        if not base > 0:
            raise ValueError(f"{relative_to} is {base:g} in the profile, so a threshold "
                             f"relative to it is {threshold:g} × {base:g}; give an absolute "
                             "threshold instead")
        level = float(threshold) * base
    lo, hi = _time_range(fit, time, start, end)
    grid = np.linspace(lo, hi, 2001)
    X_grid = _covariates(fit, pd.concat([profile] * len(grid), ignore_index=True)
                         .assign(**{time: grid}))
    sign = 1.0 if direction == "below" else -1.0
    beta = fit.params.to_numpy()
    signed = sign * (X_grid @ beta - level)
    estimate = first_crossing(signed[None, :], grid)[0]
    if np.isfinite(estimate):
        estimate = _refine(fit, profile, time, level, estimate, grid)
    else:
        where = ("is already " + direction + f" {level:g} at {time} {lo:g} and stays there"
                 if signed[0] <= 0 and (signed <= 0).all() else
                 f"does not go {direction} {level:g} between {time} {lo:g} and {hi:g}")
        warnings.warn(f"no crossing: the mean {fit.response} {where} (the answer is not "
                      "extrapolated beyond the data).", RegenWarning, stacklevel=3)
    out = {"estimate": estimate, "threshold": level}
    z = fit.critical_value(alpha)
    if method == "delta":
        out.update(_delta_interval(fit, profile, time, estimate, z))
    else:
        draws = fit.bootstrap_fixed_effects(n_bootstrap, seed, n_jobs, progress)
        crossing = first_crossing(sign * (draws @ X_grid.T - level), grid)
        missing = int(np.isnan(crossing).sum())
        filled = np.where(np.isnan(crossing), np.inf, crossing)
        # Order statistics, not interpolation: a replicate that never crosses is inf.
        out.update(ci_lower=float(np.quantile(filled, alpha / 2, method="inverted_cdf")),
                   ci_upper=float(np.quantile(filled, 1 - alpha / 2, method="inverted_cdf")),
                   n_no_crossing=missing)
    return pd.Series(out, name=f"{time}_{direction}_{level:g}")[
        ["estimate", "ci_lower", "ci_upper", "threshold"]
        + (["n_no_crossing"] if method == "bootstrap" else [])]


def _time_range(fit, time, start, end):
    spans = fit.spans
    if time not in spans:
        raise ValueError(f"{time!r} is not a numeric variable of the fitted model")
    lo, hi = spans[time]
    lo = lo if start is None else float(start)
    hi = hi if end is None else float(end)
    if not hi > lo:
        raise ValueError(f"the search range {lo:g}–{hi:g} is empty")
    return lo, hi

def _refine(fit, profile, time, level, rough, grid):
    step = grid[1] - grid[0]
    mean = lambda t: float((_covariates(fit, profile.assign(**{time: [t]})) @ fit.params.to_numpy())[0])  # noqa: E731
    a, b = max(rough - step, grid[0]), min(rough + step, grid[-1])
    if (mean(a) - level) * (mean(b) - level) < 0:
        return float(optimize.brentq(lambda t: mean(t) - level, a, b, xtol=1e-8))
    return float(rough)

def _delta_interval(fit, profile, time, t, z):
    if not np.isfinite(t):
        return {"ci_lower": np.nan, "ci_upper": np.nan}
    h = 1e-3 * max(1.0, abs(t))
    X = _covariates(fit, pd.concat([profile] * 3, ignore_index=True).assign(**{time: [t - h, t, t + h]}))
    slope = float((X[2] - X[0]) @ fit.params.to_numpy()) / (2 * h)
    se = float(fit.delta_se((-X[1] / slope)[None, :])[0])
    return {"ci_lower": t - z * se, "ci_upper": t + z * se}


def _covariates(fit, profiles: pd.DataFrame) -> np.ndarray:
    return fit.design.matrix(profiles)


def first_crossing(signed: np.ndarray, grid: np.ndarray) -> np.ndarray:
    """Per row, where ``signed`` first goes from > 0 to <= 0 (linear interpolation); NaN if never."""
    above = signed > 0
    cross = above[:, :-1] & ~above[:, 1:]
    has = cross.any(axis=1)
    k = np.argmax(cross, axis=1)
    rows = np.arange(len(signed))
    a, b = signed[rows, k], signed[rows, k + 1]
    fraction = np.where(a - b != 0, a / np.where(a - b != 0, a - b, 1.0), 0.0)
    at = grid[k] + fraction * (grid[k + 1] - grid[k])
    return np.where(has, at, np.nan)
