"""Looking at input files in bounded memory, before (or instead of) loading them.

:mod:`regen.io` reads through these:

- :func:`scan_lines` passes once over a text file's bytes in blocks (numpy on the
  raw bytes) to count its lines and find any line with more fields than allowed,
  before pandas parses it; :func:`too_wide` then counts the fields of such a line
  outside quotes.
- :func:`zip_directory_size` reads the size of a zip file's list of parts from its
  end record, before that list is read.
- The rest reads an .xlsx workbook without loading it with openpyxl or pandas:
  those size a sheet by its declared ``<dimension>`` (or by every cell that has a
  format), so a sheet with one stray cell at XFD1048576 would be read as a grid
  of 17 billion cells. Here each part is parsed by expat as it is unpacked, and
  only the cells that hold a value are kept; a value beyond the limits stops the
  parse at once (:class:`Beyond`). Values are converted as openpyxl does (its
  public helpers decide which number formats are dates): shared and inline
  strings, numbers as ``int`` (exact) or ``float``, dates by their cell style,
  booleans, and errors as their text (``#N/A``). A formula cell without a stored
  value is not read but listed (:attr:`SheetReader.unknown`): its value is not in
  the file. A ``DOCTYPE`` (and with it any entity definition) is refused in every
  part.
"""

from __future__ import annotations

import codecs
import posixpath
import re
import struct
import zipfile
from array import array
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from xml.parsers import expat

import numpy as np

# openpyxl's helpers are imported where a workbook is read: reading a CSV folder needs
# none of them (and importing openpyxl takes a good part of a second).

__all__ = ["EXCEL_COLUMNS", "EXCEL_ROWS", "SHOWN_CHARACTERS", "Beyond", "LineScan", "SheetReader",
           "cell_name", "date_styles", "read_sheet", "scan_lines", "shared_strings", "shorten",
           "parquet_footer_size", "too_wide", "workbook_parts", "zip_directory_size"]

#: Excel's grid: A1 to XFD1048576.
EXCEL_ROWS, EXCEL_COLUMNS = 1_048_576, 16_384
_SHOWN_CELLS = 20   # formula cells without a value listed one by one
_BLOCK_BYTES = 1 << 21   # block size of the line scan
_MAX_TAG_BYTES = 1_000_000   # an XML tag or comment in a workbook part (a few hundred bytes)
#: A message shows at most this many characters of a value from the data.
SHOWN_CHARACTERS = 80


def shorten(text: object, limit: int = SHOWN_CHARACTERS) -> str:
    """``text`` as a message shows it: at most ``limit`` characters, then how long it is.

    Every message that quotes the data (a value, a header, an id) goes through this, so
    that a cell of 400 MB makes a message of one line; the data themselves (and the
    problems table) keep the value as written.

    Examples
    --------
    >>> shorten("T0001")
    'T0001'
    >>> shorten("x" * 1000, limit=5)
    'xxxxx… (1,000 characters)'
    """
    text = str(text)
    return text if len(text) <= limit else f"{text[:limit]}… ({len(text):,} characters)"


def _size(text: str) -> int:
    """Bytes of ``text`` in UTF-8 (its length when it is ASCII, which Python knows at once)."""
    return len(text) if text.isascii() else len(text.encode("utf-8", "surrogatepass"))


# ------------------------------------------------------------- text files ---

@dataclass
class LineScan:
    """What one pass over a text file's bytes found (see :func:`scan_lines`).

    ``long`` is the first field longer than the cell limit, as ``(line number, byte
    offset, field number on its line from 0 or None when quotes before it make that
    uncertain, byte length or None when the scan stopped inside it)``. ``nul``: a
    single-byte file holds a NUL byte (which pandas' reader and Arrow's read differently).
    """

    lines: int = 0
    quotes: int = 0
    wide: list[tuple[int, int, int, int, int]] = field(default_factory=list)
    not_utf8: int | None = None
    long: tuple[int, int, int | None, int | None] | None = None
    nul: bool = False


