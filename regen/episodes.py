"""Interval-censored episodes and long score tables from the visits.

An *episode* is one treated nerve's time to an event, known only to lie
between two visits: the event happened in ``(lower, upper]`` days after the
treatment.

numbness
    Recovery is the first visit without numbness after numbness was seen:
    ``(last numb day, first not-numb day]``, status ``interval_censored``.
    Numb at the last visit: ``(last day, inf)``, ``right_censored``. Not numb
    at the first visit after the treatment: ``(0, first day]``,
    ``left_censored``. Numbness that comes back after a recovery keeps the
    first recovery and raises a :class:`~regen.exceptions.DataWarning`.
relief
    Baseline pain is the last visit with day ≤ 0. Relieved means
    ``pain ≤ (1 − threshold) × baseline``. A responder is relieved at some
    visit in the response window; relief ends at the first later visit that
    is not relieved. Non-responders leave with the reason ``no_response``.

A later treatment of the same patient, nerve and side censors the earlier
episode at its last visit before the retreatment (visits on or after the
retreatment day are not used for the earlier treatment). Every treatment
without an episode is returned as an exclusion with its reason.

Everything is vectorised over visit rows (sorted by treatment and day); no
Python loop runs over patients, treatments or visits.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd

from regen.exceptions import DataWarning
from regen.tables import PATIENTS, TREATMENTS, VISITS

__all__ = ["build", "measurements", "relief_options"]

ID_COLUMNS = ["patient_id", "treatment_id", "nerve", "side"]
INTERVAL, LEFT, RIGHT = "interval_censored", "left_censored", "right_censored"


def relief_options(threshold: float, response_window: tuple[int, int]) -> dict:
    """Check the relief definition's settings; return them as keyword arguments."""
    if isinstance(threshold, bool) or not isinstance(threshold, int | float | np.floating):
        raise TypeError(f"threshold must be a number between 0 and 1, not {threshold!r}")
    if not 0 < threshold < 1:
        raise ValueError(f"threshold must be between 0 and 1 (0.5 means pain halved), not {threshold}")
    try:
        start, stop = (int(day) for day in response_window)
    except (TypeError, ValueError):
        raise TypeError("response_window must be two whole days, e.g. (1, 30), "
                        f"not {response_window!r}") from None
    if not 1 <= start <= stop:
        raise ValueError(f"response_window must satisfy 1 ≤ first day ≤ last day, not {response_window}")
    return {"threshold": float(threshold), "response_window": (start, stop)}


