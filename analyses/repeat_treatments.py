"""How much do patients differ, does relief change with each retreatment, and do a
patient's earlier episodes predict the next one?

For the ``--outcome`` episodes (default relief; days counted from each episode's own
freeze), the accelerated-failure-time model with a shared patient effect
(``regen.fit_recovery(..., frailty="patient_id")``, default ``~ nerve +
treatment_number``, log-normal):

    log T_ij = x_ij' beta + b_i + sigma eps_ij,   b_i ~ N(0, tau^2)

1. How much patients differ: tau with its profile-likelihood 95% CI and the
   likelihood-ratio test of tau = 0; in words, how much longer one patient in four lasts
   than a typical patient (exp(0.674 tau)), and the share of the spread in log duration
   that lies between patients, tau^2 / (tau^2 + var(eps)).
2. Whether relief gets longer or shorter with each retreatment of the same patient: the
   time ratio per treatment number, and the episodes by treatment number (numbers with
   fewer than ``--min-group`` episodes or ``--min-patients`` patients pooled with the
   numbers below them).
3. How well a patient's history predicts their next episode, cross-validated over
   ``--folds`` folds of patients: each patient's last episode (latest treated_on, then
   highest treatment number) is held out, the model refitted without the fold's held-out
   episodes, and the episode predicted from the patient's earlier episodes (their own
   median) and without them (the marginal median for their covariates). Each prediction
   is scored by its distance on the log scale to the held-out interval (lower, upper]
   (0 inside it; only the lower end counts for a right-censored episode).

Usage: python analyses/repeat_treatments.py [COHORT] [--data PATH] [--out DIR]
           [--outcome relief|numbness] [--dist lognormal] [--formula "~ nerve + treatment_number"]
           [--folds 5] [--min-group 10] [--min-patients 5] [--force]
"""

from __future__ import annotations

import math
import sys
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

import regen
from regen.report import MIN_GROUP, MIN_PATIENTS, analysis_page

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the scripts' shared helpers
from _shared import Result, at_least, literal, parser, run, with_reference

NAME = "repeat_treatments"
#: What the script writes (checked before the analysis): CSV tables, the HTML page, and the
#: fitted model (``MODEL``, JSON for ``regen.load_model``).
TABLES = ("patient_effect", "frailty_summary", "episodes_by_treatment_number", "cv_scores",
          "cv_predictions")
FIGURES = ()
PAGES = ("repeat_treatments",)
MODEL = "frailty_model.json"
DISTRIBUTIONS = ("lognormal", "weibull", "loglogistic")
#: Folds of patients in the cross-validation.
FOLDS = 5
#: Fewer patients with two or more episodes than this teach the model little about them.
FEW = 20
#: The upper quartile of the standard normal: one patient in four has b_i above 0.674 tau.
Z75 = float(stats.norm.ppf(0.75))
#: var(eps) / sigma^2 of each law: normal, minimum extreme value, logistic.
ERROR_VARIANCE = {"lognormal": 1.0, "weibull": math.pi**2 / 6, "loglogistic": math.pi**2 / 3}


# ------------------------------------------------------------------ the data --

def default_formula(episodes: pd.DataFrame) -> tuple[str, list[str]]:
    """``~ nerve + treatment_number``, without a term whose column has a single value."""
    terms, notes = [], []
    for column, why in (("nerve", "every episode is of one nerve"),
                        ("treatment_number", "every episode is a nerve's first treatment, so no "
                                             "change with retreatment can be estimated")):
        if episodes[column].nunique() > 1:
            terms.append(column)
        else:
            notes.append(f"{column} is left out of the model: {why}.")
    return "~ " + (" + ".join(terms) or "1"), notes


