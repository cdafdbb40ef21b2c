"""Table 1: the cohort's baseline characteristics, overall and by group.

:func:`table_one` describes the treated population the way the first table of a
clinical paper does, from the cohort's validated tables
(:meth:`regen.Cohort.table_one` is the usual way in):

- **patients** and **treatments** (treated nerves) in each column;
- **patient-level** characteristics, counted once per patient: age at the patient's first
  treatment in the column (mean (SD), median [IQR]), sex, diabetes, smoker, BMI;
- **treatment-level** characteristics, counted once per treatment: nerve, side,
  procedure, retreatment (a later treatment of the same patient, nerve and side),
  distance from the freeze site to the territory, baseline pain (the last pain score on
  or before day 0);
- **follow-up**: the days from each treatment to its last visit (median [IQR]) and the
  median follow-up by the **reverse Kaplan–Meier** method (:func:`reverse_km`);
- for every characteristic, its number of missing values.

The ``counted`` column says whether a row counts patients or treatments; a percentage is
of the column's patients or treatments (missing values included, so that a percentage
never reveals a hidden count). A declared column that nobody has a value for (a practice
that never records BMI) is left out, and the table's ``attrs["notes"]`` says so.

Reverse Kaplan–Meier
--------------------
The follow-up of an episode of the outcome is the time from its treatment to its last
visit. In the reverse Kaplan–Meier estimate (Schemper & Smith 1996) the roles of event and
censoring swap: an episode still going on at its last visit (right-censored: numb, or
relieved, at the last visit, or followed up to a retreatment) ends its follow-up there
and is a follow-up *event*; an episode whose event was seen is censored at the visit
that saw it. The median of that curve estimates how long a treatment would have been followed
had its episode not ended. The Kaplan–Meier curve, its quantiles (the first day the
curve falls below 1 − p, SAS's convention) and the 95% interval of the median (inverted
tests on the complementary log-log scale) are statsmodels' ``SurvfuncRight``. When few
episodes are still going on at their last visit the curve stays above one half and the
median is "not reached": the follow-up was long compared with the episodes, and the
median to the last visit (the row above it) says how long.

Small cells
-----------
A published group must never point to a patient. As in the practice report (its
``min_patients``), with ``min_count`` (default :data:`MIN_COUNT`, 5):

- a group (a column of ``by``) with fewer than ``min_count`` patients is not shown on its
  own: such groups are pooled into one column, "other (fewer than 5 patients each)",
  which is shown only if it reaches ``min_count`` patients itself; otherwise it is left
  out, and **Overall** counts only the columns shown, so that its size cannot be worked
  out by subtraction;
- a free-text level (a nerve regen does not know, a procedure) with fewer than
  ``min_count`` treatments is never named: such levels are pooled into "other";
- a count from 1 to ``min_count`` − 1 is shown as ``<5``, without its percentage;
- a count that could then be worked out by subtraction (the levels and missing values of
  a characteristic add up to the column's n; the groups add up to Overall) is suppressed
  too: the smallest other count of that sum, shown as ``<5`` if it is below 5 and as
  ``suppressed`` otherwise, until no sum has a single hidden count;
- a mean, median or reverse Kaplan–Meier median of fewer than ``min_count`` values is
  not shown.

``min_count=1`` turns suppression off (for a table that is not published).

No p-values
-----------
A baseline table describes who was treated; it does not test anything. In a
randomised trial any difference at baseline is chance by construction, and in an
observational cohort a p-value mixes the size of a difference with the size of the
groups: what matters is whether a difference is large enough to confound the comparison,
which the table shows directly and the models adjust for. CONSORT and STROBE advise
against significance tests in Table 1, so none are computed.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from regen._write import Outputs, html_environment
from regen.tables import KNOWN_NERVES, PATIENTS, TREATMENTS

__all__ = ["LABELS", "MIN_COUNT", "OVERALL", "reverse_km", "table_one", "table_one_html",
           "write_table_one"]

#: Counts below this are suppressed, and groups with fewer patients are not shown (the
#: practice report's ``min_patients``).
MIN_COUNT = 5
#: The name of the column for all the groups shown together.
OVERALL = "Overall"
#: The level of a row that counts missing values.
MISSING = "missing"
#: How the HTML table names each characteristic.
LABELS = {
    "patients": "Patients", "treatments": "Treatments (treated nerves)",
    "age": "Age at first treatment (years)", "sex": "Sex", "diabetes": "Diabetes",
    "smoker": "Smoker", "bmi": "BMI (kg/m²)", "nerve": "Nerve", "side": "Side",
    "procedure": "Procedure", "retreatment": "Retreatment of the same nerve and side",
    "distance_mm": "Distance from freeze site to territory (mm)",
    "baseline_pain": "Baseline pain (0–10)", "follow_up_days": "Follow-up to the last visit (days)",
    "follow_up_reverse_km": "Follow-up, reverse Kaplan–Meier (days)",
}
_COLUMNS = ["variable", "level", "statistic", "counted"]


@dataclass(frozen=True)
class _Variable:
    name: str
    counted: str          # "patients" or "treatments"
    kind: str             # "continuous", "category", "boolean" or "text"


_VARIABLES = (
    _Variable("age", "patients", "continuous"), _Variable("sex", "patients", "category"),
    _Variable("diabetes", "patients", "boolean"), _Variable("smoker", "patients", "boolean"),
    _Variable("bmi", "patients", "continuous"), _Variable("nerve", "treatments", "text"),
    _Variable("side", "treatments", "category"), _Variable("procedure", "treatments", "text"),
    _Variable("retreatment", "treatments", "boolean"),
    _Variable("distance_mm", "treatments", "continuous"),
    _Variable("baseline_pain", "treatments", "continuous"),
    _Variable("follow_up_days", "treatments", "continuous"),
)
#: The declared order of a category's levels.
_ORDER = {"sex": PATIENTS["sex"].allowed, "side": TREATMENTS["side"].allowed}
#: Free-text levels that may be named however rare (the rest are pooled when rare).
_KNOWN = {"nerve": set(KNOWN_NERVES)}


# ------------------------------------------------------------------ reverse KM --

def reverse_km(days, ongoing) -> pd.Series:
    """Median follow-up (with its IQR and 95% CI) by the reverse Kaplan–Meier method.

    Parameters
    ----------
    days : array-like of float
        Each episode's follow-up: days from its treatment to its last visit (ongoing
        episodes) or to the visit that saw its event.
    ongoing : array-like of bool
        True where the episode was still going on at its last visit (right-censored),
        which makes the end of its follow-up a follow-up *event*; False where its event
        was seen (its follow-up is censored there, at the visit that saw the event).

    Returns
    -------
    Series
        ``n`` (episodes), ``events`` (ongoing at the last visit), ``median``, ``q25``,
        ``q75`` (the days at which the reverse curve first falls below 0.5, 0.75 and
        0.25; NaN when it never does: "not reached"), ``ci_lower``, ``ci_upper`` (95%
        interval of the median; ``ci_upper`` is ``inf`` when not bounded).

    Examples
    --------
    >>> from regen.baseline import reverse_km
    >>> reverse_km([30, 60, 90, 120, 150, 180], [1, 0, 1, 1, 0, 1])["median"]
    120.0
    """
    from statsmodels.duration.survfunc import SurvfuncRight

    time = np.asarray(days, dtype="float64")
    status = np.asarray(ongoing, dtype=bool)
    if time.shape != status.shape or time.ndim != 1:
        raise ValueError("days and ongoing must be two sequences of the same length")
    if np.isnan(time).any() or (time < 0).any():
        raise ValueError("days must be numbers ≥ 0 (the days from a treatment to its last visit)")
    out = {"n": len(time), "events": int(status.sum()), "median": np.nan, "q25": np.nan,
           "q75": np.nan, "ci_lower": np.nan, "ci_upper": np.nan}
    if status.any():
        fit = SurvfuncRight(time, status.astype("float64"))
        out.update(median=fit.quantile(0.5), q25=fit.quantile(0.25), q75=fit.quantile(0.75))
        with np.errstate(divide="ignore", invalid="ignore"):    # log(0) where the curve is 0
            out["ci_lower"], out["ci_upper"] = fit.quantile_ci(0.5)
    return pd.Series({k: float(v) if k not in ("n", "events") else v for k, v in out.items()},
                     dtype=object)


# -------------------------------------------------------------------- the table --

def table_one(patients: pd.DataFrame, treatments: pd.DataFrame, visits: pd.DataFrame,
              episodes: pd.DataFrame, *, by: str | None = None, outcome: str = "relief",
              min_count: int = MIN_COUNT) -> pd.DataFrame:
    """The baseline table of a cohort's tables (see the module docstring).

    :meth:`regen.Cohort.table_one` calls this with the cohort's tables and the episodes of
    ``outcome``; the parameters are described there.

    Returns
    -------
    DataFrame
        ``variable, level, statistic, counted``, then one column per group shown and
        ``Overall``, each cell a formatted text; ``attrs["notes"]`` holds the notes a
        published table needs (what was suppressed, what is not recorded).
    """
    if isinstance(min_count, bool) or not isinstance(min_count, int | np.integer) \
            or min_count < 1:
        raise ValueError(f"min_count must be a whole number ≥ 1 (1: no suppression), "
                         f"not {min_count!r}")
    m = int(min_count)
    frame = _treatment_frame(patients, treatments, visits, episodes)
    groups, notes = _groups(frame, by, m)
    shown = np.logical_or.reduce([mask for _, mask in groups]) if groups else \
        np.ones(len(frame), dtype=bool)
    if frame.loc[shown, "patient_id"].nunique() < m:
        raise ValueError(f"the cohort has fewer than {m} treated patients: a table of them "
                         "would describe identifiable patients (min_count=1 makes one that "
                         "is not for publication)")
    overall = frame.loc[shown]
    variables = [v for v in _VARIABLES if v.name != by and overall[v.name].notna().any()]
    absent = [v.name for v in _VARIABLES if v.name != by and v not in variables]
    if absent:
        notes.append("Not recorded for any patient or treatment, so not shown: "
                     + ", ".join(absent) + ".")
    levels = {v.name: _levels(overall[v.name], v, m) for v in variables if v.kind != "continuous"}
    columns = [(name, frame.loc[mask]) for name, mask in groups] + [(OVERALL, overall)]
    described = {name: _describe(part, variables, levels, outcome, m) for name, part in columns}
    table = _assemble(described, m)
    notes += _rule_notes(outcome, m)
    table.attrs["notes"] = notes
    return table


def _treatment_frame(patients, treatments, visits, episodes) -> pd.DataFrame:
    """One row per treatment with its patient's columns, baseline pain, follow-up, episode."""
    people = patients.drop(columns=["source_row"], errors="ignore").drop_duplicates("patient_id")
    frame = treatments.drop(columns=["source_row"], errors="ignore").merge(
        people, on="patient_id", how="left", validate="many_to_one", suffixes=("", "_patient"))
    frame["retreatment"] = frame["treatment_number"].gt(1) \
        if "treatment_number" in frame.columns else pd.NA
    day = visits["day"].astype("float64")
    after = visits.loc[day.gt(0).to_numpy(dtype=bool)]
    last = after.groupby("treatment_id")["day"].max().astype("float64")
    frame["follow_up_days"] = frame["treatment_id"].map(last).astype("float64")
    pain = visits.loc[day.le(0).to_numpy(dtype=bool) & visits["pain"].notna().to_numpy(bool)]
    baseline = pain.sort_values(["treatment_id", "day"], kind="stable").groupby(
        "treatment_id")["pain"].last().astype("float64")
    frame["baseline_pain"] = frame["treatment_id"].map(baseline).astype("float64")
    ep = episodes.set_index("treatment_id")
    ongoing = ep["status"].astype("string").eq("right_censored")
    # the reverse KM's time: the last visit of an ongoing episode, the visit that saw the
    # event of an ended one (censored there: its follow-up for this outcome stops with it)
    seen = ep["upper"].where(~ongoing.to_numpy(dtype=bool), ep["last_visit_day"])
    frame["_episode_days"] = frame["treatment_id"].map(seen).astype("float64")
    frame["_ongoing"] = frame["treatment_id"].map(ongoing).astype("boolean")
    order = [c for c in ("treated_on", "treatment_number") if c in frame.columns]
    return frame.sort_values(order, kind="stable", na_position="last").reset_index(drop=True) \
        if order else frame


