"""What the command line prints: fitted models, medians and the flow as text, strict JSON,
and numbers of days in words where there is no number."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from regen._util import json_safe

if TYPE_CHECKING:
    from regen.cohort import Cohort

__all__ = ["at_words", "days", "format_comparison", "format_fit", "format_flow", "format_medians",
           "format_probability", "strict_json"]

#: What a hazard ratio above 1 means, by outcome.
SOONER = {"numbness": "numbness fades sooner", "relief": "relief ends sooner"}


def strict_json(document, indent: int = 1) -> str:
    """Strict JSON: NaN becomes null and infinity the string "inf", which every parser reads."""
    return json.dumps(json_safe(document), indent=indent, default=str, allow_nan=False)


def format_fit(model, outcome: str, profiles: pd.DataFrame, predicted: pd.DataFrame,
               aic: pd.DataFrame | None = None) -> str:
    """The time ratios and each nerve's predicted quartiles, as text; with ``aic`` (the table of
    :func:`regen.choose_distribution`), first the line that says why this distribution."""
    lines = [] if aic is None else [distribution_choice(aic)]
    lines += [f"{model.dist_label} AFT, {outcome}: {model.formula}  ({model.n} episodes, "
             f"log-likelihood {model.loglik:.2f}, AIC {model.aic:.1f}"
             + (f", standard errors robust over {model.cluster}" if model.cluster else "") + ")"]
    lines += _ratio_lines(model, "Time ratios (x how long the time to the event is; 95% CI):")
    if model.frailty:
        low, high = model.frailty_ci
        p = model.frailty_test["p_value"]
        lines.append(f"Patient effect ({model.frailty}; SD on the log-time scale): "
                     f"{model.frailty_sd:.3f} (95% CI {low:.3f}–{high:.3f}); test of none: "
                     f"p {'<0.0001' if p < 1e-4 else f'{p:.4f}'}. One patient in four has "
                     f"durations x{np.exp(0.6745 * model.frailty_sd):.2f} or more of a "
                     "typical patient's, every time.")
    lines.append(f"Predicted days{at_words(profiles.iloc[0], skip=('nerve',))} (median, 95% CI; "
                 + ("quartiles; over patients):" if model.frailty
                    else "quartiles):"))
    for label, rows in _by_nerve(predicted):
        by_q = rows.set_index("q")
        median = by_q.loc[0.5]
        too_long = "too long for the model to estimate"
        lines.append(f"  {label:<28}"
                     f"{days(median['estimate'], infinite=too_long):>7}  "
                     f"({days(median['ci_lower'], infinite=too_long)}–"
                     f"{days(median['ci_upper'], infinite=too_long)})  quartiles "
                     f"{days(by_q.loc[0.25, 'estimate'], infinite=too_long)}–"
                     f"{days(by_q.loc[0.75, 'estimate'], infinite=too_long)}")
    return "\n".join(lines)


def format_comparison(model, test, outcome: str) -> str:
    """The hazard ratios of a :class:`~regen.PHFit` and a :class:`~regen.LogrankResult`, as
    text."""
    how = {"bootstrap": f"bootstrap over {model.cluster or 'episodes'} "
                        f"({model.n_bootstrap - model.n_failed} refits)",
           "robust": f"robust over {model.cluster} ({model.n_clusters})",
           "profile": "model-based", "numeric": "model-based (numeric profile)"}[model.variance]
    lines = [f"Proportional hazards, {outcome}: {model.formula}  ({model.n} episodes, "
             f"log-likelihood {model.loglik:.2f}; 95% CIs {how})"]
    lines += _ratio_lines(model, f"Hazard ratios (above 1: {SOONER.get(outcome, 'sooner')}; "
                                 "95% CI):")
    p = "<0.0001" if test.p_value < 1e-4 else f"{test.p_value:.4f}"
    lines += ["", f"Generalized log-rank test by {test.by}"
              + (f" within {test.strata}" if test.strata else "")
              + (f", robust over {test.cluster}" if test.cluster else "")
              + f": chi-square {test.statistic:.2f} on {test.df} df, p {p}"]
    if test.permutation_p_value is not None:
        lines[-1] += (f" (permutation p {test.permutation_p_value:.4f}, "
                      f"{test.n_permutations} shuffles)")
    table = test.table
    lines.append(f"  {'group':<28}{'episodes':>9}{'events':>8}{'expected':>10}")
    for group, row in table.iterrows():
        lines.append(f"  {str(group):<28}{int(row['n']):>9}{int(row['events']):>8}"
                     f"{row['expected']:>10.1f}")
    return "\n".join(lines)


def distribution_choice(aic: pd.DataFrame) -> str:
    """"Distribution chosen by AIC: log-normal (log-logistic +0.5, Weibull +35.3; a difference
    under 2 means the data barely tell them apart)"."""
    from regen.survival.likelihood import DISTRIBUTIONS

    label = {name: law.label for name, law in DISTRIBUTIONS.items()}
    best, *others = aic.itertuples()
    trailing = ", ".join(f"{label[row.dist]} +{row.delta_aic:.1f}" for row in others)
    close = " (a difference under 2: the data barely tell them apart)" \
        if others and others[0].delta_aic < 2 else ""
    return f"Distribution chosen by AIC: {label[best.dist]} ({trailing}){close}"