def by_treatment_number(episodes: pd.DataFrame, min_group: int, min_patients: int) -> pd.DataFrame:
    """Episodes and patients per treatment number; the highest numbers pooled ("3 or more")
    until every row has ``min_group`` episodes and ``min_patients`` patients.

    Rows are pooled, never hidden, so no count can be worked out by subtraction; when
    even all the episodes together fall short, the table is empty.
    """
    numbers = sorted(int(n) for n in episodes["treatment_number"].unique())

    def size(rows):
        return len(rows), rows["patient_id"].nunique()

    def enough(rows):
        n, patients = size(rows)
        return n >= min_group and patients >= min_patients

    for top in reversed(numbers):  # the first number pooled with all above it
        below = [episodes.loc[episodes["treatment_number"] == n] for n in numbers if n < top]
        pooled = episodes.loc[episodes["treatment_number"] >= top]
        if enough(pooled) and all(enough(rows) for rows in below):
            groups = [(str(n), rows) for n, rows in zip(numbers, below, strict=False)]
            label = str(top) if top == numbers[-1] else f"{top} or more"
            groups.append((label, pooled))
            return pd.DataFrame([(label, *size(rows)) for label, rows in groups],
                                columns=["treatment_number", "episodes", "patients"])
    return pd.DataFrame(columns=["treatment_number", "episodes", "patients"])


def last_episodes(episodes: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame, str]:
    """Each patient's last episode that has earlier ones, those earlier episodes, and the
    column that orders them.

    The last episode is the latest treated (``treated_on``; ties: the highest treatment
    number, then the last treatment id). Earlier means treated before it: another side
    treated the same day is not history. Without a date for every episode, the treatment
    number orders them.
    """
    dated = "treated_on" in episodes.columns and episodes["treated_on"].notna().all()
    key = "treated_on" if dated else "treatment_number"
    ordered = episodes.sort_values(["patient_id", key, "treatment_number", "treatment_id"])
    last = ordered.groupby("patient_id", sort=False).tail(1)
    when = last.set_index("patient_id")[key]
    earlier = episodes.loc[episodes[key] < episodes["patient_id"].map(when)]
    held = last.loc[last["patient_id"].isin(earlier["patient_id"])]
    return held, earlier.loc[earlier["patient_id"].isin(held["patient_id"])], key


# --------------------------------------------------------------- the models --