def scan_lines(file: Path, start: int, unit: str, sep: str, limit: int, utf8: bool,
               cell: int | None = None) -> LineScan:
    """Count the file's lines and find those with ``limit`` separators or more, in blocks.

    Lines end at \\n, \\r\\n or \\r, as for pandas. ``wide`` holds, for the first five
    such lines and the first one without quotes, ``(line number, byte offset, byte length,
    separators, quotes)``; the scan stops at that one (too wide whatever the quoting). With ``utf8``,
    also finds the first byte that is not UTF-8. With ``cell`` (bytes), also finds the first
    field longer than that (:attr:`LineScan.long`) and stops there: a stretch between two
    delimiters or line ends always lies within one field, whatever the quoting, so such a
    stretch longer than ``cell`` is a field that long (a quoted field holding delimiters or
    line breaks is checked after parsing). A block of short lines without quotes or \\r,
    where none of these can be, is only counted (:func:`_plain_block`). Memory: a few
    times the block size.
    """
    scan = LineScan()
    size = np.dtype(unit).itemsize
    sep_code = ord(sep)
    cell_units = None if cell is None else cell // size
    seps_open = quotes_open = 0        # in the line not ended yet
    line_start = position = start      # file offsets: that line's start, pending[0]
    piece_open, piece_start = 0, start  # the field (stretch between boundaries) not ended yet
    pending = b""
    decoder = _Utf8Check(start) if utf8 else None
    with file.open("rb") as handle:
        handle.seek(start)
        while True:
            block = handle.read(_BLOCK_BYTES)
            last = not block
            if decoder is not None and scan.not_utf8 is None:
                scan.not_utf8 = decoder.feed(block, last)
            data = pending + block
            n = len(data) // size
            if not last and n and int(np.frombuffer(data, unit, 1, (n - 1) * size)[0]) == 13:
                n -= 1   # a \r at the end of the block may be the start of a \r\n
            units = np.frombuffer(data, unit, n)
            pending = data[n * size:]
            scan.nul = scan.nul or (size == 1 and data.find(b"\x00", 0, n) >= 0)
            plain = _plain_block(data, n, units, sep_code, position - line_start, limit,
                                 cell_units) if size == 1 else None
            if plain is not None:   # short lines, no quote, no \r: nothing to find here
                ended, tail, seps_open, piece = plain
                scan.lines += ended
                line_start, quotes_open = position + tail, 0
                piece_open, piece_start = n - piece, position + piece
                position += n
                continue
            lf, cr = units == 10, units == 13
            ends = _line_ends(lf, cr)
            is_sep = units == sep_code
            seps = np.cumsum(is_sep, dtype=np.int32)   # a block holds < 2**31 units
            quotes = np.cumsum(units == 34, dtype=np.int32)
            scan.quotes += int(quotes[-1]) if n else 0
            if cell_units is not None and n:
                bounds = np.flatnonzero(is_sep | lf | cr)
                lengths = np.diff(bounds, prepend=-1) - 1   # of the stretch ending at each bound
                if len(bounds):
                    lengths[0] += piece_open
                over = np.flatnonzero(lengths > cell_units)
                if len(over):
                    scan.long = _long_field(int(over[0]), bounds, ends, seps, quotes, scan.lines,
                                            seps_open, quotes_open, piece_start, position, size)
                    scan.long = (*scan.long, int(lengths[over[0]]) * size)
                    break
                if len(bounds):
                    piece_open = n - int(bounds[-1]) - 1
                    piece_start = position + (int(bounds[-1]) + 1) * size
                else:
                    piece_open += n
            if len(ends):
                _wide_lines(scan, ends, seps, quotes, (seps_open, quotes_open), limit,
                            line_start, position, size)
                scan.lines += len(ends)
                line_start = position + (int(ends[-1]) + 1) * size
                seps_open = int(seps[-1] - seps[ends[-1]])
                quotes_open = int(quotes[-1] - quotes[ends[-1]])
            elif n:
                seps_open += int(seps[-1])
                quotes_open += int(quotes[-1])
            position += n * size
            if cell_units is not None and piece_open > cell_units:   # stop inside it
                scan.long = (scan.lines + 1, piece_start, None if quotes_open else seps_open, None)
                break
            if last or any(line[4] == 0 for line in scan.wide):
                break
    if scan.long is None and position > line_start and (last or not scan.wide):
        scan.lines += 1   # a last line without a line break
        if seps_open >= limit:
            scan.wide.append((scan.lines, line_start, position - line_start, seps_open, quotes_open))
    return scan


