"""Checks across the three tables: ids, references, days, duplicates, retreatments.

:class:`Linker` takes the parsed tables (:mod:`regen.validation`) and checks
them against each other, adding to the same problem ledger and notes: unique
ids, known references, one meaning per column name, days computed from dates
and checked against given days, the baseline window and follow-up horizon,
duplicate visits that agree (set aside with a reason) or contradict (a
problem), same-day treatments, and retreatments (a later treatment of the same
patient, nerve and side), whose later visits under the earlier treatment are
set aside with a reason. The ids are hashed once; the rest is integer indexing.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from regen._scan import shorten
from regen._util import distinct_rows, isin
from regen.episodes import row_of
from regen.ledger import Notes, Problems, empty_exclusions, exclusions
from regen.tables import KNOWN_NERVES, PATIENTS, TABLES, TREATMENTS, VISIT_SCORES
from regen.validation import missing_column_fix

__all__ = ["IdLinks", "Linker", "TreatmentLinks", "VisitLinks", "python_text"]

_SHOWN_COLUMNS = 3   # columns a contradicting visit lists (then how many more)
_NAT = np.iinfo(np.int64).min   # NaT as an integer


def _shown(value: object) -> str:
    """A parsed value as the user wrote it: 5 not 5.0, yes/no not True/False; long text
    shortened (:func:`regen._scan.shorten`)."""
    if pd.isna(value):
        return "(empty)"
    if isinstance(value, bool | np.bool_):
        return "yes" if value else "no"
    if isinstance(value, float | np.floating):
        return f"{value:g}"
    return shorten(value)


def _joined(*parts: str | np.ndarray | pd.Series) -> pd.arrays.ArrowStringArray:
    """Texts and columns of whole numbers joined row by row, in Arrow: a reason for each of
    millions of rows without a Python string each."""
    columns = [part if isinstance(part, str)
               else pa.array(np.asarray(part, dtype=np.int64)).cast(pa.string()) for part in parts]
    return pd.arrays.ArrowStringArray(pc.binary_join_element_wise(*columns, ""))


def _among(rows: pd.Series, flagged: np.ndarray) -> np.ndarray:
    """Which of ``rows`` (file rows) are ``flagged``: none, at once, when none is."""
    return isin(rows, flagged) if len(flagged) else np.zeros(len(rows), dtype=bool)


@dataclass
class _Context:
    """What every check across the tables reads and adds to."""

    raws: dict
    patients: pd.DataFrame
    treatments: pd.DataFrame
    visits: pd.DataFrame
    present: dict            # the columns each file has
    problems: Problems
    notes: Notes
    window: int              # days a visit may come before its treatment
    horizon: int             # days a visit may come after it
    treatment_row: np.ndarray  # each visit's treatment as a row of treatments (-1: unknown)
    patient_row: np.ndarray    # each treatment's patient as a row of patients (-1: unknown;
                               # no patient_id: the first patient without one)


class _Links:
    """A group of checks across the tables, on the shared :class:`_Context`."""

    def __init__(self, context: _Context) -> None:
        for field in fields(context):
            setattr(self, field.name, getattr(context, field.name))


class IdLinks(_Links):
    """Ids: unique keys, ids that differ only in case, references to unknown ids, a visit's
    patient that is not its treatment's, one meaning per column name."""

    def check(self) -> None:
        self._distinct: dict[str, pa.Array] = {}   # each table's ids, once each
        self._unique("patients", PATIENTS.key)
        self._unique("treatments", TREATMENTS.key)
        self._case_variants("patients", PATIENTS.key)
        self._case_variants("treatments", TREATMENTS.key)
        # Without a key column every reference would be an orphan: that column's own
        # problem says all there is to say.
        if "patient_id" in self.present["patients"]:
            self._orphans("treatments", "patient_id",
                          self.patient_row,   # a treatment without an id is no orphan
                          "patients")
        if "treatment_id" in self.present["treatments"]:
            self._orphans("visits", "treatment_id", self.treatment_row, "treatments")
            self._visit_patients()
        self._clashing_columns()

    def _unique(self, name: str, key: str) -> None:
        frame, raw = getattr(self, name), self.raws[name]
        ids = frame[key]
        text = pa.array(ids.array)   # the ids are text in Arrow: no copy
        self._distinct[name] = distinct = pc.unique(text)
        if len(distinct) - distinct.null_count == len(text) - text.null_count:
            return   # each id once
        repeated = ids.duplicated(keep="first").to_numpy(dtype=bool) & ids.notna().to_numpy()
        if repeated.any():
            first_row = pd.Series(raw.rows).groupby(ids.to_numpy()).transform("min").to_numpy()
            self.problems.add_rows(raw, repeated, key, ids,
                                   lambda at: [f"duplicate {key} (first on row {row})"
                                               for row in first_row[at]],
                                   f"give every row of {raw.name} its own {key}, or remove the copy")

    def _case_variants(self, name: str, key: str) -> None:
        """Ids that differ only in case (HX0001, hx0001) are different ids: say so once."""
        frame, raw = getattr(self, name), self.raws[name]
        distinct = self._distinct[name]
        if len(pc.unique(pc.utf8_lower(distinct))) == len(distinct):
            return   # no two ids become one in lower case
        ids = frame[key].dropna().drop_duplicates()
        folded = ids.str.lower()
        alike = folded.duplicated(keep=False).to_numpy(dtype=bool)
        if not alike.any():
            return
        first = folded[alike].iloc[0]
        pair = ids[alike & (folded == first).to_numpy(dtype=bool)].iloc[:2]
        rows = raw.rows[pair.index.to_numpy()]
        groups = folded[alike].nunique()
        noun = name[:-1]
        self.notes.add(f"{raw.file}: {groups} {key}(s) are written in two ways that differ only in "
                       f"case (first: {shorten(pair.iloc[0])!r} on row {rows[0]} and "
                       f"{shorten(pair.iloc[1])!r} on "
                       f"row {rows[1]}); regen takes them for different {name}. If they are one "
                       f"{noun}, write its id the same way everywhere.")

    def _orphans(self, name: str, column: str, row: np.ndarray, other: str) -> None:
        frame, raw = getattr(self, name), self.raws[name]
        orphan = (row < 0) & frame[column].notna().to_numpy(dtype=bool)
        fix = f"correct the id, or add the missing {other[:-1]} to {self.raws[other].file}"
        if orphan.any():
            # Ids typed as numbers lose their leading zeros in a spreadsheet (00017 -> 17).
            known = getattr(self, other)[column].dropna().str.lstrip("0")
            unpadded = frame.loc[orphan, column].str.lstrip("0")
            if isin(unpadded, known).mean() > 0.5:
                fix = (f"the ids match {self.raws[other].file} once leading zeros are removed: "
                       "a spreadsheet probably dropped them; format the id column as text and "
                       "export again")
            elif isin(frame.loc[orphan, column].str.lower(),
                      getattr(self, other)[column].dropna().str.lower()).mean() > 0.5:
                fix = (f"the ids match {self.raws[other].file} but for upper and lower case: "
                       "write each id the same way in both files")
        self.problems.add_rows(raw, orphan, column, frame[column],
                               f"unknown {column}: not in {self.raws[other].file}", fix)

    def _visit_patients(self) -> None:
        """A patient_id in the visits file must be the patient of the visit's treatment."""
        if "patient_id" not in self.present["visits"]:
            return
        known = self.treatment_row >= 0
        given = self.visits["patient_id"]
        expected = self.treatments["patient_id"].to_numpy(dtype=object)[np.maximum(self.treatment_row, 0)]
        t_rows = self.raws["treatments"].rows[np.maximum(self.treatment_row, 0)]
        wrong = known & given.notna().to_numpy() & (given.to_numpy(dtype=object) != expected)
        file = self.raws["treatments"].file
        self.problems.add_rows(
            self.raws["visits"], wrong, "patient_id", given,
            lambda at: [f"not the treatment's patient ({shorten(p)} on {file} row {r})"
                        for p, r in zip(expected[at], t_rows[at], strict=True)],
            "correct the visit's patient_id or its treatment_id")

    def _clashing_columns(self) -> None:
        """One name, one meaning: a column may stand in one file only (ids excepted)."""
        keys = {"patient_id", "treatment_id"}
        home = {c: name for name, table in TABLES.items() for c in table.names if c not in keys}
        files = {name: self.raws[name] for name in TABLES}
        seen: dict[str, str] = {}
        for name, raw in files.items():
            for column in raw.frame.columns:
                if column in keys:
                    continue
                owner = home.get(column)
                if owner and owner != name:
                    self.problems.add(raw.file, name, None, column, None,
                                      f"column {column} belongs in {files[owner].file}",
                                      f"rename it (e.g. {column}_{name}) or move it to "
                                      f"{files[owner].file}")
                elif not owner and column in seen:   # the column's name is shown with the problem
                    self.problems.add(raw.file, name, None, column, None,
                                      f"column also in {files[seen[column]].file}",
                                      "rename one of the two columns so each name has one meaning")
                seen.setdefault(column, name)