def _word(value) -> str:
    """A group's or level's name: yes/no for booleans, the text as written otherwise."""
    if pd.isna(value):
        return MISSING
    if isinstance(value, bool | np.bool_):
        return "yes" if value else "no"
    return str(value)


def _groups(frame: pd.DataFrame, by: str | None, m: int) -> tuple[list, list[str]]:
    """The columns of ``by`` shown, each ``(name, mask of frame's rows)``, and notes."""
    if by is None:
        return [], []
    hidden = {"patient_id", "treatment_id", "treated_on", "birth_year", "retreated_day"}
    usable = sorted(c for c in frame.columns if c not in hidden and not c.startswith("_"))
    if not isinstance(by, str) or by not in usable:
        raise ValueError(f"by must name a column of the patients or treatments table, not "
                         f"{by!r}; choose one of: {', '.join(usable)}")
    values = frame[by]
    numeric = pd.api.types.is_float_dtype(values) and not pd.api.types.is_bool_dtype(values)
    if numeric and values.nunique() > 12:
        raise ValueError(f"{by} is a number with {values.nunique()} values; a table by group "
                         "needs a column of categories (nerve, sex, diabetes, procedure, ...)")
    names = values.map(_word).astype(object).to_numpy()
    patients = pd.Series(frame["patient_id"].to_numpy()).groupby(names).nunique()
    order = sorted(patients.index, key=lambda g: (g == MISSING, {"yes": 0, "no": 1}.get(g, 2), g))
    small = [g for g in order if patients[g] < m]
    groups = [(g, names == g) for g in order if g not in small]
    notes = []
    if small:
        pooled = np.isin(names, small)
        pool = f"other (fewer than {m} patients each)"
        if frame.loc[pooled, "patient_id"].nunique() >= m:
            groups.append((pool, pooled))
            notes.append(f"Groups of {by} with fewer than {m} patients are shown together as "
                         f"'{pool}'.")
        else:
            notes.append(f"Groups of {by} with fewer than {m} patients, even together, are not "
                         f"shown; {OVERALL} counts only the groups shown.")
    if not groups:
        raise ValueError(f"no group of {by} has {m} or more patients: none can be shown")
    return groups, notes