def _wide_lines(scan: LineScan, ends: np.ndarray, seps: np.ndarray, quotes: np.ndarray,
                open_counts: tuple[int, int], limit: int, line_start: int, position: int,
                size: int) -> None:
    """Add to ``scan.wide`` the lines of a block (ending at ``ends``; ``seps`` and ``quotes``
    count the block's separators and quotes so far, ``open_counts`` those of its first
    line before the block) with ``limit`` separators or more: the first five, and the first
    without quotes (too wide whatever the quoting)."""
    line_seps = np.diff(seps[ends].astype(np.int64), prepend=0)
    line_quotes = np.diff(quotes[ends].astype(np.int64), prepend=0)
    line_seps[0] += open_counts[0]
    line_quotes[0] += open_counts[1]
    flagged = np.flatnonzero(line_seps >= limit)
    unquoted = flagged[line_quotes[flagged] == 0][:1]
    keep = np.union1d(flagged[:max(0, 5 - len(scan.wide))], unquoted)
    for i in keep[keep <= unquoted[0]] if len(unquoted) else keep:
        begin = line_start if i == 0 else position + (int(ends[i - 1]) + 1) * size
        scan.wide.append((scan.lines + int(i) + 1, begin, position + int(ends[i]) * size - begin,
                          int(line_seps[i]), int(line_quotes[i])))


def _plain_block(data: bytes, n: int, units: np.ndarray, sep_code: int, open_bytes: int,
                 limit: int, cell_units: int | None) -> tuple[int, int, int, int] | None:
    """What the scan needs from a block of a single-byte file in which the full scan would
    find nothing, or None: then the block is scanned in full.

    Such a block has no quote, no \\r and a line end; every line (the first counted from
    ``open_bytes`` before the block) is shorter than ``limit`` bytes and at most
    ``cell_units``, and so are the bytes after the last line end: a line of fewer bytes
    has fewer separators, and no longer field. Returns (line ends, offset after the last
    one, separators after it, offset after the last field boundary).
    """
    if sep_code > 255 or data.find(b'"', 0, n) >= 0 or data.find(b"\r", 0, n) >= 0:
        return None
    ends = np.flatnonzero(units == 10)
    if not len(ends):
        return None
    tail, sep = int(ends[-1]) + 1, bytes([sep_code])
    longest = max(open_bytes + int(ends[0]), int(np.diff(ends).max(initial=1)) - 1)
    if longest >= limit or (cell_units is not None and max(longest, n - tail) > cell_units):
        return None
    return len(ends), tail, data.count(sep, tail, n), max(tail, data.rfind(sep, 0, n) + 1)


class _Utf8Check:
    """Finds the first byte that is not UTF-8 in a file read block by block (a character
    may straddle two blocks)."""

    def __init__(self, start: int):
        self.tail, self.checked = b"", start

    def feed(self, block: bytes, last: bool) -> int | None:
        """The file offset of the first byte that is not UTF-8 so far, or None."""
        data = self.tail + block
        try:
            used = codecs.utf_8_decode(data, "strict", last)[1]
        except UnicodeDecodeError as error:
            return self.checked + error.start
        self.tail, self.checked = data[used:], self.checked + used
        return None


