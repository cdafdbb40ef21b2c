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
    visit in the response window. Relief ends at the first visit of the first
    run of ``confirm`` consecutive unrelieved visits after relief began (visits
    without a pain score are skipped): ``(last relieved visit, first visit of
    the run]``, reason ``relief_ended``. A relieved visit inside a shorter run
    breaks it and relief goes on. The last visit of the follow-up counts alone:
    unrelieved visits that close the follow-up (fewer than ``confirm`` of them)
    end relief at the first of them, reason ``relief_ended_unconfirmed``.
    Relieved at the last visit: right-censored. ``confirm=1`` is the plain
    rule, relief ends at the first unrelieved visit. Non-responders leave with
    the reason ``no_response``.

A later treatment of the same patient, nerve and side censors the earlier
episode at its last visit before the retreatment (visits on or after the
retreatment day are not used for the earlier treatment). Every treatment
without an episode is returned as an exclusion with its reason.

Everything is vectorised over visit rows (sorted by treatment and day); no
Python loop runs over patients, treatments or visits.
"""

from __future__ import annotations

import numbers
import warnings

import numpy as np
import pandas as pd

from regen._util import isin
from regen.defaults import RELIEF_CONFIRM  # the end of relief; why 3: docs/episodes.md
from regen.exceptions import DataWarning
from regen.ledger import exclusions
from regen.tables import PATIENTS, TREATMENTS, VISITS

__all__ = ["RELIEF_CONFIRM", "build", "measurements", "relief_options"]

ID_COLUMNS = ["patient_id", "treatment_id", "nerve", "side"]
INTERVAL, LEFT, RIGHT = "interval_censored", "left_censored", "right_censored"


def relief_options(threshold: float, response_window: tuple[int, int],
                   confirm: int = RELIEF_CONFIRM) -> dict:
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
    if isinstance(confirm, bool) or not isinstance(confirm, numbers.Integral):
        raise TypeError("confirm must be a whole number of consecutive unrelieved visits "
                        f"(1 or more, e.g. 3), not {confirm!r}")
    if confirm < 1:
        raise ValueError("confirm must be at least 1 (the number of consecutive unrelieved "
                         f"visits that end relief), not {confirm!r}")
    return {"threshold": float(threshold), "response_window": (start, stop),
            "confirm": int(confirm)}


def build(treatments: pd.DataFrame, visits: pd.DataFrame, patients: pd.DataFrame, outcome: str,
          *, set_aside: pd.Series | None = None, **options) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Episodes and exclusions of one outcome (see the module docstring).

    ``set_aside`` names the treatments whose visits after a retreatment the cohort
    set aside, so that one left with no visit is excluded for that reason.
    """
    table = _VisitTable(treatments, visits, set_aside)
    if outcome == "numbness":
        core, reasons = _numbness(table, visits)
    elif outcome == "relief":
        core, reasons = _relief(table, visits, **(options or relief_options(0.5, (1, 30))))
    else:
        raise ValueError(f"outcome must be 'numbness' or 'relief', not {outcome!r}")
    treated = core.pop("_treatment")
    covariates = _covariates(treatments, patients).iloc[treated].reset_index(drop=True)
    ids = ["patient_id", "treatment_id", "nerve", "side"]
    episodes = pd.concat([covariates[ids], core, covariates.drop(columns=ids)], axis=1)
    excluded = np.ones(len(treatments), dtype=bool)
    excluded[treated] = False
    left_out = exclusions("treatments", treatments["source_row"].to_numpy()[excluded],
                          table.treatment_ids[excluded], reasons[excluded], outcome=outcome,
                          text_dtype="string")
    return episodes, left_out


# ------------------------------------------------------------------ helpers --

class _VisitTable:
    """Visits keyed by their treatment's position in the treatments table.

    The treatment ids are hashed once here; everything after works on integer
    positions with numpy. The cohort has already set aside visits on or after
    a retreatment of the same nerve and side (they are in its exclusions).
    """

    def __init__(self, treatments: pd.DataFrame, visits: pd.DataFrame,
                 set_aside: pd.Series | None = None) -> None:
        self.treatment_ids = treatments["treatment_id"].to_numpy(dtype=object)
        self.source_rows = treatments["source_row"].to_numpy()
        self.n_treatments = len(treatments)
        self.treatment = pd.Index(treatments["treatment_id"]).get_indexer(visits["treatment_id"])
        self.day = visits["day"].to_numpy(dtype=np.int64)
        self.retreated = treatments["retreated_day"].notna().to_numpy()
        self.has_visit = np.bincount(self.treatment, minlength=self.n_treatments) > 0
        # Treatments whose visits on or after a retreatment were set aside by the cohort.
        self.set_aside = (np.zeros(self.n_treatments, dtype=bool) if set_aside is None
                          else isin(treatments["treatment_id"], set_aside))

    def assessments(self, recorded: np.ndarray, nothing: str) -> tuple[np.ndarray, np.ndarray]:
        """Rows after the treatment with the outcome recorded, and for each treatment
        the reason it has none (``nothing`` unless it has no visit at all)."""
        rows = np.flatnonzero(recorded & (self.day > 0))
        reasons = np.full(self.n_treatments, nothing, dtype=object)
        reasons[~self.has_visit] = "no_visits"
        reasons[~self.has_visit & self.set_aside] = "no_visits_before_retreatment"
        return rows, reasons