def _levels(values: pd.Series, variable: _Variable, m: int) -> list[str]:
    """The levels of a characteristic, in the order shown (most common first for text)."""
    if variable.kind == "boolean":
        return ["yes", "no"]
    words = values.dropna().map(_word)
    if variable.kind == "category":
        seen = set(words)
        declared = [level for level in _ORDER.get(variable.name, ()) if level in seen]
        return declared + sorted(seen - set(declared))
    counts = words.value_counts()
    counts = counts.iloc[np.lexsort((counts.index.to_numpy(dtype=str), -counts.to_numpy()))]
    known = _KNOWN.get(variable.name, set())
    rare = [level for level, n in counts.items() if n < m and level not in known]
    return [level for level in counts.index if level not in rare] + \
        ([_other(m)] if rare else [])


def _other(m: int) -> str:
    return f"other (fewer than {m} each)"


@dataclass
class _Cell:
    """One cell before formatting: a count (that may be suppressed) or a statistic."""

    count: int | None = None     # a count; None for a statistic
    total: int | None = None     # the n a percentage is of (None: no percentage)
    sums_to: tuple | None = None  # the key of the count this one adds up to, with its siblings
    text: str = ""               # a statistic, formatted
    values: int = 0              # how many values the statistic summarises


def _key(variable: str, level: str, statistic: str, counted: str) -> tuple:
    return (variable, level, statistic, counted)


