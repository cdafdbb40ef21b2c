"""The cohort: three validated, linked follow-up tables and their ledger of exclusions.

:func:`read_cohort` reads the files (:mod:`regen.io`), parses and checks every
column (:mod:`regen.validation`), then checks the tables against each other
(:mod:`regen.linking`):
unique ids, every treatment's patient and every visit's treatment known,
days computed from dates and checked against given days, visits within the
baseline window and the follow-up horizon, duplicate visits that agree
(excluded, with a reason) or contradict (a problem). It raises one
:class:`~regen.exceptions.CohortValidationError` listing every problem, or
returns an immutable :class:`Cohort`.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd

from regen import baseline as _baseline
from regen import episodes as _episodes
from regen._util import isin
from regen.defaults import DEFAULT_BASELINE_WINDOW_DAYS, DEFAULT_MAX_FOLLOW_UP_DAYS
from regen.io import ReadLimits, SourceFile, read_tables
from regen.ledger import Notes, Problems, empty_exclusions
from regen.linking import Linker, python_text
from regen.tables import TABLES
from regen.validation import parse_table

__all__ = ["Cohort", "read_cohort"]



def read_cohort(
    path: str | Path,
    *,
    baseline_window_days: int = DEFAULT_BASELINE_WINDOW_DAYS,
    max_follow_up_days: int = DEFAULT_MAX_FOLLOW_UP_DAYS,
    today: dt.date | None = None,
    limits: ReadLimits | None = None,
    strict: bool = False,
) -> Cohort:
    """Read and validate a cohort's follow-up tables.

    Parameters
    ----------
    path : str or Path
        A folder with ``patients``, ``treatments`` and ``visits`` as ``.csv``
        or ``.parquet`` files, or one ``.xlsx`` workbook with sheets of those
        names. CSV files may be ``,``- or ``;``-separated (``;`` files may use
        decimal commas), with or without a UTF-8 byte-order mark.
    baseline_window_days : int, default 60
        A visit more than this many days before its treatment is an error
        (baseline visits lie within the window).
    max_follow_up_days : int, default 1825
        A visit more than this many days after its treatment is an error
        (usually a typo in a date).
    today : date, optional
        Dates after this day are errors; default the current date.
    limits : ReadLimits, optional
        How much is read before a file is refused: the files' size, rows and
        columns per table, one cell's text, and the cells and unpacked bytes of
        the three tables together.
        Default ``ReadLimits()``, which fits a large practice; each limit is
        checked before the data it bounds are loaded.
    strict : bool, default False
        Refuse every value outside its column's range. By default a value of a
        descriptive covariate that no model uses unless asked (``bmi``) outside
        its range is set missing with a warning instead, so that one typo does not
        stop the whole cohort.

    Returns
    -------
    Cohort

    Raises
    ------
    CohortValidationError
        Listing every problem (file, row, column, value, rule, fix); its
        ``problems`` attribute holds them as a DataFrame. A file beyond
        ``limits`` is one such problem, which says how to raise the limit.
    TypeError
        If ``limits`` is not a :class:`~regen.io.ReadLimits`.

    Warns
    -----
    DataWarning
        For usable but suspicious data (unknown nerve names, ids with spaces
        around them, duplicate visits that agree); also kept in
        :attr:`Cohort.warnings` for the report.

    Examples
    --------
    >>> import regen
    >>> cohort = regen.read_cohort("data/example")  # doctest: +SKIP
    >>> cohort.flow()  # doctest: +SKIP
    """
    for name, value in (("baseline_window_days", baseline_window_days),
                        ("max_follow_up_days", max_follow_up_days)):
        if isinstance(value, bool) or not isinstance(value, int | np.integer):
            raise TypeError(f"{name} must be a whole number of days, not {value!r}")
        if value < 0:
            raise ValueError(f"{name} must be ≥ 0, not {value}")
    if limits is not None and not isinstance(limits, ReadLimits):
        raise TypeError(f"limits must be a regen.io.ReadLimits, not {type(limits).__name__}")
    problems, notes = Problems(), Notes()
    raws, sources = read_tables(path, problems, notes, limits)
    parsed: dict[str, pd.DataFrame] = {}
    present: dict[str, set[str]] = {}
    for name, raw in raws.items():
        if raw.frame.empty:
            problems.add_table(raw.file, name, "table has no rows",
                               f"the {name} table needs at least one row below its header")
            continue
        parsed[name], present[name] = parse_table(raw, TABLES[name], problems, notes, today,
                                                  strict=bool(strict))
        raw.frame = raw.frame.iloc[:0]   # its values are parsed: only its columns are needed
    exclusions = empty_exclusions()
    if len(parsed) == len(TABLES):
        linker = Linker(raws, parsed, present, problems, notes, baseline_window_days,
                         max_follow_up_days)
        patients, treatments, visits, exclusions = linker.link()
    notes.emit()  # also when raising: a warning may explain a problem
    problems.raise_if_any(f"Cohort {Path(path).name or path}")
    patients, treatments, visits, exclusions = (python_text(frame) for frame in (
        patients, treatments, visits, exclusions))
    return Cohort(
        patients=patients, treatments=treatments, visits=visits, exclusions=exclusions,
        warnings=tuple(notes.messages), sources=tuple(sources),
        settings={"baseline_window_days": baseline_window_days,
                  "max_follow_up_days": max_follow_up_days},
    )


Outcome = Literal["numbness", "relief"]


class Cohort:
    """Validated follow-up tables of one practice, ready for analysis.

    A cohort is immutable: its tables are returned as new DataFrames that can
    be changed freely without changing the cohort. Build one with
    :func:`read_cohort`.

    Attributes
    ----------
    patients, treatments, visits : DataFrame
        The normalised tables: types fixed, ids stripped, ``visits.day``
        computed from dates where needed, ``treatments.age`` derived from
        ``birth_year`` where needed, ``treatments.treatment_number`` (1 for
        the first treatment of a patient, nerve and side) and
        ``treatments.retreated_day`` (days until the next treatment of the
        same patient, nerve and side). ``source_row`` is each row's row in its
        file.
    exclusions : DataFrame
        Every row that is not analysed, with ``table, row, id, reason,
        outcome``: duplicate visits, and treatments without an episode for the
        numbness or relief outcome (default settings).
    warnings : tuple of str
        The data warnings raised while reading, for the report.
    sources : tuple of SourceFile
        The files read, with their SHA-256.
    """

    __slots__ = ("_patients", "_treatments", "_visits", "_exclusions", "_warnings", "_sources",
                 "_settings", "_cache")

    def __init__(self, *, patients: pd.DataFrame, treatments: pd.DataFrame, visits: pd.DataFrame,
                 exclusions: pd.DataFrame, warnings: tuple[str, ...] = (),
                 sources: tuple[SourceFile, ...] = (), settings: dict | None = None) -> None:
        object.__setattr__(self, "_patients", patients)
        object.__setattr__(self, "_treatments", treatments)
        object.__setattr__(self, "_visits", visits)
        object.__setattr__(self, "_exclusions", exclusions)
        object.__setattr__(self, "_warnings", tuple(warnings))
        object.__setattr__(self, "_sources", tuple(sources))
        object.__setattr__(self, "_settings", dict(settings or {}))
        object.__setattr__(self, "_cache", {})

    def __setattr__(self, name, value):
        raise AttributeError("a Cohort cannot be changed; read the files again with read_cohort()")

    @property
    def patients(self) -> pd.DataFrame:
        return _detached(self._patients)

    @property
    def treatments(self) -> pd.DataFrame:
        return _detached(self._treatments)

    @property
    def visits(self) -> pd.DataFrame:
        return _detached(self._visits)

    @property
    def warnings(self) -> tuple[str, ...]:
        return self._warnings

    @property
    def sources(self) -> tuple[SourceFile, ...]:
        return self._sources

    @property
    def exclusions(self) -> pd.DataFrame:
        parts = [self._exclusions]
        for outcome in ("numbness", "relief"):
            parts.append(self._episode_tables(outcome)[1])
        return pd.concat(parts, ignore_index=True)

    def _episode_tables(self, outcome: str, **options) -> tuple[pd.DataFrame, pd.DataFrame]:
        key = (outcome, tuple(sorted(options.items())))
        if key not in self._cache:
            after = self._exclusions["reason"].eq("visit_after_retreatment")
            self._cache[key] = _episodes.build(
                self._treatments, self._visits, self._patients, outcome,
                set_aside=self._exclusions.loc[after.fillna(False).astype(bool), "id"], **options)
        episodes, exclusions = self._cache[key]
        return _detached(episodes), _detached(exclusions)

    def episodes(self, outcome: Outcome = "numbness", *, threshold: float = 0.5,
                 response_window: tuple[int, int] = (1, 30),
                 confirm: int = _episodes.RELIEF_CONFIRM, with_exclusions: bool = False):
        """One interval-censored episode per treatment.

        Parameters
        ----------
        outcome : {"numbness", "relief"}
            ``numbness``: recovery is the first visit without numbness after
            numbness was seen. ``relief``: relief begins at a relieved visit in
            the response window and ends at the first of ``confirm`` consecutive
            visits whose pain is no longer relieved.
        threshold : float, default 0.5
            Relief only: relieved means pain ≤ (1 − threshold) × baseline pain
            (baseline: the last visit with day ≤ 0).
        response_window : (int, int), default (1, 30)
            Relief only: days in which a responder is relieved at some visit.
        confirm : int, default 3
            Relief only: how many consecutive unrelieved visits end relief (a
            whole number ≥ 1). The event lies between the last relieved visit
            and the *first* visit of that run; a relieved visit inside a shorter
            run breaks it, and relief goes on. The last visit of the follow-up
            counts alone: unrelieved visits that close the follow-up end relief
            at the first of them, with the reason ``relief_ended_unconfirmed``.
            ``confirm=1`` ends relief at the first unrelieved visit, so one noisy
            pain score can end an episode too early; docs/episodes.md gives the
            simulation behind the default.
        with_exclusions : bool, default False
            Also return the treatments without an episode, with reasons.

        Returns
        -------
        episodes : DataFrame
            ``patient_id, treatment_id, nerve, side, lower, upper, status,
            reason`` (the event happened in ``(lower, upper]`` days after the
            treatment; ``upper`` is ``inf`` when right-censored, ``lower`` is 0
            when left-censored), ``n_assessments``, ``last_visit_day``, relief:
            ``baseline_pain``, ``relief_onset_day``; then covariates (age, sex,
            diabetes, ...). Relief's reasons: ``relief_ended``,
            ``relief_ended_unconfirmed``, ``relieved_at_last_visit``,
            ``censored_at_retreatment``.
        exclusions : DataFrame
            Only with ``with_exclusions=True``: ``table, row, id, reason, detail, outcome``.

        Examples
        --------
        >>> ep = cohort.episodes("relief", threshold=0.5)  # doctest: +SKIP
        >>> ep.groupby("nerve")["status"].value_counts()  # doctest: +SKIP
        >>> plain = cohort.episodes("relief", confirm=1)  # doctest: +SKIP
        """
        if outcome == "numbness":
            tables = self._episode_tables("numbness")
        elif outcome == "relief":
            tables = self._episode_tables("relief", **_episodes.relief_options(
                threshold, response_window, confirm))
        else:
            raise ValueError(f"outcome must be 'numbness' or 'relief', not {outcome!r}")
        return tables if with_exclusions else tables[0]

    def measurements(self, score: str = "pain") -> pd.DataFrame:
        """The long visit table of one score, for longitudinal models.

        Parameters
        ----------
        score : str, default "pain"
            A visits column: ``pain``, ``numbness``, ``headache_days``, ``numb``
            or any numeric column of the visits file.

        Returns
        -------
        DataFrame
            One row per visit with the score recorded (baseline visits
            included): ``patient_id, treatment_id, nerve, side, day, <score>,
            baseline_<score>`` (the value at the last visit with day ≤ 0) and
            the covariates. Visits on or after a retreatment of the same
            nerve and side are left out, as in :meth:`episodes`.

        Examples
        --------
        >>> pain = cohort.measurements("pain")  # doctest: +SKIP
        >>> pain.loc[pain["day"] > 0].groupby("nerve")["pain"].mean()  # doctest: +SKIP
        """
        return _episodes.measurements(self._treatments, self._visits, self._patients, score)

    def flow(self, *, threshold: float = 0.5,
             response_window: tuple[int, int] = (1, 30)) -> pd.DataFrame:
        """Counts at each step from the files to the analysable episodes.

        Returns
        -------
        DataFrame
            ``step, outcome, reason, count``: patients, treatments, visits,
            visits excluded (by reason), then for each outcome the treatments
            without an episode (by reason) and the episodes (by status);
            for relief also the treatments assessed for response and the
            responders.

        Examples
        --------
        >>> flow = cohort.flow()  # doctest: +SKIP
        >>> flow.query("step == 'treatments_excluded'")  # doctest: +SKIP
        """
        options = _episodes.relief_options(threshold, response_window)
        rows = [("patients", "", "", len(self._patients)),
                ("patients_with_treatment", "", "",
                 int(isin(self._patients["patient_id"], self._treatments["patient_id"]).sum())),
                ("treatments", "", "", len(self._treatments)),
                ("visits", "", "", len(self._visits) + len(self._exclusions))]
        for reason, n in _reason_counts(self._exclusions).items():
            rows.append(("visits_excluded", "", reason, n))
        rows.append(("visits_analysed", "", "", len(self._visits)))
        for outcome in ("numbness", "relief"):
            episodes, excluded = self._episode_tables(outcome,
                                                      **(options if outcome == "relief" else {}))
            if outcome == "relief":
                no_response = int((excluded["reason"] == "no_response").sum())
                assessed = len(episodes) + no_response
                rows.append(("assessed_for_response", outcome, "", assessed))
                rows.append(("responders", outcome, "", len(episodes)))
            for reason, n in _reason_counts(excluded).items():
                rows.append(("treatments_excluded", outcome, reason, n))
            for status, n in episodes["status"].value_counts().sort_index().items():
                rows.append(("episodes", outcome, status, int(n)))
            rows.append(("episodes_total", outcome, "", len(episodes)))
        return pd.DataFrame(rows, columns=["step", "outcome", "reason", "count"])

    def table_one(self, by: str | None = None, *, outcome: Outcome = "relief",
                  min_count: int = _baseline.MIN_COUNT) -> pd.DataFrame:
        """Table 1: baseline characteristics with missing counts, overall and by group.

        Patient-level rows (age at the first treatment, sex, diabetes, smoker, BMI) count
        each patient once per column; treatment-level rows (nerve, side, procedure,
        retreatment, distance, baseline pain, follow-up) count treated nerves; the
        ``counted`` column says which. Characteristics nobody has a value for are left
        out. Follow-up is given as the median [IQR] of the days to the last visit and as
        the median by the reverse Kaplan–Meier method over the episodes of ``outcome``
        (:func:`regen.baseline.reverse_km`): an episode still going on at its last visit
        counts as a follow-up event there, one whose event was seen is censored there.

        No p-values: a baseline table describes the groups; whether a difference matters
        is a question of its size (which the table shows, and the models adjust for), not
        of a test, whose p-value also grows with the groups' size (CONSORT, STROBE).

        Parameters
        ----------
        by : str, optional
            A column of the patients or treatments table to split by (``"nerve"``,
            ``"diabetes"``, ``"procedure"``, ...): one column per group, then
            ``Overall``. Booleans are shown as yes/no, missing values as a group
            ``missing``.
        outcome : {"relief", "numbness"}, default "relief"
            Whose episodes the reverse Kaplan–Meier follow-up describes (default settings
            of :meth:`episodes`).
        min_count : int, default 5
            Small cells, as the practice report treats small groups: a group with fewer
            patients is not shown on its own (small groups are pooled, and left out if
            still too small, with ``Overall`` counting only the groups shown); a count
            from 1 to ``min_count`` − 1 is shown as ``<5``, and another count of the same
            sum is suppressed too wherever subtraction would reveal it; statistics of
            fewer values are not shown; rare free-text levels are pooled as "other".
            ``min_count=1`` shows every count (not for publication).

        Returns
        -------
        DataFrame
            ``variable, level, statistic, counted``, one column per group and
            ``Overall``; each cell a formatted text (``"12 (40.0%)"``, ``"52.3 (11.8)"``,
            ``"51.0 [44.0, 60.0]"``, ``"<5"``). ``attrs["notes"]`` holds the notes a
            published table needs. Write it with :func:`regen.baseline.write_table_one`
            (HTML, CSV, xlsx: escaped and formula-safe).

        Raises
        ------
        ValueError
            If ``by`` is not a column of categories, or fewer than ``min_count`` patients
            could be shown.

        Examples
        --------
        >>> table = cohort.table_one(by="diabetes")  # doctest: +SKIP
        >>> table.query("variable == 'age'")  # doctest: +SKIP
        >>> regen.baseline.write_table_one(table, "table1.html")  # doctest: +SKIP
        """
        return _baseline.table_one(self._patients, self._treatments, self._visits,
                                   self.episodes(outcome), by=by, outcome=outcome,
                                   min_count=min_count)

    def summary(self) -> pd.DataFrame:
        """Counts by nerve: patients, treatments, retreatments, visits, follow-up, distance.

        Returns
        -------
        DataFrame
            Indexed by nerve, with ``patients, treatments, retreatments,
            bilateral_procedures, visits, median_follow_up_days,
            median_distance_mm, numbness_episodes, relief_episodes``.

        Examples
        --------
        >>> cohort.summary()[["treatments", "median_follow_up_days"]]  # doctest: +SKIP
        """
        t, v = self._treatments, self._visits
        follow_up = v.groupby("treatment_id")["day"].max()
        visits = v.groupby("treatment_id").size()
        t = t.assign(follow_up=t["treatment_id"].map(follow_up).astype("float64"),
                     visits=t["treatment_id"].map(visits).fillna(0).astype(int))
        sides = t.assign(left=t["side"] == "left", right=t["side"] == "right")
        procedures = sides.groupby(["nerve", "patient_id", "treated_on"])[["left", "right"]].any()
        bilateral = (procedures["left"] & procedures["right"]).groupby(level="nerve").sum()
        by = t.groupby("nerve")
        summary = pd.DataFrame({
            "patients": by["patient_id"].nunique(),
            "treatments": by.size(),
            "retreatments": (t["treatment_number"] > 1).fillna(False).groupby(t["nerve"]).sum(),
            "bilateral_procedures": bilateral,
            "visits": by["visits"].sum(),
            "median_follow_up_days": by["follow_up"].median(),
            "median_distance_mm": by["distance_mm"].median(),
        })
        for outcome in ("numbness", "relief"):
            counts = self._episode_tables(outcome)[0].groupby("nerve").size()
            summary[f"{outcome}_episodes"] = counts.reindex(summary.index).fillna(0).astype(int)
        return summary

    def __repr__(self) -> str:
        return (f"<Cohort: {len(self._patients)} patients, {len(self._treatments)} treatments, "
                f"{len(self._visits)} visits, {len(self._warnings)} warning(s)>")


def _detached(frame: pd.DataFrame) -> pd.DataFrame:
    """A copy the caller may change without changing the cohort.

    Under copy-on-write (pandas ≥ 3, or the option switched on) a shallow copy
    is enough and costs nothing; otherwise the data are copied.
    """
    cow = int(pd.__version__.split(".")[0]) >= 3 or pd.get_option("mode.copy_on_write") is True
    return frame.copy(deep=not cow)


def _reason_counts(exclusions: pd.DataFrame) -> pd.Series:
    return exclusions["reason"].astype("string").value_counts().sort_index()
