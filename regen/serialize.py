"""Saved models are JSON: readable, diffable, and never executed when loaded.

A model file is one JSON object with ``format`` (always ``"regen-model"``),
``schema_version``, ``kind`` (the result class) and ``regen_version``; the rest
is the kind's own content. :func:`read_model_file` checks all four before anything
is built, so a truncated, tampered, foreign or newer file gives a clear error.
Files are written through regen's one writer (atomic, and a file regen did not
write is not replaced without ``force=True``).

A model file may come from anywhere, so reading one is bounded: it can neither run
code nor exhaust the machine, and every problem is a :class:`ModelFileError` that
names the file.

- **The file**: a regular file (not a folder, pipe or device) of at most
  :data:`MAX_FILE_BYTES`, checked before it is read; strict JSON (the literals
  ``NaN`` and ``Infinity`` are refused: regen writes a non-finite number as the
  text ``"inf"``, ``"-inf"`` or ``"nan"``); lists and objects nested at most
  :data:`MAX_DEPTH` deep.
- **The numbers** the model computes with are finite: coefficients, their
  covariance (symmetric, with a positive diagonal), the scale, the random
  effects' covariance (symmetric, diagonal >= 0: a variance estimated at 0 is a
  fit on its boundary), the residual SD (> 0), the lag, spline knots and every
  other number of a transform's state. Only what is reported and never computed
  with may be non-finite: a lag profile's log-likelihood (``-inf`` where a lag
  cannot fit), GEE's QIC and working correlation.
- **The formula and design** are checked by :func:`regen.design.design_from_dict`
  before any design matrix is built: a formula from a safe subset that cannot run
  code or explode in time or memory, at most :data:`MAX_PARAMETERS` coefficients
  (their count is checked against the covariance first), and caps on variables
  and levels.

:func:`regen.load_model` (in :mod:`regen.results`) reads a file with
:func:`read_model_file` and builds the result class its kind names.
"""

from __future__ import annotations

import json
import math
import os
import stat
from pathlib import Path

import numpy as np
import pandas as pd

from regen._util import json_safe
from regen._version import __version__
from regen._write import write_text
from regen.exceptions import RegenError

__all__ = ["MAX_DEPTH", "MAX_FILE_BYTES", "MAX_PARAMETERS", "SCHEMA_VERSION", "ModelFileError",
           "read_model_file", "stored_number", "stored_numbers", "stored_parameters",
           "write_model_file"]

SCHEMA_VERSION = 1
FORMAT = "regen-model"

#: A model file larger than this (bytes) is refused before it is read; regen's are kilobytes.
MAX_FILE_BYTES = 10 * 1024 * 1024
#: Deepest nesting of JSON lists and objects in a model file (regen's own reach 6).
MAX_DEPTH = 32
#: Most coefficients a model may have; also the most columns its formula's design may have.
MAX_PARAMETERS = 500


class ModelFileError(RegenError, ValueError):
    """A model file cannot be read as a regen model."""


def write_model_file(path: str | Path, kind: str, content: dict, *, force: bool = False) -> Path:
    """Write ``content`` as a model file of ``kind`` through regen's one writer; returns the path.

    The write is atomic. A file at ``path`` that regen did not write (or that was
    changed since) is refused with :class:`~regen.exceptions.OutputError` unless
    ``force=True``; regen's own unchanged file is replaced.
    """
    document = {"format": FORMAT, "schema_version": SCHEMA_VERSION, "kind": kind,
                "regen_version": __version__, **json_safe(content, nan="nan")}
    return write_text(path, json.dumps(document, indent=1, allow_nan=False), force=force)


# ------------------------------------------------------------------ reading --

def _refuse_constant(name: str):
    raise ModelFileError(f"it holds the JSON literal {name}, which strict JSON does not allow "
                         "(regen writes a non-finite number as the text \"inf\" or \"nan\")")


