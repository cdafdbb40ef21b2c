"""The design layer: formula to covariates, and back from a model file.

Every model turns its formula into a design matrix here, and this is the only
module that reads formulaic's internals (a model spec's encoder and transform
state). A fitted formula is a :class:`Design`:

- :meth:`Design.fit` builds it from data (the matrices of the rows with every
  variable, and the design that rebuilds them); :meth:`Design.check` refuses a
  design that cannot be estimated, naming the covariate and the fix;
- :meth:`Design.matrix` rebuilds its covariates for new profiles, refusing levels
  the model never saw; :meth:`Design.typical_profiles` gives the profiles whose
  curves regen draws and reports; :attr:`Design.levels` lists the levels;
- :meth:`Design.to_dict` and :meth:`Design.from_dict` save and rebuild the levels
  and transform state (spline knots, centres) in a model file, after
  :func:`check_formula` and the caps below have bounded what a file from
  anywhere can ask for.

The functions underneath (:func:`formula_frame`, :func:`covariates_for`,
:func:`check_full_rank`, ...) stay public for the code that works on arrays.
"""

from __future__ import annotations

import ast
import builtins
import functools
import math
import re
import warnings

import numpy as np
import pandas as pd

from regen._write import literal
from regen.exceptions import ModelError
from regen.serialize import MAX_PARAMETERS, ModelFileError

__all__ = ["Design", "MAX_EXPONENT", "MAX_FORMULA_CHARS", "MAX_LEVELS", "MAX_TERMS", "MAX_TOTAL_LEVELS",
           "MAX_TRANSFORM_SIZE", "MAX_VARIABLES", "aliased_columns", "categorical_levels",
           "check_formula", "check_full_rank", "check_levels", "covariates_for",
           "design_from_dict", "design_to_dict", "formula_columns", "formula_frame", "no_column",
           "spline_hint",
           "stored_yes_no", "typical_profiles", "typical_value", "yes_no_columns"]

#: Longest formula a model file may hold, in characters.
MAX_FORMULA_CHARS = 1000
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


# ------------------------------------------------------------ fitting data --

def check_full_rank(X: np.ndarray, names: list[str], what: str, *, why: str = "") -> None:
    """Refuse a design whose columns repeat others (:func:`aliased_columns`): a
    :class:`~regen.exceptions.ModelError` that starts with ``what`` ("the design of
    '~ ...' is") and names the columns, ``why`` they may repeat, and the fix."""
    aliased = aliased_columns(X, names)
    if aliased:
        raise ModelError(f"{what} rank deficient: {', '.join(aliased)} repeat(s) the other "
                         f"columns{why}.{spline_hint(names)}")


def spline_hint(names: list[str]) -> str:
    if any(name.startswith(("cr(", "cc(")) and "constraints" not in name for name in names):
        return (" cr() and cc() splines sum to 1 and so repeat the intercept: write "
                "cr(day, df=4, constraints='center'), or use bs(day, df=4).")
    return " Drop a covariate with a single value or one that repeats others."


def aliased_columns(X: np.ndarray, names: list[str]) -> list[str]:
    """The columns a pivoted QR finds to be linear combinations of the others."""
    from scipy.linalg import qr

    _, R, pivot = qr(X, mode="economic", pivoting=True)
    diagonal = np.abs(np.diag(R))
    rank = int(np.sum(diagonal > diagonal[0] * max(X.shape) * np.finfo(float).eps)) \
        if len(diagonal) else 0
    return [names[j] for j in sorted(pivot[rank:])]


def check_levels(spec, rows: pd.DataFrame, formula: str) -> None:
    """Refuse a categorical covariate with a single value in these rows (formulaic would
    encode it as no column at all, and the model would silently lose it)."""
    for name, state in spec.encoder_state.items():
        if getattr(state[0], "value", state[0]) != "categorical" or name not in rows.columns:
            continue
        values = rows[name].dropna().unique()
        if len(values) < 2:
            raise ModelError(f"{name} has a single value ({values[0] if len(values) else 'none'}) "
                             f"in these data, so {formula!r} cannot estimate its effect; drop it "
                             "from the formula")


