"""How well the shared-frailty AFT recovers a known truth, and what a patient's history buys.

Simulates cohorts of 200 patients with ``regen.simulate.cohort`` (the design of
tests/survival/test_frailty_simulation.py, which checks the same numbers): every
procedure is retreated when relief is seen to end (``retreat="on_relief_end"``, at most
5 procedures a patient), no lag (``lag_days=0``), a patient effect on log velocity of SD
``patient_sd_log=0.3``, a within-patient SD ``velocity_sd_log=0.25``, velocity ratios
0.95 per earlier treatment, 0.8 with diabetes, 0.93 a decade above 50, 0.95 for
smokers; ``p_response=0.95``, ``dropout_per_year=0.1`` and treatments from 2019 so
that most patients (about 90%) have two or more episodes (about 950 episodes a
cohort; a third of the patients are treated on both sides, two episodes a procedure).
With no lag the numbness time is exactly a log-normal AFT with a shared frailty,

    log T = -log 1.4 + log(distance) - log(0.93) (age - 50) / 10 - log(0.8) diabetes
            - log(0.95) smoker - log(0.95) (treatment_number - 1) - b_j + 0.25 eps,

b_j ~ N(0, 0.3^2), so ``fit_recovery(FORMULA, episodes, dist="lognormal",
frailty="patient_id")`` on ``read_cohort(...).episodes("numbness")`` has the truth
``TRUTH`` (``frailty_sd`` 0.3, ``log_scale`` log 0.25).

For every cohort it records each parameter's estimate, standard error and 95% interval
(``conf_int()``: Wald for the coefficients and log_scale, the profile-likelihood
``frailty_ci`` for the frailty SD; a Wald interval for it is shown beside), and every
warning. Then the prediction check: for each patient with two or more episodes before
their last procedure, the episodes of that last procedure (one, or two if bilateral) are
held out, the model is refitted once on the cohort without the held-out episodes, and
the held-out episodes' median is predicted by ``predict_quantile(q=[0.5])`` with
``history=`` the patient's earlier episodes ("patient") and without ("marginal"); the
error is |log(predicted median) - log(true recovery_day)|. The oracle row predicts with
the true coefficients and the true b_j: its error is the within-patient noise alone
(mean 0.25 * sqrt(2 / pi) = 0.20). The intervals' coverage is of the median each
predicts: the patient's own (with the true b_j) and the population's (b = 0).

Prints Markdown tables: per parameter the truth, the mean estimate, its bias with the
Monte-Carlo SE, the SD of the estimates, the mean SE and its ratio to the SD, the
coverage of the 95% intervals with its Monte-Carlo SE and the median width; then the
prediction errors by the number of earlier episodes. Each cohort has its own seed
spawned from ``--seed``, so the numbers do not depend on ``--jobs``. About 4 CPU
seconds a cohort, 2 without the prediction check (set ``OPENBLAS_NUM_THREADS=1`` when
running several jobs); 300 cohorts took 20 min with 2 processes on a busy 2-core machine.

Run:  python docs/frailty_simulation.py [--cohorts 300] [--seed 2026] [--jobs 2]
                                        [--predict-cohorts N]
"""

from __future__ import annotations

import argparse
import math
import tempfile
import time
import warnings
from collections import Counter
from multiprocessing import Pool

import numpy as np
import pandas as pd

import regen
from regen.simulate import SimulatedCohort, cohort

N_PATIENTS = 200
SETTINGS = {
    "lag_days": 0.0, "patient_sd_log": 0.3, "velocity_sd_log": 0.25,
    "retreatment_velocity_ratio": 0.95, "diabetes_velocity_ratio": 0.8,
    "age_velocity_ratio_per_decade": 0.93, "smoker_velocity_ratio": 0.95,
    "velocity_mm_per_day": 1.4, "retreat": "on_relief_end", "max_treatments": 5,
    "p_response": 0.95, "dropout_per_year": 0.1, "start_date": "2019-01-01",
}
FORMULA = ("~ np.log(distance_mm) + I((age - 50) / 10) + diabetes + smoker"
           " + I(treatment_number - 1)")
AGE, TREATMENT = "I((age - 50) / 10)", "I(treatment_number - 1)"
#: The true parameters of FORMULA's fit (log T = -log v, so each is minus a log ratio).
TRUTH = {
    "Intercept": -math.log(SETTINGS["velocity_mm_per_day"]),
    "np.log(distance_mm)": 1.0,
    AGE: -math.log(SETTINGS["age_velocity_ratio_per_decade"]),
    "diabetes": -math.log(SETTINGS["diabetes_velocity_ratio"]),
    "smoker": -math.log(SETTINGS["smoker_velocity_ratio"]),
    TREATMENT: -math.log(SETTINGS["retreatment_velocity_ratio"]),
    "log_scale": math.log(SETTINGS["velocity_sd_log"]),
    "frailty_sd": SETTINGS["patient_sd_log"],
}
#: The prediction check's groups by the number of earlier (history) episodes.
GROUPS = {"2": (2, 2), ">= 3": (3, np.inf), "all (>= 2)": (2, np.inf)}


