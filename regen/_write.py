"""Every file regen writes goes through here.

One set of rules for all writers (tables, JSON, HTML, figures, model files):

- **Never over an input.** An :class:`Outputs` knows the inputs of the command (or the
  API call) it serves. An output that resolves (symlinks and ``..`` followed, hard
  links included) to an input file, an output folder that is the folder holding the
  input tables, a file in that folder that would be read as one of the cohort's tables,
  and two outputs of one command on one path are all refused with an
  :class:`~regen.exceptions.OutputError` that names both paths.
- **Never over a file regen did not write.** Each folder regen writes into gets a small
  manifest (:data:`MANIFEST`: each file's name and SHA-256). A file standing where regen
  would write is replaced only if the manifest lists it with the hash it still has; a
  user's file, or one edited since, is replaced only with ``force=True`` (``--force``).
- **Atomic.** A file is written to a temporary file in its own folder, flushed and
  fsync'd, then moved over the old one with :func:`os.replace`: a write that fails half
  way (a full disk) leaves the previous file as it was and removes the temporary one.
- **Inert.** A text cell of a CSV or xlsx table (value, header or index label) that a
  spreadsheet would run as a formula gets a leading apostrophe (:func:`neutralise`); HTML
  comes from one autoescaping template environment (:func:`html_environment`); text from
  data in a terminal message has its control characters escaped (:func:`literal`).
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
import secrets
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import pandas as pd

from regen._util import json_safe
from regen.exceptions import OutputError
from regen.io import TABLE_SUFFIXES, input_files, sha256_file
from regen.tables import TABLES

__all__ = ["MANIFEST", "FORMULA_STARTS", "Outputs", "atomic_open", "figure_bytes",
           "html_environment",
           "literal", "neutralise", "printable", "save_figure", "write_bytes", "write_json",
           "write_table", "write_text"]

#: The manifest regen keeps in each folder it writes into: what it wrote, by name and hash.
MANIFEST = ".regen-manifest.json"
#: A spreadsheet runs a cell starting with one of these as a formula (with the full-width
#: forms some spreadsheets also accept).
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r", "\uff1d", "\uff0b", "\uff0d", "\uff20")
_FORCE_HINT = "add --force (force=True in Python) to replace it"


# ------------------------------------------------------------- text shown --

#: C0 and C1 control characters, DEL, and the Unicode marks that reorder text on screen.
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def _escape(match: re.Match) -> str:
    code = ord(match.group())
    return {9: "\\t", 10: "\\n", 13: "\\r"}.get(code, f"\\x{code:02x}" if code < 0x100
                                                 else f"\\u{code:04x}")


def literal(text: object) -> str:
    """``text`` as it can be shown in a message: every control character written as an
    escape (``\\x1b``, ``\\n``), so data can neither colour, move nor forge a line."""
    return _CONTROL.sub(_escape, str(text))


def printable(message: str) -> str:
    """A whole message made safe for a terminal: control characters escaped, except the
    message's own line breaks and tabs."""
    return _CONTROL.sub(lambda m: m.group() if m.group() in "\n\t" else _escape(m), message)


# ---------------------------------------------------------------- tables ----

def _risky(value: object) -> bool:
    return isinstance(value, str) and value.startswith(FORMULA_STARTS)


def _inert(value: object) -> object:
    return "'" + value if _risky(value) else value


def _inert_column(column: pd.Series) -> pd.Series:
    if isinstance(column.dtype, pd.CategoricalDtype):
        column = column.astype(object)
    if pd.api.types.is_numeric_dtype(column) or pd.api.types.is_bool_dtype(column) or \
            pd.api.types.is_datetime64_any_dtype(column):
        return column
    if isinstance(column.dtype, pd.StringDtype):
        risky = column.str.startswith(FORMULA_STARTS).fillna(False).to_numpy(dtype=bool)
        return column.where(~risky, "'" + column) if risky.any() else column
    values = column.to_numpy(dtype=object)
    risky = np.fromiter((_risky(v) for v in values), dtype=bool, count=len(values))
    if not risky.any():
        return column
    values = values.copy()
    values[risky] = ["'" + v for v in values[risky]]
    return pd.Series(values, index=column.index, name=column.name)


def _inert_labels(index: pd.Index) -> pd.Index:
    if isinstance(index, pd.MultiIndex):
        levels = [_inert_labels(level) for level in index.levels]
        return index.set_levels(levels).set_names([_inert(n) for n in index.names])
    if pd.api.types.is_numeric_dtype(index) or pd.api.types.is_datetime64_any_dtype(index):
        return index.set_names(_inert(index.name))
    return pd.Index([_inert(v) for v in index], name=_inert(index.name), dtype=object) \
        if any(_risky(v) for v in index) or _risky(index.name) else index