class TreatmentLinks(_Links):
    """Treatments: the age at treatment, each treatment's number and its retreatment (a later
    treatment of the same patient, nerve and side), nerves regen does not know."""

    def link(self) -> pd.DataFrame:
        """The treatments with ``age``, ``treatment_number`` and ``retreated_day``."""
        treatments = self._treatments()
        self._unknown_nerves(treatments)
        return treatments

    def _treatments(self) -> pd.DataFrame:
        t = self.treatments.copy()
        t["procedure"] = t["procedure"].fillna("cryo")
        # The birth year of the first row of the patient (of the first without an id, for a
        # treatment without one), as a map on the patients' ids would give it.
        years = self.patients["birth_year"].to_numpy(dtype="float64", na_value=np.nan)
        born = pd.Series(np.append(years, np.nan)[self.patient_row], index=t.index)
        derived = (t["treated_on"].dt.year - born).astype("float64")
        given = "age" in self.present["treatments"]
        age = t["age"].astype("float64").fillna(derived) if given else derived
        impossible = ((age < 0) | (age > 120)).fillna(False).to_numpy(dtype=bool)
        if impossible.any():
            on = t["treated_on"]
            shown = lambda at: [f"{on.iloc[i]:%Y-%m-%d}, birth_year {born.iloc[i]:g}: age "  # noqa: E731
                                f"{age.iloc[i]:g}" for i in at]
            self.problems.add_rows(self.raws["treatments"], impossible, "treated_on", shown,
                                   "age at treatment (treated_on year − birth_year) outside 0–120",
                                   "check this treatment's treated_on and the patient's birth_year")
        t["age"] = age.where(~impossible)
        self._retreatments(t)
        return t

    def _retreatments(self, t: pd.DataFrame) -> None:
        """Number the treatments of each patient, nerve and side, and find each one's retreatment.

        A retreatment is a treatment on a later date; treatments on the same date are the
        same procedure (both sides, when no side is given) and never retreat each other.
        The ids are factorised once; the rest works on integers. A treatment without a
        patient or a nerve is in no group (but in one with those like it for same-day copies).
        """
        raw = self.raws["treatments"]
        patient, nerve, side = (pd.factorize(t[name])[0] for name in ("patient_id", "nerve", "side"))
        on = t["treated_on"].to_numpy(dtype="datetime64[ns]").view(np.int64)
        dated, sided = t["treated_on"].notna().to_numpy(), side >= 0
        known = (patient >= 0) & (nerve >= 0)
        group = distinct_rows(patient, nerve, side)[0]
        same_date = distinct_rows(group, on)[0]
        same_day = pd.Series(same_date).duplicated(keep="first").to_numpy() & dated
        if (same_day & sided).any():
            first = pd.Series(raw.rows).groupby(same_date).transform("min").to_numpy()
            self.problems.add_rows(
                raw, same_day & sided, "treated_on", t["treated_on"],
                lambda at: [f"same patient, nerve, side and treated_on as row {row}"
                            for row in first[at]],
                "if it is the same treatment entered twice, delete one row; otherwise correct "
                "the side or the date")
        if (same_day & ~sided).any():
            self.notes.add(f"{raw.file}: {int((same_day & ~sided).sum())} treatment(s) repeat a "
                           "patient, nerve and treated_on without a side; they are analysed as "
                           "separate nerves (left and right?). Fill in side to tell them apart.")
        several = known & (np.bincount(group[known], minlength=len(t))[group] > 1)
        unreadable = _among(t["source_row"], self.problems.flagged("treatments", "treated_on"))
        undated = several & ~dated & ~unreadable
        if undated.any() and "treated_on" in self.present["treatments"]:
            self.notes.add(f"{raw.file}: {int(undated.sum())} treatment(s) repeat a patient, nerve "
                           "and side without treated_on; they cannot be ordered, so none is taken "
                           "as a retreatment. Fill in treated_on to analyse retreatments.")
        number, following = _date_ranks(group, on, dated & known)
        sideless = ~sided & (number > 1)
        if sideless.any():
            self.notes.add(f"{raw.file}: {int(sideless.sum())} treatment(s) without a side are "
                           "taken as retreatments of an earlier treatment of the same patient and "
                           "nerve (also without a side). Fill in side if they were different sides.")
        number[~dated & ~several] = 1
        t["treatment_number"] = pd.arrays.IntegerArray(np.maximum(number, 0), number < 0)
        none = following == _NAT
        days = (np.where(none, on, following) - on) // (86_400 * 10**9)
        t["retreated_day"] = pd.arrays.IntegerArray(days, none)

    def _unknown_nerves(self, treatments: pd.DataFrame) -> None:
        unknown = treatments.loc[~treatments["nerve"].isin(KNOWN_NERVES), "nerve"].dropna()
        if len(unknown):
            counts = unknown.value_counts()
            listed = ", ".join(f"{shorten(nerve)} ({n})" for nerve, n in counts.iloc[:10].items())
            if len(counts) > 10:
                listed += f" and {len(counts) - 10:,} more"
            self.notes.add(f"{self.raws['treatments'].file}: nerve(s) regen does not know: {listed}. "
                           f"Known: {', '.join(KNOWN_NERVES)}. Check the spelling; other nerves "
                           "are analysed as written.")