def covariates_for(spec, profiles: pd.DataFrame, formula: str) -> np.ndarray:
    """A fitted formula's covariates for new profiles, or a ValueError that says what is wrong.

    A level of a categorical covariate the model never saw is refused with the
    known levels (formulaic would silently encode it as the reference level).
    """
    if not isinstance(profiles, pd.DataFrame):
        raise TypeError("profiles must be a DataFrame with one row per patient profile")
    frame = formula_frame(profiles)
    for name, state in spec.encoder_state.items():
        if getattr(state[0], "value", state[0]) != "categorical" or name not in frame.columns:
            continue
        known = list(state[1]["categories"])
        unseen = sorted({str(v) for v in frame[name].dropna().unique()} - {str(k) for k in known})
        if unseen:
            raise ValueError(f"{name} {', '.join(map(repr, unseen))} was not in the data the model "
                             f"was fitted to; known: {', '.join(map(str, known))}")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # formulaic's and pandas' notices about dtypes
            return np.asarray(spec.get_model_matrix(frame, na_action="raise"), dtype="float64")
    except Exception as error:  # formulaic raises several types for a bad profile
        raise ValueError(f"cannot build the model's covariates {formula!r} from the profiles "
                         f"({type(error).__name__}: {error}); give every covariate a value") \
            from None


def no_column(name: str, formula: str, columns) -> str:
    """The message for a formula naming a column the data do not have: the closest names."""
    import difflib

    names = [str(c) for c in columns]
    close = difflib.get_close_matches(name, names, n=3, cutoff=0.6)
    hint = (f"did you mean {' or '.join(map(repr, close))}?" if close else
            f"the data have {', '.join(sorted(names)[:20])}{', ...' if len(names) > 20 else ''}")
    return f"no column {name!r} in the data for the formula {formula!r}; {hint}"


def yes_no_columns(data: pd.DataFrame, spec) -> tuple[str, ...]:
    """The variables of a fitted formula that are yes/no (boolean) columns of ``data``.

    :func:`formula_frame` makes them 0/1 numbers for the formula; the model records
    them (``yes_no``, saved with it) so that a prediction takes yes/no words for them.
    """
    return tuple(sorted(name for name in spec.required_variables
                        if name in data.columns and pd.api.types.is_bool_dtype(data[name])))


def formula_columns(frame: pd.DataFrame, formula: str, *others: str | None) -> pd.DataFrame:
    """``frame`` narrowed to the columns ``formula`` may read and the ``others`` named (None
    skipped), so that :func:`formula_frame` converts only those: every column whose name
    occurs in the formula's text (a superset of its variables), or all of them when the
    formula has a ``.`` (all columns) term."""
    if re.search(r"(^|[\s~+*:(])\.($|[\s+*:)])", formula):
        return frame
    keep = {other for other in others if other is not None}
    return frame[[c for c in frame.columns if c in keep or str(c) in formula]]


@functools.lru_cache(maxsize=256)
def _parsed(formula: str):
    """formulaic's parse of a formula, kept: a fit or a bootstrap replicate does not parse
    the same text again (0.7 ms of a 1,000-episode AFT fit's 10)."""
    from formulaic import Formula

    return Formula(formula)


def formula_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """A copy whose text columns are categorical and yes/no columns 0/1 for the formula.

    regen's tables hold text as pandas' string dtype and yes/no as nullable
    booleans; formula libraries read plain objects and numbers. Rows are picked by
    their index label after the design drops incomplete ones, so an index with
    repeated labels (episodes concatenated without ``ignore_index``) is replaced by
    the row positions, which messages then name.
    """
    out = frame.copy() if frame.index.is_unique else frame.reset_index(drop=True)
    for name in out.columns:
        dtype = out[name].dtype
        if isinstance(dtype, pd.StringDtype):
            out[name] = pd.Series(out[name].to_numpy(dtype=object, na_value=None),
                                  index=out.index, name=name)
        elif pd.api.types.is_bool_dtype(dtype):
            out[name] = out[name].astype("float64")
    return out




def typical_value(column: pd.Series):
    """A column's typical value: the median of a number, else the most common value."""
    if pd.api.types.is_numeric_dtype(column) and not pd.api.types.is_bool_dtype(column):
        return float(column.median())
    return column.mode().iloc[0]


def typical_profiles(data: pd.DataFrame, variables, by: str | None = None, groups=(None,),
                     exclude=()) -> pd.DataFrame:
    """One row per group of ``by`` (one row when None) holding ``variables`` (less
    ``exclude``), each at :func:`typical_value` over ``data``, and ``by`` at its group."""
    rows = []
    for group in groups:
        row = {name: group if name == by else typical_value(data[name])
               for name in sorted(set(variables) - set(exclude))}
        if by is not None:
            row[by] = group
        rows.append(row)
    return pd.DataFrame(rows)


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