def at_words(profile, skip=()) -> str:
    """" at age 60, diabetes yes": a profile's covariates (less ``skip``) as the CLI prints
    them, or "" when there is none."""
    words = [f"{name} {_word(value)}" for name, value in profile.items() if name not in skip]
    return " at " + ", ".join(words) if words else ""


def _word(value) -> str:
    if isinstance(value, bool | np.bool_):
        return "yes" if value else "no"
    return f"{value:g}" if isinstance(value, float) else str(value)


def _by_nerve(predicted: pd.DataFrame):
    """(nerve, its rows) in the order predicted, or ("all", every row) without a nerve."""
    if "nerve" in predicted.columns:
        return predicted.groupby("nerve", sort=False)
    return [("all", predicted)]


def _ratio_lines(model, title: str) -> list[str]:
    """A heading and one line per covariate: its ratio (:meth:`effects`) with the interval and
    the p-value of :meth:`coef_table`; nothing when the model has no covariate."""
    effects = model.effects()
    if not len(effects):
        return []
    p_values = model.summary["p_value"]
    lines = [title]
    for term, row in effects.iterrows():
        p = "<0.0001" if p_values[term] < 1e-4 else f"{p_values[term]:.4f}"
        lines.append(f"  {term:<40}{_ratio(row['estimate']):>7}  ({_ratio(row['ci_lower'])}–"
                     f"{_ratio(row['ci_upper'])})  p {p}")
    return lines


def _ratio(value: float) -> str:
    """A ratio with three decimals, or in powers of ten when that would show 0.000."""
    return f"{value:.3f}" if 1e-3 <= abs(value) < 1e4 or value == 0 else f"{value:.2e}"


def _share(p: float) -> str:
    """A probability as a percentage that never reads as certain when it is not."""
    if p >= 0.9995:
        return ">99.9%" if p < 1 else "100%"
    if p < 0.0005:
        return "<0.1%" if p > 0 else "0%"
    return f"{100 * p:.1f}%"