def _line_ends(lf: np.ndarray, cr: np.ndarray) -> np.ndarray:
    """Positions of the units that end a line: \n, the \r of a lone \r, and a \r that
    ends the block (the caller holds back a \r that may start a \r\n)."""
    ends = lf.copy()
    ends[:-1] |= cr[:-1] & ~lf[1:]
    if len(ends):
        ends[-1] |= cr[-1]
    return np.flatnonzero(ends)


def _long_field(k: int, bounds: np.ndarray, ends: np.ndarray, seps: np.ndarray,
                quotes: np.ndarray, lines: int, seps_open: int, quotes_open: int,
                piece_start: int, position: int, size: int) -> tuple[int, int, int | None]:
    """Where the ``k``-th stretch of a block starts: (line number, byte offset, field number
    on its line or None when quotes before it make the number uncertain). The block's
    counts are cumulative; ``lines``, ``seps_open`` and ``quotes_open`` are from before it."""
    if k == 0:   # began in an earlier block, or at the block's start
        return lines + 1, piece_start, None if quotes_open else seps_open
    at = int(bounds[k - 1]) + 1
    before = int(np.searchsorted(ends, at))   # line ends before the field
    if before:
        line_end = int(ends[before - 1])
        fields, quoted = seps[at - 1] - seps[line_end], quotes[at - 1] - quotes[line_end]
    else:
        fields, quoted = seps_open + seps[at - 1], quotes_open + quotes[at - 1]
    return lines + before + 1, position + at * size, None if quoted else int(fields)


def too_wide(file: Path, scan: LineScan, encoding: str, sep: str, limit: int
              ) -> tuple[int, int] | None:
    """The first line with more fields than ``limit``, as (line number, fields), or None.

    A line with quotes is read again to count only the delimiters outside them.
    """
    for line, offset, length, seps, quotes in scan.wide:
        if quotes:
            with file.open("rb") as handle:
                handle.seek(offset)
                text = handle.read(length).decode(encoding, errors="replace")
            seps = re.sub(r'"[^"]*"?', "", text).count(sep)
        if seps + 1 > limit:
            return line, seps + 1
    return None


# ------------------------------------------------------------- workbooks ---

class Beyond(Exception):
    """A cell holding a value beyond the limits: reading the sheet stopped there.

    ``reason`` is ``"grid"`` (outside A1:XFD1048576), ``"columns"``, ``"rows"``,
    ``"cells"`` (the values so far span more rows × columns than allowed), ``"text"``
    (the cell's text is longer than the cell limit; ``start`` holds its first
    characters, ``size`` the bytes read before stopping), ``"string"`` (the same
    for shared string number ``row`` of the shared-strings part, named by ``cell``)
    or ``"unpacked"`` (the text of the cells, a shared string counted at every cell
    that uses it, adds up to more than allowed: ``size``).
    """

    def __init__(self, reason: str, cell: str, row: int | None, value: str | None, rows: int,
                 columns: int, dimension: str | None, *, start: str | None = None,
                 size: int = 0) -> None:
        super().__init__(f"{reason}: {shorten(cell)}")
        self.reason, self.cell, self.row, self.value = reason, cell, row, value
        self.rows, self.columns, self.dimension = rows, columns, dimension
        self.start, self.size = start, size


def cell_name(row: int, column: int) -> str:
    """``(1048576, 16384)`` → ``'XFD1048576'`` (R1C20000 past the last column letters)."""
    from openpyxl.utils import get_column_letter

    return f"{get_column_letter(column)}{row}" if column <= 18_278 else f"R{row}C{column}"


def zip_directory_size(path: Path) -> int | None:
    """The size of a zip file's directory (its list of parts), from its end record, read
    before the directory itself; None if there is no end record (not a zip file)."""
    size = path.stat().st_size
    with path.open("rb") as handle:
        handle.seek(max(0, size - 22 - 0xFFFF))
        tail = handle.read()
        at = tail.rfind(b"PK\x05\x06")
        if at < 0 or len(tail) - at < 22:
            return None
        entries, directory = struct.unpack("<HI", tail[at + 10: at + 16])
        if entries == 0xFFFF or directory == 0xFFFFFFFF:   # zip64: the sizes are elsewhere
            locator = tail[at - 20: at] if at >= 20 else b""
            if locator[:4] != b"PK\x06\x07":
                return None
            handle.seek(struct.unpack("<Q", locator[8:16])[0])
            record = handle.read(56)
            if record[:4] != b"PK\x06\x06":
                return None
            directory = struct.unpack("<Q", record[40:48])[0]
    return directory


