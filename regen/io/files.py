"""The files of a cohort, and reading each by its kind: :func:`read_tables`.

A path is a folder of tables (``patients``, ``treatments`` and ``visits``, each a text or
a Parquet file) or one ``.xlsx`` workbook. The files' sizes come from the file system
before any is opened; each file is read within what the ones before it left of the
limits, and hashed (:class:`SourceFile`) once it has been read.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

from regen._scan import shorten
from regen.io.limits import Budget, ReadLimits, mb, raise_limit
from regen.io.parquet import read_parquet
from regen.io.raw import RawTable
from regen.io.text import read_text
from regen.io.workbook import read_workbook
from regen.tables import TABLES

__all__ = ["TABLE_SUFFIXES", "SourceFile", "input_files", "read_tables", "sha256_file"]

_CSV_SUFFIXES = (".csv", ".tsv", ".txt")
_PARQUET_SUFFIXES = (".parquet", ".pq")
_EXCEL_SUFFIXES = (".xlsx", ".xlsm")
#: Suffixes of the files a cohort folder's tables are read from.
TABLE_SUFFIXES = _CSV_SUFFIXES + _PARQUET_SUFFIXES


@dataclass(frozen=True)
class SourceFile:
    """A file read, with its SHA-256, for the report's provenance section.

    ``path`` is where it was read from; it is never written into a report (only
    ``name`` and ``sha256`` are), and it lets writers refuse to write over an input.
    """

    name: str
    sha256: str
    path: Path | None = field(default=None, compare=False)


def input_files(path: str | Path) -> list[Path]:
    """The files :func:`read_tables` reads from ``path``: the workbook itself, or every file
    of a cohort folder whose name is a table's (``visits.csv``, ``Visits.parquet``, ...),
    including two whose names differ only in case (which reading refuses)."""
    path = Path(path)
    if path.is_file():
        return [path]
    if not path.is_dir():
        return []
    return sorted(p for p in path.iterdir() if p.is_file() and p.stem.lower() in TABLES
                  and p.suffix.lower() in TABLE_SUFFIXES)


def sha256_file(path: Path) -> str:
    """The SHA-256 of a file, read in blocks."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def read_tables(path: str | Path, problems, notes, limits: ReadLimits | None = None
                ) -> tuple[dict[str, RawTable], list[SourceFile]]:
    """Read ``patients``, ``treatments`` and ``visits`` from a folder or a workbook.

    Parameters
    ----------
    path : str or Path
        A folder holding ``patients``, ``treatments`` and ``visits`` as
        ``.csv`` (or ``.tsv``/``.txt``) or ``.parquet`` files, or one ``.xlsx``
        workbook with sheets of those names.
    problems : regen.ledger.Problems
        Collector for problems that stop a table from being read.
    notes : regen.ledger.Notes
        Collector for warnings about usable but suspicious input.
    limits : ReadLimits, optional
        How much to read before refusing a file (default: ``ReadLimits()``).

    Returns
    -------
    tables : dict
        The tables that could be read, by name.
    sources : list of SourceFile
        Every file read, with its hash.
    """
    limits = ReadLimits() if limits is None else limits
    path = Path(path)
    if not path.exists():
        problems.add_table(
            str(path), None, "path does not exist",
            "give the folder that holds patients, treatments and visits, or an .xlsx workbook",
        )
        return {}, []
    if path.is_file():
        if path.suffix.lower() in _EXCEL_SUFFIXES:
            if _too_large({None: path}, problems, limits):
                return {}, []
            tables = read_workbook(path, problems, notes, Budget(limits))
            return tables, [SourceFile(path.name, sha256_file(path), path)] if tables else []
        problems.add_table(
            path.name, None, "not a folder or an .xlsx workbook",
            "give the folder that holds patients.csv, treatments.csv and visits.csv, "
            "or one .xlsx workbook with sheets of those names",
        )
        return {}, []
    return _read_folder(path, problems, notes, limits)


def _too_large(files: dict[str | None, Path], problems, limits: ReadLimits) -> bool:
    """Record a problem if the files (by table) are larger than the limit together (their
    sizes from the file system): one file alone, or the files together."""
    sizes = {table: file.stat().st_size for table, file in files.items()}
    total = sum(sizes.values())
    if total <= limits.max_file_bytes:
        return False
    fix = "check that this is the right file; if it is, " + raise_limit("max_file_bytes")
    table = max(sizes, key=lambda name: sizes[name])
    name, size = files[table].name, sizes[table]
    if size > limits.max_file_bytes:
        problems.add(name, table, None, None, f"{size:,} bytes",
                     f"file larger than the limit of {mb(limits.max_file_bytes)} ({mb(size)})",
                     fix)
    else:
        listed = ", ".join(f"{files[t].name} {mb(sizes[t])}" for t in sorted(
            sizes, key=lambda t: -sizes[t]))
        problems.add(name, table, None, None, f"{total:,} bytes",
                     f"files larger together than the limit of {mb(limits.max_file_bytes)} for "
                     f"the tables' files ({listed})", fix)
    return True


def _read_folder(folder: Path, problems, notes, limits: ReadLimits
                 ) -> tuple[dict[str, RawTable], list[SourceFile]]:
    files = sorted((p for p in folder.iterdir() if p.is_file()), key=lambda p: p.name)
    found: dict[str, Path] = {}
    for name in TABLES:
        candidates = [p for p in files if p.stem.lower() == name
                      and p.suffix.lower() in _CSV_SUFFIXES + _PARQUET_SUFFIXES]
        if not candidates:
            listed = ", ".join(shorten(p.name) for p in files[:20]) or "no files"
            if len(files) > 20:
                listed += f" and {len(files) - 20:,} more"
            books = [p.name for p in files if p.suffix.lower() in _EXCEL_SUFFIXES]
            hint = (f"; or give the workbook itself: {folder.name}/{books[0]}"
                    if len(books) == 1 else "")
            if any(p.stem.lower() == name for p in files if p.suffix.lower() in _EXCEL_SUFFIXES):
                hint = ("; a workbook per table is not read: save each as CSV, or put the three "
                        "tables as sheets of one workbook and give that workbook")
            problems.add_table(
                f"{name}.csv", name, "file missing",
                f"put {name}.csv or {name}.parquet in {folder.name}/ (found: {listed}){hint}",
            )
        elif len(candidates) > 1:
            names = " and ".join(p.name for p in candidates)
            alike = len({p.name.lower() for p in candidates}) < len(candidates)
            problems.add_table(
                candidates[0].name, name,
                f"two files for one table, named alike but for case ({names})" if alike
                else f"two files for one table ({names})",
                "keep one of them and move the other out of the folder",
            )
        else:
            found[name] = candidates[0]
    tables: dict[str, RawTable] = {}
    sources: list[SourceFile] = []
    if _too_large(found, problems, limits):
        return tables, sources
    budget = Budget(limits)
    for name, file in found.items():
        if file.suffix.lower() in _PARQUET_SUFFIXES:
            table = read_parquet(file, name, problems, budget)
        else:
            table = read_text(file, name, problems, notes, budget)
        if table is not None:   # a file refused is not hashed: that would read all of it
            tables[name] = table
            sources.append(SourceFile(file.name, sha256_file(file), file))
    return tables, sources