def cohort_seeds(seed: int, count: int) -> list[int]:
    """One integer seed a cohort, spawned from ``seed``."""
    return [int(s.generate_state(1)[0]) for s in np.random.SeedSequence(seed).spawn(count)]


def simulate(seed: int) -> tuple[SimulatedCohort, pd.DataFrame]:
    """The simulated cohort and its numbness episodes, read back as a user would."""
    sim = cohort(N_PATIENTS, seed=seed, **SETTINGS)
    with tempfile.TemporaryDirectory() as folder:
        sim.write(folder)
        episodes = regen.read_cohort(folder).episodes("numbness")
    return sim, episodes


def true_log_median(events: pd.DataFrame) -> np.ndarray:
    """log of each treatment's true median numbness time given its patient's effect."""
    return (TRUTH["Intercept"] + np.log(events["distance_mm"].to_numpy(float))
            + TRUTH[AGE] * (events["age"].to_numpy(float) - 50) / 10
            + TRUTH["diabetes"] * events["diabetes"].to_numpy(float)
            + TRUTH["smoker"] * events["smoker"].to_numpy(float)
            + TRUTH[TREATMENT] * (events["treatment_number"].to_numpy(float) - 1)
            - events["patient_effect"].to_numpy(float))


def held_out(episodes: pd.DataFrame) -> pd.Series:
    """Rows to hold out: the last procedure's episodes of each patient with two or more
    episodes before it."""
    number = episodes["treatment_number"].astype(int)
    last = number.groupby(episodes["patient_id"]).transform("max")
    earlier = (number < last).groupby(episodes["patient_id"]).transform("sum")
    return (number == last) & (earlier >= 2)