def _date_ranks(group: np.ndarray, on: np.ndarray, ranked: np.ndarray
                ) -> tuple[np.ndarray, np.ndarray]:
    """For the ``ranked`` rows: the rank of each one's date among the distinct dates of its
    group (1 for the earliest; -1 for the other rows), and the group's next date after it
    (as ``on``: nanoseconds; NaT's, the smallest integer, where there is none)."""
    number = np.full(len(group), -1, dtype=np.int64)
    following = np.full(len(group), _NAT, dtype=np.int64)
    rows = np.flatnonzero(ranked)
    if not len(rows):
        return number, following
    rows = rows[np.lexsort((on[rows], group[rows]))]
    g, o = group[rows], on[rows]
    new_group = np.r_[True, g[1:] != g[:-1]]
    new_date = new_group | np.r_[True, o[1:] != o[:-1]]
    date = np.cumsum(new_date) - 1                   # each row's date, as a number
    number[rows] = date - np.maximum.accumulate(np.where(new_group, date, 0)) + 1
    dates, last = o[new_date], np.r_[new_group[new_date][1:], True]
    following[rows] = np.where(last, _NAT, np.r_[dates[1:], _NAT])[date]
    return number, following


class VisitLinks(_Links):
    """Visits: days from dates, within the baseline window and the follow-up horizon;
    visits entered twice; visits on or after a retreatment, set aside."""

    def link(self, treatments: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
        """The visits with their days, and the exclusion rows of those set aside."""
        visits = self._visit_days(treatments)
        visits, repeated = self._duplicate_visits(visits)
        visits, after = self._after_retreatment(visits, treatments)
        return visits, pd.concat([repeated, after], ignore_index=True)

    def _visit_days(self, treatments: pd.DataFrame) -> pd.DataFrame:
        v, raw = self.visits, self.raws["visits"]
        present = self.present["visits"]
        if not present & {"day", "visit_date"}:
            self.problems.add(raw.file, "visits", None, "day", None,
                              "required column missing: day or visit_date",
                              "add a column day (days since the treatment) or visit_date")
            return v
        known_treatment = self.treatment_row >= 0
        treated_on = pd.Series(
            treatments["treated_on"].to_numpy()[np.maximum(self.treatment_row, 0)],
            index=v.index).where(known_treatment)
        date_day = (v["visit_date"] - treated_on).dt.days.astype("Int64")
        day = v["day"]
        unreadable = _among(v["source_row"], np.union1d(self.problems.flagged("visits", "visit_date"),
                                                        self.problems.flagged("visits", "day")))
        neither = (day.isna() & v["visit_date"].isna()).to_numpy(dtype=bool) & ~unreadable
        self.problems.add_rows(raw, neither, "visit_date" if "visit_date" in present else "day",
                               day, "visit has neither day nor visit_date",
                               "fill in the visit's date or its day since the treatment")
        # A treated_on that could not be read is reported once, where it is written.
        unreadable_on = _among(self.treatments["source_row"],
                               self.problems.flagged("treatments", "treated_on"))
        needs_date = ((day.isna() & v["visit_date"].notna() & treated_on.isna()).to_numpy(dtype=bool)
                      & known_treatment & ~unreadable_on[np.maximum(self.treatment_row, 0)])
        if needs_date.any():
            self._undated_treatments(needs_date)
        disagree = (day.notna() & date_day.notna() & (day != date_day)).fillna(False)
        disagree = disagree.to_numpy(dtype=bool)
        if disagree.any():
            dates = v["visit_date"]
            shown = lambda at: [f"day {day.iloc[i]}, but visit_date {dates.iloc[i]:%Y-%m-%d} is "  # noqa: E731
                                f"day {date_day.iloc[i]}" for i in at]
            self.problems.add_rows(raw, disagree, "day", shown,
                                   "day and visit_date disagree",
                                   "correct the day or the date (or the treatment's treated_on)")
        v = v.copy()
        v["day"] = day.fillna(date_day)
        # Name the column the user wrote: the day, or the date it was computed from.
        from_date = day.isna().to_numpy()
        self._outside_follow_up(v, from_date, treated_on)
        return v

    def _undated_treatments(self, needs_date: np.ndarray) -> None:
        """A problem for visits that are dated and have no day, when their treatment has no
        treated_on: one for the missing column, else one per treatment."""
        raw, t_raw = self.raws["visits"], self.raws["treatments"]
        if "treated_on" not in self.present["treatments"]:
            self.problems.add(t_raw.file, "treatments", None, "treated_on", None,
                              f"column missing, but {int(needs_date.sum())} visits in {raw.file} "
                              "are dated and have no day",
                              missing_column_fix("treated_on", t_raw.frame.columns,
                                                 TREATMENTS.names)
                              + "; or give the visits a day column")
        else:
            waiting = self.visits.loc[needs_date].groupby(self.treatment_row[needs_date])["source_row"]
            counts, first = waiting.size(), waiting.min()
            flagged = np.zeros(len(self.treatments), dtype=bool)
            flagged[counts.index.to_numpy()] = True
            shown = np.full(len(self.treatments), "", dtype=object)
            shown[counts.index.to_numpy()] = [
                f"(empty); {n} dated visit(s), first on {raw.file} row {r}"
                for n, r in zip(counts, first, strict=True)]
            self.problems.add_rows(t_raw, flagged, "treated_on", shown,
                                   "treated_on missing, but the treatment's visits are dated",
                                   "fill in the treatment date (YYYY-MM-DD), or give the visits "
                                   "a day column")

    def _outside_follow_up(self, v: pd.DataFrame, from_date: np.ndarray,
                           treated_on: pd.Series) -> None:
        """A problem for each visit before the baseline window or after the follow-up
        horizon, on the column the user wrote (the day, or the date it came from:
        ``from_date``)."""
        raw = self.raws["visits"]
        early = (v["day"] < -self.window).fillna(False).to_numpy(dtype=bool)
        late = (v["day"] > self.horizon).fillna(False).to_numpy(dtype=bool)
        days, dates = v["day"], v["visit_date"]

        def shown(at: np.ndarray) -> list:   # only the rows reported
            return [f"{dates.iloc[i]:%Y-%m-%d} (day {days.iloc[i]} from treated_on "
                    f"{treated_on.iloc[i]:%Y-%m-%d})" if from_date[i] else days.iloc[i]
                    for i in at]
        for name, here in (("day", ~from_date), ("visit_date", from_date)):
            self.problems.add_rows(
                raw, early & here, name, shown,
                f"visit more than {self.window} days before the treatment (the baseline window)",
                "check the visit's date and the treatment's treated_on; to accept earlier baselines "
                "use --baseline-window-days (read_cohort(baseline_window_days=...) in Python)")
            self.problems.add_rows(
                raw, late & here, name, shown,
                f"visit more than {self.horizon} days after the treatment",
                "check the visit's date (a typo in the year?); for longer follow-up use "
                "--max-follow-up-days (read_cohort(max_follow_up_days=...) in Python)")

    def _after_retreatment(self, v: pd.DataFrame, treatments: pd.DataFrame):
        """Visits on or after a retreatment of the same nerve and side leave, with a reason.

        The retreatment censors the earlier treatment's episode; a visit recorded under
        the earlier treatment after it cannot be attributed to either treatment.
        """
        retreated = treatments["retreated_day"].to_numpy(dtype="float64", na_value=np.inf)
        at = retreated[np.maximum(self.treatment_row[v.index.to_numpy()], 0)]
        after = (v["day"].to_numpy(dtype="float64", na_value=-np.inf) >= at)
        if not after.any():
            return v, empty_exclusions()
        dropped = v.loc[after]
        set_aside = exclusions("visits", dropped["source_row"], dropped["treatment_id"],
                               "visit_after_retreatment",
                               detail=_joined("day ", dropped["day"], "; retreated on day ",
                                              at[after].astype(np.int64)))
        self.notes.add(f"{self.raws['visits'].file}: {len(dropped)} visit(s) fall on or after a "
                       f"retreatment of the same nerve and side (first on row "
                       f"{dropped['source_row'].min()}); the retreatment ends the earlier "
                       "treatment's follow-up, so they are not used (see cohort.exclusions).")
        return v.loc[~after], set_aside

    def _visit_treatments(self) -> np.ndarray:
        """Each visit's treatment as an integer: its row in treatments or, for an id not
        there, a number of its own after those (-1: no id)."""
        codes = self.treatment_row.copy()
        unknown = (codes < 0) & self.visits["treatment_id"].notna().to_numpy()
        if unknown.any():
            codes[unknown] = len(self.treatments) + pd.factorize(
                self.visits["treatment_id"][unknown])[0]
        return codes

    def _duplicate_visits(self, v: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
        """Same treatment and day twice: drop exact copies (recorded), report contradictions."""
        repeated = empty_exclusions()
        keys = ["treatment_id", "day"]
        if v["day"].isna().all():
            return v, repeated
        # Treatment and day as integers: the ids were hashed once (the treatment's row).
        treatment = self._visit_treatments()[v.index.to_numpy()]
        known = v["day"].notna().to_numpy() & (treatment >= 0)
        twice = np.zeros(len(v), dtype=bool)
        twice[known] = _repeated(treatment[known],
                                 v["day"].to_numpy(dtype=np.int64, na_value=0)[known])
        if not twice.any():
            return v, repeated
        sub = v.loc[twice].sort_values(keys + ["source_row"], kind="stable")
        codes = sub.groupby(keys, sort=False).ngroup().to_numpy()
        position = np.arange(len(sub))
        first = pd.Series(position).groupby(codes).transform("min").to_numpy()
        later = position != first
        compared = [c for c in sub.columns if c not in ("source_row", "visit_date", "day",
                                                        "treatment_id")]
        differs = np.zeros(len(sub), dtype=bool)
        differing: list[tuple[str, np.ndarray, pd.Series]] = []   # column, where, values
        for column in compared:
            mine = sub[column].reset_index(drop=True)
            theirs = mine.iloc[first].reset_index(drop=True)
            same = (mine.isna() & theirs.isna()) | (mine == theirs).fillna(False)
            different = ~same.to_numpy(dtype=bool) & later
            if different.any():
                differing.append((column, different, mine))
                differs |= different
        first_rows = sub["source_row"].to_numpy()[first]
        raw = self.raws["visits"]
        in_v = v.index.get_indexer(sub.index)   # each row of sub as a position in v
        of_v = np.full(len(v), -1)
        of_v[in_v] = position
        contradict = np.zeros(len(v), dtype=bool)
        contradict[in_v[differs]] = True

        def shown(at: np.ndarray) -> list[str]:
            """What differs, for the rows reported only: the first few columns."""
            rows = of_v[at]
            listed: list[list[str]] = [[] for _ in rows]
            counts = np.zeros(len(rows), dtype=np.int64)   # columns that differ, so far
            for column, different, mine in differing:
                hit = different[rows]
                here = np.flatnonzero(hit & (counts < _SHOWN_COLUMNS))
                counts += hit
                values = mine.take(rows[here]).to_numpy(dtype=object)
                earlier = mine.take(first[rows[here]]).to_numpy(dtype=object)
                name = shorten(column)
                for k, value, other in zip(here, values, earlier, strict=True):
                    listed[k].append(f"{name} {_shown(value)} here, {_shown(other)} on row "
                                     f"{first_rows[rows[k]]}")
            return ["; ".join(parts) + (f"; and {n} more column{'s' if n > 1 else ''}" if n > 0
                                        else "")
                    for parts, n in zip(listed, counts - _SHOWN_COLUMNS, strict=True)]

        self.problems.add_rows(raw, contradict, None, shown,
                               "contradicts an earlier visit of the same treatment on the same day",
                               "keep the correct one of the two visits and delete the other")
        copies = later & ~differs
        if copies.any():
            dropped = sub.loc[copies]
            repeated = exclusions("visits", dropped["source_row"], dropped["treatment_id"],
                                  "duplicate_visit", detail=_joined("same as row ",
                                                                    first_rows[copies]))
            self.notes.add(f"{raw.file}: {len(dropped)} visit(s) repeat an earlier row exactly "
                           "(same treatment, day and values); each is counted once "
                           "(see cohort.exclusions).")
            v = v.drop(index=dropped.index)
        return v, repeated


class Linker:
    """Checks across tables (:class:`IdLinks`, :class:`TreatmentLinks`, :class:`VisitLinks`);
    fills the problem ledger and the exclusions."""

    def __init__(self, raws, parsed, present, problems: Problems, notes: Notes,
                 baseline_window_days: int, max_follow_up_days: int) -> None:
        patients, treatments, visits = (parsed[name] for name in ("patients", "treatments",
                                                                  "visits"))
        # The ids are hashed once here; everything after is integer indexing.
        self.context = _Context(
            raws=raws, patients=patients, treatments=treatments, visits=visits,
            present=present, problems=problems, notes=notes, window=baseline_window_days,
            horizon=max_follow_up_days,
            treatment_row=row_of(treatments["treatment_id"], visits["treatment_id"]),
            patient_row=row_of(patients["patient_id"], treatments["patient_id"], missing_too=True))

    def link(self):
        """(patients, treatments, visits, exclusions) once every check has run."""
        ctx = self.context
        IdLinks(ctx).check()
        treatments = TreatmentLinks(ctx).link()
        visits, set_aside = VisitLinks(ctx).link(treatments)
        if not {"numb", "pain"} & ctx.present["visits"]:
            ctx.notes.add(f"{ctx.raws['visits'].file} has neither a numb nor a pain column: "
                          "no numbness or relief episode can be built.")
        scores = [name for name in VISIT_SCORES if name in ctx.present["visits"]]
        empty = (np.logical_and.reduce([visits[name].isna().to_numpy() for name in scores])
                 if scores else np.zeros(len(visits), dtype=bool))
        if empty.any():
            rows = visits.loc[empty, "source_row"]
            ctx.notes.add(f"{ctx.raws['visits'].file}: {int(empty.sum())} visit(s) record none "
                          f"of {', '.join(VISIT_SCORES)} (first on row {rows.min()}); they count "
                          "for no outcome.")
        unused = row_of(treatments["patient_id"], ctx.patients["patient_id"]) < 0
        if unused.any() and not len(ctx.problems.flagged("treatments", "patient_id")):
            ctx.notes.add(f"{int(unused.sum())} patient(s) in {ctx.raws['patients'].file} "
                          "have no treatment; they are not analysed.")
        # Visits in the order of the treatments file, then by day.
        row = ctx.treatment_row[visits.index.to_numpy()]
        treatments = python_text(treatments)
        if (row >= 0).all() and _python_storage(treatments["treatment_id"]):
            for column in ("treatment_id", "patient_id"):   # the treatment's own strings
                visits[column] = pd.arrays.StringArray(
                    treatments[column].to_numpy(dtype=object, na_value=pd.NA)[row])
        else:
            visits["patient_id"] = pd.arrays.ArrowStringArray(pa.chunked_array(pa.array(
                treatments["patient_id"].array)).take(np.maximum(row, 0)).combine_chunks())
        day = visits["day"].to_numpy(dtype="float64", na_value=np.inf)
        if not _in_order(row, day, visits["source_row"].to_numpy()):
            visits = visits.iloc[np.lexsort((visits["source_row"].to_numpy(), day, row))]
        visits.index = pd.RangeIndex(len(visits))
        return ctx.patients, treatments, visits, set_aside


def python_text(frame: pd.DataFrame) -> pd.DataFrame:
    """Text columns as pandas' default ``string`` dtype, as the cohort's tables have always
    had them (reading and checking keep text in Arrow, a fraction of the memory).

    Where that dtype holds Python strings, each distinct text becomes one Python string,
    which every row holding it shares (a treatment's nerve, a patient's sex).
    """
    python = _python_storage(pd.Series(dtype="string"))
    for column in frame.columns[[_python_storage(frame[name]) is False
                                 for name in frame.columns]]:
        if not python:
            frame[column] = frame[column].astype("string")
            continue
        codes, distinct = pd.factorize(frame[column], use_na_sentinel=False)
        texts = distinct.to_numpy(dtype=object, na_value=pd.NA)
        frame[column] = pd.arrays.StringArray(texts[codes] if len(codes) else texts[:0])
    return frame


def _python_storage(column: pd.Series) -> bool | None:
    """True for text held as Python strings, False for text held in Arrow, None otherwise."""
    if not isinstance(column.dtype, pd.StringDtype):
        return None
    return column.dtype.storage == "python"


def _repeated(first: np.ndarray, second: np.ndarray) -> np.ndarray:
    """Where a pair of whole numbers (each row's ``first`` and ``second``) is on several
    rows: as one number when the pairs fit in one (a single hash pass), else as pairs."""
    if not len(first):
        return np.zeros(0, dtype=bool)
    low, span = int(second.min()), int(second.max()) - int(second.min()) + 1
    if int(first.max()) >= 2**62 // span or int(first.min()) < 0:
        return pd.DataFrame({"first": first, "second": second}).duplicated(keep=False).to_numpy()
    key = first * span + (second - low)
    if (key[1:] < key[:-1]).any():   # not in order: by hashing
        return pd.Series(key).duplicated(keep=False).to_numpy()
    same = key[1:] == key[:-1]       # in order (a file sorted by treatment and day): neighbours
    return np.r_[same, False] | np.r_[False, same]


def _in_order(*keys: np.ndarray) -> bool:
    """Whether the rows are in the order of ``keys`` (the first the most significant), each
    row after the one before (as a file already sorted so is: nothing to sort then)."""
    after = np.zeros(max(len(keys[0]) - 1, 0), dtype=bool)
    tied = ~after
    for key in keys:
        after |= tied & (key[1:] > key[:-1])
        tied &= key[1:] == key[:-1]
    return bool(after.all())
