"""What :func:`regen.simulate.cohort` returns: the follow-up tables, the truth and the latent
events, how the tables are written as files that :func:`regen.read_cohort` reads, and the
episodes built from them directly (:meth:`SimulatedCohort.episodes`).

The simulated tables are valid by construction, so :meth:`SimulatedCohort.episodes` skips
reading and checking every row: it makes the linked tables :func:`regen.read_cohort` would
make of the written files (text as pandas ``string``, yes/no as ``boolean``, whole numbers
as ``Int64``, other numbers as ``float64``, dates as ``datetime64[ns]``; ``source_row`` the
row in a CSV file; ``visits.day`` from the dates, ``visits.patient_id``, ``treatments.age``
from ``birth_year``, ``treatment_number`` and ``retreated_day``; visits ordered by treatment
and day) and hands them to :func:`regen.episodes.build`, as :class:`regen.Cohort` does. What
the reading would refuse or warn about (a date after today, a visit beyond the follow-up
horizon, a table edited after the simulation...) raises :class:`ValueError` instead.
"""

from __future__ import annotations

import datetime as _dt
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from regen.defaults import DEFAULT_BASELINE_WINDOW_DAYS, DEFAULT_MAX_FOLLOW_UP_DAYS, RELIEF_CONFIRM
from regen.episodes import build, relief_options
from regen.tables import KNOWN_NERVES, PATIENTS, TREATMENTS, VISIT_SCORES, VISITS, Column, Table

__all__ = ["SimulatedCohort"]

_FORMATS = ("csv", "parquet", "xlsx")
_EXCEL_MAX_ROWS = 1_048_575  # one row is the header


