"""A patient's earlier episodes, for a model that learns from them: read from a CSV file
(:func:`read_history`, within :class:`~regen.io.ReadLimits` and checked row by row like the
cohort's tables) or taken from a cohort (:func:`patient_history`), checked against what the
model needs (:func:`model_inputs`) and put oldest first (:func:`one_patient`)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from regen._scan import shorten
from regen.exceptions import ModelError
from regen.io.limits import Budget, ReadLimits, mb, raise_limit
from regen.io.raw import RawTable
from regen.io.text import read_text
from regen.ledger import Notes, Problems
from regen.survival.frailty import FrailtyFit
from regen.survival.npmle import check_intervals
from regen.survival.regeneration import RegenerationFit
from regen.tables import Column, Table
from regen.validation import BOOLEAN_WORDS, RESERVED_COLUMNS, parse_table

__all__ = ["SHOWN_EPISODES", "YES_NO", "check_learns_from_history", "labels", "model_inputs",
           "oldest_first", "one_patient", "patient_history", "read_history"]

#: At most this many earlier episodes are named one by one.
SHOWN_EPISODES = 5
#: What :func:`model_inputs` gives for a yes/no covariate.
YES_NO = "yes or no"

#: Suffixes :func:`read_history` reads.
_TEXT_SUFFIXES = (".csv", ".tsv", ".txt")
#: An ``upper`` of the history file that means "still going" (as does an empty cell).
_ONGOING = frozenset({"inf", "+inf", "infinity", "+infinity"})


def check_learns_from_history(model) -> None:
    """Raise :class:`~regen.exceptions.ModelError` unless ``model`` can learn from a patient's
    earlier episodes: only a model fitted with frailty can."""
    if not isinstance(model, FrailtyFit):
        raise ModelError(
            f"this model ({type(model).__name__}) was fitted without frailty, so it cannot learn "
            "from a patient's history. Fit it with frailty: 'regen fit recovery PATH "
            "--frailty patient_id --save FILE', or fit_recovery(..., frailty='patient_id') in "
            "Python saved with fit.save(path, outcome='relief') (or 'numbness')")




def model_inputs(model) -> dict[str, list[str] | str | None]:
    """What a model needs from a profile, by variable.

    Returns
    -------
    dict
        For each variable: its levels (a list) for a categorical covariate,
        :data:`YES_NO` for a covariate that was a yes/no column, and None for a
        number (with a kinetics model, the distance is a number too).

    Examples
    --------
    >>> model_inputs(model)  # doctest: +SKIP
    {'age': None, 'diabetes': 'yes or no', 'nerve': ['greater_occipital', ...]}
    """
    levels = model.design.levels
    yes_no = set(model.yes_no or ())
    needed = {name: YES_NO if name in yes_no else levels.get(name)
              for name in model.design.variables}
    if isinstance(model, RegenerationFit):
        needed[model.distance] = None
    return needed


def read_history(path: str | Path, model, *, patient_id: str | None = None,
                 limits: ReadLimits | None = None) -> pd.DataFrame:
    """One patient's earlier episodes from a CSV file, read within limits and checked.

    Parameters
    ----------
    path : str or Path
        A ``.csv`` file, one row per earlier episode: ``lower``, ``upper`` (days; the
        event happened in ``(lower, upper]``; ``upper`` empty or ``inf`` while still
        going), the model's covariates, optionally the model's ``frailty`` column
        (``patient_id``), ``treatment_number``, ``treated_on``; other columns are
        kept. A file written by ``regen episodes`` is one.
    model : FrailtyFit
        The model to predict with: its covariates are checked as it needs them.
    patient_id : str, optional
        With a ``patient_id`` column, only this patient's rows are read; without
        ``patient_id``, the file must hold one patient's rows.
    limits : ReadLimits, optional
        How much to read before refusing the file (default ``ReadLimits()``).

    Returns
    -------
    DataFrame
        The episodes as :func:`expected_duration` takes them: ``lower``, ``upper``
        (``inf`` while still going), the covariates with the model's types, ids as
        text, and ``source_row`` (the row in the file).

    Raises
    ------
    CohortValidationError
        Every problem found, each with file, row, column, value and how to fix it
        (not a number, ``lower`` < 0, ``upper`` < ``lower``, a covariate missing or
        of an unknown level, several patients, a file too large or not a table).
    ValueError
        ``patient_id`` has no row in the file.
    ModelError
        The model was fitted without frailty.

    Examples
    --------
    >>> earlier = read_history("P00012.csv", model)  # doctest: +SKIP
    >>> expected_duration(model, {}, history=earlier)["median"]  # doctest: +SKIP
    """
    check_learns_from_history(model)
    path = Path(path)
    limits = ReadLimits() if limits is None else limits
    problems, notes = Problems(), Notes()
    raw = _read_raw(path, problems, notes, limits)
    frame = None if raw is None else _parse_history(raw, model, patient_id, problems, notes)
    problems.raise_if_any(str(path))
    notes.emit(stacklevel=2)
    return frame


def _read_raw(path: Path, problems: Problems, notes: Notes, limits: ReadLimits
              ) -> RawTable | None:
    """The file as text cells, or None with the reason in ``problems``."""
    fix = ("give the CSV file of the patient's earlier episodes (columns lower, upper and the "
           "model's covariates, one row per episode)")
    if not path.exists():
        problems.add_table(str(path), "history", "file does not exist", fix)
    elif not path.is_file():
        problems.add_table(str(path), "history", "not a file", fix)
    elif path.suffix.lower() not in _TEXT_SUFFIXES:
        problems.add_table(path.name, "history", "not a .csv file",
                           "save the earlier episodes as CSV (a spreadsheet's 'Save as CSV')")
    elif (size := path.stat().st_size) > limits.max_file_bytes:
        problems.add(path.name, "history", None, None, f"{size:,} bytes",
                     f"file larger than the limit of {mb(limits.max_file_bytes)} ({mb(size)})",
                     "check that this is the right file; if it is, "
                     + raise_limit("max_file_bytes"))
    else:
        return read_text(path, "history", problems, notes, Budget(limits))
    return None


def _parse_history(raw: RawTable, model, patient_id: str | None, problems: Problems,
                   notes: Notes) -> pd.DataFrame | None:
    """The episodes of one patient, typed and checked; problems recorded."""
    key = model.frailty
    frame = raw.frame.copy()
    ids = frame[key].astype("string").str.strip() if key in frame.columns else None
    if ids is not None and not (ids.fillna("") != "").any():
        frame, ids = frame.drop(columns=key), None   # an empty id column: as if none
    if ids is not None and patient_id is not None:
        mine = (ids == patient_id).fillna(False).to_numpy(dtype=bool)
        if not mine.any():
            raise ValueError(f"{raw.file} has no row of patient {shorten(patient_id)!r} in its "
                             f"column {key}: check the id (matched exactly, as text)")
        frame, ids = frame.loc[mine].reset_index(drop=True), ids[mine].reset_index(drop=True)
        raw = RawTable(name=raw.name, file=raw.file, frame=frame, rows=raw.rows[mine],
                       decimal_comma=raw.decimal_comma, headers=raw.headers)
    if not len(frame):
        problems.add_table(raw.file, "history", "no earlier episode: the file has no rows",
                           "add the patient's earlier episodes, one per row")
        return None
    if "upper" in frame.columns:   # "inf": still going, as an empty cell
        upper = frame["upper"].astype("string")
        frame["upper"] = upper.mask(upper.str.strip().str.lower().isin(_ONGOING), "")
    needed = model_inputs(model)
    if getattr(model, "yes_no", None) is None:   # an older model: numbers may be yes/no words
        words = {word: str(int(value)) for word, value in BOOLEAN_WORDS.items()}
        for name in (n for n, need in needed.items() if need is None and n in frame.columns):
            text = frame[name].astype("string")
            frame[name] = text.str.strip().str.lower().map(words).fillna(text)
    raw.frame = frame
    parsed, _ = parse_table(raw, _history_table(model, needed, frame.columns, ids is not None),
                            problems, notes)
    _check_order(raw, parsed, problems)
    if ids is not None:
        found = parsed[key].dropna().unique()
        if len(found) > 1:
            problems.add_table(raw.file, "history",
                               f"rows of {_several(found)}; the file must hold one patient's "
                               "earlier episodes",
                               "keep only the rows of the patient to predict for, or choose the "
                               "patient with --patient-id ID (patient_id= in Python)")
    elif patient_id is not None:
        parsed[key] = patient_id
    parsed["upper"] = parsed["upper"].fillna(np.inf)
    return parsed


def _several(ids) -> str:
    """"3 patients ('P1', 'P2', 'P3')": the first few ids of a file that holds several."""
    listed = ", ".join(repr(shorten(i)) for i in ids[:SHOWN_EPISODES])
    more = f" and {len(ids) - SHOWN_EPISODES:,} more" if len(ids) > SHOWN_EPISODES else ""
    return f"{len(ids):,} patients ({listed}{more})"


def _history_table(model, needed: dict, columns, with_ids: bool) -> Table:
    """The columns a history file is checked by: the model's covariates as the model needs
    them, lower, upper, the ids, and the columns regen computes kept as written."""
    declared = [
        Column("lower", "number", required=True, minimum=0,
               description="last day the earlier treatment's effect was seen to go on"),
        Column("upper", "number", minimum=0,
               description="first day it was seen to be over; empty while still going"),
    ]
    if with_ids:
        declared.append(Column(model.frailty, "id", required=True))
    for name, need in needed.items():
        if name == "treatment_number":
            declared.append(Column(name, "integer", required=True, minimum=1))
        elif need == YES_NO:
            declared.append(Column(name, "boolean", required=True))
        elif isinstance(need, list):
            declared.append(Column(name, "category", required=True, allowed=tuple(need)))
        else:
            declared.append(Column(name, "number", required=True))
    if "treatment_number" not in needed:
        declared.append(Column("treatment_number", "integer", minimum=1))
    if "treated_on" not in needed:
        declared.append(Column("treated_on", "date"))
    if "treatment_id" not in needed:
        declared.append(Column("treatment_id", "id"))
    # Columns regen computes (an episodes file has them) are kept as written; other columns
    # are the file's own, kept as parse_table keeps extra columns.
    names = {column.name for column in declared}
    declared += [Column(name, "id") for name in columns if name not in names
                 and (name in RESERVED_COLUMNS or name.startswith("baseline_"))]
    return Table("history", "lower", "a patient's earlier episodes", tuple(declared))


def _check_order(raw: RawTable, parsed: pd.DataFrame, problems: Problems) -> None:
    """Record rows whose ``upper`` is below their ``lower``, or both 0."""
    low = parsed["lower"].to_numpy(dtype="float64", na_value=np.nan)
    up = parsed["upper"].to_numpy(dtype="float64", na_value=np.nan)
    with np.errstate(invalid="ignore"):
        below = up < low
        zero = (low == 0) & (up == 0)
    problems.add_rows(raw, below, "upper", raw.frame["upper"],
                      lambda at: [f"upper is less than lower ({low[i]:g}) on the same row"
                                  for i in at],
                      "lower is the last day the effect was still seen, upper the first day it "
                      "was seen to be over (empty if it was still going at the last visit): "
                      "swap the two or correct them")
    problems.add_rows(raw, zero, "upper", raw.frame["upper"],
                      "lower and upper both 0: an effect over on the day of the treatment",
                      "upper is the first visit at which the effect was over; correct it, or "
                      "remove the row")


def patient_history(cohort, model, patient_id: str, *, outcome: str | None = None,
                    **options) -> pd.DataFrame:
    """One patient's earlier episodes from a cohort, for :func:`expected_duration`.

    Parameters
    ----------
    cohort : Cohort
        From :func:`regen.read_cohort`.
    model : FrailtyFit
    patient_id : str
        Matched exactly, as text.
    outcome : {"relief", "numbness"}, optional
        Default: the model's (``model.outcome``); needed when the model file does
        not say.
    **options
        Passed to :meth:`Cohort.episodes` (``threshold``, ``response_window``,
        ``confirm``): use those the model's episodes were built with.

    Returns
    -------
    DataFrame
        The patient's rows of ``cohort.episodes(outcome)``.

    Raises
    ------
    ValueError
        No outcome, or the patient is not in the cohort or has no episode of the
        outcome. The message names no other patient.
    ModelError
        The model was fitted without frailty.
    """
    check_learns_from_history(model)
    outcome = outcome or model.outcome
    if outcome is None:
        raise ValueError("the model file does not say which outcome it was fitted on: give "
                         "the outcome (--outcome relief or --outcome numbness)")
    if model.outcome is not None and outcome != model.outcome:
        raise ValueError(f"the model was fitted on {model.outcome}, not {outcome}")
    episodes = cohort.episodes(outcome, **options)
    key = model.frailty
    if key not in episodes.columns:
        raise ValueError(f"the cohort's episodes have no column {shorten(key)!r}, the model's "
                         "frailty (the patient id)")
    mine = (episodes[key].astype("string") == str(patient_id)).fillna(False).to_numpy(dtype=bool)
    if not mine.any():
        known = key in cohort.patients.columns and \
            (cohort.patients[key].astype("string") == str(patient_id)).fillna(False).any()
        if not known:
            raise ValueError(f"no patient {shorten(patient_id)!r} in the cohort: check the id "
                             "(matched exactly, as text, as in the patients table)")
        raise ValueError(f"patient {shorten(patient_id)!r} has no {outcome} episode in the cohort "
                         "(their treatments are in its exclusions, 'regen episodes PATH "
                         "--exclusions FILE'), so there is no history to learn from; leave out "
                         "--cohort and give the values as options for the prediction for a "
                         "typical patient")
    return episodes.loc[mine].reset_index(drop=True)


def one_patient(model, history) -> tuple[pd.DataFrame, str | None]:
    """The history checked and sorted oldest first, and the patient's id (None without)."""
    if not isinstance(history, pd.DataFrame):
        raise TypeError(f"history must be a DataFrame of earlier episodes, not "
                        f"{type(history).__name__}")
    key = model.frailty
    missing = [c for c in ("lower", "upper") if c not in history.columns]
    if missing:
        raise ValueError(f"history has no column {' or '.join(missing)}: it needs the patient's "
                         "earlier episodes (lower, upper in days, and the model's covariates)")
    if not len(history):
        raise ValueError("history has no episode: give the patient's earlier episodes, one a row")
    episodes = history.copy()
    patient = None
    if key in episodes.columns:
        ids = episodes[key].astype("string").str.strip()
        found = ids.dropna().unique()
        if len(found) > 1:
            raise ValueError(f"history holds the episodes of {_several(found)} in its column "
                             f"{key}: give one patient's")
        if len(found) and ids.isna().any():
            raise ValueError(f"history has rows without a {key} beside rows of "
                             f"{shorten(found[0])!r}: fill it in, or drop the column")
        patient = str(found[0]) if len(found) else None
        if patient is None:
            episodes = episodes.drop(columns=key)
        else:
            episodes[key] = patient
    low = pd.to_numeric(episodes["lower"], errors="coerce").to_numpy(dtype="float64")
    up = pd.to_numeric(episodes["upper"], errors="coerce").to_numpy(dtype="float64")
    check_intervals(low, up, np.ones(len(low)), labels(episodes), where="history row")
    episodes["lower"], episodes["upper"] = low, up
    for name in model_inputs(model):
        if name not in episodes.columns:
            raise ValueError(f"history has no column {name}: the model needs the {name} of each "
                             "earlier episode")
        blank = episodes[name].isna().to_numpy(dtype=bool)
        if blank.any():
            raise ValueError(f"history has no {name} on {int(blank.sum())} row(s) (first: "
                             f"{labels(episodes)[int(np.flatnonzero(blank)[0])]}): the model "
                             f"needs the {name} of each earlier episode")
    return episodes.iloc[oldest_first(episodes)].reset_index(drop=True), patient


def labels(episodes: pd.DataFrame) -> list[str]:
    """How a message names each row: its row in the file, its treatment, or its index."""
    if "source_row" in episodes.columns and "treatment_id" not in episodes.columns:
        return [f"row {row}" for row in episodes["source_row"]]
    if "treatment_id" in episodes.columns:
        return [f"treatment {shorten(t)!r}" for t in episodes["treatment_id"]]
    return [f"index {shorten(i)!r}" for i in episodes.index]


def oldest_first(episodes: pd.DataFrame) -> np.ndarray:
    """Positions of the episodes in time order: by treated_on, else by treatment_number (each
    only when every row has one), else as given."""
    for column in ("treated_on", "treatment_number"):
        if column in episodes.columns and episodes[column].notna().all():
            return np.argsort(episodes[column].to_numpy(), kind="stable")
    return np.arange(len(episodes))