# ------------------------------------------------------------------- Design --

class Design:
    """One fitted formula: what turns a table into the model's covariates, and back.

    Parameters
    ----------
    formula : str
        The formula (``"~ nerve + age"``, or ``"pain ~ bs(day, df=4)"``; the
        covariates are its right-hand side).
    spec : formulaic ModelSpec
        The fitted right-hand side: its levels and transform state.
    yes_no : tuple of str or None
        The variables that were yes/no columns in the data it was fitted to (None:
        not known, a model file from an older regen).
    """

    def __init__(self, formula: str, spec, yes_no=None):
        self.formula = formula
        self.spec = spec
        self.yes_no = None if yes_no is None else tuple(yes_no)

    @classmethod
    def fit(cls, formula: str, frame: pd.DataFrame, data: pd.DataFrame | None = None):
        """The design of ``formula`` over ``frame`` (a :func:`formula_frame`), rows with a
        missing value left out, and formulaic's matrices (``.lhs`` and ``.rhs`` when the
        formula has a response). ``data`` is the table before :func:`formula_frame`,
        whose yes/no columns the design records (default ``frame``)."""
        from formulaic import ModelMatrices, model_matrix
        from formulaic.errors import FormulaicError

        try:
            matrices = model_matrix(_parsed(formula), frame, na_action="drop")
        except FormulaicError as error:
            missing = re.search(r"`([^`]+)` is not present in the dataset", str(error))
            if missing is None:
                raise
            raise ValueError(no_column(missing.group(1), formula,
                                       (frame if data is None else data).columns)) from None
        rhs = matrices.rhs if isinstance(matrices, ModelMatrices) else matrices
        source = frame if data is None else data
        return cls(formula, rhs.model_spec, yes_no_columns(source, rhs.model_spec)), matrices

    @classmethod
    def from_dict(cls, formula: str, stored: dict) -> Design:
        """The design a model file stored (:meth:`to_dict`), checked within the caps before
        anything is built (:func:`design_from_dict`)."""
        spec = design_from_dict(formula, stored)
        return cls(formula, spec, stored_yes_no(stored))

    def to_dict(self) -> dict:
        """Variables, levels, transform state and ``yes_no`` (when known), as JSON."""
        return design_to_dict(self.spec, self.yes_no)

    @property
    def names(self) -> list[str]:
        """The columns of the design matrix, in order."""
        return list(self.spec.column_names)

    @property
    def variables(self) -> list[str]:
        """The table columns the covariates are built from."""
        return sorted(self.spec.required_variables)

    @property
    def levels(self) -> dict[str, list[str]]:
        """Each variable encoded as categorical, and its levels (as text)."""
        return categorical_levels(self.spec)

    def rows(self, frame: pd.DataFrame) -> pd.DataFrame:
        """The covariates of ``frame``'s rows (a :func:`formula_frame` of data fitted to),
        every column as when fitted, as formulaic's matrix (a DataFrame)."""
        return self.spec.get_model_matrix(frame, na_action="raise")

    def matrix(self, profiles: pd.DataFrame) -> np.ndarray:
        """The covariates of new profiles (:func:`covariates_for`): a ValueError names a
        level the model never saw, or a covariate without a value."""
        return covariates_for(self.spec, profiles, self.formula)

    def check(self, X: np.ndarray, rows: pd.DataFrame, *, what: str | None = None,
              why: str = "") -> None:
        """Refuse a design that cannot be estimated: a categorical covariate with a single
        value in ``rows`` (:func:`check_levels`), or columns of ``X`` that repeat others
        (:func:`check_full_rank`; ``what`` starts the message)."""
        check_levels(self.spec, rows, self.formula)
        check_full_rank(X, self.names, what or f"the design of {self.formula!r} is", why=why)

    def typical_profiles(self, data: pd.DataFrame, by: str | None = None, groups=(None,),
                         exclude=()) -> pd.DataFrame:
        """One profile per group of ``by`` with every variable at its typical value over
        ``data`` (:func:`typical_profiles`)."""
        return typical_profiles(data, self.variables, by, groups, exclude)

    def __repr__(self) -> str:
        return f"Design({self.formula!r}, columns={self.names})"