class _Groups:
    """Contiguous runs of rows belonging to one treatment (visits are sorted by treatment)."""

    def __init__(self, treatment: np.ndarray) -> None:
        self.n_rows = len(treatment)
        start = np.r_[True, treatment[1:] != treatment[:-1]] if self.n_rows else np.zeros(0, bool)
        self.of_row = np.cumsum(start) - 1
        self.starts = np.flatnonzero(start)
        self.ends = np.r_[self.starts[1:], self.n_rows][: len(self.starts)] - 1
        self.treatment = treatment[self.starts]

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


def _intervals(groups: _Groups, day: np.ndarray, event_row: np.ndarray):
    """``(lower, upper]`` for an event at ``event_row``, or censored at the last visit (-1)."""
    happened = event_row >= 0
    upper = np.where(happened, day[np.maximum(event_row, 0)], np.inf).astype("float64")
    before = np.where(happened, np.maximum(event_row - 1, 0), groups.ends)
    return day[before].astype("float64"), upper, happened


# ----------------------------------------------------------------- outcomes --

def _numbness(table: _VisitTable, visits: pd.DataFrame):
    numb_all = visits["numb"]
    rows, reasons = table.assessments(numb_all.notna().to_numpy(),
                                      "no_numbness_assessment_after_treatment")
    groups = _Groups(table.treatment[rows])
    day = table.day[rows]
    numb = numb_all.to_numpy(dtype=bool, na_value=False)[rows]
    recovered = groups.first(~numb)
    lower, upper, happened = _intervals(groups, day, recovered)
    left = happened & (recovered == groups.starts)
    lower[left] = 0.0
    status = np.where(left, LEFT, np.where(happened, INTERVAL, RIGHT))
    reason = np.select(
        [left, happened, table.retreated[groups.treatment]],
        ["not_numb_at_first_visit", "recovered", "censored_at_retreatment"],
        "numb_at_last_visit")
    relapsed = happened & (groups.last(numb) > recovered)
    if relapsed.any():
        which = groups.treatment[relapsed][:5]
        examples = ", ".join(f"{tid} (treatments row {row})" for tid, row in
                             zip(table.treatment_ids[which], table.source_rows[which], strict=True))
        warnings.warn(
            f"numbness came back after a recovery in {int(relapsed.sum())} treatment(s), e.g. "
            f"{examples}; the first recovery is used. Check those visits.",
            DataWarning, stacklevel=5)
    core = pd.DataFrame({
        "_treatment": groups.treatment, "lower": lower, "upper": upper, "status": status,
        "reason": reason, "n_assessments": groups.ends - groups.starts + 1,
        "last_visit_day": day[groups.ends],
    })
    return core, reasons


def _relief(table: _VisitTable, visits: pd.DataFrame, *, threshold: float,
            response_window: tuple[int, int], confirm: int):
    pain_all = visits["pain"].to_numpy(dtype="float64", na_value=np.nan)
    recorded = ~np.isnan(pain_all)
    # Baseline: the last visit with day <= 0 (visits are sorted by treatment and day).
    base_rows = np.flatnonzero(recorded & (table.day <= 0))
    base_groups = _Groups(table.treatment[base_rows])
    baseline = np.full(table.n_treatments, np.nan)
    baseline[base_groups.treatment] = pain_all[base_rows[base_groups.ends]]

    rows, reasons = table.assessments(recorded, "no_pain_assessment_after_treatment")
    reasons[table.has_visit & (baseline == 0)] = "zero_baseline_pain"
    reasons[table.has_visit & np.isnan(baseline)] = "no_baseline_pain"
    rows = rows[baseline[table.treatment[rows]] > 0]

    groups = _Groups(table.treatment[rows])
    day = table.day[rows]
    base = baseline[groups.treatment]
    relieved = pain_all[rows] <= (1 - threshold) * base[groups.of_row]
    first_day, last_day = response_window
    in_window = (day >= first_day) & (day <= last_day)
    assessed = groups.first(in_window) >= 0
    onset = groups.first(in_window & relieved)
    responder = onset >= 0
    reasons[groups.treatment[~assessed]] = "no_pain_assessment_in_response_window"
    reasons[groups.treatment[assessed & ~responder]] = "no_response"

    after_onset = np.arange(groups.n_rows) > onset[groups.of_row]
    ended, confirmed = _confirmed_end(groups, ~relieved & after_onset & responder[groups.of_row],
                                      confirm)
    lower, upper, happened = _intervals(groups, day, ended)
    reason = np.select([happened & confirmed, happened, table.retreated[groups.treatment]],
                       ["relief_ended", "relief_ended_unconfirmed", "censored_at_retreatment"],
                       "relieved_at_last_visit")
    core = pd.DataFrame({
        "_treatment": groups.treatment, "lower": lower, "upper": upper,
        "status": np.where(happened, INTERVAL, RIGHT), "reason": reason,
        "n_assessments": groups.ends - groups.starts + 1, "last_visit_day": day[groups.ends],
        "baseline_pain": base, "relief_onset_day": day[np.maximum(onset, 0)],
    })
    return core.loc[responder].reset_index(drop=True), reasons