def fitted(formula: str, episodes: pd.DataFrame, dist: str,
           show: bool = True) -> tuple[regen.FrailtyFit, list[str]]:
    """The frailty fit, and the messages of the regen warnings it gave (shown too, unless
    not ``show``)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fit = regen.fit_recovery(formula, episodes, dist=dist, frailty="patient_id")
    for warning in caught if show else ():
        warnings.warn(warning.message, stacklevel=2)
    return fit, [str(w.message) for w in caught if issubclass(w.category, regen.RegenWarning)]


def patient_effect(fit: regen.FrailtyFit, episodes: pd.DataFrame) -> pd.DataFrame:
    """tau, its reading in words (the upper quartile's ratio), the intraclass share, sigma,
    the likelihood-ratio test and the counts behind them."""
    tau, (low, high) = fit.frailty_sd, fit.frailty_ci
    test = fit.frailty_test
    sigma = fit.scale
    share = tau**2 / (tau**2 + ERROR_VARIANCE[fit.dist] * sigma**2)
    scale_ci = np.exp(fit.summary.loc["log_scale", ["ci_lower", "ci_upper"]].to_numpy(float))
    repeats = int((episodes["patient_id"].value_counts() >= 2).sum())
    nan = np.nan
    rows = [
        ("frailty_sd", tau, low, high, test["p_value"],
         "tau: SD of the patients' effects on log time (profile-likelihood CI; p: LR test of "
         "tau = 0 on the 50:50 chi-square mixture)"),
        ("upper_quartile_ratio", math.exp(Z75 * tau), math.exp(Z75 * low), math.exp(Z75 * high),
         nan, "exp(0.674 tau): one patient in four lasts at least this many times as long as "
              "a typical patient"),
        ("between_patient_share", share, nan, nan, nan,
         "tau^2 / (tau^2 + var(eps)): share of the spread in log time between patients"),
        ("scale", sigma, *scale_ci, nan, "sigma: spread of one patient's episodes"),
        ("lr_statistic", test["statistic"], nan, nan, test["p_value"],
         "2 x (loglik - loglik without frailty)"),
        ("loglik", fit.loglik, nan, nan, nan, "with the patient effect"),
        ("loglik_without_frailty", test["loglik_without_frailty"], nan, nan, nan, "tau = 0"),
        ("episodes", fit.n, nan, nan, nan, "in the fit"),
        ("patients", fit.n_patients, nan, nan, nan, "in the fit"),
        ("patients_with_repeats", repeats, nan, nan, nan, "patients with two or more episodes"),
    ]
    return pd.DataFrame(rows, columns=["quantity", "estimate", "ci_lower", "ci_upper", "p_value",
                                       "meaning"])


def cross_validate(episodes: pd.DataFrame, formula: str, dist: str, variables, folds: int,
                   say) -> tuple[pd.DataFrame, list[str]]:
    """Each patient's last episode predicted with and without their earlier episodes, from
    the model refitted without the held-out episodes of its fold (folds of patients,
    assigned in turn in the order of their ids). Returns one row per held-out episode and
    notes for the summary."""
    complete = episodes.dropna(subset=[*variables, "lower", "upper"])
    held, history, key = last_episodes(complete)
    notes = [] if key == "treated_on" else [
        "Not every episode has a treatment date: the treatment number orders a patient's "
        "episodes (another nerve's episode of the same number counts as simultaneous)."]
    if held.empty:
        return pd.DataFrame(columns=PREDICTION_COLUMNS), notes + [
            "No patient has an episode treated after an earlier one: there is nothing to "
            "cross-validate."]
    patients = sorted(held["patient_id"].astype(str).unique())
    folds = min(folds, len(patients))
    fold_of = {p: k % folds for k, p in enumerate(patients)}
    held = held.assign(fold=held["patient_id"].astype(str).map(fold_of) + 1)
    parts, warned = [], {}
    for fold in range(1, folds + 1):
        say(f"cross-validation: fold {fold} of {folds}, refitting without its held-out episodes")
        out = held.loc[held["fold"] == fold]
        training = with_reference(complete.drop(index=out.index))
        try:
            fit, messages = fitted(formula, training, dist, show=False)  # said in the notes
        except (regen.ModelError, ValueError) as error:
            notes.append(f"Fold {fold} ({len(out)} patients) is left out: the model could not "
                         f"be refitted without its held-out episodes ({error}).")
            continue
        for message in messages:
            warned.setdefault(message, []).append(str(fold))
        unseen = np.zeros(len(out), bool)
        for variable, levels in fit.design.levels.items():
            if variable in out.columns:
                unseen |= ~out[variable].astype(str).isin(levels).to_numpy()
        if unseen.any():
            notes.append(f"Fold {fold}: {int(unseen.sum())} held-out episode(s) have a "
                         "covariate value that no other episode has, so the refit cannot "
                         "predict them; they are not scored.")
            out = out.loc[~unseen]
            if out.empty:
                continue
        profiles = out[["patient_id", *variables]]
        own = fit.predict_quantile(profiles, q=[0.5], history=history)
        marginal = fit.predict_quantile(profiles, q=[0.5])
        parts.append(scored(out, own, marginal))
    notes += [f"The refit of fold{'s' if len(f) > 1 else ''} {', '.join(f)} warned: {m}"
              for m, f in warned.items()]
    if not parts:
        return pd.DataFrame(columns=PREDICTION_COLUMNS), notes
    return pd.concat(parts, ignore_index=True)[PREDICTION_COLUMNS], notes


PREDICTION_COLUMNS = [
    "patient_id", "treatment_id", "nerve", "side", "treatment_number", "lower", "upper",
    "status", "fold", "history_episodes",
    "own_median", "own_ci_lower", "own_ci_upper", "own_log_distance", "own_overlaps_ci",
    "marginal_median", "marginal_ci_lower", "marginal_ci_upper", "marginal_log_distance",
    "marginal_overlaps_ci", "closer"]


def log_distance(median, lower, upper) -> np.ndarray:
    """How far ``median`` lies outside (lower, upper] on the log scale: 0 inside it; a
    lower end of 0 or an upper end of infinity never counts."""
    median, lower, upper = (np.asarray(v, dtype="float64") for v in (median, lower, upper))
    with np.errstate(divide="ignore"):
        below = np.log(lower) - np.log(median)
        above = np.log(median) - np.log(upper)
    return np.maximum(below, 0.0) + np.maximum(above, 0.0)


def scored(held: pd.DataFrame, own: pd.DataFrame, marginal: pd.DataFrame) -> pd.DataFrame:
    """The held-out episodes with both predictions of their median and the scores."""
    table = held.reset_index(drop=True)[
        ["patient_id", "treatment_id", "nerve", "side", "treatment_number", "lower", "upper",
         "status", "fold"]].assign(history_episodes=own["history_episodes"].to_numpy())
    lower, upper = table["lower"].to_numpy(float), table["upper"].to_numpy(float)
    for name, prediction in (("own", own), ("marginal", marginal)):
        median = prediction["estimate"].to_numpy(float)
        ci_lower = prediction["ci_lower"].to_numpy(float)
        ci_upper = prediction["ci_upper"].to_numpy(float)
        table[f"{name}_median"] = median
        table[f"{name}_ci_lower"], table[f"{name}_ci_upper"] = ci_lower, ci_upper
        table[f"{name}_log_distance"] = log_distance(median, lower, upper)
        table[f"{name}_overlaps_ci"] = (lower < ci_upper) & (upper >= ci_lower)
    difference = table["own_log_distance"] - table["marginal_log_distance"]
    table["closer"] = np.select([difference < -1e-9, difference > 1e-9], ["own", "marginal"],
                               "tie")
    return table


def cv_scores(predictions: pd.DataFrame) -> pd.DataFrame:
    """Per kind of prediction: patients, mean and median log distance, share inside the
    interval, share whose CI overlaps it, how often it was the closer one; the sign test."""
    rows = []
    closer = predictions["closer"].value_counts()
    better, worse = int(closer.get("own", 0)), int(closer.get("marginal", 0))
    p = stats.binomtest(better, better + worse).pvalue if better + worse else np.nan
    for name, label in (("own", "from the patient's earlier episodes"),
                        ("marginal", "from the covariates only")):
        distance = predictions[f"{name}_log_distance"].astype(float)
        rows.append({
            "prediction": name, "meaning": label, "patients": len(predictions),
            "mean_log_distance": distance.mean(), "median_log_distance": distance.median(),
            "share_inside_interval": (distance == 0).mean(),
            "share_ci_overlaps_interval": predictions[f"{name}_overlaps_ci"].astype(float).mean(),
            "closer": int(closer.get(name, 0)), "tied": int(closer.get("tie", 0)),
            "sign_test_p_value": p})
    return pd.DataFrame(rows)


# ----------------------------------------------------------------- in words --

def p_text(p: float) -> str:
    return "<0.0001" if p < 1e-4 else f"{p:.4f}"


def ratio_range(low: float, high: float) -> str:
    return f"{low:.2f}–{high:.2f}" if np.isfinite(high) else f"{low:.2f} upwards (no upper bound)"


def patient_words(fit: regen.FrailtyFit, table: pd.DataFrame, outcome: str) -> list[str]:
    """How much patients differ, in sentences; an estimate at 0 said as such."""
    tau, (low, high) = fit.frailty_sd, fit.frailty_ci
    test = fit.frailty_test
    quartile = table.set_index("quantity").loc["upper_quartile_ratio"]
    share = table.set_index("quantity").loc["between_patient_share", "estimate"]
    if tau == 0:
        reach = (f"an SD up to {high:.2f} (one patient in four lasting at most "
                 f"{quartile['ci_upper']:.2f} times as long as a typical patient)"
                 if np.isfinite(high) else "any SD")
        return [f"No patient effect was found: the {outcome} episodes of one patient are no "
                "more alike than those of different patients (the SD of the patients' effects "
                f"is estimated at 0, its lower bound; likelihood-ratio test p {p_text(1.0)}). "
                f"The data are still compatible with {reach}."]
    interval = f"{low:.3f}–{high:.3f}" if np.isfinite(high) else f"from {low:.3f}, no upper bound"
    lines = [f"Patient effect: SD {tau:.3f} on the log-time scale (95% profile-likelihood CI "
             f"{interval}; likelihood-ratio test of no patient effect: chi-square "
             f"{test['statistic']:.2f}, p {p_text(test['p_value'])})."]
    lines.append(
        f"One patient in four has {outcome} that typically lasts at least "
        f"{quartile['estimate']:.2f} times as long as a typical patient's (95% CI "
        f"{ratio_range(quartile['ci_lower'], quartile['ci_upper'])}), and one in four at most "
        f"{1 / quartile['estimate']:.2f} times as long; {share:.0%} of the spread in log "
        "duration between episodes lies between patients.")
    if test["p_value"] >= 0.05:
        lines.append("The data cannot tell this from no patient effect at all (p ≥ 0.05"
                     + ("; the interval reaches 0)." if low == 0 else ")."))
    return lines


def retreatment_words(fit: regen.FrailtyFit, outcome: str) -> list[str]:
    """The time ratio per treatment number, in a sentence."""
    if "treatment_number" not in fit.summary.index:
        other = [t for t in fit.summary.index if "treatment_number" in t]
        return [f"treatment_number is not a term of {literal(fit.formula)}: no change per "
                "retreatment is estimated" + (f" (terms with it: {', '.join(other)}; see "
                                               "frailty_summary.csv)." if other else ".")]
    row = fit.summary.loc["treatment_number"]
    ratio, low, high = row["time_ratio"], row["time_ratio_ci_lower"], row["time_ratio_ci_upper"]
    said = (f"x{ratio:.3f} per retreatment (95% CI {low:.3f}–{high:.3f}, p "
            f"{p_text(row['p_value'])}), for the same patient")
    if low > 1:
        return [f"{outcome.capitalize()} lasts longer with each retreatment: {said}, about "
                f"{ratio - 1:.0%} longer each time."]
    if high < 1:
        return [f"{outcome.capitalize()} gets shorter with each retreatment: {said}, about "
                f"{1 - ratio:.0%} shorter each time."]
    return [f"No clear change with retreatment: {said}; from {1 - low:.0%} shorter to "
            f"{high - 1:.0%} longer each time."]


def cv_words(scores: pd.DataFrame, outcome: str, folds: int) -> list[str]:
    """What the cross-validation found, in sentences."""
    if scores.empty or scores["patients"].iloc[0] == 0:
        return []
    own, marginal = scores.set_index("prediction").loc["own"], scores.set_index("prediction").loc["marginal"]
    n = int(own["patients"])
    lines = [
        f"Cross-validated over {folds} folds of patients: each of {n} patients' last {outcome} "
        "episode was predicted from a model fitted without it. With the patient's earlier "
        f"episodes the predicted median was closer to the observed interval for {own['closer']:.0f}, "
        f"further for {marginal['closer']:.0f} and as close for {own['tied']:.0f} (sign test p "
        f"{p_text(own['sign_test_p_value']) if np.isfinite(own['sign_test_p_value']) else 'n/a'}); "
        f"mean distance on the log scale {own['mean_log_distance']:.3f} against "
        f"{marginal['mean_log_distance']:.3f} from the covariates only; the predicted median "
        f"inside the observed interval {own['share_inside_interval']:.0%} against "
        f"{marginal['share_inside_interval']:.0%}."]
    if own["closer"] + marginal["closer"] == 0:
        lines.append("The two predictions were equally close for every patient: a patient "
                     "effect at or near 0 leaves nothing to learn from earlier episodes.")
    elif n < FEW:
        lines.append(f"Caution: only {n} patients had an earlier episode to learn from; too "
                     "few to judge whether history helps.")
    elif own["sign_test_p_value"] < 0.05 and own["closer"] > marginal["closer"]:
        lines.append(f"A patient's earlier episodes predict their next {outcome} episode better "
                     "than their covariates alone.")
    elif own["sign_test_p_value"] < 0.05:
        lines.append(f"A patient's earlier episodes predicted their next {outcome} episode "
                     "worse than their covariates alone.")
    else:
        lines.append("The cross-validation cannot tell the two predictions apart.")
    return lines


# --------------------------------------------------------------------- page --



def html_table(frame: pd.DataFrame, caption: str) -> dict:
    """A table for the page: every cell as text (numbers to 4 significant digits)."""
    def cell(value):
        if isinstance(value, bool | np.bool_):
            return "yes" if value else "no"
        if isinstance(value, float | np.floating):
            return "" if np.isnan(value) else f"{value:.4g}"
        return str(value)

    return {"caption": caption, "columns": [str(c) for c in frame.columns],
            "rows": [[cell(v) for v in row] for row in frame.itertuples(index=False)]}


def page(title: str, sections: list[dict], notes: list[str]) -> str:
    """A self-contained HTML page (autoescaped, a policy that allows no script)."""
    return analysis_page(title, sections, notes)


# ------------------------------------------------------------------ analyse --

def analyse(cohort: regen.Cohort, outcome: str = "relief", dist: str = "lognormal",
            formula: str | None = None, folds: int = FOLDS, min_group: int = MIN_GROUP,
            min_patients: int = MIN_PATIENTS, progress: bool | None = None) -> Result:
    """The patient effect, the change per retreatment and the cross-validated predictions.

    Parameters
    ----------
    cohort : regen.Cohort
    outcome : {"relief", "numbness"}
    dist : {"lognormal", "weibull", "loglogistic"}
    formula : str, optional
        The model's covariates; default ``~ nerve + treatment_number`` (nerve left out
        when there is one nerve, treatment_number when there is no retreatment).
    folds : int
        Folds of patients in the cross-validation.
    min_group, min_patients : int
        A treatment number is shown on its own only with this many episodes and patients.
    progress : bool, optional
        Say what is being fitted (on stderr); default: when stderr is a terminal.

    Raises
    ------
    SystemExit
        With the message when no patient was treated more than once (both sides on one
        day are not a repeat), or the model cannot be fitted.
    """
    show = sys.stderr.isatty() if progress is None else progress

    def say(text: str) -> None:
        if show:
            print(f"  {text} ...", file=sys.stderr, flush=True)

    result = Result()
    episodes = cohort.episodes(outcome)
    counts = episodes["patient_id"].value_counts()
    repeats = int((counts >= 2).sum())
    treated_again = last_episodes(episodes)[0]["patient_id"].nunique()
    if treated_again == 0 or repeats < 2:
        responders = " (relief episodes exist only for responders)" if outcome == "relief" else ""
        raise SystemExit(
            f"error: {len(episodes)} {outcome} episodes of {len(counts)} patients, and "
            + (f"no patient has a {outcome} episode treated after an earlier one{responders}"
               + (f"; {repeats} have two on the same day (both sides), which is not a "
                  "repeat" if repeats else "") if treated_again == 0 else
               f"only {repeats} patient has two or more{responders}")
            + ": this analysis needs patients treated more than once (a retreatment, or "
            "another nerve treated later). Check the cohort's treatment dates and "
            "treatment numbers.")
    notes = []
    if formula is None:
        formula, notes = default_formula(episodes)
    coded = with_reference(episodes)
    say(f"fitting {formula} with a patient effect to {len(episodes)} episodes")
    try:
        fit, messages = fitted(formula, coded, dist)
    except (regen.ModelError, ValueError) as error:
        raise SystemExit(f"error: the model {literal(formula)} cannot be fitted to the "
                         f"{outcome} episodes: {literal(error)}") from None
    result.models["frailty"] = fit
    if "distance_mm" in episodes.columns and episodes["distance_mm"].notna().any() and \
            "distance_mm" not in fit.design.variables:
        notes.append("The patient effect holds whatever a patient's episodes share that the "
                     "model leaves out, such as the distance from the freeze site to the "
                     "territory (the same at each retreatment of a site); add "
                     "log(distance_mm) to --formula to take it out.")
    notes += [f"The fit warned: {m}" for m in messages if fit.frailty_sd > 0 or "lower bound" not in m]

    effect = patient_effect(fit, episodes)
    result.tables["patient_effect"] = effect
    result.tables["frailty_summary"] = fit.summary.reset_index(names="term")
    shown = by_treatment_number(episodes, min_group, min_patients)
    result.tables["episodes_by_treatment_number"] = shown
    predictions, cv_notes = cross_validate(episodes, formula, dist, fit.design.variables,
                                           folds, say)
    scores = cv_scores(predictions) if len(predictions) else pd.DataFrame(
        columns=["prediction", "meaning", "patients"])
    result.tables["cv_predictions"] = predictions
    result.tables["cv_scores"] = scores
    n_folds = int(predictions["fold"].max()) if len(predictions) else 0

    data_line = (f"{len(episodes)} {outcome} episodes of {len(counts)} patients; {repeats} "
                 f"patients have two or more, {treated_again} of them one treated after an "
                 "earlier one.")
    counts_line = ("Episodes by treatment number: " + ", ".join(
        f"{row.treatment_number}: {row.episodes} ({row.patients} patients)"
        for row in shown.itertuples()) if len(shown) else
        f"Episodes by treatment number: not shown (fewer than {min_group} episodes or "
        f"{min_patients} patients in all).")
    caution = ([f"Caution: only {repeats} patients have two or more episodes; there is little "
                "to learn about how patients differ."] if repeats < FEW else [])
    patients = patient_words(fit, effect, outcome)
    retreatment = retreatment_words(fit, outcome)
    validation = cv_words(scores, outcome, n_folds)
    result.summary += [
        data_line, *caution,
        f"{fit.dist_label[0].upper()}{fit.dist_label[1:]} AFT {literal(formula)} with a "
        "shared patient effect:", *[f"  {line}" for line in patients + retreatment],
        counts_line, *validation, *notes, *cv_notes]

    method = ("The model: log T = x'β + b + σε for each episode, b ~ N(0, τ²) shared by all "
              f"the episodes of one patient (regen.fit_recovery with frailty='patient_id'); "
              f"{fit.dist_label} errors; times are days from each episode's own freeze.")
    pooling = (f"A treatment number is shown on its own only with at least {min_group} "
               f"episodes and {min_patients} patients; higher numbers are pooled.")
    cv_method = ("Cross-validation: each patient's last episode (latest treatment date) is held "
                 "out; the model is refitted without the held-out episodes of the patient's "
                 "fold (patients assigned to folds in turn); the held-out episode is predicted "
                 "from the patient's earlier episodes (their own median) and from the covariates "
                 "only (the median of a new patient). Distance: how far the predicted median "
                 "lies outside the episode's interval on the log scale (0 inside it). The CI "
                 "is that of the predicted median, not a range for one episode.")
    result.pages["repeat_treatments"] = page(
        f"Repeat treatments: how much patients differ ({outcome})",
        [{"heading": "The data", "lines": [data_line, *caution],
          "tables": [html_table(shown, "Episodes by treatment number")]},
         {"heading": "How much do patients differ?", "lines": patients,
          "tables": [html_table(effect.drop(columns="meaning"), "The patient effect"),
                     html_table(result.tables["frailty_summary"], f"The model {formula}")]},
         {"heading": "Does it change with each retreatment?", "lines": retreatment,
          "tables": []},
         {"heading": "Does a patient's history predict the next episode?",
          "lines": validation or ["Not cross-validated (see the notes)."],
          "tables": [html_table(scores.drop(columns="meaning", errors="ignore"),
                                "Cross-validated predictions of each patient's last episode")]
          if len(predictions) else []}],
        [method, pooling, cv_method, *notes, *cv_notes])
    return result


def main(argv: list[str] | None = None) -> list[Path]:
    """Run the analysis from the command line; return the files written."""
    p = parser(NAME, __doc__.splitlines()[0], seed_help=None)
    p.add_argument("cohort", nargs="?", type=Path, default=None,
                   help="the cohort folder or .xlsx workbook (same as --data)")
    p.add_argument("--outcome", default="relief", choices=["relief", "numbness"],
                   help="which episodes (default relief)")
    p.add_argument("--dist", default="lognormal", choices=list(DISTRIBUTIONS),
                   help="the law of the episode's log-time error (default lognormal)")
    p.add_argument("--formula", default=None,
                   help='the covariates (default "~ nerve + treatment_number"; nerve left out '
                        "with one nerve)")
    p.add_argument("--folds", type=at_least(2), default=FOLDS,
                   help=f"folds of patients in the cross-validation (default {FOLDS})")
    p.add_argument("--min-group", type=at_least(1), default=MIN_GROUP,
                   help="a treatment number with fewer episodes is pooled with the ones "
                        f"below it (default {MIN_GROUP})")
    p.add_argument("--min-patients", type=at_least(1), default=MIN_PATIENTS,
                   help=f"... or with fewer patients (default {MIN_PATIENTS})")
    args = p.parse_args(argv)
    if args.cohort is not None:
        args.data = args.cohort
    model = args.out / MODEL

    def analyse_and_save(cohort: regen.Cohort) -> Result:
        # The model file is checked before the work and written before the tables.
        regen.Outputs(inputs=[args.data], force=args.force).file(model)
        result = analyse(cohort, outcome=args.outcome, dist=args.dist, formula=args.formula,
                         folds=args.folds, min_group=args.min_group,
                         min_patients=args.min_patients)
        result.models["frailty"].save(model, outcome=args.outcome, force=args.force)
        result.summary.append(f"The model is saved as {MODEL} (regen.load_model reads it).")
        return result

    written = run(args, analyse_and_save, tables=TABLES, figures=FIGURES, pages=PAGES)
    return [model, *written]


if __name__ == "__main__":
    main()