def _depth(document) -> int:
    """How deeply lists and objects nest in ``document`` (without recursion), stopping early
    past :data:`MAX_DEPTH`."""
    deepest, stack = 0, [(document, 1)]
    while stack:
        value, depth = stack.pop()
        if not isinstance(value, dict | list):
            continue
        deepest = max(deepest, depth)
        if depth > MAX_DEPTH:
            break
        stack.extend((item, depth + 1) for item in (value.values() if isinstance(value, dict)
                                                    else value))
    return deepest


def _read_bounded(path: Path) -> bytes:
    """The bytes of ``path``: a regular file of at most MAX_FILE_BYTES, checked before reading."""
    try:
        # Non-blocking, so that opening a named pipe cannot wait for a writer.
        descriptor = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except FileNotFoundError:
        raise ModelFileError(f"{path}: no such model file") from None
    except OSError as error:
        raise ModelFileError(f"{path}: cannot open the model file ({error.strerror})") from None
    info = os.fstat(descriptor)
    if not stat.S_ISREG(info.st_mode) or info.st_size > MAX_FILE_BYTES:
        os.close(descriptor)
        if not stat.S_ISREG(info.st_mode):
            raise ModelFileError(f"{path} is not a regular file (a folder, pipe or device); "
                                 "give the JSON file saved with fit.save(path)")
        raise ModelFileError(f"{path} is {info.st_size:,} bytes; a regen model file is at "
                             f"most {MAX_FILE_BYTES:,} bytes (regen's own are kilobytes), "
                             "so this is not one")
    with os.fdopen(descriptor, "rb") as handle:
        data = handle.read(MAX_FILE_BYTES + 1)
    if len(data) > MAX_FILE_BYTES:  # it grew after the check
        raise ModelFileError(f"{path} is larger than {MAX_FILE_BYTES:,} bytes; not a model file")
    return data


def read_model_file(path: str | Path) -> dict:
    """Read and check a model file's envelope (size, strict JSON, depth); returns the document."""
    path = Path(path)
    data = _read_bounded(path)
    try:
        document = json.loads(data.decode("utf-8"), parse_constant=_refuse_constant)
    except ModelFileError as error:
        raise ModelFileError(f"{path} is not a regen model file: {error}") from None
    except RecursionError:
        raise ModelFileError(f"{path} is not a regen model file: its JSON nests deeper than "
                             f"{MAX_DEPTH} levels") from None
    except ValueError as error:  # not UTF-8, not JSON, a number too long to convert
        raise ModelFileError(f"{path} is not a regen model file (not valid JSON: {error}); "
                             "save the model again with fit.save(path)") from None
    if _depth(document) > MAX_DEPTH:
        raise ModelFileError(f"{path} is not a regen model file: its JSON nests deeper than "
                             f"{MAX_DEPTH} levels (regen's own nest 6)")
    if not isinstance(document, dict) or document.get("format") != FORMAT:
        raise ModelFileError(f"{path} is JSON but not a regen model file (no format "
                             f"'{FORMAT}')")
    version = document.get("schema_version")
    if version != SCHEMA_VERSION:
        raise ModelFileError(f"{path} has model schema version {version!r}; this regen "
                             f"({__version__}) reads version {SCHEMA_VERSION}. Refit the model "
                             "with this version, or use the regen that saved it.")
    return document


# ------------------------------------------------------------------ numbers --

def stored_numbers(document: dict, key: str, shape: tuple | None = None, *,
                   finite: bool = True) -> np.ndarray:
    """``document[key]`` as a float array of ``shape`` (``None`` in it: any length).

    regen stores a non-finite number as the text "inf" or "nan", which the conversion
    turns back into one; so finiteness is checked after it. Raises
    :class:`ModelFileError` naming ``key``.
    """
    try:
        values = np.asarray(document[key], dtype="float64")
    except (TypeError, ValueError) as error:
        raise ModelFileError(f"{key} is not a list of numbers ({error})") from None
    if shape is not None and (values.ndim != len(shape) or any(
            want is not None and have != want
            for have, want in zip(values.shape, shape, strict=True))):
        raise ModelFileError(f"{key} has shape {values.shape}; expected {shape}")
    if finite and not np.isfinite(values).all():
        raise ModelFileError(f"{key} holds a number that is not finite (inf or NaN); the model "
                             "cannot compute with it")
    return values