def fitted(data: pd.DataFrame):
    """The frailty fit and the warnings it gave (category: message), or the error's repr."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            fit = regen.fit_recovery(FORMULA, data, dist="lognormal", frailty="patient_id")
        except (regen.RegenError, ValueError, ArithmeticError, np.linalg.LinAlgError) as error:
            return None, [], repr(error)
    return fit, [f"{w.category.__name__}: {w.message}" for w in caught], None


def parameters(fit) -> dict:
    names = list(TRUTH)
    ci = fit.conf_int().loc[names]
    return {"estimate": fit.params[names].to_numpy(), "se": fit.bse[names].to_numpy(),
            "ci": ci[["ci_lower", "ci_upper"]].to_numpy(), "n_nodes": fit.n_nodes,
            "frailty_p": fit.frailty_test["p_value"]}


def predictions(fit, train: pd.DataFrame, held: pd.DataFrame, truth: pd.DataFrame) -> dict:
    """The held-out episodes' median predicted with and without the patient's history."""
    columns = ["patient_id", "distance_mm", "age", "diabetes", "smoker", "treatment_number"]
    profiles = held[columns]
    history = train.loc[train["patient_id"].isin(held["patient_id"])]
    own = fit.predict_quantile(profiles, q=[0.5], history=history)
    marginal = fit.predict_quantile(profiles, q=[0.5])
    if not (own["prediction"] == "patient").all():
        raise RuntimeError("a held-out episode got no patient prediction")
    true_day = np.log(truth["recovery_day"].to_numpy())
    median = truth["log_median"].to_numpy()
    population = median + truth["patient_effect"].to_numpy()     # b = 0
    return {
        "patient": held["patient_id"].to_numpy(),
        "earlier": own["history_episodes"].to_numpy(),
        "error_patient": np.abs(np.log(own["estimate"].to_numpy()) - true_day),
        "error_marginal": np.abs(np.log(marginal["estimate"].to_numpy()) - true_day),
        "error_oracle": np.abs(median - true_day),
        "covered_patient": ((np.log(own["ci_lower"]) <= median)
                            & (median <= np.log(own["ci_upper"]))).to_numpy(),
        "covered_marginal": ((np.log(marginal["ci_lower"]) <= population)
                             & (population <= np.log(marginal["ci_upper"]))).to_numpy(),
    }


def study_cohort(seed: int, predict: bool = True) -> dict:
    """Everything recorded for one cohort (the prediction check only if ``predict``)."""
    started = time.process_time()
    sim, episodes = simulate(seed)
    counts = episodes.groupby("patient_id").size()
    out = {"seed": seed, "episodes": len(episodes), "patients": len(counts),
           "share_two_or_more": float((counts >= 2).mean())}
    fit, out["warnings"], out["error"] = fitted(episodes)
    if fit is not None:
        out["fit"] = parameters(fit)
    out["holdout_warnings"], out["holdout_error"] = [], None
    if not predict:
        out["cpu_seconds"] = time.process_time() - started
        return out
    hold = held_out(episodes)
    train, held = episodes.loc[~hold], episodes.loc[hold]
    fit, out["holdout_warnings"], out["holdout_error"] = fitted(train)
    if fit is not None:
        events = sim.events.assign(log_median=true_log_median(sim.events))
        truth = events.set_index("treatment_id").loc[held["treatment_id"]]
        out["predictions"] = predictions(fit, train, held, truth)
    out["cpu_seconds"] = time.process_time() - started
    return out


def _task(task: tuple[int, bool]) -> dict:
    return study_cohort(*task)


def run(seed: int, count: int, jobs: int = 1, predict_cohorts: int | None = None) -> list[dict]:
    """``count`` cohorts' records, in the order of their seeds, on ``jobs`` processes; the
    prediction check on the first ``predict_cohorts`` (default: all)."""
    predict = count if predict_cohorts is None else predict_cohorts
    tasks = [(s, i < predict) for i, s in enumerate(cohort_seeds(seed, count))]
    if jobs == 1:
        return [_task(task) for task in tasks]
    with Pool(jobs) as pool:
        return pool.map(_task, tasks, chunksize=1)


# --------------------------------------------------------------- summaries --

def parameter_table(results: list[dict]) -> pd.DataFrame:
    """Per parameter: truth, mean estimate, bias (MC SE), SD, mean SE, SE / SD, coverage
    (MC SE), median CI width; ``frailty_sd`` with the profile interval, and with Wald's."""
    done = [r["fit"] for r in results if "fit" in r]
    estimate = np.array([r["estimate"] for r in done])
    se = np.array([r["se"] for r in done])
    ci = np.array([r["ci"] for r in done])            # cohort, parameter, end
    rows = []
    names = list(TRUTH)
    wald = names.index("frailty_sd")
    columns = [(name, k, ci[:, k]) for k, name in enumerate(names)]
    columns.append(("frailty_sd (Wald)", wald,
                    np.stack([estimate[:, wald] - 1.959964 * se[:, wald],
                              estimate[:, wald] + 1.959964 * se[:, wald]], axis=1)))
    for name, k, interval in columns:
        truth = TRUTH[names[k]]
        covered = (interval[:, 0] <= truth) & (truth <= interval[:, 1])
        share = covered.mean()
        sd = estimate[:, k].std(ddof=1) if len(done) > 1 else np.nan
        rows.append({"parameter": name, "truth": truth, "cohorts": len(done),
                     "mean_estimate": estimate[:, k].mean(),
                     "bias": estimate[:, k].mean() - truth, "bias_mcse": sd / np.sqrt(len(done)),
                     "sd": sd, "mean_se": se[:, k].mean(), "se_over_sd": se[:, k].mean() / sd,
                     "coverage": share, "coverage_mcse": np.sqrt(share * (1 - share) / len(done)),
                     "median_width": np.median(interval[:, 1] - interval[:, 0])})
    return pd.DataFrame(rows).set_index("parameter")


def prediction_table(results: list[dict]) -> pd.DataFrame:
    """Per group of earlier episodes: predictions, mean |log error| (patient, marginal,
    oracle), their difference with the MC SE over cohorts, share of held-out episodes
    where the patient prediction is closer, and the intervals' coverage."""
    runs = [r["predictions"] for r in results if "predictions" in r]
    rows = []
    for label, (low, high) in GROUPS.items():
        picks = [(p["earlier"] >= low) & (p["earlier"] <= high) for p in runs]
        pooled = {key: np.concatenate([p[key][m] for p, m in zip(runs, picks, strict=True)])
                  for key in runs[0] if key != "patient"}
        patients = sum(len(set(p["patient"][m])) for p, m in zip(runs, picks, strict=True))
        gain = np.array([(p["error_marginal"][m] - p["error_patient"][m]).mean()
                         for p, m in zip(runs, picks, strict=True) if m.any()])
        rows.append({"earlier_episodes": label, "held_out": len(pooled["earlier"]),
                     "patients": patients,
                     "error_patient": pooled["error_patient"].mean(),
                     "error_marginal": pooled["error_marginal"].mean(),
                     "error_oracle": pooled["error_oracle"].mean(),
                     "gain": gain.mean(),
                     "gain_mcse": gain.std(ddof=1) / np.sqrt(len(gain)) if len(gain) > 1 else np.nan,
                     "patient_closer": (pooled["error_patient"] < pooled["error_marginal"]).mean(),
                     "coverage_patient": pooled["covered_patient"].mean(),
                     "coverage_marginal": pooled["covered_marginal"].mean()})
    return pd.DataFrame(rows).set_index("earlier_episodes")