_N = {unit: _key(unit, "", "n", unit) for unit in ("patients", "treatments")}


def _describe(part: pd.DataFrame, variables, levels: dict, outcome: str, m: int) -> dict:
    """The cells of one column: ``key → _Cell``, in the order of the rows."""
    units = {"treatments": part, "patients": part.drop_duplicates("patient_id")}
    cells = {_N[unit]: _Cell(count=len(units[unit])) for unit in ("patients", "treatments")}
    for variable in variables:
        frame = units[variable.counted]
        values = frame[variable.name]
        total = len(frame)
        n_key = _N[variable.counted]
        missing = int(values.isna().sum())
        if variable.kind == "continuous":
            numbers = values.dropna().astype("float64")
            recorded = len(numbers)
            q1, median, q3 = numbers.quantile([0.25, 0.5, 0.75]) if recorded else (np.nan,) * 3
            sd = numbers.std() if recorded > 1 else np.nan
            cells[_key(variable.name, "", "mean (SD)", variable.counted)] = _Cell(
                text=f"{numbers.mean():.1f} ({_number(sd)})" if recorded else "", values=recorded)
            cells[_key(variable.name, "", "median [IQR]", variable.counted)] = _Cell(
                text=f"{median:.1f} [{q1:.1f}, {q3:.1f}]" if recorded else "", values=recorded)
            cells[_key(variable.name, "", "_recorded", variable.counted)] = _Cell(
                count=recorded, sums_to=n_key)
        else:
            shown = levels[variable.name]
            words = values.dropna().map(_word)
            words = words.where(words.isin(shown), _other(m)).value_counts()
            for level in shown:
                cells[_key(variable.name, level, "n (%)", variable.counted)] = _Cell(
                    count=int(words.get(level, 0)), total=total, sums_to=n_key)
        cells[_key(variable.name, MISSING, "n (%)", variable.counted)] = _Cell(
            count=missing, total=total, sums_to=n_key)
    cells.update(_follow_up(part, outcome))
    return cells


