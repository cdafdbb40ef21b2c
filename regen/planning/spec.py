"""What a study plan is: a design, a grid over it, the analysis, and how many studies.

A plan comes from Python (dicts) or from a TOML file (:func:`read_spec`)::

    n_sim = 1000          # simulated studies per design point
    seed = 2026
    alpha = 0.05

    [design]              # arguments of regen.simulate.cohort (model = "cohort")
    model = "cohort"      # or "trial": regen.simulate.trial
    n_patients = 200
    schedule = [14, 28, 56, 84, 112]
    diabetes_velocity_ratio = 0.8

    [analysis]
    name = "kinetics"     # kinetics, aft, ph, logrank or median
    term = "diabetes"

    [grid]                # every combination is a design point
    n_patients = [100, 200, 300]
    schedule = [[14, 28, 56, 84, 112], [42, 84]]

Every key is checked against the simulator's arguments and the analysis's options
before anything runs: an unknown or misspelt key is an error naming the file, the table
and the key, with the closest known name.
"""

from __future__ import annotations

import difflib
import hashlib
import inspect
import itertools
import json
import math
import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from regen._version import __version__
from regen.simulate import cohort, trial

__all__ = ["ANALYSES", "MAX_SPEC_BYTES", "MODELS", "Analysis", "PlanSpec", "read_spec"]

#: The simulators a design may name, by ``model``.
MODELS = {"cohort": cohort, "trial": trial}
#: The analyses a plan may run on each simulated study (see :mod:`regen.planning.analyses`).
ANALYSES = ("kinetics", "aft", "ph", "logrank", "median")
#: A plan's TOML file is a few hundred bytes; anything far larger is not one.
MAX_SPEC_BYTES = 1_000_000
_OUTCOMES = ("numbness", "relief")
_DISTS = ("weibull", "lognormal", "loglogistic")
_TOP_KEYS = {"n_sim", "seed", "alpha", "design", "analysis", "grid"}


@dataclass(frozen=True)
class Analysis:
    """The analysis run on every simulated study.

    Parameters
    ----------
    name : {"kinetics", "aft", "ph", "logrank", "median"}
        ``kinetics``: :func:`regen.fit_regeneration` on the numbness episodes, the
        velocity ratio of ``term``; ``aft``: :func:`regen.fit_recovery`, the time
        ratio of ``term``; ``ph``: :func:`regen.fit_ph`, the hazard ratio of ``term``;
        ``logrank``: :func:`regen.logrank_test` of the groups of ``term``;
        ``median``: the median time of one group (``level`` of ``term``), from
        :func:`regen.fit_recovery` (``~ 1``) on that group's episodes.
    term : str
        The covariate (a column of the episodes): ``diabetes``, ``smoker``,
        ``treatment_number``, ``age``, ``procedure``, ``nerve`` (cohort model), or
        ``group`` (trial model). Default ``diabetes`` (cohort), ``group`` (trial).
    outcome : {"numbness", "relief"}
        Which episodes of a simulated cohort (kinetics: numbness only).
    formula : str, optional
        The model's formula; default ``"~ term"``. It must contain ``term``.
    dist : {"weibull", "lognormal", "loglogistic"}
        The AFT's law (aft, median) or the velocity's (kinetics, default lognormal).
    level : str, optional
        The group whose median ``median`` estimates (default: the commonest nerve of
        the design, or the trial's control group).
    cluster : str, optional
        Standard errors and tests robust over this column's clusters (``patient_id``
        when patients are treated more than once); not for ``median``.
    frailty : str, optional
        A shared frailty over this column's groups (aft and kinetics; slower: a second or
        two a study). Not with ``cluster``.
    """

    name: str
    term: str | None = None
    outcome: str = "numbness"
    formula: str | None = None
    dist: str | None = None
    level: str | None = None
    cluster: str | None = None
    frailty: str | None = None

    def __post_init__(self) -> None:
        if self.name not in ANALYSES:
            raise ValueError(f"analysis name {self.name!r} is not one of {', '.join(ANALYSES)}"
                             f"{_closest(self.name, ANALYSES)}")
        if self.outcome not in _OUTCOMES:
            raise ValueError(f"analysis outcome {self.outcome!r} is not one of "
                             f"{', '.join(_OUTCOMES)}")
        if self.name == "kinetics" and self.outcome != "numbness":
            raise ValueError("the kinetics analysis models the numbness episodes (the axons' "
                             "regrowth); give outcome = 'numbness' or choose aft for relief")
        if self.dist is not None and self.dist not in _DISTS:
            raise ValueError(f"analysis dist {self.dist!r} is not one of {', '.join(_DISTS)}")
        if self.cluster is not None and (self.name == "median" or self.frailty is not None):
            raise ValueError("analysis cluster is for the tests of kinetics, aft, ph and "
                             "logrank, and not with frailty")
        if self.frailty is not None and self.name not in ("aft", "kinetics"):
            raise ValueError(f"analysis frailty is for aft and kinetics, not {self.name}")
        for key in ("term", "formula", "level", "cluster", "frailty"):
            value = getattr(self, key)
            if value is not None and (not isinstance(value, str) or not value.strip()):
                raise ValueError(f"analysis {key} must be a non-empty text, not {value!r}")

    def as_dict(self) -> dict[str, Any]:
        return {key: value for key, value in self.__dict__.items() if value is not None}


