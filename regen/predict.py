"""One patient's expected duration from a saved model, as data and as a sentence.

:func:`expected_duration` takes a model from :func:`regen.load_model` (an AFT from
``fit_recovery`` or the kinetics from ``fit_regeneration``) and the patient's values
as text (``{"nerve": "greater_occipital", "age": "52", "diabetes": "no"}``, as the
``regen predict`` command receives them), checks them against what the model needs,
and returns the median and quartiles with 95% CIs.
"""

from __future__ import annotations

import math

import pandas as pd

from regen.exceptions import ModelError
from regen.validation import BOOLEAN_WORDS

__all__ = ["expected_duration", "model_inputs", "sentence"]



def model_inputs(model) -> dict[str, list | None]:
    """What a model needs from a profile: each variable and its levels (None: a number)."""
    spec = model.model_spec
    levels = {}
    for name, state in spec.encoder_state.items():
        if getattr(state[0], "value", state[0]) == "categorical":
            levels[name] = [str(level) for level in state[1]["categories"]]
    needed = {name: levels.get(name) for name in sorted(spec.required_variables)}
    if type(model).__name__ == "RegenerationFit":
        needed[model.distance] = None
    return needed


def _profile(model, values: dict[str, str]) -> pd.DataFrame:
    needed = model_inputs(model)
    given = {name.replace("-", "_"): value for name, value in values.items()}
    unknown = sorted(set(given) - set(needed))
    missing = sorted(set(needed) - set(given))
    if unknown or missing:
        raise ValueError(_describe_needs(needed, missing, unknown))
    row = {}
    for name, levels in needed.items():
        text = str(given[name]).strip()
        if levels is not None:
            if text not in levels:
                raise ValueError(f"{name} {text!r} is not one the model knows: "
                                 f"{', '.join(levels)}")
            row[name] = text
            continue
        if text.lower() in BOOLEAN_WORDS:
            row[name] = float(BOOLEAN_WORDS[text.lower()])
            continue
        try:
            number = float(text)
        except ValueError:
            raise ValueError(f"{name} must be a number (or yes/no), not {text!r}") from None
        if not math.isfinite(number):
            raise ValueError(f"{name} must be a finite number, not {text!r}")
        row[name] = number
    if type(model).__name__ == "RegenerationFit" and row[model.distance] <= 0:
        raise ValueError(f"{model.distance} must be > 0 mm")
    return pd.DataFrame([row])


def _describe_needs(needed: dict, missing: list, unknown: list) -> str:
    parts = []
    if missing:
        parts.append(f"missing: {', '.join(missing)}")
    if unknown:
        parts.append(f"not used by this model: {', '.join(unknown)}")
    lines = [f"the profile does not match the model ({'; '.join(parts)}). The model needs:"]
    for name, levels in needed.items():
        kind = f"one of {', '.join(levels)}" if levels else "a number (yes/no for yes/no columns)"
        lines.append(f"  --{name.replace('_', '-')}  {kind}")
    return "\n".join(lines)


def expected_duration(model, values: dict[str, str]) -> dict:
    """Median and quartiles (days) with 95% CIs for one patient.

    Returns
    -------
    dict
        ``outcome, profile, median, median_ci_lower, median_ci_upper, q1, q3``
        (days), and ``model``: its kind and formula.
    """
    kind = type(model).__name__
    if kind not in ("RecoveryFit", "RegenerationFit"):
        raise ModelError(f"a {kind} does not predict a duration; use a model saved by "
                         "'regen fit --save' (recovery or regeneration)")
    profile = _profile(model, values)
    table = model.predict_quantile(profile, q=[0.25, 0.5, 0.75]).set_index("q")
    outcome = "numbness" if kind == "RegenerationFit" else getattr(model, "outcome", None)
    return {
        "outcome": outcome, "profile": {k: _plain(v) for k, v in values.items()},
        "median": float(table.loc[0.5, "estimate"]),
        "median_ci_lower": float(table.loc[0.5, "ci_lower"]),
        "median_ci_upper": float(table.loc[0.5, "ci_upper"]),
        "q1": float(table.loc[0.25, "estimate"]), "q3": float(table.loc[0.75, "estimate"]),
        "model": {"kind": kind, "formula": model.formula},
    }


def _plain(value):
    return str(value).strip()


def sentence(result: dict) -> str:
    """The prediction in words, in weeks and days."""
    what = {"numbness": "until numbness fades",
            "relief": "until relief wears off, if the treatment gives relief"}.get(
        result["outcome"], "until the event")
    weeks = result["median"] / 7
    return (f"Expected time {what}: about {weeks:.0f} weeks (median {result['median']:.0f} days, "
            f"95% CI {result['median_ci_lower']:.0f}–{result['median_ci_upper']:.0f} days). "
            f"Half of such patients fall between {result['q1']:.0f} and {result['q3']:.0f} days.")