def parquet_footer_size(path: Path) -> int | None:
    """The size of a Parquet file's footer (its metadata), from the four bytes before the
    closing ``PAR1``, read before the footer itself; None if the file does not end so."""
    size = path.stat().st_size
    if size < 12:
        return None
    with path.open("rb") as handle:
        handle.seek(size - 8)
        tail = handle.read(8)
    return struct.unpack("<I", tail[:4])[0] if tail[4:] == b"PAR1" else None


def _no_doctype(*_) -> None:
    raise ValueError("a DOCTYPE declaration, which no workbook part has")


def _parse(archive: zipfile.ZipFile, part: str, start=None, end=None, text=None) -> None:
    """Stream-parse one part with the given expat handlers, 64 KB at a time.

    Text reaches the handlers as it is read, but expat keeps a tag (with its
    attributes) or a comment whole until it ends: one longer than
    :data:`_MAX_TAG_BYTES` stops the parse (a workbook's take a few hundred bytes).
    """
    parser = expat.ParserCreate(namespace_separator=" ")
    parser.buffer_text = True
    parser.StartDoctypeDeclHandler = _no_doctype
    if start:
        parser.StartElementHandler = start
    if end:
        parser.EndElementHandler = end
    if text:
        parser.CharacterDataHandler = text
    fed = 0
    with archive.open(part) as stream:
        while block := stream.read(1 << 16):
            parser.Parse(block, False)
            fed += len(block)
            # Outside a handler, CurrentByteIndex is where the last parse event began.
            if fed - parser.CurrentByteIndex > _MAX_TAG_BYTES:
                raise ValueError(f"{shorten(part)} holds a tag or comment longer than "
                                 f"{_MAX_TAG_BYTES // 1_000_000} MB, which no workbook part has")
    parser.Parse(b"", True)


def _local(name: str) -> str:
    return name[name.rfind(" ") + 1:]


def _relations(archive: zipfile.ZipFile, part: str) -> dict[str, tuple[str, str]]:
    """A part's relationships: id → (type, path of the target in the archive)."""
    folder, base = posixpath.split(part)
    rels = posixpath.join(folder, "_rels", base + ".rels")
    found: dict[str, tuple[str, str]] = {}
    if rels not in archive.namelist():
        return found

    def start(name, attrs):
        if _local(name) == "Relationship" and attrs.get("TargetMode") != "External":
            target = attrs.get("Target", "")
            path = (target.lstrip("/") if target.startswith("/")
                    else posixpath.normpath(posixpath.join(folder, target)))
            found[attrs.get("Id", "")] = (attrs.get("Type", ""), path)

    _parse(archive, rels, start)
    return found


def workbook_parts(archive: zipfile.ZipFile):
    """The sheets as (name, part) in the workbook's order, the shared-strings and styles
    parts (or None), and the date epoch (1900 or 1904)."""
    from openpyxl.utils.datetime import MAC_EPOCH, WINDOWS_EPOCH

    book = next((path for kind, path in _relations(archive, "").values()
                 if kind.endswith("/officeDocument")), "xl/workbook.xml")
    relations = _relations(archive, book)
    sheets: list[tuple[str, str | None]] = []
    epoch = [WINDOWS_EPOCH]

    def start(name, attrs):
        tag = _local(name)
        if tag == "sheet":
            rid = next((v for k, v in attrs.items() if k.endswith(" id")), "")
            sheets.append((attrs.get("name", ""), relations.get(rid, ("", None))[1]))
        elif tag == "workbookPr" and attrs.get("date1904", "0").lower() in ("1", "true"):
            epoch[0] = MAC_EPOCH

    _parse(archive, book, start)
    parts = {kind.rsplit("/", 1)[-1]: path for kind, path in relations.values()}
    return sheets, parts.get("sharedStrings"), parts.get("styles"), epoch[0]