def _follow_up(part: pd.DataFrame, outcome: str) -> dict:
    """The reverse Kaplan–Meier rows of one column."""
    episodes = part.loc[part["_episode_days"].notna()]
    ongoing = episodes["_ongoing"].fillna(False).to_numpy(dtype=bool)
    fit = reverse_km(episodes["_episode_days"].to_numpy(dtype="float64"), ongoing)
    name, unit = "follow_up_reverse_km", "treatments"
    n_key = _key(name, f"{outcome} episodes", "n", unit)
    median = "not reached" if np.isnan(fit["median"]) else (
        f"{fit['median']:.0f} ({_day(fit['ci_lower'])} to {_day(fit['ci_upper'])})")
    spread = "not reached" if np.isnan(fit["q25"]) else \
        f"[{_day(fit['q25'])}, {_day(fit['q75'])}]"
    return {
        n_key: _Cell(count=len(episodes)),
        _key(name, "ongoing at last visit", "n", unit): _Cell(count=fit["events"], sums_to=n_key),
        _key(name, "", "_observed", unit): _Cell(count=len(episodes) - fit["events"],
                                                 sums_to=n_key),
        _key(name, "", "median (95% CI)", unit): _Cell(text=median, values=len(episodes)),
        _key(name, "", "IQR", unit): _Cell(text=spread, values=len(episodes)),
    }


def _number(value: float) -> str:
    return "–" if np.isnan(value) else f"{value:.1f}"


def _day(value: float) -> str:
    """A day of the reverse Kaplan–Meier curve (an observed visit day), or why there is none."""
    if np.isnan(value) or np.isinf(value):
        return "not reached"
    return f"{value:.0f}"


def _assemble(described: dict[str, dict], m: int) -> pd.DataFrame:
    """The formatted table, with small counts and those that would reveal them suppressed."""
    keys = [key for key in described[OVERALL] if not key[2].startswith("_")]
    hidden = {(key, column) for column, cells in described.items() for key in cells
              if key[2].startswith("_")}
    suppressed = _suppress(described, hidden, m)
    rows = []
    for key in keys:
        row = dict(zip(_COLUMNS, key, strict=True))
        for column, cells in described.items():
            row[column] = _format(cells[key], (key, column) in suppressed, m)
        rows.append(row)
    return pd.DataFrame(rows, columns=_COLUMNS + list(described))


def _format(cell: _Cell, suppressed: bool, m: int) -> str:
    if cell.count is None:                                  # a statistic
        if cell.values == 0:
            return "–"
        return cell.text if cell.values >= m else f"fewer than {m} values"
    if suppressed:
        return f"<{m}" if cell.count < m else "suppressed"
    if cell.total is None:
        return f"{cell.count}"
    share = 100 * cell.count / cell.total if cell.total else 0.0
    return f"{cell.count} ({share:.1f}%)"


def _constraints(described: dict[str, dict]) -> list[list[tuple]]:
    """Every sum a reader knows: in each column, a characteristic's counts add up to the
    column's n (or the episodes); across the columns, the groups add up to Overall (a
    patient row only when the groups do not share patients)."""
    sums = []
    for column, cells in described.items():
        by_total: dict[tuple, list] = {}
        for key, cell in cells.items():
            if cell.sums_to is not None:             # one sum per characteristic
                by_total.setdefault((key[0], cell.sums_to), [(cell.sums_to, column)]).append(
                    (key, column))
        sums += list(by_total.values())
    groups = [column for column in described if column != OVERALL]
    if groups:
        overall = described[OVERALL]
        partitions = {unit: sum(described[g][_N[unit]].count for g in groups)
                      == overall[_N[unit]].count for unit in _N}
        for key, cell in overall.items():
            if cell.count is not None and not key[2].startswith("_") and partitions[key[3]]:
                sums.append([(key, column) for column in described])
    return sums


