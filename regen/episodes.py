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
import pyarrow as pa
import pyarrow.compute as pc

from regen._util import isin
from regen.defaults import RELIEF_CONFIRM  # the end of relief; why 3: docs/episodes.md
from regen.exceptions import DataWarning
from regen.ledger import exclusions
from regen.tables import PATIENTS, TREATMENTS, VISITS

__all__ = ["RELIEF_CONFIRM", "build", "measurements", "relief_options", "row_of"]

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
    treated = core.pop("_treatment").to_numpy()
    covariates = _covariates(treatments, patients, treated)
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
        self.treatment = _treatment_rows(treatments["treatment_id"], visits["treatment_id"])
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


def _arrow_text(text: pd.Series) -> pa.Array:
    """The text of a column in one Arrow array."""
    values = pa.array(text.array) if len(text) else pa.array([], pa.large_string())
    return values.combine_chunks() if isinstance(values, pa.ChunkedArray) else values


def row_of(ids: pd.Series, references: pd.Series, *, missing_too: bool = False) -> np.ndarray:
    """For each reference, the row of ``ids`` holding it (its first row if repeated), or -1:
    one hash join in Arrow, of each run of equal references once (a visits file lists a
    treatment's visits together). A missing reference has no row, unless ``missing_too``:
    then it is at the first missing id."""
    wanted = _arrow_text(references)
    starts = np.arange(len(wanted))
    if len(wanted) > 1:   # where a run starts: a reference unlike the one before (or missing)
        differs = pc.fill_null(pc.not_equal(wanted.slice(1), wanted.slice(0, len(wanted) - 1)),
                               True)
        starts = np.flatnonzero(np.r_[True, differs.to_numpy(zero_copy_only=False)])
    found = pc.index_in(wanted.take(starts) if len(starts) < len(wanted) else wanted,
                        value_set=_arrow_text(ids), skip_nulls=not missing_too)
    found = pc.fill_null(found, -1).to_numpy(zero_copy_only=False).astype(np.int64)
    return np.repeat(found, np.diff(np.r_[starts, len(wanted)])) if len(starts) < len(
        wanted) else found


def _in_arrow(values: pd.Series) -> bool:
    """Whether a column holds its text in Arrow."""
    return isinstance(values.dtype, pd.StringDtype) and values.dtype.storage == "pyarrow"


def _treatment_rows(ids: pd.Series, visit_ids: pd.Series) -> np.ndarray:
    """Each visit's treatment as a row of the treatments, by ``pd.Index(ids).get_indexer``,
    which refuses ids that repeat; text held in Arrow is looked up in Arrow."""
    if _in_arrow(ids) and _in_arrow(visit_ids):
        text = _arrow_text(ids)
        if len(pc.unique(text)) == len(text):
            return row_of(ids, visit_ids, missing_too=True)
    return _positions(pd.Index(ids), visit_ids)


def _positions(index: pd.Index, values: pd.Series) -> np.ndarray:
    """``index.get_indexer(values)``, looked up once per run of equal neighbours: a cohort's
    visits come grouped by treatment, a few to a run. Only for values held as Python
    objects (they are compared where they are); others are looked up one by one."""
    python = values.dtype == object or (isinstance(values.dtype, pd.StringDtype)
                                        and values.dtype.storage == "python")
    if len(values) < 2 or not python:
        return index.get_indexer(values)
    objects = np.asarray(values.array)   # no copy
    try:
        starts = np.flatnonzero(np.r_[True, objects[1:] != objects[:-1]])
    except TypeError:   # a missing value, which compares to nothing
        return index.get_indexer(values)
    found = index.get_indexer(values.iloc[starts])
    return np.repeat(found, np.diff(np.r_[starts, len(values)]))


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
        return self._where(mask, last=False)

    def last(self, mask: np.ndarray) -> np.ndarray:
        """Per group, the last row where ``mask`` holds, or -1."""
        return self._where(mask, last=True)

    def _where(self, mask: np.ndarray, last: bool) -> np.ndarray:
        """The rows are in group order: a group's first (last) masked row is the one whose
        group differs from the masked row's before (after) it."""
        rows = np.flatnonzero(mask)
        result = np.full(len(self), -1, dtype=np.int64)
        groups = self.of_row[rows]
        other = groups[1:] != groups[:-1]
        edge = (np.r_[other, True] if last else np.r_[True, other])[:len(rows)]
        result[groups[edge]] = rows[edge]
        return result