def build(treatments: pd.DataFrame, visits: pd.DataFrame, patients: pd.DataFrame, outcome: str,
          **options) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Episodes and exclusions of one outcome (see the module docstring)."""
    if outcome == "numbness":
        core, reasons = _numbness(treatments, visits)
    elif outcome == "relief":
        core, reasons = _relief(treatments, visits, **(options or relief_options(0.5, (1, 30))))
    else:
        raise ValueError(f"outcome must be 'numbness' or 'relief', not {outcome!r}")
    episodes = _with_covariates(core, treatments, patients)
    excluded = treatments.loc[~treatments["treatment_id"].isin(core["treatment_id"])]
    exclusions = pd.DataFrame({
        "table": pd.array(["treatments"] * len(excluded), dtype="string"),
        "row": pd.array(excluded["source_row"], dtype="Int64"),
        "id": excluded["treatment_id"].astype("string").to_numpy(),
        "reason": excluded["treatment_id"].map(reasons).astype("string").to_numpy(),
        "outcome": pd.array([outcome] * len(excluded), dtype="string"),
    })
    return episodes, exclusions


# ------------------------------------------------------------------ helpers --

class _Groups:
    """Contiguous groups of rows (visits sorted by treatment), as index arrays."""

    def __init__(self, keys: np.ndarray) -> None:
        codes = pd.factorize(keys)[0]
        self.n_rows = len(codes)
        start = np.r_[True, codes[1:] != codes[:-1]] if len(codes) else np.zeros(0, dtype=bool)
        self.of_row = np.cumsum(start) - 1
        self.starts = np.flatnonzero(start)
        self.ends = np.r_[self.starts[1:], self.n_rows][: len(self.starts)] - 1
        self.keys = keys[self.starts]

    def __len__(self) -> int:
        return len(self.starts)

    def first(self, mask: np.ndarray) -> np.ndarray:
        """Per group, the first row where ``mask`` holds, or -1."""
        rows = np.flatnonzero(mask)
        result = np.full(len(self), -1, dtype=np.int64)
        groups, at = np.unique(self.of_row[rows], return_index=True)
        result[groups] = rows[at]
        return result

    def last(self, mask: np.ndarray) -> np.ndarray:
        """Per group, the last row where ``mask`` holds, or -1."""
        rows = np.flatnonzero(mask)[::-1]
        result = np.full(len(self), -1, dtype=np.int64)
        groups, at = np.unique(self.of_row[rows], return_index=True)
        result[groups] = rows[at]
        return result

    def any(self, mask: np.ndarray) -> np.ndarray:
        return self.first(mask) >= 0


def _assessments(treatments: pd.DataFrame, visits: pd.DataFrame, column: str):
    """Visits after the treatment with ``column`` recorded, before any retreatment.

    Returns the kept rows, and the treatments whose every such visit fell on
    or after a retreatment.
    """
    recorded = visits.loc[visits[column].notna() & (visits["day"] > 0),
                          ["treatment_id", "day", column]]
    retreated = recorded["treatment_id"].map(
        treatments.set_index("treatment_id")["retreated_day"])
    after = (recorded["day"] >= retreated).fillna(False).to_numpy(dtype=bool)
    kept = recorded.loc[~after]
    lost = set(recorded.loc[after, "treatment_id"]) - set(kept["treatment_id"])
    return kept, lost


def _missing_reasons(treatments: pd.DataFrame, visits: pd.DataFrame, lost: set,
                     nothing: str) -> pd.Series:
    """Why a treatment has no usable assessment: a reason per treatment id."""
    ids = treatments["treatment_id"]
    reason = pd.Series(nothing, index=ids.to_numpy(), dtype="string")
    reason[ids.isin(lost).to_numpy()] = "retreated_before_first_assessment"
    reason[(~ids.isin(visits["treatment_id"])).to_numpy()] = "no_visits"
    return reason


def _intervals(groups: _Groups, day: np.ndarray, event_row: np.ndarray):
    """Rows of an event at ``event_row`` (or -1: censored at the last visit)."""
    happened = event_row >= 0
    upper = np.where(happened, day[np.maximum(event_row, 0)], np.inf)
    before = np.where(happened, np.maximum(event_row - 1, 0), groups.ends)
    lower = day[before].astype("float64")
    return lower, upper.astype("float64"), happened


# ----------------------------------------------------------------- outcomes --

def _numbness(treatments: pd.DataFrame, visits: pd.DataFrame):
    kept, lost = _assessments(treatments, visits, "numb")
    reasons = _missing_reasons(treatments, visits, lost, "no_numbness_assessment_after_treatment")
    groups = _Groups(kept["treatment_id"].to_numpy())
    day = kept["day"].to_numpy(dtype=np.int64)
    numb = kept["numb"].to_numpy(dtype=bool)
    recovered = groups.first(~numb)
    lower, upper, happened = _intervals(groups, day, recovered)
    left = happened & (recovered == groups.starts)
    lower[left] = 0.0
    retreated = pd.Series(groups.keys).map(
        treatments.set_index("treatment_id")["retreated_day"]).notna().to_numpy()
    status = np.where(left, LEFT, np.where(happened, INTERVAL, RIGHT))
    reason = np.select(
        [left, happened, retreated],
        ["not_numb_at_first_visit", "recovered", "censored_at_retreatment"],
        "numb_at_last_visit")
    relapsed = happened & (groups.last(numb) > recovered)
    if relapsed.any():
        examples = ", ".join(map(str, groups.keys[relapsed][:5]))
        warnings.warn(
            f"numbness came back after a recovery in {int(relapsed.sum())} treatment(s) "
            f"(e.g. {examples}); the first recovery is used. Check those visits.",
            DataWarning, stacklevel=5)
    core = pd.DataFrame({
        "treatment_id": groups.keys, "lower": lower, "upper": upper, "status": status,
        "reason": reason, "n_assessments": groups.ends - groups.starts + 1,
        "last_visit_day": day[groups.ends],
    })
    return core, reasons


def _relief(treatments: pd.DataFrame, visits: pd.DataFrame, *, threshold: float,
            response_window: tuple[int, int]):
    pain = visits.loc[visits["pain"].notna(), ["treatment_id", "day", "pain"]]
    baseline = pain.loc[pain["day"] <= 0].groupby("treatment_id")["pain"].last()
    kept, lost = _assessments(treatments, visits, "pain")
    reasons = _missing_reasons(treatments, visits, lost, "no_pain_assessment_after_treatment")
    ids = treatments["treatment_id"]
    base = ids.map(baseline).astype("float64")
    reasons[(base == 0).fillna(False).to_numpy()] = "zero_baseline_pain"
    reasons[(base.isna() & ids.isin(visits["treatment_id"])).to_numpy()] = "no_baseline_pain"

    kept = kept.assign(baseline_pain=kept["treatment_id"].map(baseline).astype("float64"))
    kept = kept.loc[kept["baseline_pain"] > 0]
    groups = _Groups(kept["treatment_id"].to_numpy())
    day = kept["day"].to_numpy(dtype=np.int64)
    relieved = (kept["pain"] <= (1 - threshold) * kept["baseline_pain"]).to_numpy(dtype=bool)
    first_day, last_day = response_window
    in_window = (day >= first_day) & (day <= last_day)
    assessed = groups.any(in_window)
    onset = groups.first(in_window & relieved)
    responder = onset >= 0
    group_ids = pd.Series(groups.keys)
    reasons.loc[group_ids[~assessed].to_numpy()] = "no_pain_assessment_in_response_window"
    reasons.loc[group_ids[assessed & ~responder].to_numpy()] = "no_response"

    after_onset = np.arange(groups.n_rows) > onset[groups.of_row]
    ended = groups.first(~relieved & after_onset & responder[groups.of_row])
    lower, upper, happened = _intervals(groups, day, ended)
    retreated = group_ids.map(treatments.set_index("treatment_id")["retreated_day"]).notna()
    reason = np.select([happened, retreated.to_numpy()],
                       ["relief_ended", "censored_at_retreatment"], "relieved_at_last_visit")
    core = pd.DataFrame({
        "treatment_id": groups.keys, "lower": lower, "upper": upper,
        "status": np.where(happened, INTERVAL, RIGHT), "reason": reason,
        "n_assessments": groups.ends - groups.starts + 1, "last_visit_day": day[groups.ends],
        "baseline_pain": kept["baseline_pain"].to_numpy()[groups.starts],
        "relief_onset_day": day[np.maximum(onset, 0)],
    })
    return core.loc[responder].reset_index(drop=True), reasons


# -------------------------------------------------------------- covariates --

def _covariates(treatments: pd.DataFrame, patients: pd.DataFrame) -> pd.DataFrame:
    """One row per treatment: its ids and every treatment and patient column."""
    t = treatments.drop(columns=["source_row"])
    p = patients.drop(columns=["source_row"]).drop_duplicates("patient_id")
    merged = t.merge(p, on="patient_id", how="left", validate="many_to_one")
    first = ID_COLUMNS + [c for c in TREATMENTS.names + PATIENTS.names if c not in ID_COLUMNS]
    order = [c for c in first if c in merged.columns]
    return merged[order + [c for c in merged.columns if c not in order]]


def _with_covariates(core: pd.DataFrame, treatments: pd.DataFrame,
                     patients: pd.DataFrame) -> pd.DataFrame:
    covariates = _covariates(treatments, patients)
    merged = core.merge(covariates, on="treatment_id", how="left", validate="one_to_one")
    ids = ["patient_id", "treatment_id", "nerve", "side"]
    outcome = [c for c in core.columns if c != "treatment_id"]
    rest = [c for c in covariates.columns if c not in ids]
    return merged[ids + outcome + rest]


def measurements(treatments: pd.DataFrame, visits: pd.DataFrame, patients: pd.DataFrame,
                 score: str) -> pd.DataFrame:
    """Long table of one visit score with its baseline and covariates."""
    ignored = {"treatment_id", "patient_id", "day", "visit_date", "source_row"}
    usable = [c for c in visits.columns if c not in ignored
              and (pd.api.types.is_numeric_dtype(visits[c]) or pd.api.types.is_bool_dtype(visits[c]))]
    if score not in usable:
        raise ValueError(f"no score {score!r} in the visits table; choose one of: "
                         f"{', '.join(usable)}")
    recorded = visits.loc[visits[score].notna()]
    retreated = recorded["treatment_id"].map(treatments.set_index("treatment_id")["retreated_day"])
    recorded = recorded.loc[~(recorded["day"] >= retreated).fillna(False).to_numpy(dtype=bool)]
    baseline = recorded.loc[recorded["day"] <= 0].groupby("treatment_id")[score].last()
    extra = [c for c in visits.columns if c not in VISITS.names and c not in ignored | {score}]
    long = recorded[["treatment_id", "day", score] + extra].assign(
        **{f"baseline_{score}": recorded["treatment_id"].map(baseline).astype(visits[score].dtype)})
    covariates = _covariates(treatments, patients)
    merged = long.merge(covariates, on="treatment_id", how="left", validate="many_to_one")
    first = ["patient_id", "treatment_id", "nerve", "side", "day", score, f"baseline_{score}"]
    return merged[first + [c for c in merged.columns if c not in first]].reset_index(drop=True)
