"""Saved models are JSON: readable, diffable, and never executed when loaded.

A model file is one JSON object with ``format`` (always ``"regen-model"``),
``schema_version``, ``kind`` (the result class) and ``regen_version``; the rest
is the kind's own content. :func:`load_model` checks all four before it builds
anything, so a truncated, tampered, foreign or newer file gives a clear error.
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
- **The formula** is from a safe subset that cannot run code or explode in time
  or memory (:func:`check_formula`).
- **The design**: at most :data:`MAX_PARAMETERS` coefficients (their count is
  checked against the covariance first), :data:`MAX_VARIABLES` variables,
  :data:`MAX_LEVELS` levels per categorical covariate and
  :data:`MAX_TOTAL_LEVELS` in all, and a formula whose design could not have
  more than :data:`MAX_PARAMETERS` columns, all checked before any design
  matrix is built.
"""

from __future__ import annotations

import ast
import builtins
import json
import math
import os
import re
import stat
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from regen._version import __version__
from regen._write import literal, write_text
from regen.exceptions import RegenError

__all__ = ["MAX_DEPTH", "MAX_FILE_BYTES", "MAX_FORMULA_CHARS", "MAX_PARAMETERS", "SCHEMA_VERSION",
           "ModelFileError", "categorical_levels", "check_formula", "design_from_dict",
           "design_to_dict", "load_model", "read_model_file", "stored_number",
           "stored_numbers", "stored_parameters", "stored_yes_no", "write_model_file"]

SCHEMA_VERSION = 1
FORMAT = "regen-model"

#: A model file larger than this (bytes) is refused before it is read; regen's are kilobytes.
MAX_FILE_BYTES = 10 * 1024 * 1024
#: Deepest nesting of JSON lists and objects in a model file (regen's own reach 6).
MAX_DEPTH = 32
#: Longest formula a model file may hold, in characters.
MAX_FORMULA_CHARS = 1000
#: Most coefficients a model may have; also the most columns its formula's design may have.
MAX_PARAMETERS = 500
#: Most variables a model's formula may use.
MAX_VARIABLES = 100
#: Most levels of one categorical covariate, and of all of them together.
MAX_LEVELS = 500
MAX_TOTAL_LEVELS = 2000
#: Most terms a formula may expand to (``a * b * c`` is 7 terms, ``(a + b)**2`` is 3).
MAX_TERMS = 200
#: Largest exponent in a formula (``I(age ** 2)``, ``np.power(day, 0.5)``).
MAX_EXPONENT = 10
#: Largest degrees of freedom or degree of a spline or polynomial, and longest list in a formula.
MAX_TRANSFORM_SIZE = 50


class ModelFileError(RegenError, ValueError):
    """A model file cannot be read as a regen model."""


def _plain(value):
    """JSON cannot hold inf or NaN: write them as strings and read them back."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if hasattr(value, "tolist"):  # numpy arrays and scalars
        return _plain(value.tolist())
    return value


def write_model_file(path: str | Path, kind: str, content: dict, *, force: bool = False) -> Path:
    """Write ``content`` as a model file of ``kind`` through regen's one writer; returns the path.

    The write is atomic. A file at ``path`` that regen did not write (or that was
    changed since) is refused with :class:`~regen.exceptions.OutputError` unless
    ``force=True``; regen's own unchanged file is replaced.
    """
    document = {"format": FORMAT, "schema_version": SCHEMA_VERSION, "kind": kind,
                "regen_version": __version__, **_plain(content)}
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


# ------------------------------------------------------------------ formulas --

#: Functions a formula read from a model file may call: formulaic's transforms, nothing else.
SAFE_CALLS = frozenset({"I", "C", "Q", "bs", "cr", "cc", "cs", "center", "scale", "standardize",
                        "poly", "log", "log2", "log10", "exp", "exp2", "exp10", "Treatment",
                        "Sum", "Helmert", "Diff", "Poly", "contr"})
#: numpy functions a formula read from a model file may call, as ``np.<name>``.
SAFE_NUMPY = frozenset({"log", "log1p", "log2", "log10", "exp", "expm1", "sqrt", "abs", "square",
                        "power", "clip", "minimum", "maximum", "where"})
#: Transforms whose second argument, ``df`` or ``degree`` sets how many columns they make.
_SIZED = frozenset({"bs", "cr", "cc", "cs", "poly"})
#: Calls that raise to a power: ``np.power(x, p)``, ``np.square(x)``, ``exp10(x)`` (x ** 10).
_POWERS = frozenset({"np.power", "numpy.power", "np.square", "numpy.square", "exp10"})
_ARITHMETIC = (ast.Add, ast.Sub, ast.Mult, ast.Div, ast.FloorDiv, ast.Mod, ast.Pow)
_ALLOWED = (ast.Expression, ast.Name, ast.Load, ast.Constant, ast.BinOp, ast.UnaryOp, ast.Call,
            ast.keyword, ast.List, ast.Tuple, ast.Compare, ast.Attribute, ast.operator,
            ast.unaryop, ast.cmpop)
#: Formula operators (Wilkinson notation) a model file's formula may use.
_OPERATORS = frozenset({"~", "+", "-", "*", "/", "in", ":", "**"})


def _first_line(error: Exception) -> str:
    """formulaic's message without its colour codes and the marked-up formula under it."""
    lines = re.sub(r"\x1b\[[0-9;]*m", "", str(error)).strip().splitlines()
    return literal(lines[0] if lines else type(error).__name__)[:200]