@dataclass(frozen=True)
class PlanSpec:
    """A checked plan: the base design, the grid over it and the analysis.

    ``points`` lists every design point: the base design updated with one combination
    of the grid's values, in the grid's order (its first key varies slowest).
    """

    design: dict[str, Any]
    analysis: Analysis
    grid: dict[str, list] = field(default_factory=dict)
    n_sim: int = 1000
    seed: int = 0
    alpha: float = 0.05

    @classmethod
    def build(cls, design: Mapping, analysis: Analysis | Mapping | str, *,
              grid: Mapping | None = None, n_sim: int = 1000, seed: int = 0,
              alpha: float = 0.05, source: str = "the plan") -> PlanSpec:
        """Check every part (``source`` names where they came from in messages)."""
        design = _checked_design(design, source)
        if isinstance(analysis, str):
            analysis = Analysis(analysis)
        elif isinstance(analysis, Mapping):
            analysis = _analysis(analysis, source)
        elif not isinstance(analysis, Analysis):
            raise TypeError(f"analysis must be a name, a mapping or an Analysis, not "
                            f"{type(analysis).__name__}")
        grid = _checked_grid(grid or {}, design, source)
        n_sim = _whole("n_sim", n_sim, 1, source)
        seed = _whole("seed", seed, 0, source)
        if isinstance(alpha, bool) or not isinstance(alpha, int | float) or not 0 < alpha < 0.5:
            raise ValueError(f"{source}: alpha must be a number between 0 and 0.5, not {alpha!r}")
        if analysis.frailty is not None and alpha != 0.05:
            raise ValueError(f"{source}: a frailty model's intervals are at 95% only (its "
                             f"profile interval of tau); give alpha = 0.05, not {alpha!r}")
        spec = cls(design, analysis, grid, n_sim, seed, float(alpha))
        for point in spec.points:  # every combination must be a design the simulator takes
            _simulator_accepts(point, source)
        return spec

    @property
    def model(self) -> str:
        return self.design.get("model", "cohort")

    @property
    def points(self) -> list[dict[str, Any]]:
        keys = list(self.grid)
        combos = itertools.product(*(self.grid[k] for k in keys)) if keys else [()]
        return [{**self.design, **dict(zip(keys, combo, strict=True))} for combo in combos]

    def fingerprint(self) -> str:
        """What makes two runs' simulations the same (not ``n_sim``: a larger plan with the
        same seed extends a smaller one, simulation by simulation)."""
        text = json.dumps({"design": self.design, "grid": self.grid, "seed": self.seed,
                           "alpha": self.alpha, "analysis": self.analysis.as_dict(),
                           "regen": __version__}, sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()

    def as_dict(self) -> dict[str, Any]:
        return {"n_sim": self.n_sim, "seed": self.seed, "alpha": self.alpha,
                "design": self.design, "analysis": self.analysis.as_dict(), "grid": self.grid}


def read_spec(path: str | os.PathLike[str]) -> PlanSpec:
    """Read and check a plan from a TOML file (the format is in this module's docstring).

    Raises
    ------
    ValueError
        Naming the file, the table and key, the value and what it must be.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such plan file; give a .toml file such as "
                                "data/plans/diabetes_velocity.toml")
    size = path.stat().st_size
    if size > MAX_SPEC_BYTES:
        raise ValueError(f"{path}: {size:,} bytes is not a plan (at most {MAX_SPEC_BYTES:,}); "
                         "check that this is the right file")
    try:
        document = tomllib.loads(path.read_bytes().decode("utf-8"))
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as error:
        raise ValueError(f"{path}: not a TOML file ({error}); see data/plans/ for examples"
                         ) from None
    unknown = set(document) - _TOP_KEYS
    if unknown:
        key = sorted(unknown)[0]
        raise ValueError(f"{path}: unknown key {key!r}{_closest(key, _TOP_KEYS)}; a plan has "
                         f"{', '.join(sorted(_TOP_KEYS))}")
    for table in ("design", "analysis"):
        if not isinstance(document.get(table), dict):
            raise ValueError(f"{path}: the [{table}] table is missing; see data/plans/")
    if not isinstance(document.get("grid", {}), dict):
        raise ValueError(f"{path}: grid must be a table, [grid]")
    return PlanSpec.build(document["design"], document["analysis"], grid=document.get("grid"),
                          n_sim=document.get("n_sim", 1000), seed=document.get("seed", 0),
                          alpha=document.get("alpha", 0.05), source=str(path))


# ----------------------------------------------------------------- checks --

def _closest(key: str, known) -> str:
    match = difflib.get_close_matches(str(key), list(known), n=1)
    return f" (did you mean {match[0]!r}?)" if match else ""


def _whole(name: str, value, low: int, source: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise ValueError(f"{source}: {name} must be a whole number ≥ {low}, not {value!r}")
    return int(value)


def _arguments(model: str) -> dict[str, inspect.Parameter]:
    parameters = inspect.signature(MODELS[model]).parameters
    return {name: p for name, p in parameters.items() if name != "seed"}


def _checked_design(design: Mapping, source: str) -> dict[str, Any]:
    if not isinstance(design, Mapping):
        raise TypeError(f"design must be a mapping of simulator arguments, not "
                        f"{type(design).__name__}")
    design = {str(k): _plain(v) for k, v in design.items()}
    model = design.get("model", "cohort")
    if model not in MODELS:
        raise ValueError(f"{source}: design model {model!r} is not one of "
                         f"{', '.join(MODELS)}{_closest(model, MODELS)}")
    known = _arguments(model)
    for key in design:
        if key == "model":
            continue
        if key == "seed":
            raise ValueError(f"{source}: design seed: each simulated study gets its own seed, "
                             "spawned from the plan's seed; give seed at the top of the plan")
        if key not in known:
            raise ValueError(f"{source}: design key {key!r} is not an argument of "
                             f"regen.simulate.{model}{_closest(key, known)}")
    if "n_patients" not in design:
        raise ValueError(f"{source}: design needs n_patients (or give it in [grid])")
    return design


def _checked_grid(grid: Mapping, design: dict[str, Any], source: str) -> dict[str, list]:
    if not isinstance(grid, Mapping):
        raise TypeError(f"grid must be a mapping of design keys to lists, not "
                        f"{type(grid).__name__}")
    known = _arguments(design.get("model", "cohort"))
    out: dict[str, list] = {}
    for key, values in grid.items():
        if key not in known:
            raise ValueError(f"{source}: grid key {key!r} is not an argument of "
                             f"regen.simulate.{design.get('model', 'cohort')}"
                             f"{_closest(key, known)}")
        if not isinstance(values, list | tuple) or not values:
            raise ValueError(f"{source}: grid {key} must be a non-empty list of values, not "
                             f"{values!r}")
        values = [_plain(v) for v in values]
        if len({json.dumps(v, sort_keys=True) for v in values}) < len(values):
            raise ValueError(f"{source}: grid {key} lists a value twice: {values!r}")
        out[str(key)] = values
    return out


def _analysis(analysis: Mapping, source: str) -> Analysis:
    known = [f for f in Analysis.__dataclass_fields__]
    for key in analysis:
        if key not in known:
            raise ValueError(f"{source}: analysis key {key!r} is not one of "
                             f"{', '.join(known)}{_closest(key, known)}")
    if "name" not in analysis:
        raise ValueError(f"{source}: analysis needs a name: one of {', '.join(ANALYSES)}")
    try:
        return Analysis(**dict(analysis))
    except ValueError as error:
        raise ValueError(f"{source}: {error}") from None


def _simulator_accepts(point: dict[str, Any], source: str) -> None:
    """Check a design point by simulating a one-patient study with it (cheap)."""
    arguments = {k: v for k, v in point.items() if k not in ("model", "n_patients")}
    model = point.get("model", "cohort")
    try:
        MODELS[model](1, seed=0, **arguments)
    except (TypeError, ValueError) as error:
        shown = {k: v for k, v in point.items() if k != "model"}
        raise ValueError(f"{source}: the design {_describe(shown)} is not one "
                         f"regen.simulate.{model} takes: {error}") from None
    n = point["n_patients"]
    if isinstance(n, bool) or not isinstance(n, int) or n < 2:
        raise ValueError(f"{source}: n_patients must be a whole number ≥ 2, not {n!r}")


def _describe(point: Mapping[str, Any]) -> str:
    return ", ".join(f"{k}={v!r}" for k, v in point.items())


def _plain(value):
    """TOML and JSON values as plain Python (tuples as lists), for fingerprints and tables."""
    if isinstance(value, tuple | list):
        return [_plain(v) for v in value]
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError(f"a plan's numbers must be finite, not {value!r}")
    return value
