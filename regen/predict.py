"""One patient's expected duration from a saved model, as data and as a sentence.

:func:`expected_duration` takes a model from :func:`regen.load_model` (an AFT from
``fit_recovery`` or the kinetics from ``fit_regeneration``) and the patient's values
as text (``{"nerve": "greater_occipital", "age": "52", "diabetes": "no"}``, as the
``regen predict`` command receives them), checks them against what the model needs,
and returns the median and quartiles with 95% CIs.

A covariate that was a yes/no column when the model was fitted (the model records
which, in ``model.yes_no``) takes only the yes/no words of
:data:`regen.validation.BOOLEAN_WORDS` (yes/no, true/false, 1/0, any case): ``2`` is
refused rather than predicted for. A model file from a regen that did not record
them takes a number or a yes/no word for every numeric covariate, as before.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from regen.exceptions import ModelError
from regen.survival.aft import RecoveryFit
from regen.survival.regeneration import RegenerationFit
from regen.validation import BOOLEAN_WORDS

__all__ = ["BEYOND", "YES_NO", "expected_duration", "model_inputs", "sentence"]

#: What :func:`model_inputs` gives for a yes/no covariate.
YES_NO = "yes or no"
#: Said instead of a number of days that is infinite: longer than the model can tell.
BEYOND = "beyond what this model can estimate"


def model_inputs(model) -> dict[str, list[str] | str | None]:
    """What a model needs from a profile, by variable.

    Returns
    -------
    dict
        For each variable: its levels (a list) for a categorical covariate,
        :data:`YES_NO` for a covariate that was a yes/no column, and None for a
        number (with a kinetics model, the distance is a number too).

    Examples
    --------
    >>> model_inputs(model)  # doctest: +SKIP
    {'age': None, 'diabetes': 'yes or no', 'nerve': ['greater_occipital', ...]}
    """
    levels = model.design.levels
    yes_no = set(model.yes_no or ())
    needed = {name: YES_NO if name in yes_no else levels.get(name)
              for name in model.design.variables}
    if isinstance(model, RegenerationFit):
        needed[model.distance] = None
    return needed


def _yes_no(name: str, text: str) -> float:
    word = text.lower()
    if word not in BOOLEAN_WORDS:
        raise ValueError(f"{name} must be yes or no (one of {', '.join(BOOLEAN_WORDS)}), "
                         f"not {text!r}")
    return float(BOOLEAN_WORDS[word])


def _profile(model, values: dict[str, str]) -> pd.DataFrame:
    needed = model_inputs(model)
    # A model that records its yes/no covariates: every other number is a number. One from
    # an older file does not say which they are, so a number may be given as yes/no too.
    words_for_numbers = getattr(model, "yes_no", None) is None
    given = {name.replace("-", "_"): value for name, value in values.items()}
    unknown = sorted(set(given) - set(needed))
    missing = sorted(set(needed) - set(given))
    if unknown or missing:
        raise ValueError(_describe_needs(needed, missing, unknown, words_for_numbers))
    row = {}
    for name, need in needed.items():
        text = str(given[name]).strip()
        if need == YES_NO:
            row[name] = _yes_no(name, text)
        elif isinstance(need, list):
            if text not in need:
                raise ValueError(f"{name} {text!r} is not one the model knows: "
                                 f"{', '.join(need)}")
            row[name] = text
        elif words_for_numbers and text.lower() in BOOLEAN_WORDS:
            row[name] = float(BOOLEAN_WORDS[text.lower()])
        else:
            row[name] = _number(name, text, words_for_numbers)
    if isinstance(model, RegenerationFit) and row[model.distance] <= 0:
        raise ValueError(f"{model.distance} must be > 0 mm")
    return pd.DataFrame([row])


def _number(name: str, text: str, words_too: bool) -> float:
    try:
        number = float(text)
    except ValueError:
        raise ValueError(f"{name} must be a number{' (or yes/no)' if words_too else ''}, "
                         f"not {text!r}") from None
    if not math.isfinite(number):
        raise ValueError(f"{name} must be a finite number, not {text!r}")
    return number


def _describe_needs(needed: dict, missing: list, unknown: list, words_for_numbers: bool) -> str:
    parts = []
    if missing:
        parts.append(f"missing: {', '.join(missing)}")
    if unknown:
        parts.append(f"not used by this model: {', '.join(unknown)}")
    lines = [f"the profile does not match the model ({'; '.join(parts)}). The model needs:"]
    for name, need in needed.items():
        kind = (need if need == YES_NO else f"one of {', '.join(need)}" if need
                else "a number (yes/no for yes/no columns)" if words_for_numbers else "a number")
        lines.append(f"  --{name.replace('_', '-')}  {kind}")
    return "\n".join(lines)


def expected_duration(model, values: dict[str, str]) -> dict:
    """Median and quartiles (days) with 95% CIs for one patient.

    Parameters
    ----------
    model : RecoveryFit or RegenerationFit
        From :func:`regen.load_model`.
    values : dict of str
        The patient's value of each covariate, as text (see :func:`model_inputs`).

    Returns
    -------
    dict
        ``outcome, profile, median, median_ci_lower, median_ci_upper, q1, q3``
        (days), ``model`` (its kind and formula) and ``not_estimated``: a number
        the model cannot give (an infinite CI bound, a NaN from a degenerate
        covariance) is None, and ``not_estimated`` says why, by name
        (``{"median_ci_upper": "beyond what this model can estimate"}``).

    Raises
    ------
    ValueError
        The values do not fit the model; the message lists what it needs.

    Examples
    --------
    >>> result = expected_duration(model, {"nerve": "greater_occipital", "age": "52",
    ...                                    "diabetes": "no"})  # doctest: +SKIP
    >>> sentence(result)  # doctest: +SKIP
    """
    if not isinstance(model, RecoveryFit | RegenerationFit):
        raise ModelError(f"a {type(model).__name__} does not predict a duration; use a model "
                         "saved by 'regen fit recovery --save' (or 'regen fit regeneration --save')")
    profile = _profile(model, values)
    with np.errstate(over="ignore", invalid="ignore"):  # said in words below
        table = model.predict_quantile(profile, q=[0.25, 0.5, 0.75]).set_index("q")
    days = {"median": table.loc[0.5, "estimate"], "median_ci_lower": table.loc[0.5, "ci_lower"],
            "median_ci_upper": table.loc[0.5, "ci_upper"], "q1": table.loc[0.25, "estimate"],
            "q3": table.loc[0.75, "estimate"]}
    days = {name: float(value) for name, value in days.items()}
    outcome = "numbness" if isinstance(model, RegenerationFit) else model.outcome
    return {
        "outcome": outcome, "profile": {k: _plain(v) for k, v in values.items()},
        **{name: value if math.isfinite(value) else None for name, value in days.items()},
        "not_estimated": {name: _why(value) for name, value in days.items()
                          if not math.isfinite(value)},
        "model": {"kind": type(model).__name__, "formula": model.formula},
    }


def _plain(value):
    return str(value).strip()


def _why(value) -> str:
    """Why a number of days is not given: infinite, or not a number at all."""
    return BEYOND if value == math.inf else "not available"


def _finite(value) -> float | None:
    try:
        value = float(value)
    except (TypeError, ValueError):
        return None
    return value if math.isfinite(value) else None


def sentence(result: dict) -> str:
    """The prediction in words, in weeks and days.

    A median, quartile or CI bound that is not a finite number (None with its
    reason in ``result["not_estimated"]``, or ``inf`` / NaN in a result made by
    hand) is said in words: "beyond what this model can estimate" for an
    infinite upper value, "not available" otherwise; never "inf" or "nan".
    """
    what = {"numbness": "until numbness fades",
            "relief": "until relief wears off, if the treatment gives relief"}.get(
        result.get("outcome"), "until the event")
    reasons = result.get("not_estimated") or {}

    def days(name: str) -> str:
        value = _finite(result.get(name))
        if value is not None:
            return f"{value:.0f} days"
        raw = result.get(name)
        return reasons.get(name) or (_why(float(raw)) if isinstance(raw, int | float)
                                     else "not available")

    median, low, high = (_finite(result.get(k)) for k in
                         ("median", "median_ci_lower", "median_ci_upper"))
    q1, q3 = _finite(result.get("q1")), _finite(result.get("q3"))
    head = (f"about {median / 7:.0f} weeks (median {median:.0f} days, " if median is not None
            else f"the median is {days('median')} (")
    ci = (f"95% CI {low:.0f}–{high:.0f} days" if low is not None and high is not None
          else f"95% CI: lower bound {days('median_ci_lower')}, upper bound "
               f"{days('median_ci_upper')}")
    spread = (f"between {q1:.0f} and {q3:.0f} days" if q1 is not None and q3 is not None
              else f"between the quartiles: the first {days('q1')}, the third {days('q3')}")
    return f"Expected time {what}: {head}{ci}). Half of such patients fall {spread}."