def _refuse(expr: str, why: str):
    raise ModelFileError(f"formula term {expr!r} is not allowed in a model file: {why}")


def _call_name(node: ast.Call) -> str:
    func = node.func
    if isinstance(func, ast.Name):
        return func.id
    if isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name):
        return f"{func.value.id}.{func.attr}"
    return ""


def _is_power(node) -> bool:
    return isinstance(node, ast.BinOp) and isinstance(node.op, ast.Pow) or \
        isinstance(node, ast.Call) and _call_name(node) in _POWERS


def _small_exponent(node) -> bool:
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub | ast.UAdd):
        node = node.operand
    return isinstance(node, ast.Constant) and type(node.value) in (int, float) and \
        abs(node.value) <= MAX_EXPONENT


def _holds_text(node, text_variables) -> bool:
    """True if ``node`` may be text or a list (a comparison's result is not)."""
    stack = [node]
    while stack:
        item = stack.pop()
        if isinstance(item, ast.Compare):
            continue
        if isinstance(item, ast.Constant) and isinstance(item.value, str | bytes) or \
                isinstance(item, ast.List | ast.Tuple) or \
                isinstance(item, ast.Name) and item.id in text_variables:
            return True
        stack.extend(ast.iter_child_nodes(item))
    return False


def _check_call(expr: str, node: ast.Call) -> None:
    name = _call_name(node)
    module, _, attribute = name.partition(".")
    if not (name in SAFE_CALLS or module in ("np", "numpy") and attribute in SAFE_NUMPY):
        _refuse(expr, f"it calls {name or ast.unparse(node.func)[:40]!r}; only formulaic's "
                f"transforms ({', '.join(sorted(SAFE_CALLS))}) and "
                f"np.{{{', '.join(sorted(SAFE_NUMPY))}}} may be called")
    for keyword in node.keywords:
        if keyword.arg is None or keyword.arg.startswith("_"):
            _refuse(expr, f"{name}() gets {'**' if keyword.arg is None else keyword.arg + '='}")
    if name in _SIZED:
        sizes = node.args[1:2] + [k.value for k in node.keywords if k.arg in ("df", "degree")]
        for size in sizes:
            whole = isinstance(size, ast.Constant) and type(size.value) is int
            if not (whole and 0 <= size.value <= MAX_TRANSFORM_SIZE or
                    isinstance(size, ast.Constant) and size.value is None):
                _refuse(expr, f"{name}()'s degrees of freedom or degree must be a whole number "
                        f"from 0 to {MAX_TRANSFORM_SIZE}, written out")
    if name in _POWERS:
        base = node.args[0] if node.args else None
        exponent = node.args[1] if name.endswith("power") and len(node.args) > 1 else None
        if name.endswith("power") and not _small_exponent(exponent):
            _refuse(expr, f"np.power's exponent must be a number from -{MAX_EXPONENT} to "
                    f"{MAX_EXPONENT}")
        if base is not None and any(_is_power(n) for n in ast.walk(base)):
            _refuse(expr, "a power of a power can be too large to compute")


