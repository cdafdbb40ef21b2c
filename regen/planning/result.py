"""What a plan found: one row per design point, with Monte-Carlo standard errors.

Definitions (n: simulated studies at the point; f: those whose fit failed):

- ``power`` (``type_i_error`` where the point has no effect): the share of all n studies
  whose test rejected at ``alpha`` (a failed fit does not reject); MC SE
  sqrt(q (1 - q) / n) with q = (x + 1/2) / (n + 1) for x rejections (close to
  sqrt(p (1 - p) / n), and not 0 at 0% or 100%).
- ``bias``, ``rmse``: of the estimate against the truth, over the n - f fitted
  studies, on the estimate's scale (log ratios; days for a median); MC SEs
  sd / sqrt(n - f) and, for the RMSE, sd(squared error) / (2 rmse sqrt(n - f)).
- ``coverage``: share of fitted studies whose interval holds the truth; MC SE as a
  proportion.
- ``median_ci_width``: the median of ``ci_upper - ci_lower`` (on the log scale for
  ratios); MC SE from the order statistics around the median.
- ``warned``, ``failed``: shares of the n studies.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from regen.planning.analyses import analysis_term, null_effect, truth
from regen.planning.engine import RunInfo
from regen.planning.spec import PlanSpec

__all__ = ["PlanResult", "format_plan", "summarise"]

#: The scale each analysis's estimate is on, for tables and messages.
SCALES = {"kinetics": "log velocity ratio", "aft": "log time ratio", "ph": "log hazard ratio",
          "logrank": "", "median": "days"}


def _label(value: Any) -> Any:
    """A grid value as a table cell: lists as ``14/28/56``, mappings as ``a=0.5, b=0.5``."""
    if isinstance(value, list):
        return "/".join(str(v) for v in value)
    if isinstance(value, dict):
        return ", ".join(f"{k}={v}" for k, v in value.items())
    return value


def _share(flags: np.ndarray, n: int) -> tuple[float, float]:
    """A share and its MC SE, sqrt(q (1 - q) / n) with q = (x + 1/2) / (n + 1): a share of
    0% or 100% does not claim to be exact."""
    if n == 0:
        return math.nan, math.nan
    hits = float(np.sum(flags))
    q = (hits + 0.5) / (n + 1)
    return hits / n, math.sqrt(q * (1 - q) / n)


def _median_se(values: np.ndarray) -> float:
    """MC SE of a median from the order statistics around it (a 95% distribution-free
    interval's half-width / 1.96)."""
    n = len(values)
    if n < 10:
        return math.nan
    ordered = np.sort(values)
    half = 1.96 * math.sqrt(n) / 2
    low, high = int(max(math.floor(n / 2 - half), 0)), int(min(math.ceil(n / 2 + half), n - 1))
    return float((ordered[high] - ordered[low]) / (2 * 1.96))


def _point_row(sims: pd.DataFrame, point: dict, spec: PlanSpec, true_value: float) -> dict:
    analysis, alpha = spec.analysis, spec.alpha
    n = len(sims)
    fitted = sims[~sims["failed"]]
    row: dict[str, Any] = {"truth": true_value, "null": null_effect(point, analysis),
                           "n_sim": n}
    rejected = (sims["p_value"] < alpha).to_numpy()
    rate, rate_se = _share(rejected, n)
    tested = analysis.name != "median"
    row["power"], row["power_se"] = (rate, rate_se) if tested and not row["null"] else \
        (math.nan, math.nan)
    row["type_i_error"], row["type_i_error_se"] = (rate, rate_se) if tested and row["null"] \
        else (math.nan, math.nan)
    estimate = fitted["estimate"].to_numpy(dtype=float)
    k = int(np.isfinite(estimate).sum())
    estimate = estimate[np.isfinite(estimate)]
    row["mean_estimate"] = float(estimate.mean()) if k else math.nan
    row["sd_estimate"] = float(estimate.std(ddof=1)) if k > 1 else math.nan
    row["mean_std_err"] = float(np.nanmean(fitted["std_err"])) if k else math.nan
    if k > 1 and math.isfinite(true_value):
        error = estimate - true_value
        row["bias"], row["bias_se"] = float(error.mean()), float(error.std(ddof=1) / math.sqrt(k))
        mse = float(np.mean(error**2))
        row["rmse"] = math.sqrt(mse)
        row["rmse_se"] = float(np.std(error**2, ddof=1) / (2 * row["rmse"] * math.sqrt(k))) \
            if row["rmse"] > 0 else math.nan
        inside = (fitted["ci_lower"] <= true_value) & (true_value <= fitted["ci_upper"])
        row["coverage"], row["coverage_se"] = _share(inside.to_numpy(), len(fitted))
    else:
        for key in ("bias", "bias_se", "rmse", "rmse_se", "coverage", "coverage_se"):
            row[key] = math.nan
    width = (fitted["ci_upper"] - fitted["ci_lower"]).to_numpy(dtype=float)
    width = width[np.isfinite(width)]
    row["median_ci_width"] = float(np.median(width)) if len(width) else math.nan
    row["median_ci_width_se"] = _median_se(width)
    row["warned"] = float(sims["warned"].mean()) if n else math.nan
    row["failed"] = float(sims["failed"].mean()) if n else math.nan
    row["median_episodes"] = float(sims["n_episodes"].median()) if n else math.nan
    return row


def summarise(spec: PlanSpec, sims: pd.DataFrame) -> pd.DataFrame:
    """One row per design point: the grid's values, then the figures in the module
    docstring."""
    rows = []
    for index, point in enumerate(spec.points):
        mine = sims[sims["point"] == index]
        row = {"point": index, **{key: _label(point[key]) for key in spec.grid}}
        row.update(_point_row(mine, point, spec, truth(point, spec.analysis)))
        rows.append(row)
    return pd.DataFrame(rows)


@dataclass(frozen=True, eq=False)
class PlanResult:
    """A plan's simulations and their summary.

    Attributes
    ----------
    spec : PlanSpec
        The design, grid, analysis, ``n_sim``, ``seed`` and ``alpha``.
    table : DataFrame
        One row per design point (see :mod:`regen.planning.result` for the definitions):
        ``point``, the grid's columns, ``truth, null, n_sim, power, power_se,
        type_i_error, type_i_error_se, mean_estimate, sd_estimate, mean_std_err,
        bias, bias_se, rmse, rmse_se, coverage, coverage_se, median_ci_width,
        median_ci_width_se, warned, failed, median_episodes``.
    simulations : DataFrame
        One row per simulated study: ``point, sim, estimate, std_err, ci_lower,
        ci_upper, p_value, n_episodes, warned, failed, message, seconds``.
    info : RunInfo
        Workers, times and how many simulations came from the checkpoint.
    """

    spec: PlanSpec
    table: pd.DataFrame
    simulations: pd.DataFrame
    info: RunInfo

    @property
    def scale(self) -> str:
        return SCALES[self.spec.analysis.name]

    def min_n(self, power: float = 0.8) -> pd.DataFrame:
        """The smallest ``n_patients`` of the grid whose power reaches ``power``, for each
        combination of the other grid keys (NaN: not reached in the grid).

        ``power_at_n`` and ``power_se`` are the estimate there; an estimate within two
        MC SEs of the target is not yet a sure crossing: run more simulations there.
        """
        if not 0 < power < 1:
            raise ValueError(f"power must be between 0 and 1, not {power!r}")
        if "n_patients" not in self.spec.grid:
            raise ValueError("the plan's grid does not vary n_patients; add n_patients = "
                             "[...] to [grid] to find the smallest n")
        others = [k for k in self.spec.grid if k != "n_patients"]
        rows = []
        groups = self.table.groupby(others, sort=False) if others else [((), self.table)]
        for key, group in groups:
            key = key if isinstance(key, tuple) else (key,)
            group = group.sort_values("n_patients")
            reached = group[group["power"] >= power]
            row = dict(zip(others, key, strict=True))
            if len(reached):
                first = reached.iloc[0]
                row.update(min_n=int(first["n_patients"]), power_at_n=first["power"],
                           power_se=first["power_se"])
            else:
                row.update(min_n=math.nan, power_at_n=math.nan, power_se=math.nan)
            rows.append(row)
        return pd.DataFrame(rows)

    def to_text(self, min_power: float | None = None) -> str:
        """The table as the terminal shows it; with ``min_power``, then the smallest n."""
        return format_plan(self, min_power)

    def __repr__(self) -> str:
        return (f"PlanResult({self.spec.analysis.name} of "
                f"{analysis_term(self.spec.analysis, self.spec.model)}, "
                f"{len(self.table)} design point(s) x {self.spec.n_sim} studies)")


def _percent(value: float, se: float) -> str:
    return "" if not math.isfinite(value) else f"{100 * value:.1f}% ±{100 * se:.1f}"


def _number(value: float, digits: int = 3) -> str:
    return "" if not math.isfinite(value) else f"{value:.{digits}f}"


def format_plan(result: PlanResult, min_power: float | None = None) -> str:
    """The plan's table as text: one line per design point, MC SEs after ±."""
    spec, table = result.spec, result.table
    analysis = spec.analysis
    term = analysis_term(analysis, spec.model)
    scale = f" ({result.scale})" if result.scale else ""
    lines = [f"{analysis.name} of {term}{scale}: {spec.n_sim} simulated studies per design "
             f"point, alpha {spec.alpha:g}, seed {spec.seed}"]
    keys = list(spec.grid)
    tested = analysis.name != "median"
    header = [*keys, *(["power", "type-I"] if tested else []),
              "bias", "RMSE", "CI width", "coverage", "warned", "failed"]
    body = []
    for _, row in table.iterrows():
        cells = [str(row[k]) for k in keys]
        if tested:
            cells += [_percent(row["power"], row["power_se"]),
                      _percent(row["type_i_error"], row["type_i_error_se"])]
        digits = 1 if analysis.name == "median" else 3
        cells += [_number(row["bias"], digits), _number(row["rmse"], digits),
                  _number(row["median_ci_width"], digits),
                  _percent(row["coverage"], row["coverage_se"]),
                  f"{100 * row['warned']:.1f}%", f"{100 * row['failed']:.1f}%"]
        body.append(cells)
    shown = [i for i, h in enumerate(header) if i < len(keys) or any(r[i] for r in body)]
    header, body = [header[i] for i in shown], [[r[i] for i in shown] for r in body]
    widths = [max(len(h), *(len(r[i]) for r in body)) for i, h in enumerate(header)]
    lines.append("  ".join(h.rjust(w) for h, w in zip(header, widths, strict=True)))
    lines += ["  ".join(c.rjust(w) for c, w in zip(r, widths, strict=True)) for r in body]
    truths = table["truth"].dropna().unique()
    if len(truths) == 1:
        lines.append(f"Truth{scale}: {truths[0]:.4g}; CI width on that scale; ± one "
                     "Monte-Carlo standard error.")
    if min_power is not None and tested and "n_patients" in spec.grid:
        lines.append(f"Smallest n_patients with power ≥ {min_power:.0%}:")
        for _, row in result.min_n(min_power).iterrows():
            where = ", ".join(f"{k} {row[k]}" for k in keys if k != "n_patients") or "the design"
            if math.isfinite(row["min_n"]):
                lines.append(f"  {where}: {int(row['min_n'])} (power "
                             f"{_percent(row['power_at_n'], row['power_se'])})")
            else:
                lines.append(f"  {where}: not reached up to "
                             f"{max(spec.grid['n_patients'])} patients")
    return "\n".join(lines)