@dataclass(frozen=True, repr=False, eq=False)
class SimulatedCohort:
    """A simulated cohort: the three follow-up tables, the truth and the latent events.

    Parameters
    ----------
    patients, treatments, visits : pandas.DataFrame
        The follow-up tables in the schema of :mod:`regen.tables` (dates as
        ``datetime64``, booleans as ``bool``; ``treatments`` has no ``age``).
    truth : dict
        Every parameter used, JSON-serialisable (``json.dumps(sim.truth)``).
    events : pandas.DataFrame
        One row per treatment: ``patient_id, treatment_id, nerve, side,
        distance_mm, age, diabetes, velocity_mm_per_day, recovery_day,
        responder, relief_end_day, baseline_pain, smoker, procedure,
        treatment_number, patient_effect``.

    Examples
    --------
    >>> from regen.simulate import cohort
    >>> sim = cohort(20, seed=1)
    >>> len(sim.events) == len(sim.treatments), sim.truth["velocity_mm_per_day"]
    (True, 1.4)
    """

    patients: pd.DataFrame
    treatments: pd.DataFrame
    visits: pd.DataFrame
    truth: dict[str, Any]
    events: pd.DataFrame

    def __repr__(self) -> str:
        return (
            f"SimulatedCohort(patients={len(self.patients)}, treatments={len(self.treatments)}, "
            f"visits={len(self.visits)}, seed={self.truth['seed']})"
        )

    def write(self, folder: str | os.PathLike[str], format: str = "csv", *,
              force: bool = False) -> Path:
        """Write the three tables as files that :func:`regen.read_cohort` reads.

        Parameters
        ----------
        folder : str or path-like
            Output folder, created if missing. Files regen wrote there before are
            replaced; any other file of the same name is refused
            (:class:`~regen.exceptions.OutputError`) unless ``force=True``. A table
            file of another format already in the folder (``visits.csv`` when writing
            Parquet) is refused whatever ``force`` says: the folder would then hold
            two files for one table.
        format : {"csv", "parquet", "xlsx"}
            ``csv`` and ``parquet`` write ``patients``, ``treatments`` and
            ``visits`` files; ``xlsx`` writes one workbook ``cohort.xlsx`` with
            three sheets. Dates are ISO ``YYYY-MM-DD`` text in every format;
            booleans are ``yes``/``no`` in CSV and native booleans otherwise.
        force : bool, default False
            Replace files of the same name that regen did not write.

        Returns
        -------
        pathlib.Path
            The folder (csv, parquet) or the workbook (xlsx) written.

        Examples
        --------
        >>> import tempfile
        >>> from regen.simulate import cohort
        >>> sim = cohort(5, seed=2)
        >>> with tempfile.TemporaryDirectory() as tmp:
        ...     sorted(p.name for p in sim.write(tmp).iterdir())
        ['.regen-manifest.json', 'patients.csv', 'treatments.csv', 'visits.csv']
        """
        if not isinstance(format, str) or format.lower() not in _FORMATS:
            raise ValueError(f"format must be one of {', '.join(_FORMATS)}; got {format!r}")
        if not isinstance(folder, str | os.PathLike):
            raise TypeError(f"folder must be a path, got {type(folder).__name__}")
        fmt = format.lower()
        tables = {
            "patients": _file_frame(self.patients, text_booleans=fmt == "csv"),
            "treatments": _file_frame(self.treatments, text_booleans=fmt == "csv"),
            "visits": _file_frame(self.visits, text_booleans=fmt == "csv"),
        }
        if fmt == "xlsx" and len(tables["visits"]) > _EXCEL_MAX_ROWS:
            raise ValueError(
                f"an Excel sheet holds at most {_EXCEL_MAX_ROWS:,} rows; the visits table has "
                f"{len(tables['visits']):,}. Write csv or parquet instead."
            )
        from regen._write import Outputs
        from regen.exceptions import OutputError
        from regen.io import input_files

        outputs = Outputs(force=force)
        out = outputs.folder(folder)
        if fmt == "xlsx":
            return outputs.write_workbook(tables, outputs.file(out / "cohort.xlsx"))
        paths = {name: out / f"{name}.{fmt}" for name in tables}
        others = [p for p in input_files(out) if p.name not in {q.name for q in paths.values()}]
        if others:
            raise OutputError(f"{out} already holds {', '.join(p.name for p in others)}; "
                              f"{fmt} files beside them would give a table two files and the "
                              "folder could not be read: choose another folder, or move them")
        outputs.files(paths.values())
        for name, frame in tables.items():
            outputs.write_table(frame, paths[name])
        return out

    def episodes(self, outcome: str = "numbness", *, threshold: float = 0.5,
                 response_window: tuple[int, int] = (1, 30), confirm: int = RELIEF_CONFIRM,
                 with_exclusions: bool = False):
        """One interval-censored episode per treatment, built from the simulated tables.

        The episodes :meth:`regen.Cohort.episodes` gives after ``sim.write(folder)`` and
        ``regen.read_cohort(folder)``, column for column, dtype for dtype and value for
        value, without the files and the row-by-row checks (about a tenth of the time):
        for studies simulated by the thousand. It works whatever ``time_columns`` the
        cohort was simulated with.

        Parameters
        ----------
        outcome : {"numbness", "relief"}, default "numbness"
            As :meth:`regen.Cohort.episodes`.
        threshold, response_window, confirm
            Relief only, as :meth:`regen.Cohort.episodes` (and checked as there).
        with_exclusions : bool, default False
            Also return the treatments without an episode, with reasons; their ``row``
            is the treatment's row in the CSV file :meth:`write` makes (the header is
            row 1).

        Returns
        -------
        episodes : pandas.DataFrame
            As :meth:`regen.Cohort.episodes`.
        exclusions : pandas.DataFrame
            Only with ``with_exclusions=True``.

        Raises
        ------
        ValueError
            For an unknown ``outcome`` or a bad relief setting; and when
            :func:`regen.read_cohort` would refuse the written tables or warn about them
            (a date after today or before 1900, a visit more than 60 days before or 1,825
            days after its treatment, a value out of its range, a table changed after the
            simulation): the message says why. Write the cohort and read it then.

        Examples
        --------
        >>> from regen.simulate import cohort
        >>> sim = cohort(50, seed=3)
        >>> ep = sim.episodes("numbness")
        >>> len(ep) <= len(sim.treatments), list(ep.columns[:7])
        (True, ['patient_id', 'treatment_id', 'nerve', 'side', 'lower', 'upper', 'status'])
        >>> relief, excluded = sim.episodes("relief", confirm=1, with_exclusions=True)
        >>> len(relief) + len(excluded) == len(sim.treatments)
        True
        """
        if outcome == "numbness":
            options = {}
        elif outcome == "relief":
            options = relief_options(threshold, response_window, confirm)
        else:
            raise ValueError(f"outcome must be 'numbness' or 'relief', not {outcome!r}")
        patients, treatments, visits = _linked_tables(self)
        tables = build(treatments, visits, patients, outcome, **options)
        return tables if with_exclusions else tables[0]