def _check_expression(expr: str, text_variables: frozenset) -> None:
    """One Python factor of a formula (``I(age - 50)``, ``bs(age, df=3)``) against the rules."""
    try:
        tree = ast.parse(expr.strip(), mode="eval")
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        _refuse(expr, "it is not a Python expression regen can check")
    called = set()
    for node in ast.walk(tree):
        if not isinstance(node, _ALLOWED):
            _refuse(expr, f"{type(node).__name__} is not one of the columns, numbers, text, "
                    "arithmetic and formulaic transforms a model file may use")
        if isinstance(node, ast.Call):
            _check_call(expr, node)
            called.add(node.func)
        elif isinstance(node, ast.Attribute):
            if not (node in called and isinstance(node.value, ast.Name)):
                _refuse(expr, f"attribute .{node.attr} is only allowed as np.<function>(...)")
            called.add(node.value)
        elif isinstance(node, ast.Name):
            if node.id.startswith("_") or node not in called and (
                    node.id in vars(builtins) or node.id in ("np", "numpy")):
                _refuse(expr, f"the name {node.id!r} is not a column")
        elif isinstance(node, ast.Constant):
            if type(node.value) not in (int, float, str, bool, type(None)):
                _refuse(expr, f"the constant {node.value!r} is not a number or text")
        elif isinstance(node, ast.List | ast.Tuple):
            if len(node.elts) > MAX_TRANSFORM_SIZE:
                _refuse(expr, f"a list has more than {MAX_TRANSFORM_SIZE} items")
        elif isinstance(node, ast.UnaryOp):
            if not isinstance(node.op, ast.USub | ast.UAdd):
                _refuse(expr, "bitwise and logical operators (~, not) are not allowed")
        elif isinstance(node, ast.BinOp):
            if not isinstance(node.op, _ARITHMETIC):
                _refuse(expr, "shifts and bitwise operators (<< >> & | ^ @) are not allowed")
            if _holds_text(node.left, text_variables) or _holds_text(node.right, text_variables):
                _refuse(expr, "arithmetic on text or lists is not allowed")
            if isinstance(node.op, ast.Pow):
                if not _small_exponent(node.right):
                    _refuse(expr, f"an exponent must be a number from -{MAX_EXPONENT} to "
                            f"{MAX_EXPONENT} (as in I(age ** 2))")
                if any(_is_power(n) for n in ast.walk(node.left)):
                    _refuse(expr, "a power of a power can be too large to compute")


def _term_count(formula: str) -> None:
    """Refuse a formula whose terms would take too long to expand (``a*b*c*...``,
    ``(a + b)**30``), by bounding their number on formulaic's syntax tree, without expanding."""
    from formulaic.parser import DefaultFormulaParser
    from formulaic.parser.types import ASTNode

    try:
        tree = DefaultFormulaParser().get_ast(formula)
    except Exception as error:  # formulaic's parser raises several types
        raise ModelFileError(f"formula {formula[:80]!r} cannot be parsed "
                             f"({_first_line(error)})") from None
    counts: dict[int, int] = {}
    stack = [(tree, False)]
    while stack:
        node, ready = stack.pop()
        if not isinstance(node, ASTNode):
            counts[id(node)] = 1
            continue
        symbol = node.operator.symbol
        if symbol not in _OPERATORS:
            raise ModelFileError(f"formula operator {symbol!r} is not allowed in a model file; "
                                 "only ~ + - * / : ** %in%")
        if not ready:
            stack.append((node, True))
            stack.extend((arg, False) for arg in node.args)
            continue
        sizes = [counts[id(arg)] for arg in node.args]
        if symbol == "**":
            power = getattr(node.args[1], "token", "")
            if not (power.isascii() and power.isdigit() and 1 <= int(power) <= MAX_EXPONENT):
                raise ModelFileError(f"formula power ** {str(power)[:20]} is not allowed in a "
                                     f"model file: use a whole number from 1 to {MAX_EXPONENT}")
            count = sizes[0] ** int(power)
        elif symbol == ":":
            count = math.prod(sizes)
        elif symbol == "*":
            count = sum(sizes) + math.prod(sizes)
        elif symbol == "-" and len(sizes) == 2:
            count = sizes[0]
        else:
            count = sum(sizes)
        if count > MAX_TERMS:
            raise ModelFileError(f"formula {formula[:80]!r} expands to more than {MAX_TERMS} "
                                 "terms; a model file's formula may have at most that many")
        counts[id(node)] = count


