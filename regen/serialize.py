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


def design_from_dict(formula: str, design: dict):
    """The formulaic model spec of ``formula`` with the stored levels and transform state."""
    import numpy as np
    import pandas as pd
    from formulaic import model_matrix

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
    if kind not in kinds:
        raise ModelFileError(f"{path}: unknown model kind {kind!r}; known: {', '.join(kinds)}")
    try:
        return kinds[kind]._from_document(document)
    except (KeyError, TypeError, ValueError, IndexError) as error:
        raise ModelFileError(f"{path} is damaged ({type(error).__name__}: {error}); save the "
                             "model again") from None