def _file_frame(frame: pd.DataFrame, *, text_booleans: bool) -> pd.DataFrame:
    """Dates to ISO text and (for CSV) booleans to yes/no, on a copy."""
    out = frame.copy()
    for name in out.columns:
        values = out[name]
        if pd.api.types.is_datetime64_any_dtype(values):
            out[name] = np.datetime_as_string(values.to_numpy().astype("datetime64[D]"))
        elif text_booleans and pd.api.types.is_bool_dtype(values):
            out[name] = np.where(values.to_numpy(), "yes", "no")
    return out


# ---------------------------------------------- the tables read_cohort would make --

_FIRST_DATE = np.datetime64("1900-01-01", "D")
_SPACES = re.compile(r"[\s\-]+")
#: The row of a table's first record in the CSV files :meth:`SimulatedCohort.write` makes.
_FIRST_ROW = 2


@dataclass(eq=False)
class _Table:
    """One table as reading parses it: its columns in order (declared ones first, absent
    ones empty, then ``source_row``; ids as object arrays until :func:`_link_ids`), and the
    declared columns the simulated table has."""

    name: str
    columns: dict[str, Any]
    present: set[str]
    n: int

    def frame(self) -> pd.DataFrame:
        return pd.DataFrame(self.columns, copy=False)   # new arrays, no one else holds