def _checked_terms(formula, text_variables=()) -> list:
    from formulaic import Formula

    if not isinstance(formula, str):
        raise ModelFileError(f"the formula is {type(formula).__name__}, not text")
    if len(formula) > MAX_FORMULA_CHARS:
        raise ModelFileError(f"the formula is {len(formula):,} characters long; a model file's "
                             f"formula has at most {MAX_FORMULA_CHARS:,}")
    _term_count(formula)
    try:
        parsed = Formula(formula)
    except Exception as error:  # formulaic's parser raises several types
        raise ModelFileError(f"formula {formula!r} cannot be parsed ({_first_line(error)})") \
            from None
    parts = list(parsed.rhs) + list(parsed.lhs) if hasattr(parsed, "rhs") else list(parsed)
    text_variables = frozenset(text_variables)
    for term in parts:
        for factor in term.factors:
            if getattr(factor.eval_method, "value", factor.eval_method) == "python":
                _check_expression(str(factor.expr), text_variables)
    return parts


def check_formula(formula: str, *, text_variables=()) -> None:
    """Refuse a formula that could run code, or explode in time or memory, when evaluated.

    formulaic evaluates each term as Python, so a model file whose formula says
    ``I(__import__('os').system(...))`` would run that command on loading, and
    ``I(9**9**9)`` would never finish. A formula from a model file may use:

    - at most :data:`MAX_FORMULA_CHARS` characters, and formula operators
      ``~ + - * / : ** %in%`` expanding to at most :data:`MAX_TERMS` terms
      (``**`` with a whole number from 1 to :data:`MAX_EXPONENT`);
    - columns, numbers and text; calls of formulaic's transforms
      (:data:`SAFE_CALLS`) and of a few numpy functions (``np.<name>``,
      :data:`SAFE_NUMPY`), with no keyword starting with ``_`` and no ``**kwargs``;
      no other name of Python's (``open``, ``eval``), no other attribute, nothing
      starting with ``_``;
    - arithmetic ``+ - * / // %`` and comparisons, but no shifts or bitwise
      operators (``<< >> & | ^ ~ @``) and no ``not``;
    - a power (``**``, ``np.power``, ``np.square``, ``exp10``) only with a
      constant exponent from -:data:`MAX_EXPONENT` to :data:`MAX_EXPONENT`, and
      never of another power (``(9**16)**16`` and ``9**9**9`` are refused);
    - no arithmetic on text or lists (``'a' * 10**9``, ``[0] * 10**9``) or on a
      text column (``text_variables``), except inside a comparison
      (``(nerve == 'intercostal') * 2``);
    - a spline's or polynomial's ``df`` or ``degree`` (``bs``, ``cr``, ``cc``,
      ``cs``, ``poly``) a whole number written out, at most
      :data:`MAX_TRANSFORM_SIZE`, and lists of at most that many items.

    Parameters
    ----------
    formula : str
    text_variables : iterable of str, optional
        Columns that hold text (a model's categorical covariates).

    Raises
    ------
    ModelFileError
        Naming the term and the rule it breaks (a ``ValueError``).

    Examples
    --------
    >>> check_formula("~ nerve + I((age - 50) / 10) + bs(age, df=3)")
    >>> check_formula("~ I(9**9**9)")  # doctest: +SKIP
    ModelFileError: formula term 'I(9 ** 9 ** 9)' is not allowed in a model file: ...
    """
    _checked_terms(formula, text_variables)


# ------------------------------------------------------------------- design --

def _encoded_variable(key: str, variables) -> str | None:
    """The variable a categorical factor encodes: ``nerve`` for ``nerve`` and ``C(nerve, ...)``;
    None for another expression (``np.where(age > 50, 'older', 'younger')``)."""
    if key in variables:
        return key
    try:
        call = ast.parse(key.strip(), mode="eval").body
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return None
    if isinstance(call, ast.Call) and isinstance(call.func, ast.Name) and call.func.id == "C" \
            and call.args and isinstance(call.args[0], ast.Name) and call.args[0].id in variables:
        return call.args[0].id
    return None


def categorical_levels(spec) -> dict[str, list[str]]:
    """Each variable a fitted formula encodes as categorical, and its levels (as text)."""
    levels: dict[str, list[str]] = {}
    for key, state in spec.encoder_state.items():
        if getattr(state[0], "value", state[0]) != "categorical":
            continue
        variable = _encoded_variable(key, spec.required_variables)
        if variable is not None:
            levels.setdefault(variable, [str(level) for level in state[1]["categories"]])
    return levels


