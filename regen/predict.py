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

Learning from a patient's history
---------------------------------
With a :class:`~regen.FrailtyFit`, ``expected_duration(model, values, history=episodes)``
predicts one patient's *next* treatment from their earlier episodes, which come from a
CSV file (:func:`read_history`: within :class:`~regen.io.ReadLimits`, checked row by row
like the cohort's tables) or a cohort (:func:`patient_history`). :func:`sentence` says
what they showed as the intervals they are ("ended between weeks 9 and 11", "was still
going at the last visit, week 6"), and what is expected this time.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from regen._scan import shorten
from regen._write import literal
from regen.exceptions import ModelError
from regen.history import (
    SHOWN_EPISODES,
    YES_NO,
    check_learns_from_history,
    model_inputs,
    one_patient,
    patient_history,
    read_history,
)
from regen.survival.aft import RecoveryFit
from regen.survival.regeneration import RegenerationFit
from regen.validation import BOOLEAN_WORDS

__all__ = ["BEYOND", "SHOWN_EPISODES", "YES_NO", "check_learns_from_history", "expected_duration",
           "heading", "model_inputs", "patient_history", "read_history", "sentence"]

#: Said instead of a number of days that is infinite: longer than the model can tell.
BEYOND = "beyond what this model can estimate"


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


def expected_duration(model, values: dict[str, str], *,
                      history: pd.DataFrame | None = None) -> dict:
    """Median and quartiles (days) with 95% CIs for one patient.

    Parameters
    ----------
    model : RecoveryFit or RegenerationFit
        From :func:`regen.load_model`.
    values : dict of str
        The patient's value of each covariate, as text (see :func:`model_inputs`).
        With ``history``, only those that differ from the latest earlier episode.
    history : DataFrame, optional
        One patient's earlier episodes (:func:`read_history`, :func:`patient_history`):
        ``lower``, ``upper`` (days; ``inf`` while still going), the model's covariates,
        optionally the ``frailty`` column (one id), ``treatment_number``, ``treated_on``.
        Needs a :class:`~regen.FrailtyFit`; the prediction is the patient's own for
        their next treatment: a covariate not in ``values`` is that of the latest
        earlier episode (by ``treated_on``, else ``treatment_number``, else the last
        row), and ``treatment_number`` the latest of the same nerve + 1.

    Returns
    -------
    dict
        ``outcome, profile, median, median_ci_lower, median_ci_upper, q1, q3``
        (days), ``model`` (its kind and formula) and ``not_estimated``: a number
        the model cannot give (an infinite CI bound, a NaN from a degenerate
        covariance) is None, and ``not_estimated`` says why, by name
        (``{"median_ci_upper": "beyond what this model can estimate"}``).
        With ``history`` also ``patient_id`` (None without), ``prediction``
        ("patient"), ``history`` (``n_episodes``; ``episodes`` oldest first, each with
        ``lower``, ``upper`` (None while still going), ``status``, and its id, number,
        nerve, side, date when known), ``filled`` (covariates taken from the history,
        and how), ``model_patients``, ``model_episodes``; ``profile`` holds every value.

    Raises
    ------
    ValueError
        The values do not fit the model (the message lists what it needs), or the
        history is not one patient's episodes with the model's covariates.
    ModelError
        ``history`` with a model fitted without frailty.

    Examples
    --------
    >>> result = expected_duration(model, {"nerve": "greater_occipital", "age": "52",
    ...                                    "diabetes": "no"})  # doctest: +SKIP
    >>> sentence(result)  # doctest: +SKIP
    >>> earlier = read_history("P00012.csv", frailty_model)  # doctest: +SKIP
    >>> sentence(expected_duration(frailty_model, {}, history=earlier))  # doctest: +SKIP
    """
    if not isinstance(model, RecoveryFit | RegenerationFit):
        raise ModelError(f"a {type(model).__name__} does not predict a duration; use a model "
                         "saved by 'regen fit recovery --save' (or 'regen fit regeneration --save')")
    if history is None:
        profile = _profile(model, values)
        with np.errstate(over="ignore", invalid="ignore"):  # said in words below
            table = model.predict_quantile(profile, q=[0.25, 0.5, 0.75]).set_index("q")
        return _duration(model, values, table)
    check_learns_from_history(model)
    episodes, patient = one_patient(model, history)
    values, filled = _next_values(model, values, episodes)
    profile = _profile(model, values)
    key = model.frailty
    profile[key] = patient if patient is not None else _NO_ID
    earlier = episodes if patient is not None else episodes.assign(**{key: _NO_ID})
    with np.errstate(over="ignore", invalid="ignore"):
        table = model.predict_quantile(profile, q=[0.25, 0.5, 0.75],
                                       history=earlier).set_index("q")
    return {**_duration(model, values, table), "patient_id": patient,
            "prediction": str(table.loc[0.5, "prediction"]),
            "history": {"n_episodes": len(episodes), "episodes": _listed(episodes)},
            "filled": filled, "model_patients": model.n_patients, "model_episodes": model.n}


def _duration(model, values: dict, table: pd.DataFrame) -> dict:
    """The result of :func:`expected_duration` from the quantiles of one profile."""
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


def _unknown(result: dict, name: str) -> str:
    """Why ``result[name]`` is not a finite number, in words."""
    reason = (result.get("not_estimated") or {}).get(name)
    raw = result.get(name)
    return reason or (_why(float(raw)) if isinstance(raw, int | float) else "not available")


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

    A result with a ``history`` (:func:`expected_duration` with ``history=``) is said
    as what the patient's earlier treatments showed (the last :data:`SHOWN_EPISODES`,
    as the intervals they are) and what is expected this time, in weeks (in days
    where weeks would hide the difference).
    """
    if result.get("history"):
        return _history_sentence(result)
    what = {"numbness": "until numbness fades",
            "relief": "until relief wears off, if the treatment gives relief"}.get(
        result.get("outcome"), "until the event")

    def days(name: str) -> str:
        value = _finite(result.get(name))
        return f"{value:.0f} days" if value is not None else _unknown(result, name)

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


# ---------------------------------------------------------------- history ---

#: The frailty id of a history without one (never shown).
_NO_ID = "\x00this patient"
#: How ``filled`` says a value was taken from the latest earlier episode.
_AS_LATEST = "as in the latest"
#: Columns of a history shown with each earlier episode, when it has them.
_DESCRIBED = ("treatment_id", "treatment_number", "nerve", "side", "treated_on")
def _next_values(model, values: dict[str, str], episodes: pd.DataFrame
                 ) -> tuple[dict[str, str], dict[str, str]]:
    """The next treatment's values: those given, the rest from the latest earlier episode;
    and which were taken, with how."""
    given = {name.replace("-", "_"): value for name, value in values.items()}
    needed = model_inputs(model)
    latest = episodes.iloc[-1]
    chosen, filled = dict(given), {}
    for name, need in needed.items():
        if name in given or name == "treatment_number" or name not in episodes.columns:
            continue
        if not pd.isna(latest[name]):
            chosen[name] = _text(latest[name], need)
            filled[name] = _AS_LATEST
    if "treatment_number" in needed and "treatment_number" not in given:
        same = episodes
        if "nerve" in episodes.columns and "nerve" in chosen:
            same = episodes.loc[episodes["nerve"].astype("string") == str(chosen["nerve"])]
        numbers = pd.to_numeric(same["treatment_number"], errors="coerce").dropna()
        chosen["treatment_number"] = str(int(numbers.max()) + 1 if len(numbers) else 1)
        filled["treatment_number"] = ("the latest + 1" if len(numbers)
                                      else "1, as no earlier treatment was of this nerve")
    order = [*needed, *(name for name in chosen if name not in needed)]
    return {name: chosen[name] for name in order if name in chosen}, filled


def _text(value, need) -> str:
    """An episode's value as :func:`_profile` takes it."""
    if isinstance(value, bool | np.bool_) or (need == YES_NO and value in (0, 1)):
        return "yes" if value else "no"
    if isinstance(value, float | np.floating):
        return str(int(value)) if float(value).is_integer() else repr(float(value))
    return str(value)


def _listed(episodes: pd.DataFrame) -> list[dict]:
    """Each earlier episode, oldest first, as plain values: lower, upper (None while still
    going), status, and what the history says of it."""
    listed = []
    for row in episodes.to_dict("records"):
        low, up = float(row["lower"]), float(row["upper"])
        item = {"lower": low, "upper": up if math.isfinite(up) else None,
                "status": _status(low, up)}
        for name in _DESCRIBED:
            value = row.get(name)
            if name in episodes.columns and not pd.isna(value):
                item[name] = (value.date().isoformat() if isinstance(value, pd.Timestamp)
                              else int(value) if name == "treatment_number" else str(value))
        listed.append(item)
    return listed


def _status(low: float, up: float) -> str:
    if not math.isfinite(up):
        return "right_censored"
    if low == up:
        return "exact"
    return "left_censored" if low == 0 else "interval_censored"


# ---------------------------------------------------------------- in words ---

#: How :func:`sentence` words an earlier episode, by outcome: what the treatments gave, the
#: verb of its end, and an episode still going at the last visit / over by the first.
_EARLIER = {
    "relief": ("gave relief that", "ended", "was still going at the last visit, {at}",
               "had ended by {at}"),
    "numbness": ("gave numbness that", "faded", "was still there at the last visit, {at}",
                 "had faded by {at}"),
    None: ("were followed by an event that", "happened", "had not happened by the last visit, "
           "{at}", "had happened by {at}"),
}
#: What is expected this time, by outcome ({time}: "about 11 weeks (95% CI 8–14 weeks)").
_THIS_TIME = {
    "relief": "This time, if the treatment gives relief again, we expect it to last {time}",
    "numbness": "This time we expect the numbness to fade after {time}",
    None: "This time we expect the event after {time}",
}


def heading(result: dict) -> str:
    """Who and what a prediction is for, as ``regen predict`` prints it above
    :func:`sentence`: "For a patient with nerve greater_occipital, age 52:", or with a
    history "For P00012's next treatment (nerve greater_occipital, treatment number 4):"
    and a line naming the values taken from the earlier treatments. Data text is shown
    literally (control characters escaped)."""
    shown = ", ".join(f"{name.replace('_', ' ')} {literal(shorten(value))}"
                      for name, value in result.get("profile", {}).items())
    if not result.get("history"):
        return f"For a patient with {shown}:" if shown else "For any patient:"
    patient = result.get("patient_id")
    who = f"{literal(shorten(patient))}'s" if patient is not None else "this patient's"
    lines = [f"For {who} next treatment" + (f" ({shown}):" if shown else ":")]
    filled = result.get("filled") or {}
    if filled:
        lines.append("Not given, so from the earlier treatments: " + "; ".join(
            f"{name.replace('_', ' ')} {how}" for name, how in filled.items()) + ".")
    return "\n".join(lines)


def _history_sentence(result: dict) -> str:
    """What the earlier treatments showed, then what is expected this time."""
    outcome = result.get("outcome") if result.get("outcome") in _EARLIER else None
    gave, verb, ongoing, by = _EARLIER[outcome]
    episodes = result["history"]["episodes"]
    n = result["history"].get("n_episodes", len(episodes))
    last = episodes[-SHOWN_EPISODES:]
    phrases = [_episode_words(item, verb, ongoing, by) for item in last]
    if len(phrases) > 1:
        phrases[-1] = "and " + phrases[-1]
    if n == 1:
        lead = f"Your last treatment {gave}"
    elif len(last) == n:
        lead = f"Your last {n} treatments (oldest first) {gave}"
    else:
        lead = f"Of your {n} earlier treatments, the last {len(last)} (oldest first) {gave}"
    earlier = f"{lead} {'; '.join(phrases)}."
    time = _expected_words(result)
    basis = (f"based on your {n} earlier treatment{'s' if n != 1 else ''} and the model's "
             f"{result.get('model_patients', 'other')} patients")
    if result.get("prediction") != "patient":   # not learned from the history: say so
        basis = "for a typical patient: the model could not use your earlier treatments"
    return f"{earlier}\n{_THIS_TIME[outcome].format(time=time)}, {basis}."


def _episode_words(item: dict, verb: str, ongoing: str, by: str) -> str:
    """One earlier episode: "ended between weeks 9 and 11", "was still going at the last
    visit, week 6", "had ended by week 3", "ended on day 30". Weeks are rounded outwards
    (the lower day down, the upper up), so the words hold the interval; days where the
    interval is shorter than a week or starts in the first week."""
    low, up = float(item["lower"]), item.get("upper")
    up = math.inf if up is None else float(up)
    if not math.isfinite(up):
        return (f"{verb} at an unknown time (no visit after the treatment)" if low == 0
                else ongoing.format(at=_at(low, math.floor)))
    if low == up:
        return f"{verb} on day {low:g}"
    if low == 0:
        return by.format(at=_at(up, math.ceil))
    first, last = math.floor(low / 7), math.ceil(up / 7)
    if first >= 1 and up - low >= 7:
        return f"{verb} between weeks {first} and {last}"
    return f"{verb} between days {low:g} and {up:g}"


def _at(days: float, rounding) -> str:
    """"week 6" (rounded by ``rounding``), or "day 9" in the first two weeks."""
    return f"day {days:g}" if days < 14 else f"week {rounding(days / 7)}"


def _weeks(days: float) -> int:
    return math.floor(days / 7 + 0.5)


def _about(days: float) -> str:
    """A duration in words: weeks, or days below two weeks."""
    return f"{days:.0f} days" if days < 14 else f"{_weeks(days)} weeks"


def _expected_words(result: dict) -> str:
    """"about 11 weeks (95% CI 8–14 weeks)"; days where the weeks would read "14–14", and
    the reasons for a number the model cannot give."""
    median, low, high = (_finite(result.get(k)) for k in
                         ("median", "median_ci_lower", "median_ci_upper"))
    about = f"about {_about(median)}" if median is not None else \
        f"a time {_unknown(result, 'median')}"
    if low is not None and high is not None:
        if low >= 14 and _weeks(low) != _weeks(high):
            ci = f"{_weeks(low)}–{_weeks(high)} weeks"
        elif low >= 14 or high < 14:
            ci = f"{low:.0f}–{high:.0f} days"
        else:
            ci = f"{_about(low)} to {_about(high)}"
    else:
        ci = (f"from {_about(low) if low is not None else _unknown(result, 'median_ci_lower')}"
              f" to {_about(high) if high is not None else _unknown(result, 'median_ci_upper')}")
    return f"{about} (95% CI {ci})"