def print_report(results: list[dict], seed: int) -> None:
    params = parameter_table(results)
    print(f"fit_recovery(\"{FORMULA}\", dist=\"lognormal\", frailty=\"patient_id\") on "
          f"{len(results)} simulated cohorts of {N_PATIENTS} patients, seed {seed}; "
          f"{np.mean([r['episodes'] for r in results]):.0f} episodes a cohort on average, "
          f"{np.mean([r['share_two_or_more'] for r in results]):.0%} of patients with >= 2.\n")
    print("| parameter | truth | cohorts | mean estimate | bias ± MC SE | SD of estimates | "
          "mean SE | mean SE / SD | coverage ± MC SE | median CI width |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for name, row in params.iterrows():
        print(f"| {name} | {row['truth']:.4f} | {row['cohorts']:.0f} | {row['mean_estimate']:.4f} | "
              f"{row['bias']:+.4f} ± {row['bias_mcse']:.4f} | {row['sd']:.4f} | "
              f"{row['mean_se']:.4f} | {row['se_over_sd']:.3f} | "
              f"{row['coverage']:.1%} ± {row['coverage_mcse']:.1%} | {row['median_width']:.4f} |")
    nodes = Counter(r["fit"]["n_nodes"] for r in results if "fit" in r)
    rejected = np.mean([r["fit"]["frailty_p"] < 0.05 for r in results if "fit" in r])
    print(f"\nquadrature nodes: {dict(sorted(nodes.items()))}; frailty test rejects tau = 0 "
          f"at 0.05 in {rejected:.1%} of cohorts")
    with_predictions = sum("predictions" in r for r in results)
    if not with_predictions:
        return print_problems(results)
    predicted = prediction_table(results)
    print(f"\nHeld-out last procedure ({with_predictions} cohorts), |log(predicted median) - "
          "log(true recovery day)|; gain = marginal - patient error (MC SE over cohorts); "
          "coverage of the median each predicts:\n")
    print("| earlier episodes | held-out episodes | patients | error, patient | "
          "error, marginal | error, oracle | gain ± MC SE | patient closer | "
          "CI coverage, patient | CI coverage, marginal |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for label, row in predicted.iterrows():
        print(f"| {label} | {row['held_out']:.0f} | {row['patients']:.0f} | {row['error_patient']:.4f} | "
              f"{row['error_marginal']:.4f} | {row['error_oracle']:.4f} | "
              f"{row['gain']:.4f} ± {row['gain_mcse']:.4f} | {row['patient_closer']:.1%} | "
              f"{row['coverage_patient']:.1%} | {row['coverage_marginal']:.1%} |")
    print_problems(results)


def print_problems(results: list[dict]) -> None:
    """The warnings and errors of the fits, with how many cohorts gave each."""
    for key, label in (("warnings", "full fit"), ("holdout_warnings", "hold-out fit")):
        warned = Counter(w[:160] for r in results for w in set(r[key]))
        print(f"\n{label}: {sum(bool(r[key]) for r in results)} of {len(results)} cohorts "
              "warned" + "".join(f"\n  {n} x {w}" for w, n in warned.most_common()))
    for key in ("error", "holdout_error"):
        failed = Counter(r[key] for r in results if r[key])
        for error, n in failed.items():
            print(f"\n{key}: {n} x {error}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cohorts", type=int, default=300)
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--predict-cohorts", type=int,
                        help="how many of the cohorts (the first) get the prediction check "
                             "(a second fit); default: all")
    parser.add_argument("--jobs", type=int, default=1,
                        help="worker processes over cohorts (the results do not depend on it)")
    args = parser.parse_args()
    started = time.perf_counter()
    results = run(args.seed, args.cohorts, args.jobs, args.predict_cohorts)
    print_report(results, args.seed)
    cpu = [r["cpu_seconds"] for r in results]
    print(f"\n{time.perf_counter() - started:.0f} s with {args.jobs} process(es); "
          f"{np.mean(cpu):.1f} CPU s a cohort (simulate, write, read, two fits, predictions)")


if __name__ == "__main__":
    main()