def _linked_tables(sim: SimulatedCohort) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Patients, treatments and visits as :func:`regen.read_cohort` links them, or a
    ValueError saying what it would refuse or warn about."""
    problems: list[str] = []
    today = np.datetime64(_dt.date.today(), "D")
    patients = _parsed(sim.patients, PATIENTS, problems, today)
    treatments = _parsed(sim.treatments, TREATMENTS, problems, today)
    visits = _parsed(sim.visits, VISITS, problems, today)
    _raise_if_any(problems)
    patient_row = _link_ids(patients, treatments, "patient_id", problems)
    treatment_row = _link_ids(treatments, visits, "treatment_id", problems)
    _raise_if_any(problems)
    _link_treatments(patients, treatments, patient_row, problems)
    visit_frame = _link_visits(visits, treatments, treatment_row, problems)
    _raise_if_any(problems)
    return patients.frame(), treatments.frame(), visit_frame


def _raise_if_any(problems: list[str]) -> None:
    if problems:
        raise ValueError(
            "SimulatedCohort.episodes() builds the episodes read_cohort would build only from "
            "tables it would read without a problem or a warning; here "
            + "; ".join(problems)
            + ". Write the cohort and read it instead: sim.write(folder), then "
            "regen.read_cohort(folder).episodes(...)")


def _parsed(frame: pd.DataFrame, table: Table, problems: list[str],
            today: np.datetime64) -> _Table:
    """A simulated table's declared columns in the dtypes reading gives them; what reading
    would refuse or warn about goes to ``problems``."""
    n = len(frame)
    extra = [str(name) for name in frame.columns if name not in table.names]
    if extra:
        problems.append(f"the {table.name} table has columns the simulator does not write "
                        f"({', '.join(extra)})")
    columns: dict[str, Any] = {}
    present = set()
    for column in table.columns:
        if column.name not in frame.columns:
            columns[column.name] = _empty(column.kind, n)
            continue
        present.add(column.name)
        if column.kind == "id":
            columns[column.name] = frame[column.name].to_numpy(dtype=object)
            continue
        values = columns[column.name] = _typed(frame[column.name], column.kind)
        where = f"{table.name}.{column.name}"
        if column.required and pd.isna(values).any():
            problems.append(f"{where} has missing values")
        if column.kind in ("number", "integer"):
            numbers = _floats(values)
            low, high = column.minimum, column.maximum
            if ((low is not None and ((numbers < low) if column.minimum_inclusive
                                      else (numbers <= low)).any())
                    or (high is not None and (numbers > high).any())):
                problems.append(f"{where} has values that are not {column.rule}")
        elif column.kind == "date":
            days = values.astype("datetime64[D]")
            if ((days < _FIRST_DATE) | (days > today)).any():
                problems.append(f"{where} has dates before 1900 or after today ({today})")
        elif column.kind != "boolean":
            _check_text(values, column, where, problems)
    columns["source_row"] = np.arange(_FIRST_ROW, n + _FIRST_ROW, dtype=np.int64)
    return _Table(table.name, columns, present, n)


def _typed(values: pd.Series, kind: str) -> Any:
    """A simulated column as a new array (no memory shared with the simulated table) of the
    dtype reading gives it."""
    plain = values.dtype.kind in "biu"   # numpy booleans and whole numbers: nothing missing
    if kind == "boolean":
        return (pd.arrays.BooleanArray(values.to_numpy(dtype=bool), np.zeros(len(values), bool))
                if plain else pd.array(values.to_numpy(), dtype="boolean"))
    if kind == "integer":
        return (pd.arrays.IntegerArray(values.to_numpy(dtype=np.int64, copy=True),
                                       np.zeros(len(values), bool))
                if plain else pd.array(values.to_numpy(), dtype="Int64"))
    if kind == "number":
        return (values.to_numpy(dtype="float64", copy=True) if values.dtype.kind in "biuf"
                else values.to_numpy(dtype="float64", na_value=np.nan))
    if kind == "date":
        return values.to_numpy().astype("datetime64[D]").astype("datetime64[ns]")
    return pd.array(values.to_numpy(dtype=object), dtype="string")


def _floats(values: Any) -> np.ndarray:
    """Numbers as float64, NaN where missing."""
    if isinstance(values, pd.api.extensions.ExtensionArray):
        return values.to_numpy(dtype="float64", na_value=np.nan)
    return np.asarray(values, dtype="float64")


def _empty(kind: str, n: int) -> Any:
    """A declared column the table lacks, as reading fills it."""
    if kind == "number":
        return np.full(n, np.nan)
    if kind == "date":
        return np.full(n, np.datetime64("NaT"), dtype="datetime64[ns]")
    if kind in ("boolean", "integer"):
        empty = pd.arrays.BooleanArray if kind == "boolean" else pd.arrays.IntegerArray
        return empty(np.zeros(n, dtype=bool if kind == "boolean" else np.int64),
                     np.ones(n, dtype=bool))
    return pd.array([None], dtype="string").take(np.zeros(n, dtype=np.intp))


def _check_text(values: Any, column: Column, where: str, problems: list[str]) -> None:
    """Text that reading would change (a nerve in capitals) or refuse (a sex not F/M/...)."""
    distinct = [value for value in pd.unique(values.to_numpy(dtype=object))
                if isinstance(value, str)]
    if column.kind == "category":
        wrong = [value for value in distinct if value not in column.allowed]
    else:   # regen.validation's normalisation: lower snake case
        wrong = [value for value in distinct
                 if _SPACES.sub("_", value.strip().lower()) != value]
    if wrong:
        problems.append(f"{where} has values reading would change or refuse ({wrong[0]!r})")


def _link_ids(keys: _Table, refs: _Table, key: str, problems: list[str]) -> np.ndarray:
    """The row of ``keys`` each row of ``refs`` names in ``key`` (-1: none); the two ``key``
    columns become text. Hashes the runs of ``refs`` only (visits come by treatment)."""
    own, named = keys.columns[key], refs.columns[key]
    start = np.r_[True, named[1:] != named[:-1]] if refs.n else np.zeros(0, dtype=bool)
    codes = pd.factorize(np.concatenate([own, named[start]]))[0]
    if (codes[:keys.n] != np.arange(keys.n)).any():
        problems.append(f"{keys.name}.{key} is missing or not unique")
        return np.zeros(refs.n, dtype=np.int64)
    if any(value != value.strip() for value in own):
        problems.append(f"{keys.name}.{key} has ids with spaces around them")
    at = codes[keys.n:]
    row = np.repeat(np.where(at < keys.n, at, -1), np.diff(np.r_[np.flatnonzero(start), refs.n]))
    if (row < 0).any():
        problems.append(f"some of {refs.name}' {key} are not in the {keys.name} table")
    text = keys.columns[key] = pd.array(own, dtype="string")
    refs.columns[key] = text.take(np.maximum(row, 0))
    return row


def _link_treatments(patients: _Table, t: _Table, patient_row: np.ndarray,
                     problems: list[str]) -> None:
    """Add ``age`` (from ``birth_year`` where not given), ``treatment_number`` and
    ``retreated_day`` to the treatments, as :class:`regen.linking.TreatmentLinks` does."""
    columns = t.columns
    if (np.bincount(patient_row, minlength=patients.n) == 0).any():
        problems.append("some patients have no treatment")
    nerve, nerves = pd.factorize(columns["nerve"])
    unknown = set(nerves) - set(KNOWN_NERVES)
    if unknown:
        problems.append(f"nerves regen does not know ({', '.join(sorted(unknown))})")
    if pd.isna(columns["side"]).any() or np.isnat(columns["treated_on"]).any():
        problems.append("some treatments have no side or no treated_on")
        return
    if pd.isna(columns["procedure"]).any():
        columns["procedure"] = columns["procedure"].fillna("cryo")
    day = columns["treated_on"].astype("datetime64[D]").astype(np.int64)
    birth = _floats(patients.columns["birth_year"])[patient_row]
    age = (columns["treated_on"].astype("datetime64[Y]").astype(np.int64) + 1970) - birth
    if "age" in t.present:
        age = np.where(np.isnan(columns["age"]), age, columns["age"])
    if ((age < 0) | (age > 120)).any():
        problems.append("some ages at treatment (treated_on year - birth_year) are outside 0-120")
    columns["age"] = age
    # Number the treatments of each patient, nerve and side by date; days to the next one.
    side = pd.factorize(columns["side"])[0]
    order = np.lexsort((day, side, nerve, patient_row))
    key = np.stack((patient_row, nerve, side), axis=1)[order]
    same_key = np.r_[(key[1:] == key[:-1]).all(axis=1), False]   # as the next row's
    step = np.r_[day[order][1:], 0] - day[order]
    if (same_key & (step == 0)).any():
        problems.append("some treatments repeat a patient, nerve, side and treated_on")
    first = np.maximum.accumulate(np.where(np.r_[True, same_key[:-1]], 0, np.arange(t.n)))
    number, retreated, retreat = (np.empty(t.n, dtype=dtype) for dtype in (np.int64, np.int64,
                                                                            bool))
    number[order], retreated[order], retreat[order] = np.arange(t.n) - first + 1, step, same_key
    columns["treatment_number"] = pd.arrays.IntegerArray(number, np.zeros(t.n, dtype=bool))
    columns["retreated_day"] = pd.arrays.IntegerArray(np.where(retreat, retreated, 0), ~retreat)


def _link_visits(v: _Table, t: _Table, row: np.ndarray, problems: list[str]) -> pd.DataFrame:
    """The visits with ``day`` (from the dates where not given) and their treatment's
    ``patient_id``, ordered by treatment and day, as :class:`regen.linking.Linker` makes
    them."""
    columns = v.columns
    on = t.columns["treated_on"].astype("datetime64[D]").astype(np.int64)[row]
    dated = columns["visit_date"].astype("datetime64[D]").astype(np.int64) - on
    dated = np.where(np.isnat(columns["visit_date"]), np.nan, dated)
    day = _floats(columns["day"])
    if "day" in v.present and "visit_date" in v.present and (
            (day != dated) & ~np.isnan(day) & ~np.isnan(dated)).any():
        problems.append("some visits' day and visit_date disagree")
    day = np.where(np.isnan(day), dated, day)
    if np.isnan(day).any():
        problems.append("some visits have neither day nor visit_date")
    if ((day < -DEFAULT_BASELINE_WINDOW_DAYS) | (day > DEFAULT_MAX_FOLLOW_UP_DAYS)).any():
        problems.append(f"some visits are more than {DEFAULT_BASELINE_WINDOW_DAYS} days before "
                        f"or {DEFAULT_MAX_FOLLOW_UP_DAYS} days after their treatment")
    retreated = _floats(t.columns["retreated_day"])
    if (day >= np.where(np.isnan(retreated), np.inf, retreated)[row]).any():
        problems.append("some visits fall on or after a retreatment of the same nerve and side")
    patient = t.columns["patient_id"].take(row)
    if "patient_id" in v.present and (columns["patient_id"] != patient.to_numpy(object)).any():
        problems.append("some visits' patient_id is not their treatment's")
    if np.logical_and.reduce([pd.isna(columns[name]) for name in VISIT_SCORES]).any():
        problems.append(f"some visits record none of {', '.join(VISIT_SCORES)}")
    order = np.lexsort((columns["source_row"], day, row))
    same = (np.diff(row[order]) == 0) & (np.diff(day[order]) == 0)
    if same.any():
        problems.append("some treatments have two visits on one day")
    if problems:
        return pd.DataFrame()
    columns["day"] = pd.arrays.IntegerArray(day.astype(np.int64), np.zeros(v.n, dtype=bool))
    columns["patient_id"] = patient
    visits = v.frame()
    if (order == np.arange(v.n)).all():   # as simulated: by treatment and day
        return visits
    return visits.iloc[order].reset_index(drop=True)
