"""What :func:`regen.simulate.cohort` returns: the follow-up tables, the truth and the latent
events, and how the tables are written as files that :func:`regen.read_cohort` reads."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

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