def stored_number(document: dict, key: str, *, finite: bool = True,
                  positive: bool = False) -> float:
    """``document[key]`` as one float: finite (unless ``finite=False``) and, with
    ``positive``, > 0."""
    value = document[key]
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ModelFileError(f"{key} is not a number: {type(value).__name__}")
    try:
        number = float(value)
    except (ValueError, OverflowError):
        raise ModelFileError(f"{key} is not a number: {str(value)[:40]!r}") from None
    if finite and not math.isfinite(number):
        raise ModelFileError(f"{key} is {number}; it must be a finite number")
    if positive and not number > 0:
        raise ModelFileError(f"{key} is {number:g}; it must be > 0")
    return number


def _covariance(document: dict, key: str, names: list[str], *, zero_variance: bool) -> np.ndarray:
    size = len(names)
    matrix = stored_numbers(document, key, (size, size))
    if np.abs(matrix - matrix.T).max(initial=0.0) > 1e-8 * max(np.abs(matrix).max(initial=0.0),
                                                               1e-300):
        raise ModelFileError(f"{key} is not symmetric, so it is not a covariance matrix")
    diagonal = np.diag(matrix)
    bad = diagonal < 0 if zero_variance else ~(diagonal > 0)
    if bad.any():
        name = names[int(np.flatnonzero(bad)[0])]
        raise ModelFileError(f"{key} gives {name} the variance {diagonal[bad][0]:g}; a variance "
                             f"must be {'>= 0' if zero_variance else '> 0'}")
    return matrix


def stored_parameters(document: dict, *, scale: bool = False) -> tuple[pd.Series, pd.DataFrame]:
    """The coefficients (``parameters``, ``params``) and their ``covariance``, checked.

    At most :data:`MAX_PARAMETERS` distinct names; every number finite; the
    covariance square of their size, symmetric, with a positive diagonal. With
    ``scale``, ``log_scale`` must be one of them and ``exp(log_scale)`` a finite
    positive number. Call this before building the design.
    """
    names = document["parameters"]
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        raise ModelFileError("parameters is not a list of names")
    if not 0 < len(names) <= MAX_PARAMETERS:
        raise ModelFileError(f"{len(names)} parameters; a model has 1 to {MAX_PARAMETERS}")
    if len(set(names)) != len(names):
        raise ModelFileError("parameters names one coefficient twice")
    params = pd.Series(stored_numbers(document, "params", (len(names),)), index=names)
    covariance = _covariance(document, "covariance", names, zero_variance=False)
    if scale:
        if "log_scale" not in params.index:
            raise ModelFileError("the parameters have no log_scale")
        with np.errstate(over="ignore"):
            sigma = np.exp(params["log_scale"])
        if not 0 < sigma < np.inf:
            raise ModelFileError(f"log_scale {params['log_scale']:g} gives the scale {sigma:g}; "
                                 "it must be a finite number > 0")
    return params, pd.DataFrame(covariance, index=names, columns=names)


def stored_random_covariance(document: dict, key: str, terms: list[str]) -> pd.DataFrame:
    """A random-effects covariance: symmetric, finite, each variance >= 0 (0: on the boundary)."""
    if not all(isinstance(t, str) for t in terms) or len(set(terms)) != len(terms):
        raise ModelFileError("the random-effect terms are not distinct names")
    matrix = _covariance(document, key, terms, zero_variance=True)
    return pd.DataFrame(matrix, index=terms, columns=terms)
