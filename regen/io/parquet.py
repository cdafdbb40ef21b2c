"""Reading a Parquet table, its size checked from the footer before any data are read.

A Parquet file's footer is read only if its size is plausible; its rows, columns, values
(a list holds many) and uncompressed size come from it. Text columns are read
dictionary-encoded, in batches, so that a value stored once for many rows is measured
(longest cell, size once decoded) before it is copied to every row.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from regen._scan import parquet_footer_size, shorten
from regen.io.limits import LONG_FIX, Budget, mb, raise_limit, too_many
from regen.io.raw import RawTable, column_name, finish

__all__ = ["read_parquet"]

#: Integer columns become pandas' nullable integers: exact, also with missing values
#: (to_pandas would otherwise make an integer column with a gap float64); text stays in
#: Arrow, as from a CSV file (not one Python object a cell).
_PANDAS_TYPES = {pa.int8(): pd.Int8Dtype(), pa.int16(): pd.Int16Dtype(),
                 pa.int32(): pd.Int32Dtype(), pa.int64(): pd.Int64Dtype(),
                 pa.uint8(): pd.UInt8Dtype(), pa.uint16(): pd.UInt16Dtype(),
                 pa.uint32(): pd.UInt32Dtype(), pa.uint64(): pd.UInt64Dtype(),
                 pa.string(): pd.StringDtype("pyarrow"), pa.large_string(): pd.StringDtype("pyarrow")}
_MAX_PARQUET_FOOTER = 32_000_000   # a Parquet file's metadata (a few KB for a table)
_PARQUET_BATCH_ROWS = 65_536   # rows decoded at a time, each batch measured before the next
_UNPACKED_FIX = "check that this is the right file; if it is, " + raise_limit(
    "max_uncompressed_bytes")


def read_parquet(file: Path, name: str, problems, budget: Budget) -> RawTable | None:
    """Read table ``name`` from a Parquet file within what ``budget`` leaves, and spend it.

    Returns None, with the reason in ``problems``, if the file is refused or cannot be read.
    """
    parquet = None
    try:
        footer = parquet_footer_size(file)
        if footer is not None and footer > _MAX_PARQUET_FOOTER:
            raise ValueError(f"its footer takes {mb(footer)}; a table's takes a few KB")
        parquet = pq.ParquetFile(file)
        meta = parquet.metadata   # the footer only: no data read yet
        rows, columns = meta.num_rows, meta.num_columns
        if _refused_by_footer(file, name, parquet, problems, budget):
            return None
        text = [f.name for f in parquet.schema_arrow if _variable_width(f.type)]
        parquet.close()
        parquet = pq.ParquetFile(file, metadata=meta, read_dictionary=text)
        read = _read_batches(file, name, parquet, problems, budget)
        if read is None:
            return None
        table, size = read
        table = table.cast(pa.schema([f.with_type(f.type.value_type)
                                      if pa.types.is_dictionary(f.type) else f
                                      for f in table.schema], metadata=table.schema.metadata))
        frame = table.to_pandas(types_mapper=_PANDAS_TYPES.get)
        del table
    except Exception as error:  # pyarrow raises many types for a damaged file
        problems.add_table(
            file.name, name,
            f"not a readable Parquet file ({type(error).__name__}: {shorten(error, 300)})",
            "write the table again, or export it as CSV",
        )
        return None
    finally:
        if parquet is not None:
            parquet.close()
    budget.spend(file.name, rows * columns, size)
    # A named index (df.set_index("patient_id").to_parquet()) holds data: it becomes a
    # column again. An unnamed one is pandas' row numbers and is dropped.
    named = [level for level in frame.index.names if level is not None]
    if named:
        frame = frame.reset_index(level=named, allow_duplicates=True)
    frame = frame.reset_index(drop=True)
    return finish(frame, name, file.name, problems, rows=np.arange(1, len(frame) + 1),
                  header_row=0)


def _refused_by_footer(file: Path, name: str, parquet: pq.ParquetFile, problems,
                       budget: Budget) -> bool:
    """Record a problem if the footer declares a column a cell cannot hold (a list, a
    struct), more rows, columns or cells than the limits leave, or data that unpack to
    more than the budget left."""
    meta, schema = parquet.metadata, parquet.schema_arrow
    rows, columns = meta.num_rows, meta.num_columns
    nested = [f for f in schema if pa.types.is_nested(f.type)]
    if nested:
        problems.add(file.name, name, None, column_name(nested[0].name), None,
                     f"column of {shorten(nested[0].type)}, which a table's cell cannot hold",
                     "write the column as text, numbers or dates")
        return True
    if too_many(file.name, name, problems, budget, rows=rows, columns=columns):
        return True
    # Declared data, and the fixed-width columns as they will be in memory (a column
    # of nulls, or dictionary-encoded, may take little room in the file).
    declared = sum(meta.row_group(i).total_byte_size for i in range(meta.num_row_groups))
    fixed = sum(rows * f.type.bit_width // 8 for f in schema if _fixed_width(f.type))
    if max(declared, fixed) > budget.unpacked:
        problems.add(file.name, name, None, None, None,
                     budget.unpacked_rule(f"data that unpack to {mb(max(declared, fixed))}"),
                     _UNPACKED_FIX)
        return True
    return False


def _read_batches(file: Path, name: str, parquet: pq.ParquetFile, problems, budget: Budget
                  ) -> tuple[pa.Table, int] | None:
    """The file's rows, text dictionary-encoded, and the bytes they take once decoded; None,
    with a problem recorded, at the first value longer than the cell limit or once the
    columns take more than the budget left.

    In batches, text dictionary-encoded (each value stored once), each batch measured
    as it would be decoded before the next is read: a footer can understate the data.
    """
    batches, size, rows_read = [], 0, 0
    for batch in parquet.iter_batches(batch_size=_PARQUET_BATCH_ROWS):
        part = pa.Table.from_batches([batch])
        part_size, longest = _decoded(part, budget.limits.max_cell_bytes)
        if longest is not None:
            at, j, length = longest
            problems.add(file.name, name, rows_read + at + 1,
                         column_name(part.column_names[j]), None,
                         f"value of {length:,} bytes, more than the limit of "
                         f"{budget.limits.max_cell_bytes:,} bytes for one cell", LONG_FIX)
            return None
        size += part_size
        if size > budget.unpacked:
            problems.add(file.name, name, None, None, None, budget.unpacked_rule(
                f"columns that take more than {mb(size)} once read (each dictionary-encoded "
                "value counted at every row; reading stopped there)"), _UNPACKED_FIX)
            return None
        batches.append(batch)
        rows_read += len(batch)
    table = pa.Table.from_batches(batches, schema=parquet.schema_arrow if not batches
                                  else batches[0].schema)
    return table, size


def _fixed_width(kind: pa.DataType) -> bool:
    try:
        return kind.bit_width > 0 and not pa.types.is_dictionary(kind)
    except ValueError:   # variable width: no bit_width
        return False


def _variable_width(kind: pa.DataType) -> bool:
    if pa.types.is_dictionary(kind):
        kind = kind.value_type
    return (pa.types.is_string(kind) or pa.types.is_large_string(kind) or pa.types.is_binary(kind)
            or pa.types.is_large_binary(kind))


def _decoded(table: pa.Table, limit: int) -> tuple[int, tuple[int, int, int] | None]:
    """The bytes the text columns of ``table`` take once each dictionary is decoded (their
    values, and four bytes of offset a row), plus those of the other columns as they are;
    and the first value longer than ``limit`` bytes as (row, column, bytes), or None."""
    total = 0
    for j, column in enumerate(table.columns):
        if not _variable_width(column.type):
            total += column.nbytes
            continue
        offset = 0
        for chunk in column.chunks:
            if pa.types.is_dictionary(chunk.type):
                lengths = pc.take(pc.binary_length(chunk.dictionary), chunk.indices)
            else:
                lengths = pc.binary_length(chunk)
            total += (pc.sum(lengths).as_py() or 0) + 4 * len(chunk)
            if len(chunk) and (pc.max(lengths).as_py() or 0) > limit:
                at = pc.index(pc.greater(lengths, limit), True).as_py()
                return total, (offset + at, j, int(lengths[at].as_py()))
            offset += len(chunk)
    return total, None