_ESCAPED = re.compile(r"_x([0-9A-Fa-f]{4})_")


def _unescape(text: str) -> str:
    """OOXML writes characters XML cannot hold as ``_xHHHH_`` (``_x000D_`` is a carriage return)."""
    return _ESCAPED.sub(lambda m: chr(int(m.group(1), 16)), text) if "_x" in text else text


def shared_strings(archive: zipfile.ZipFile, part: str | None, max_cell_bytes: int
                   ) -> tuple[list[str], array]:
    """The workbook's shared strings, in order (rich-text runs joined, phonetic hints left
    out), and each one's size in bytes (UTF-8).

    Raises :class:`Beyond` (reason ``"string"``) at the first string longer than
    ``max_cell_bytes``, as soon as that much of it is read.
    """
    strings: list[str] = []
    sizes = array("q")
    if part is None:
        return strings, sizes
    state: dict = {"runs": None, "text": None, "phonetic": 0, "size": 0}

    def start(name, attrs):
        tag = _local(name)
        if tag == "si":
            state["runs"], state["size"] = [], 0
        elif tag == "rPh":
            state["phonetic"] += 1
        elif tag == "t" and state["runs"] is not None and not state["phonetic"]:
            state["text"] = []

    def end(name):
        tag = _local(name)
        if tag == "t" and state["text"] is not None:
            state["runs"].append("".join(state["text"]))
            state["text"] = None
        elif tag == "rPh":
            state["phonetic"] -= 1
        elif tag == "si":
            strings.append(_unescape("".join(state["runs"])))
            sizes.append(state["size"])
            state["runs"] = None

    def text(data):
        if state["text"] is not None:
            state["size"] += _size(data)
            state["text"].append(data)
            if state["size"] > max_cell_bytes:
                begun = "".join(state["runs"]) + "".join(state["text"][:2])
                raise Beyond("string", part, len(strings) + 1, None, 0, 0, None,
                             start=begun[:SHOWN_CHARACTERS], size=state["size"])

    _parse(archive, part, start, end, text)
    return strings, sizes


def date_styles(archive: zipfile.ZipFile, part: str | None) -> tuple[set[str], set[str]]:
    """The cell styles (as written in ``s="..."``) that show dates, and those showing durations."""
    custom: dict[int, str] = {}
    formats: list[int] = []
    inside = [False]

    def start(name, attrs):
        tag = _local(name)
        if tag == "numFmt":
            custom[int(attrs.get("numFmtId", "-1"))] = attrs.get("formatCode", "")
        elif tag == "cellXfs":
            inside[0] = True
        elif tag == "xf" and inside[0]:
            formats.append(int(attrs.get("numFmtId", "0")))

    def end(name):
        if _local(name) == "cellXfs":
            inside[0] = False

    if part is not None:
        _parse(archive, part, start, end)
    from openpyxl.styles.numbers import BUILTIN_FORMATS, is_date_format, is_timedelta_format

    codes = [custom.get(number, BUILTIN_FORMATS.get(number)) for number in formats]
    return ({str(i) for i, code in enumerate(codes) if code and is_date_format(code)},
            {str(i) for i, code in enumerate(codes) if code and is_timedelta_format(code)})


@lru_cache(maxsize=1 << 14)
def _column_number(letters: str) -> int:
    if not re.fullmatch(r"[A-Za-z]{1,3}", letters):
        raise ValueError(f"a cell reference with column {shorten(letters)!r}")
    number = 0
    for letter in letters.upper():
        number = number * 26 + ord(letter) - 64
    return number