def neutralise(frame: pd.DataFrame) -> pd.DataFrame:
    """A copy of ``frame`` no spreadsheet would run as formulas.

    A text value, header or index label starting with ``= + - @``, a tab or a carriage
    return (or a full-width ``＝ ＋ － ＠``) gets a leading apostrophe, which spreadsheets
    show as text (OWASP's advice against CSV injection). Numbers, booleans and dates are
    left alone, so ``-0.5`` stays a number.
    """
    out = pd.DataFrame({i: _inert_column(frame.iloc[:, i]) for i in range(frame.shape[1])},
                       index=frame.index)
    out.columns = _inert_labels(frame.columns)
    out.index = _inert_labels(frame.index)
    return out


# --------------------------------------------------------------- manifest ---

def _read_manifest(folder: Path) -> dict[str, str]:
    """What regen wrote into ``folder``: file name → SHA-256 (empty if none or unreadable)."""
    try:
        document = json.loads((folder / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    files = document.get("files") if isinstance(document, dict) else None
    if not isinstance(files, dict):
        return {}
    return {str(k): str(v) for k, v in files.items()}


@contextlib.contextmanager
def _folder_lock(folder: Path):
    """Hold an advisory lock on ``folder`` while its manifest is read and rewritten."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows: writers in one folder are rare
        yield
        return
    try:
        descriptor = os.open(folder, os.O_RDONLY)
    except OSError:  # pragma: no cover
        yield
        return
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX)
        yield
    finally:
        os.close(descriptor)


def _record(path: Path, digest: str) -> None:
    folder = path.parent
    with _folder_lock(folder):
        files = _read_manifest(folder)
        files[path.name] = digest
        document = {"format": "regen-manifest", "about": "Files regen wrote here, with their "
                    "SHA-256; regen replaces only these, and only while unchanged.",
                    "files": dict(sorted(files.items()))}
        with atomic_open(folder / MANIFEST, "w") as handle:
            handle.write(json.dumps(document, indent=1) + "\n")


def _ours(path: Path) -> bool:
    """True if regen wrote ``path`` and nobody has changed it since."""
    recorded = _read_manifest(path.parent).get(path.name)
    return recorded is not None and recorded == sha256_file(path)


# --------------------------------------------------------------- atomic ----

@contextlib.contextmanager
def atomic_open(path: str | Path, mode: str = "w", *, encoding: str = "utf-8"):
    """Open a temporary file beside ``path`` for writing; on success it replaces ``path``.

    The temporary file is flushed and fsync'd before :func:`os.replace`, so ``path``
    holds either its old content or the whole new one. If the block raises (a full
    disk, a bug), the temporary file is removed and ``path`` is untouched.
    """
    if mode not in ("w", "wb"):
        raise ValueError(f"mode must be 'w' or 'wb', not {mode!r}")
    path = Path(path)
    folder = path.parent
    temporary = folder / f".{path.name[:200]}.{secrets.token_hex(4)}.tmp"
    try:
        # O_EXCL: never follow a planted link; 0o666 & umask: the mode a plain open() gives.
        descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    except OSError as error:
        raise OSError(error.errno, f"cannot write {path} ({error.strerror})") from error
    try:
        with os.fdopen(descriptor, mode, **({} if mode == "wb" else
                                            {"encoding": encoding, "newline": ""})) as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException as error:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        if isinstance(error, OSError) and error.errno is not None:  # name the file
            raise OSError(error.errno, f"cannot write {path} ({error.strerror}); the "
                          "previous file, if any, is unchanged") from error
        raise
    with contextlib.suppress(OSError, AttributeError):  # the rename itself, durably
        directory = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(directory)
        finally:
            os.close(directory)


# --------------------------------------------------------------- outputs ---

def _same(a: Path, b: Path) -> bool:
    if a.resolve() == b.resolve():
        return True
    try:
        return a.exists() and b.exists() and os.path.samefile(a, b)
    except OSError:
        return False


class Outputs:
    """The outputs of one command or API call, checked against its inputs and each other.

    Declare every output with :meth:`file` or :meth:`folder` before the long work, so
    that a bad path fails at once; then write with the ``write_*`` methods, which check
    again and record what they wrote in the folder's manifest.

    Parameters
    ----------
    inputs : iterable of path
        What the command reads: cohort folders or workbooks (their table files count as
        inputs, and a folder holding them may not be an output folder) and other files.
    force : bool, default False
        Replace files that regen did not write, or that were changed since it did.

    Examples
    --------
    >>> outputs = regen.Outputs(inputs=["data/example"])  # doctest: +SKIP
    >>> outputs.write_table(table, "results/table.csv")  # doctest: +SKIP
    """

    def __init__(self, inputs: Iterable[str | os.PathLike] = (), *, force: bool = False):
        self.force = bool(force)
        self._input_files: list[Path] = []
        self._input_folders: list[Path] = []
        for item in inputs:
            if item is None:
                continue
            path = Path(item)
            files = input_files(path)
            self._input_files += files
            self._input_folders += [path] if path.is_dir() else []
            self._input_folders += [f.parent for f in files]
        self._declared: dict[Path, Path] = {}

    # -- checks -------------------------------------------------------------
    def _not_an_input(self, path: Path, what: str) -> None:
        for source in self._input_files:
            if _same(path, source):
                raise OutputError(f"{path} is an input of this command ({source}): regen never "
                                  "writes over an input; choose another output path")
        for folder in self._input_folders:
            if _same(path, folder):
                raise OutputError(f"{path} is the folder holding the input tables ({folder}); "
                                  f"{what}")
        for parent in path.absolute().parents:  # the first that exists must be a folder
            if parent.exists():
                if not parent.is_dir():
                    raise OutputError(f"{parent} is a file, so {path} cannot be written; "
                                      "choose another path")
                break

    def folder(self, path: str | os.PathLike) -> Path:
        """Declare an output folder: not an input, not the input tables' folder, not a file."""
        path = Path(path)
        self._not_an_input(path, "choose another output folder")
        if path.exists() and not path.is_dir():
            raise OutputError(f"{path} is a file, not a folder; choose a folder for the outputs")
        return path

    def file(self, path: str | os.PathLike) -> Path:
        """Declare an output file; raise :class:`OutputError` if regen may not write it."""
        path = Path(path)
        for other in self._declared.values():
            if _same(path, other):
                raise OutputError(f"{other} and {path} are the same file; give each output "
                                  "its own path")
        self._not_an_input(path, "give a file name")
        if path.is_dir():
            raise OutputError(f"{path} is a folder; give a file name")
        if path.name.lower() == MANIFEST:
            raise OutputError(f"{path}: regen keeps its record of what it wrote in that folder "
                              f"under the name {MANIFEST}; choose another name")
        for folder in self._input_folders:
            if path.stem.lower() in TABLES and path.suffix.lower() in TABLE_SUFFIXES and \
                    _same(path.parent, folder):
                raise OutputError(f"{path} would be read as the cohort's {path.stem.lower()} "
                                  f"table next time (it is in {folder}, beside the input "
                                  "tables); choose another name or folder")
        self._claimable(path)
        self._declared[path.resolve()] = path
        return path

    def files(self, paths: Iterable[str | os.PathLike]) -> list[Path]:
        """Declare several output files (see :meth:`file`)."""
        return [self.file(p) for p in paths]

    def _claimable(self, path: Path) -> None:
        if path.exists() and not self.force and not _ours(path):
            raise OutputError(f"{path} exists and was not written by regen (or was changed "
                              f"since); regen does not replace it silently: move it away, "
                              f"choose another path, or {_FORCE_HINT}")

    # -- writing ------------------------------------------------------------
    @contextlib.contextmanager
    def open(self, path: str | os.PathLike, mode: str = "w"):
        """A checked, atomic handle on ``path`` (see :func:`atomic_open`); recorded after."""
        path = Path(path)
        if path.resolve() not in self._declared:
            self.file(path)
        self._claimable(path)  # again: the file may have appeared during the work
        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_open(path, mode) as handle:
            yield handle
        _record(path, sha256_file(path))

    def write_bytes(self, path: str | os.PathLike, data: bytes) -> Path:
        """Write ``data`` to ``path``."""
        with self.open(path, "wb") as handle:
            handle.write(data)
        return Path(path)

    def write_text(self, path: str | os.PathLike, text: str) -> Path:
        """Write ``text`` (UTF-8) to ``path``."""
        with self.open(path, "w") as handle:
            handle.write(text)
        return Path(path)

    def write_json(self, path: str | os.PathLike, document, *, indent: int | None = 1) -> Path:
        """Write ``document`` as strict JSON (NaN as null, infinity as "inf")."""
        text = json.dumps(json_safe(document), indent=indent, allow_nan=False, default=str)
        return self.write_text(path, text + "\n")

    def write_table(self, frame: pd.DataFrame, path: str | os.PathLike, *, index: bool = False,
                    **options) -> Path:
        """Write a table as CSV (``.csv``, ``.tsv``, ``.txt``), Parquet or xlsx, by suffix.

        CSV and xlsx go through :func:`neutralise`; Parquet keeps the values and types
        exactly (it is not opened by spreadsheets). ``options`` go to ``DataFrame.to_csv``.
        """
        path = Path(path)
        suffix = path.suffix.lower()
        if suffix in (".parquet", ".pq"):
            with self.open(path, "wb") as handle:
                frame.to_parquet(handle, index=index)
        elif suffix == ".xlsx":
            self.write_workbook({"Sheet1": frame}, path, index=index)
        elif suffix in (".csv", ".tsv", ".txt"):
            options.setdefault("sep", "\t" if suffix == ".tsv" else ",")
            options.setdefault("lineterminator", "\n")
            with self.open(path, "w") as handle:
                neutralise(frame).to_csv(handle, index=index, **options)
        else:
            raise OutputError(f"cannot write a table to {path.name}: use .csv, .parquet or .xlsx")
        return path

    def write_workbook(self, sheets: dict[str, pd.DataFrame], path: str | os.PathLike, *,
                       index: bool = False) -> Path:
        """Write several tables as the sheets of one .xlsx workbook, every cell inert.

        Cells are written as values: text starting like a formula has been neutralised
        (:func:`neutralise`), missing values are empty cells.
        """
        from openpyxl import Workbook

        book = Workbook(write_only=True)
        for name, frame in sheets.items():
            frame = neutralise(frame.reset_index() if index else frame)
            sheet = book.create_sheet(title=str(name))
            sheet.append([str(column) for column in frame.columns])
            for row in frame.astype(object).itertuples(index=False, name=None):
                sheet.append([None if _missing(value) else _plain(value) for value in row])
        buffer = io.BytesIO()
        book.save(buffer)
        return self.write_bytes(path, buffer.getvalue())

    def save_figure(self, figure, path: str | os.PathLike, *, format: str | None = None,
                    **options) -> Path:
        """Save a matplotlib figure (PNG, SVG or PDF by suffix); see :func:`figure_bytes`."""
        path = Path(path)
        data = figure_bytes(figure, (format or path.suffix.lstrip(".")).lower(), **options)
        return self.write_bytes(path, data)


def figure_bytes(figure, format: str = "png", **options) -> bytes:
    """A matplotlib figure as PNG, SVG or PDF bytes, every text drawn literally.

    Text from data must not be read as math: a nerve named ``a$x$b`` is drawn as
    written, and ``$\\x$`` does not stop the drawing with a parse error. Every text of
    the figure, and the tick labels matplotlib makes while drawing, are drawn with math
    parsing off. An SVG carries no date, so the same figure gives the same bytes.
    """
    import matplotlib as mpl
    from matplotlib.text import Text

    if format == "svg":
        options.setdefault("metadata", {"Date": None})
    buffer = io.BytesIO()
    with mpl.rc_context({"text.parse_math": False}):
        for text in figure.findobj(Text):
            text.set_parse_math(False)
        figure.savefig(buffer, format=format, **options)
    return buffer.getvalue()


def _missing(value) -> bool:
    return value is None or value is pd.NA or value is pd.NaT or (
        isinstance(value, float) and np.isnan(value))


def _plain(value):
    """A cell value openpyxl stores as is: numpy scalars as Python ones, timestamps as
    datetimes."""
    if isinstance(value, pd.Timestamp):
        return value.to_pydatetime()
    return value.item() if isinstance(value, np.generic) else value


# Writing outside a command: no inputs to protect, the manifest rule still holds.

def write_table(frame: pd.DataFrame, path, *, force: bool = False, **options) -> Path:
    """Write a table atomically and formula-safe (see :meth:`Outputs.write_table`)."""
    return Outputs(force=force).write_table(frame, path, **options)


def write_text(path, text: str, *, force: bool = False) -> Path:
    """Write text atomically (see :meth:`Outputs.write_text`)."""
    return Outputs(force=force).write_text(path, text)


def write_bytes(path, data: bytes, *, force: bool = False) -> Path:
    """Write bytes atomically (see :meth:`Outputs.write_bytes`)."""
    return Outputs(force=force).write_bytes(path, data)


def write_json(path, document, *, force: bool = False, indent: int | None = 1) -> Path:
    """Write strict JSON atomically (see :meth:`Outputs.write_json`)."""
    return Outputs(force=force).write_json(path, document, indent=indent)


def save_figure(figure, path, *, force: bool = False, **options) -> Path:
    """Save a figure atomically (see :meth:`Outputs.save_figure`)."""
    return Outputs(force=force).save_figure(figure, path, **options)


# ------------------------------------------------------------------ HTML ----

def html_environment(package: str, folder: str = "templates"):
    """The one jinja2 environment for regen's templates: autoescaping on for every template,
    whatever its file name, and a missing value an error rather than an empty string."""
    import jinja2

    return jinja2.Environment(loader=jinja2.PackageLoader(package, folder), autoescape=True,
                              undefined=jinja2.StrictUndefined)