def _confirmed_end(groups: _Groups, unrelieved: np.ndarray, confirm: int):
    """Per group, the first row of the first run of unrelieved rows that is at least
    ``confirm`` rows long or reaches the group's last row (-1 if none), and whether that
    run had ``confirm`` rows.

    A run is a stretch of consecutive ``unrelieved`` rows of one group; a row that is not
    unrelieved (a relieved visit) ends it. Relief ended before the run's first visit, so
    the interval is the one before the run starts, whatever ``confirm`` is.
    """
    same_group = np.r_[False, groups.of_row[1:] == groups.of_row[:-1]]
    starts = unrelieved & ~(np.r_[False, unrelieved[:-1]] & same_group)
    run = np.cumsum(starts) - 1                      # run number, valid on unrelieved rows
    length = np.bincount(run[unrelieved], minlength=int(starts.sum()))
    qualifies = length >= confirm
    closing = groups.ends[unrelieved[groups.ends]]   # last rows that are unrelieved
    ends_relief = np.r_[qualifies, False]            # the extra slot: rows in no run
    ends_relief[run[closing]] = True                 # the last visit counts alone
    ended = groups.first(starts & ends_relief[np.where(unrelieved, run, len(qualifies))])
    confirmed = np.zeros(len(groups), dtype=bool)
    happened = ended >= 0
    confirmed[happened] = qualifies[run[ended[happened]]]
    return ended, confirmed


# -------------------------------------------------------------- covariates --

def _covariates(treatments: pd.DataFrame, patients: pd.DataFrame) -> pd.DataFrame:
    """One row per treatment: its ids and every treatment and patient column.

    The patient columns are taken by position (what a left join on ``patient_id`` gives,
    at a fraction of its cost: episodes are built per simulated study when planning);
    a pandas merge when a treatment names no patient or a column is in both tables.
    """
    t = treatments.drop(columns=["source_row"])
    p = patients.drop(columns=["source_row"]).drop_duplicates("patient_id")
    at = pd.Index(p["patient_id"]).get_indexer(t["patient_id"])
    shared = set(t.columns) & set(p.columns) - {"patient_id"}
    if (at >= 0).all() and not shared:
        extra = p.drop(columns=["patient_id"]).iloc[at].reset_index(drop=True)
        merged = pd.concat([t.reset_index(drop=True), extra], axis=1)
    else:
        merged = t.merge(p, on="patient_id", how="left", validate="many_to_one")
    first = ID_COLUMNS + [c for c in TREATMENTS.names + PATIENTS.names if c not in ID_COLUMNS]
    order = [c for c in first if c in merged.columns]
    return merged[order + [c for c in merged.columns if c not in order]]


def measurements(treatments: pd.DataFrame, visits: pd.DataFrame, patients: pd.DataFrame,
                 score: str) -> pd.DataFrame:
    """Long table of one visit score with its baseline and covariates."""
    ignored = {"treatment_id", "patient_id", "day", "visit_date", "source_row"}
    usable = [c for c in visits.columns if c not in ignored
              and (pd.api.types.is_numeric_dtype(visits[c]) or pd.api.types.is_bool_dtype(visits[c]))]
    recorded = [c for c in usable if visits[c].notna().any()]
    if score not in usable:
        raise ValueError(f"no score {score!r} in the visits table; choose one of: "
                         f"{', '.join(recorded)}")
    if score not in recorded:
        others = (f"choose one of: {', '.join(recorded)}" if recorded
                  else "no visit records any score")
        raise ValueError(f"no visit records a {score} score in this cohort (its column is "
                         f"empty or absent); {others}")
    table = _VisitTable(treatments, visits)
    rows = np.flatnonzero(visits[score].notna().to_numpy())
    values = visits[score].iloc[rows].reset_index(drop=True)
    base_rows = rows[table.day[rows] <= 0]
    base_groups = _Groups(table.treatment[base_rows])
    baseline_at = np.full(table.n_treatments, -1)
    baseline_at[base_groups.treatment] = base_rows[base_groups.ends]
    at = baseline_at[table.treatment[rows]]
    baseline = visits[score].iloc[np.maximum(at, 0)].reset_index(drop=True).where(at >= 0)
    extra = [c for c in visits.columns if c not in VISITS.names and c not in ignored | {score}]
    covariates = _covariates(treatments, patients).iloc[table.treatment[rows]].reset_index(drop=True)
    ids = ["patient_id", "treatment_id", "nerve", "side"]
    return pd.concat([
        covariates[ids],
        pd.DataFrame({"day": table.day[rows], score: values, f"baseline_{score}": baseline}),
        visits[extra].iloc[rows].reset_index(drop=True),
        covariates.drop(columns=ids),
    ], axis=1)
