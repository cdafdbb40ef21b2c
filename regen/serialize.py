"""Saved models are JSON: readable, diffable, and never executed when loaded.

A model file is one JSON object with ``format`` (always ``"regen-model"``),
``schema_version``, ``kind`` (the result class) and ``regen_version``; the rest
is the kind's own content. :func:`load_model` checks all four before it builds
anything, so a truncated, tampered, foreign or newer file gives a clear error.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

from regen._version import __version__
from regen.exceptions import RegenError

__all__ = ["SCHEMA_VERSION", "ModelFileError", "design_from_dict", "design_to_dict", "load_model",
           "read_model_file", "write_model_file"]

SCHEMA_VERSION = 1
FORMAT = "regen-model"


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


def write_model_file(path: str | Path, kind: str, content: dict) -> Path:
    """Write ``content`` as a model file of ``kind``; returns the path."""
    path = Path(path)
    document = {"format": FORMAT, "schema_version": SCHEMA_VERSION, "kind": kind,
                "regen_version": __version__, **_plain(content)}
    path.write_text(json.dumps(document, indent=1, allow_nan=False), encoding="utf-8")
    return path


def read_model_file(path: str | Path) -> dict:
    """Read and check a model file's envelope; returns the whole document."""
    path = Path(path)
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ModelFileError(f"{path}: no such model file") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ModelFileError(f"{path} is not a regen model file (not valid JSON: {error}); "
                             "save the model again with fit.save(path)") from None
    if not isinstance(document, dict) or document.get("format") != FORMAT:
        raise ModelFileError(f"{path} is JSON but not a regen model file (no format "
                             f"'{FORMAT}')")
    version = document.get("schema_version")
    if version != SCHEMA_VERSION:
        raise ModelFileError(f"{path} has model schema version {version!r}; this regen "
                             f"({__version__}) reads version {SCHEMA_VERSION}. Refit the model "
                             "with this version, or use the regen that saved it.")
    return document


def design_to_dict(spec) -> dict:
    """What rebuilds a formula's covariates for new data: variables, levels, transform state."""
    categories = {name: list(state[1]["categories"])
                  for name, state in spec.encoder_state.items()
                  if getattr(state[0], "value", state[0]) == "categorical"}
    return {"variables": sorted(spec.required_variables), "categories": categories,
            "transform_state": _encode_arrays(spec.transform_state)}


def _encode_arrays(value):
    """numpy arrays in a transform's state (a spline's constraints) as tagged lists."""
    import numpy as np

    if isinstance(value, np.ndarray):
        return {"ndarray": value.tolist(), "dtype": str(value.dtype)}
    if isinstance(value, dict):
        return {key: _encode_arrays(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_encode_arrays(item) for item in value]
    return value


def _decode_arrays(value):
    import numpy as np

    if isinstance(value, dict):
        if set(value) == {"ndarray", "dtype"}:
            if value["dtype"] not in ("float64", "int64", "bool"):
                raise ValueError(f"array of dtype {value['dtype']!r} in a transform's state")
            return np.asarray(value["ndarray"], dtype=value["dtype"])
        return {key: _decode_arrays(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_decode_arrays(item) for item in value]
    return value


#: Functions a formula read from a model file may call: formulaic's transforms, nothing else.
SAFE_CALLS = frozenset({"I", "C", "Q", "bs", "cr", "cc", "cs", "center", "scale", "standardize",
                        "poly", "log", "log2", "log10", "exp", "exp2", "exp10", "Treatment",
                        "Sum", "Helmert", "Diff", "Poly", "contr"})
#: numpy functions a formula read from a model file may call, as ``np.<name>``.
SAFE_NUMPY = frozenset({"log", "log1p", "log2", "log10", "exp", "expm1", "sqrt", "abs", "square",
                        "power", "clip", "minimum", "maximum", "where"})


def check_formula(formula: str) -> None:
    """Refuse a formula that could run code when it is evaluated.

    formulaic evaluates each term as Python, so a model file whose formula says
    ``I(__import__('os').system(...))`` would run that command on loading. A
    formula from a file may only name columns, numbers and text, use arithmetic,
    and call formulaic's transforms (:data:`SAFE_CALLS`) and a few numpy functions
    (:data:`SAFE_NUMPY`).
    """
    import ast

    from formulaic import Formula

    try:
        parsed = Formula(formula)
    except Exception as error:  # formulaic's parser raises several types
        raise ValueError(f"formula {formula!r} cannot be parsed ({error})") from None
    parts = list(parsed.rhs) + list(parsed.lhs) if hasattr(parsed, "rhs") else list(parsed)
    allowed = (ast.Expression, ast.Name, ast.Load, ast.Constant, ast.BinOp, ast.UnaryOp,
               ast.operator, ast.unaryop, ast.Call, ast.keyword, ast.List, ast.Tuple,
               ast.Compare, ast.cmpop)
    for term in parts:
        for factor in term.factors:
            if getattr(factor.eval_method, "value", factor.eval_method) != "python":
                continue
            tree = ast.parse(str(factor.expr), mode="eval")
            for node in ast.walk(tree):
                numpy = (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name)
                         and node.value.id in ("np", "numpy") and node.attr in SAFE_NUMPY)
                bad = not (isinstance(node, allowed) or numpy)
                bad |= isinstance(node, ast.Name) and node.id.startswith("_")
                bad |= isinstance(node, ast.Call) and not (
                    (isinstance(node.func, ast.Name) and node.func.id in SAFE_CALLS)
                    or isinstance(node.func, ast.Attribute))  # np.<safe>, checked as a node
                if bad:
                    raise ValueError(f"formula term {factor.expr!r} is not allowed in a model "
                                     "file: only columns, numbers, arithmetic and formulaic's "
                                     "transforms are")


def design_from_dict(formula: str, design: dict):
    """The formulaic model spec of ``formula`` with the stored levels and transform state."""
    import numpy as np
    import pandas as pd
    from formulaic import model_matrix

    check_formula(formula)

    formula = "~" + formula.split("~", 1)[1]     # the covariates only, not the response
    categories = design["categories"]
    # Distinct positive numbers, so that splines and logs can be built before the
    # stored state (knots, centres) replaces what these made up values would give.
    rows = max([len(levels) for levels in categories.values()] + [12])
    reference = pd.DataFrame({name: np.linspace(1.0, 2.0, rows) for name in design["variables"]})
    for name, levels in categories.items():
        reference[name] = pd.Categorical([levels[i % len(levels)] for i in range(rows)],
                                         categories=levels)
    return model_matrix(formula, reference).model_spec.update(
        transform_state=_decode_arrays(design["transform_state"]))


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
        The file is missing, not JSON, not a regen model, of another schema
        version, or damaged (a field missing or of the wrong type).
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
        raise ModelFileError(f"{path}: unknown model kind {kind!r}; known: {', '.join(kinds)}")
    try:
        return kinds[kind]._from_document(document)
    except Exception as error:
        raise ModelFileError(f"{path} is damaged ({type(error).__name__}: {error}); save the "
                             "model again") from None