def _chosen(conditions: list[np.ndarray], choices: list[str], default: str):
    """``np.select`` of words, in the type pandas gives a column of words (Python strings,
    one object per word which the rows share; or pandas 3's ``str``)."""
    words = np.array([*choices, default], dtype=object)
    chosen = words[np.select(conditions, np.arange(len(choices)), len(choices))]
    kind = pd.Series(words[:1].astype(str)).dtype
    return chosen if kind == np.dtype(object) else pd.array(chosen, dtype=kind)


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
    status = _chosen([left, happened], [LEFT, INTERVAL], RIGHT)
    reason = _chosen(
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
    reason = _chosen([happened & confirmed, happened, table.retreated[groups.treatment]],
                     ["relief_ended", "relief_ended_unconfirmed", "censored_at_retreatment"],
                     "relieved_at_last_visit")
    core = pd.DataFrame({
        "_treatment": groups.treatment, "lower": lower, "upper": upper,
        "status": _chosen([happened], [INTERVAL], RIGHT), "reason": reason,
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

def _covariates(treatments: pd.DataFrame, patients: pd.DataFrame,
                rows: np.ndarray | None = None) -> pd.DataFrame:
    """For the treatments at positions ``rows`` (default: all), one row each: its ids and
    every treatment and patient column.

    The patient columns are taken by position (what a left join on ``patient_id`` gives,
    at a fraction of its cost: episodes are built per simulated study when planning);
    a pandas merge when a treatment names no patient or a column is in both tables.
    """
    t_columns = [c for c in treatments.columns if c != "source_row"]
    if _in_arrow(patients["patient_id"]) and _in_arrow(treatments["patient_id"]):
        p = patients   # each id at its first row, as after dropping the repeated ones
        at = row_of(patients["patient_id"], treatments["patient_id"], missing_too=True)
    else:
        index = pd.Index(patients["patient_id"])
        p = patients if index.is_unique else patients.drop_duplicates("patient_id")
        at = _positions(index if p is patients else pd.Index(p["patient_id"]),
                        treatments["patient_id"])
    p_columns = [c for c in p.columns if c != "source_row"]
    shared = set(t_columns) & set(p_columns) - {"patient_id"}
    if (at >= 0).all() and not shared:
        merged = pd.concat([treatments[t_columns].reset_index(drop=True),
                            _taken(p, at, [c for c in p_columns if c != "patient_id"])], axis=1)
    else:
        merged = treatments[t_columns].merge(p[p_columns].drop_duplicates("patient_id"),
                                             on="patient_id", how="left", validate="many_to_one")
    first = ID_COLUMNS + [c for c in TREATMENTS.names + PATIENTS.names if c not in ID_COLUMNS]
    order = [c for c in first if c in merged.columns]
    merged = merged[order + [c for c in merged.columns if c not in order]]
    # One row per treatment until here; the rows asked for (a visit's, an episode's) are
    # taken once, at the end.
    return merged.reset_index(drop=True) if rows is None else _taken(merged, rows,
                                                                     list(merged.columns))


def _taken(frame: pd.DataFrame, rows: np.ndarray, columns: list[str]) -> pd.DataFrame:
    """``frame[columns]`` at the positions ``rows``, numbered from 0: one copy."""
    taken = frame.iloc[rows, [frame.columns.get_loc(c) for c in columns]]
    taken.index = pd.RangeIndex(len(rows))
    return taken


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
    covariates = _covariates(treatments, patients, table.treatment[rows])
    ids = ["patient_id", "treatment_id", "nerve", "side"]
    return pd.concat([
        covariates[ids],
        pd.DataFrame({"day": table.day[rows], score: values, f"baseline_{score}": baseline}),
        visits[extra].iloc[rows].reset_index(drop=True),
        covariates.drop(columns=ids),
    ], axis=1)