def format_probability(model, score: str, predicted: pd.DataFrame) -> str:
    """A GEE model's odds ratios and the predicted probability at each day, by nerve."""
    lines = [f"GEE logistic model of {score}: {model.formula}, {model.correlation} working "
             f"correlation within {model.groups}  ({model.n} visits after treatment, "
             f"{model.n_groups} groups, QIC {model.qic:.1f})"]
    lines += _ratio_lines(model, f"Odds ratios (x the odds of {score}; 95% CI, robust over "
                                 f"{model.groups}):")
    skip = ("nerve", "day", "estimate", "ci_lower", "ci_upper")
    lines.append(f"Predicted probability of {score}{at_words(predicted.iloc[0], skip)} (95% CI):")
    for label, rows in _by_nerve(predicted):
        cells = "  ".join(f"day {day:g} {_share(p)} ({_share(low)}–{_share(high)})"
                          for day, p, low, high
                          in rows[["day", "estimate", "ci_lower", "ci_upper"]].itertuples(
                              index=False))
        lines.append(f"  {label:<28}{cells}")
    return "\n".join(lines)


def format_medians(quantiles: pd.DataFrame) -> str:
    """Median days by outcome and nerve, with the bootstrap 95% interval and the quartiles."""
    lines = ["Median days (Turnbull NPMLE, 95% bootstrap interval over patients; quartiles).",
             "Between two visits the data cannot date the change; times there are interpolated."]
    labels = {"numbness": "until numbness fades", "relief": "until relief ends (responders)"}
    for outcome, part in quantiles.groupby("outcome", sort=False):
        lines.append(f"  {labels[outcome]}")
        for nerve, rows in part.groupby("nerve", sort=True):
            by_q = rows.set_index("q")
            median = by_q.loc[0.5]
            lines.append(
                f"    {nerve:<28}{days(median['time']):>6}  ({days(median['ci_lower'])}–"
                f"{days(median['ci_upper'])})  quartiles {days(by_q.loc[0.25, 'time'])}–"
                f"{days(by_q.loc[0.75, 'time'])}  n={int(median['episodes'])}")
    return "\n".join(lines)


def days(value: float, *, infinite: str = "not reached", missing: str = "not estimable",
          digits: int = 0) -> str:
    """A number of days as text; where there is no finite number, the words that say why
    (``infinite``: the curve never got there, or a bound the data leave open; ``missing``:
    nothing to estimate it from). No command prints "nan" or "inf" for a number of days."""
    value = float(value)
    if np.isnan(value):
        return missing
    if np.isinf(value):
        return infinite
    return f"{value:.{digits}f}"


def format_flow(cohort: Cohort, path: Path) -> str:
    """The flow from files to episodes as indented text."""
    flow = cohort.flow()
    width = 56

    def line(label: str, count: int, indent: int = 2, note: str = "") -> str:
        return f"{' ' * indent}{label:<{width - indent}}{count:>8}{note}"

    def get(step: str, outcome: str = "") -> int:
        rows = flow[(flow["step"] == step) & (flow["outcome"] == outcome)]
        return int(rows["count"].sum())

    lines = [f"Cohort {path}", "  files: " + ", ".join(s.name for s in cohort.sources), ""]
    lines.append(line("patients", get("patients")))
    lines.append(line("with at least one treatment", get("patients_with_treatment"), 4))
    lines.append(line("treatments", get("treatments")))
    lines.append(line("visits", get("visits")))
    for _, row in flow[flow["step"] == "visits_excluded"].iterrows():
        lines.append(line(f"excluded: {row['reason']}", row["count"], 4))
    for outcome in ("numbness", "relief"):
        part = flow[flow["outcome"] == outcome]
        lines.append("")
        lines.append(f"{outcome} episodes")
        if outcome == "relief":
            assessed, responders = get("assessed_for_response", outcome), get("responders", outcome)
            rate = f"  ({responders / assessed:.0%} of {assessed} assessed)" if assessed else ""
            lines.append(line("assessed for response", assessed))
            lines.append(line("responders", responders, note=rate))
        for _, row in part[part["step"] == "treatments_excluded"].iterrows():
            lines.append(line(f"no episode: {row['reason']}", row["count"]))
        lines.append(line("episodes", get("episodes_total", outcome)))
        for _, row in part[part["step"] == "episodes"].iterrows():
            lines.append(line(row["reason"], row["count"], 4))
    return "\n".join(lines)