def _suppress(described: dict[str, dict], hidden: set, m: int) -> set:
    """The counts not shown: each from 1 to ``m`` − 1, then, while some sum has a single
    unknown count that is suppressed (or hidden and small), the smallest known count of
    that sum (never a column's n)."""
    def value(cell):
        return described[cell[1]][cell[0]].count

    suppressed = {(key, column) for column, cells in described.items()
                  for key, cell in cells.items() if (key, column) not in hidden
                  and cell.count is not None and 0 < cell.count < m}
    sums = _constraints(described)
    changed = True
    while changed:
        changed = False
        for cells in sums:
            unknown = [c for c in cells if c in suppressed or c in hidden]
            if len(unknown) != 1 or (unknown[0] in hidden and not 0 < value(unknown[0]) < m):
                continue
            known = [c for c in cells if c not in unknown and c[0] not in _N.values()]
            if known:
                suppressed.add(min(known, key=value))
                changed = True
    return suppressed


def _rule_notes(outcome: str, m: int) -> list[str]:
    notes = ["Patient rows count each patient once per column (age at the patient's first "
             "treatment in the column); treatment rows count treated nerves. Percentages are "
             "of the column's patients or treatments, missing values included."]
    if m > 1:
        notes.append(f"Counts from 1 to {m - 1} are shown as <{m}; where such a count could be "
                     "worked out by subtraction, another count of the same sum is suppressed "
                     f"too (<{m} or 'suppressed'). Statistics of fewer than {m} values are not "
                     "shown.")
    notes.append(f"Reverse Kaplan–Meier follow-up of the {outcome} episodes: an episode still "
                 "going on at its last visit ends its follow-up there (an event); one whose "
                 "event was seen is censored at the visit that saw it.")
    return notes


# ----------------------------------------------------------------------- output --

def table_one_html(table: pd.DataFrame, *, title: str = "Table 1. Baseline characteristics") -> str:
    """Table 1 as a self-contained HTML page: every text escaped, no script allowed.

    Parameters
    ----------
    table : DataFrame
        From :meth:`regen.Cohort.table_one`; its ``attrs["notes"]`` are printed under it.
    title : str
        The caption.

    Returns
    -------
    str
        The page, from regen's one autoescaping template environment, with a
        Content-Security-Policy that forbids scripts and every network request.
    """
    missing = [c for c in _COLUMNS if c not in table.columns]
    if missing:
        raise ValueError(f"table must be Cohort.table_one()'s, with columns {', '.join(_COLUMNS)}")
    groups = [c for c in table.columns if c not in _COLUMNS]
    rows, previous = [], None
    for record in table.to_dict("records"):
        variable = record["variable"]
        rows.append({"label": LABELS.get(variable, variable) if variable != previous else "",
                     "level": record["level"], "statistic": record["statistic"],
                     "counted": record["counted"], "cells": [record[g] for g in groups]})
        previous = variable
    template = html_environment("regen").get_template("table_one.html.j2")
    return template.render(title=title, groups=groups, rows=rows,
                           notes=list(table.attrs.get("notes", [])))


def write_table_one(table: pd.DataFrame, path, *, title: str = "Table 1. Baseline characteristics",
                    force: bool = False, outputs: Outputs | None = None) -> Path:
    """Write Table 1 as HTML (``.html``), CSV (``.csv``, ``.tsv``), xlsx or Parquet, by suffix.

    Everything goes through regen's one writer: atomic, never over an input or over a file
    regen did not write (unless ``force=True``); HTML escapes every text, and a CSV or xlsx
    cell (or header) that a spreadsheet would run as a formula is neutralised.

    Parameters
    ----------
    table : DataFrame
        From :meth:`regen.Cohort.table_one`.
    path : str or Path
        The file; its suffix chooses the format.
    title : str
        The HTML caption.
    force : bool, default False
        Replace a file regen did not write.
    outputs : Outputs, optional
        A command's outputs, to check the path against its inputs and other outputs.

    Returns
    -------
    Path

    Examples
    --------
    >>> table = cohort.table_one(by="nerve")  # doctest: +SKIP
    >>> write_table_one(table, "table1.html")  # doctest: +SKIP
    """
    outputs = outputs if outputs is not None else Outputs(force=force)
    path = Path(path)
    if path.suffix.lower() in (".html", ".htm"):
        return outputs.write_text(path, table_one_html(table, title=title))
    return outputs.write_table(table, path)