class SheetReader:
    """The expat handlers that read one worksheet; only cells holding a value are kept.

    Attributes
    ----------
    rows, columns : array of int
        Row and column (from 1) of each value kept.
    values : list
        The values, converted as openpyxl would.
    width : int
        The last column holding a value.
    dimension : str or None
        The range the sheet declares (``<dimension ref="A1:F120"/>``), which may
        be wrong; only the cells are trusted.
    unknown : list of (cell, row, column, formula)
        The first formula cells without a stored value; ``n_unknown`` counts them all.
    text_bytes : int
        The bytes of text of the cells kept, a shared string counted at every cell using it.
    """

    def __init__(self, strings: list[str], styles: tuple[set[str], set[str]], epoch, *,
                 max_rows: int, max_columns: int, max_cells: int, max_cell_bytes: int,
                 max_text_bytes: int, sizes: array | None = None) -> None:
        from openpyxl.utils.datetime import from_excel, from_ISO8601

        self.strings, (self.dates, self.spans), self.epoch = strings, styles, epoch
        self.from_excel, self.from_iso = from_excel, from_ISO8601
        self.max_rows, self.max_columns, self.max_cells = max_rows, max_columns, max_cells
        self.max_cell_bytes, self.max_text_bytes = max_cell_bytes, max_text_bytes
        self.sizes = array("q", (_size(text) for text in strings)) if sizes is None else sizes
        self.size = self.text_bytes = 0   # the cell's text so far; the text of all cells
        self.rows, self.columns, self.values = array("q"), array("q"), []
        self.row = self.column = self.width = self.n_rows = self._last = 0
        self.dimension: str | None = None
        self.unknown: list[tuple[str, int, int, str]] = []
        self.n_unknown = 0
        self.cell: tuple | None = None
        self.value = self.formula = self.inline = self.text = None
        self.phonetic = 0

    def start(self, name: str, attrs: dict) -> None:
        tag = name[name.rfind(" ") + 1:]
        if tag == "c":
            ref = attrs.get("r")
            if ref:
                letters = ref.rstrip("0123456789")
                column = _column_number(letters)
                row = int(ref[len(letters):]) if len(letters) < len(ref) else self.row
            else:
                column, row = self.column + 1, self.row
            if row < 1:
                raise ValueError(f"a cell reference {shorten(ref)!r}")
            self.column = column
            self.cell = (row, column, attrs.get("t", "n"), attrs.get("s"))
            self.value = self.formula = self.inline = None
            self.size = 0
        elif tag in ("v", "f"):
            self.text = []
        elif tag == "is":
            self.inline = []
        elif tag == "t" and self.inline is not None and not self.phonetic:
            self.text = []
        elif tag == "rPh":
            self.phonetic += 1
        elif tag == "row":
            self.row = int(attrs["r"]) if "r" in attrs else self.row + 1
            self.column = 0
        elif tag == "dimension":
            self.dimension = attrs.get("ref")

    def characters(self, data: str) -> None:
        if self.text is not None:
            self.text.append(data)
            self.size += _size(data)
            if self.size > self.max_cell_bytes:
                self._too_long()

    def _too_long(self) -> None:
        """Stop at a cell whose text (value, inline runs and formula) passes the cell limit."""
        row, column = self.cell[:2] if self.cell else (self.row, self.column)
        begun = "".join(self.inline or ()) + "".join(self.text[:2])
        raise Beyond("text", cell_name(row, column), row, None, self.n_rows, self.width,
                     self.dimension, start=begun[:SHOWN_CHARACTERS], size=self.size)

    def end(self, name: str) -> None:
        tag = name[name.rfind(" ") + 1:]
        if tag == "v":
            self.value, self.text = "".join(self.text), None
        elif tag == "f":
            self.formula, self.text = "".join(self.text), None
        elif tag == "t" and self.text is not None:
            self.inline.append("".join(self.text))
            self.text = None
        elif tag == "rPh":
            self.phonetic -= 1
        elif tag == "c" and self.cell is not None:
            self._keep(*self.cell)
            self.cell = None

    def _keep(self, row: int, column: int, kind: str, style: str | None) -> None:
        raw = self.value
        if self.formula is not None and (raw is None or (raw == "" and kind != "str")):
            self.n_unknown += 1   # a formula whose result was never stored
            if len(self.unknown) < _SHOWN_CELLS:
                self.unknown.append((cell_name(row, column), row, column, self.formula))
            return
        if kind == "inlineStr":
            value = raw = _unescape("".join(self.inline)) if self.inline is not None else None
        elif not raw:
            return
        elif kind == "s":
            index = int(raw)
            value = raw = self.strings[index]
            self.size = self.sizes[index]
        elif kind == "b":
            value = raw.strip() in ("1", "true")
        elif kind in ("str", "e"):
            value = raw = _unescape(raw)
        elif kind == "d":
            value = self.from_iso(raw)
        else:
            try:
                value = float(raw) if ("." in raw or "e" in raw or "E" in raw) else int(raw)
            except ValueError:
                value = raw
            if style in self.dates and isinstance(value, int | float):
                try:
                    value = self.from_excel(value, self.epoch, timedelta=style in self.spans)
                except (OverflowError, ValueError):
                    pass   # kept as the number; validation says it is not a date
        if value is None or value == "":
            return
        self.text_bytes += self.size
        if self.text_bytes > self.max_text_bytes:
            raise Beyond("unpacked", cell_name(row, column), row, None, self.n_rows, self.width,
                         self.dimension, size=self.text_bytes)
        self._place(row, column, raw)
        self.rows.append(row)
        self.columns.append(column)
        self.values.append(value)

    def _place(self, row: int, column: int, raw: str | None) -> None:
        """Refuse a value beyond the limits before keeping it."""
        reason = None
        if column > EXCEL_COLUMNS or row > EXCEL_ROWS:
            reason = "grid"
        elif column > self.max_columns:
            reason = "columns"
        elif row > self.max_rows + 1:   # the header takes a row
            reason = "rows"
        if row != self._last:
            self.n_rows, self._last = self.n_rows + 1, row
        self.width = max(self.width, column)
        # The first row holding values is the header: its cells are not counted, as in a
        # text file, so the same tables need the same limit in every format.
        if reason is None and max(self.n_rows - 1, 0) * self.width > self.max_cells:
            reason = "cells"
        if reason is not None:
            raise Beyond(reason, cell_name(row, column), row, raw, self.n_rows, self.width,
                         self.dimension)

    def grid(self) -> tuple[np.ndarray, np.ndarray]:
        """The values as an object array (rows holding a value × columns up to the last
        value; empty cells None) and each of those rows' number in the sheet."""
        rows = np.frombuffer(self.rows, dtype=np.int64) if len(self.rows) else np.zeros(0, np.int64)
        columns = np.frombuffer(self.columns, dtype=np.int64) if len(self.columns) else rows
        numbers, position = np.unique(rows, return_inverse=True)
        grid = np.full((len(numbers), self.width), None, dtype=object)
        values = np.empty(len(self.values), dtype=object)
        values[:] = self.values
        grid[position.reshape(-1), columns - 1] = values
        return grid, numbers


def read_sheet(archive: zipfile.ZipFile, part: str, strings: list[str],
               styles: tuple[set[str], set[str]], epoch, *, max_rows: int, max_columns: int,
               max_cells: int, max_cell_bytes: int, max_text_bytes: int,
               sizes: array | None = None) -> SheetReader:
    """Read one worksheet part; raises :class:`Beyond` at the first value beyond the limits.

    ``sizes`` are the shared strings' sizes in bytes (from :func:`shared_strings`);
    ``max_text_bytes`` bounds the text of the cells kept (a shared string counted at every
    cell that uses it).
    """
    sheet = SheetReader(strings, styles, epoch, max_rows=max_rows, max_columns=max_columns,
                        max_cells=max_cells, max_cell_bytes=max_cell_bytes,
                        max_text_bytes=max_text_bytes, sizes=sizes)
    _parse(archive, part, sheet.start, sheet.end, sheet.characters)
    return sheet