def design_to_dict(spec, yes_no=None) -> dict:
    """What rebuilds a formula's covariates for new data: variables, levels, transform state,
    and ``yes_no``, the variables that were yes/no (boolean) columns in the data it was
    fitted to (left out when not known: a model loaded from an older file)."""
    categories = {name: list(state[1]["categories"])
                  for name, state in spec.encoder_state.items()
                  if getattr(state[0], "value", state[0]) == "categorical"}
    stored = {"variables": sorted(spec.required_variables), "categories": categories,
              "transform_state": _encode_arrays(spec.transform_state)}
    return stored if yes_no is None else {**stored, "yes_no": sorted(yes_no)}


def _encode_arrays(value):
    """numpy arrays in a transform's state (a spline's constraints) as tagged lists."""
    if isinstance(value, np.ndarray):
        return {"ndarray": value.tolist(), "dtype": str(value.dtype)}
    if isinstance(value, dict):
        return {key: _encode_arrays(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_encode_arrays(item) for item in value]
    return value


def _decode_arrays(value):
    """The stored transform state with its arrays rebuilt, every number finite, every array or
    list at most MAX_PARAMETERS long (the depth is already bounded by MAX_DEPTH)."""
    if isinstance(value, dict):
        if set(value) == {"ndarray", "dtype"}:
            if value["dtype"] not in ("float64", "int64", "bool"):
                raise ModelFileError(f"array of dtype {value['dtype']!r} in a transform's state")
            array = np.asarray(value["ndarray"], dtype=value["dtype"])
            if array.size > MAX_PARAMETERS or not np.isfinite(array.astype("float64")).all():
                raise ModelFileError("a transform's state holds an array that is too large or "
                                     "not finite")
            return array
        # JSON keys are text: a polynomial's state is keyed by the powers 0, 1, 2, ...
        return {int(key) if key.isascii() and key.isdigit() and len(key) < 4 else key:
                _decode_arrays(item)
                for key, item in value.items()}
    if isinstance(value, list):
        if len(value) > MAX_PARAMETERS:
            raise ModelFileError(f"a transform's state holds a list of {len(value):,} items")
        return [_decode_arrays(item) for item in value]
    if isinstance(value, float) and not math.isfinite(value) or \
            value in ("inf", "-inf", "nan") or isinstance(value, int) and abs(value) > 2**53:
        raise ModelFileError(f"a transform's state holds {value!r}; its numbers must be finite")
    return value


def _checked_design(design) -> tuple[list[str], dict[str, list]]:
    """The stored variables and categorical levels, within the caps; nothing built yet."""
    if not isinstance(design, dict) or not isinstance(design.get("transform_state"), dict):
        raise ModelFileError("the design is not an object with variables, categories and "
                             "transform_state")
    variables, categories = design["variables"], design["categories"]
    if not isinstance(variables, list) or not all(isinstance(v, str) for v in variables):
        raise ModelFileError("the design's variables are not a list of names")
    if len(variables) > MAX_VARIABLES:
        raise ModelFileError(f"the design has {len(variables):,} variables; a model file may "
                             f"have at most {MAX_VARIABLES}")
    if not isinstance(categories, dict) or len(categories) > MAX_VARIABLES:
        raise ModelFileError("the design's categories are not an object of level lists")
    total = 0
    for name, levels in categories.items():
        if not isinstance(levels, list) or not levels or not all(
                isinstance(level, str | int | float) and not isinstance(level, bool)
                for level in levels):
            raise ModelFileError(f"the levels of {name!r} are not a list of values")
        if len(levels) > MAX_LEVELS:
            raise ModelFileError(f"{name!r} has {len(levels):,} levels; a model file may have "
                                 f"at most {MAX_LEVELS} per covariate")
        total += len(levels)
    if total > MAX_TOTAL_LEVELS:
        raise ModelFileError(f"the design has {total:,} categorical levels; a model file may "
                             f"have at most {MAX_TOTAL_LEVELS}")
    return variables, categories


def _columns_bound(terms, reference: pd.DataFrame) -> int:
    """An upper bound on the columns of the design of ``terms``, without building it.

    Each factor is built alone on the reference frame (a factor alone is small: a
    categorical has at most :data:`MAX_LEVELS` levels, a spline at most
    :data:`MAX_TRANSFORM_SIZE` degrees of freedom); a term's width is the product of its
    factors' widths, which an interaction cannot exceed. This counts a categorical however
    it is spelt (``nerve``, ``C(nerve)``, ``C(x, levels=[...])``, ``np.where(...)``).
    """
    from formulaic import model_matrix

    widths: dict[str, int] = {}
    total = 0
    for term in terms:
        width = 1
        for factor in term.factors:
            expr = str(factor.expr)
            how = getattr(factor.eval_method, "value", factor.eval_method)
            if how == "literal":
                continue
            if expr not in widths:
                if how == "lookup":
                    column = reference[expr] if expr in reference.columns else None
                    widths[expr] = (len(column.cat.categories) if column is not None and
                                    isinstance(column.dtype, pd.CategoricalDtype) else 1)
                else:
                    with warnings.catch_warnings():  # values outside a C(levels=...) list
                        warnings.simplefilter("ignore")
                        widths[expr] = model_matrix(f"~ 0 + {expr}", reference).shape[1]
            width *= widths[expr]
        total += width
    return total


def design_from_dict(formula: str, design: dict):
    """The formulaic model spec of ``formula`` with the stored levels and transform state.

    Everything is checked before a design is built (:func:`check_formula`, the
    caps on variables, levels and columns, finite transform state); the reference
    frame the spec is built on has 12 rows, however many levels there are.
    """
    from formulaic import model_matrix

    variables, categories = _checked_design(design)
    encoded = {name: _encoded_variable(name, variables) for name in categories}
    text = {encoded[name] for name, levels in categories.items()
            if encoded[name] and all(isinstance(level, str) for level in levels)}
    terms = _checked_terms(formula, text)
    state = _decode_arrays(design["transform_state"])
    stored_yes_no(design)

    formula = "~" + formula.split("~", 1)[1]     # the covariates only, not the response
    # Distinct positive numbers, so that splines and logs can be built before the stored
    # state (knots, centres) replaces what these made-up values would give. formulaic takes a
    # categorical's levels from its dtype, so 12 rows hold any number of levels.
    rows = 12
    reference = pd.DataFrame({name: np.linspace(1.0, 2.0, rows) for name in variables})
    for name, levels in categories.items():
        column = pd.Categorical([levels[i % len(levels)] for i in range(rows)], categories=levels)
        reference[encoded[name] or name] = column
    bound = _columns_bound(terms, reference)
    if bound > MAX_PARAMETERS:
        raise ModelFileError(f"the design of {formula!r} could have {bound:,} columns (levels "
                             f"times levels in its interactions); a model has at most "
                             f"{MAX_PARAMETERS}")
    return model_matrix(formula, reference).model_spec.update(transform_state=state)


def stored_yes_no(design: dict) -> tuple[str, ...] | None:
    """The variables that were yes/no columns when the model was fitted, or None for a file
    from a regen that did not record them."""
    names = design.get("yes_no")
    if names is None:
        return None
    if not isinstance(names, list) or not set(names) <= set(design["variables"]) or \
            not all(isinstance(n, str) for n in names):
        raise ModelFileError("the design's yes_no is not a list of its variables")
    return tuple(names)


def load_model(path: str | Path):
    """Load a model saved with ``fit.save(path)``.

    Parameters
    ----------
    path : str or Path
        A JSON model file.

    Returns
    -------
    RecoveryFit, RegenerationFit, TrajectoryFit or ProbabilityFit
        The fitted model, ready to predict.

    Raises
    ------
    ModelFileError
        The file is missing, too large, not strict JSON, nested too deeply, not a
        regen model, of another schema version, or damaged or unsafe: a field
        missing or of the wrong type, a number that is not finite, a covariance
        that is not one, a formula outside the safe subset (:func:`check_formula`),
        a design too large. The message names the file.

    Examples
    --------
    >>> model = regen.load_model("relief.json")  # doctest: +SKIP
    """
    from regen.mixed.gee import ProbabilityFit
    from regen.mixed.trajectory import TrajectoryFit
    from regen.survival.aft import RecoveryFit
    from regen.survival.regeneration import RegenerationFit

    document = read_model_file(path)
    kinds = {"RecoveryFit": RecoveryFit, "RegenerationFit": RegenerationFit,
             "TrajectoryFit": TrajectoryFit, "ProbabilityFit": ProbabilityFit}
    kind = document.get("kind")
    if not isinstance(kind, str) or kind not in kinds:
        raise ModelFileError(f"{path}: unknown model kind {str(kind)[:40]!r}; known: "
                             f"{', '.join(kinds)}")
    try:
        return kinds[kind]._from_document(document)
    except ModelFileError as error:
        raise ModelFileError(f"{path}: {error}") from None
    except Exception as error:
        raise ModelFileError(f"{path} is damaged ({type(error).__name__}: {str(error)[:300]}); "
                             "save the model again") from None
