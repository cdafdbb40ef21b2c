"""How do the groups of a column compare: who they are, and how their recovery differs?

For a chosen ``--by`` (nerve, diabetes, procedure, sex, ...): Table 1 by group (CSV and
HTML, small cells suppressed), the flow from the files to the episodes (a CONSORT-style
diagram), the hazard ratios of the semiparametric proportional-hazards model for
interval-censored episodes (``~ by`` plus ``--adjust`` covariates, robust over patients),
the generalized log-rank test (robust over patients, within ``--strata`` when given), and
the recovery curves by group (NPMLE with patient-bootstrap bands) with the model over them.

Usage: python analyses/compare_groups.py [--data PATH] [--out DIR] [--by COLUMN]
           [--outcome relief|numbness] [--adjust TERMS] [--strata COLUMN] [--seed N]
           [--bootstrap N] [--permutations N]
"""

from __future__ import annotations

import sys
from pathlib import Path

import pandas as pd

import regen
import regen.plot
from regen.baseline import table_one_html

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the scripts' shared helpers
from _shared import Result, literal, new_axes, parser, run

NAME = "compare_groups"
#: What the script writes (checked before the analysis): CSV tables, PNG and SVG figures,
#: and Table 1 as an HTML page.
TABLES = ("table_one", "flow", "ph_hazard_ratios", "logrank")
FIGURES = ("flow", "curves_by_group", "ph_forest")
PAGES = ("table_one",)
#: What a hazard ratio above 1 means for each outcome.
SOONER = {"numbness": "numbness fades sooner", "relief": "relief ends sooner"}
#: More groups than this make no figure or table a reader can follow.
MAX_GROUPS = 12


def analyse(cohort: regen.Cohort, by: str = "nerve", outcome: str = "relief",
            adjust: str | None = None, strata: str | None = None, seed: int = 1,
            n_bootstrap: int = 200, n_permutations: int = 0) -> Result:
    """Table 1, the flow, the PH hazard ratios, the log-rank test and the curves by ``by``.

    Parameters
    ----------
    cohort : regen.Cohort
    by : str
        The column whose groups are compared.
    outcome : {"relief", "numbness"}
    adjust : str, optional
        Other covariates of the PH model, as formula terms ("age + diabetes").
    strata : str, optional
        The log-rank test compares the groups within the levels of this column.
    seed, n_bootstrap, n_permutations
        The seed of the NPMLE's patient bootstrap and of the permutations, their numbers.
    """
    result = Result()
    episodes = cohort.episodes(outcome)
    for option, column in (("--by", by), ("--strata", strata)):
        if column is not None and column not in episodes.columns:
            raise SystemExit(f"error: {option} {literal(column)}: no such column; choose one of "
                             f"{', '.join(map(literal, episodes.columns))}")
    if episodes[by].nunique() > MAX_GROUPS:
        raise SystemExit(f"error: --by {literal(by)} has {episodes[by].nunique()} values; "
                         f"compare at most {MAX_GROUPS} groups (bands of a number first)")
    if pd.api.types.is_bool_dtype(episodes[by]):
        episodes = episodes.assign(**{by: episodes[by].map({False: "no", True: "yes"})})

    table = cohort.table_one(by=by, outcome=outcome)
    result.tables["table_one"] = table
    result.pages["table_one"] = table_one_html(table, title=f"Table 1. Baseline "
                                                            f"characteristics by {by}")
    result.tables["flow"] = cohort.flow()

    formula = f"~ {by}" + (f" + {adjust}" if adjust else "")
    ph = regen.fit_ph(formula, episodes, cluster="patient_id")
    test = regen.logrank_test(episodes, by=by, strata=strata, cluster="patient_id",
                              n_permutations=n_permutations, seed=seed)
    result.models.update(ph=ph, logrank=test)
    result.tables["ph_hazard_ratios"] = ph.summary.reset_index(names="term")
    result.tables["logrank"] = test.table.reset_index().assign(
        statistic=test.statistic, df=test.df, p_value=test.p_value,
        permutation_p_value=test.permutation_p_value)

    npmle = regen.turnbull(episodes, by=by, n_bootstrap=n_bootstrap, seed=seed,
                           cluster="patient_id", progress=False)
    profiles = ph.design.typical_profiles(episodes, by, npmle.groups)
    ylabel = {"relief": "Still relieved (responders)", "numbness": "Still numb"}[outcome]
    with regen.plot.style():
        ax = regen.plot.flow(cohort, outcome=outcome, ax=new_axes(7.0, 5.0))
        result.figures["flow"] = ax.figure
        panels = len(npmle.groups) > regen.plot.PANELS_ABOVE
        drawn = (regen.plot.recovery_panels if panels else regen.plot.recovery)(
            npmle, ph, profiles=profiles, ylabel=ylabel)
        result.figures["curves_by_group"] = getattr(drawn, "figure", drawn)
        ax = regen.plot.forest(ph, ax=new_axes(4.8, 0.7 + 0.24 * len(ph.params)),
                               title=f"Hazard ratios ({SOONER[outcome]} above 1)")
        result.figures["ph_forest"] = ax.figure

    p = "<0.0001" if test.p_value < 1e-4 else f"{test.p_value:.4f}"
    result.summary += [
        f"{len(episodes)} {outcome} episodes of {episodes['patient_id'].nunique()} patients, "
        f"by {by}: " + ", ".join(f"{literal(g)} {n}" for g, n in test.table["n"].items()),
        f"Proportional hazards {formula} (95% CI robust over patients; above 1: "
        f"{SOONER[outcome]}):",
        *[f"  {literal(term):<40} {row.hazard_ratio:7.3f} ({row.hazard_ratio_ci_lower:.3f}–"
          f"{row.hazard_ratio_ci_upper:.3f})" for term, row in ph.summary.iterrows()],
        f"Generalized log-rank test by {by}" + (f" within {strata}" if strata else "")
        + f", robust over patients: chi-square {test.statistic:.2f} on {test.df} df, p {p}",
    ]
    return result


def main(argv: list[str] | None = None) -> list[Path]:
    """Run the analysis from the command line; return the files written."""
    p = parser(NAME, __doc__.splitlines()[0], "seed of the bootstrap and permutations "
               "(default 1)", bootstrap=True)
    p.add_argument("--by", default="nerve", help="the column whose groups are compared "
                   "(default nerve)")
    p.add_argument("--outcome", default="relief", choices=["relief", "numbness"],
                   help="which episodes (default relief)")
    p.add_argument("--adjust", default=None,
                   help='other covariates of the hazard-ratio model, e.g. "age + diabetes"')
    p.add_argument("--strata", default=None,
                   help="compare within the levels of this column in the log-rank test")
    p.add_argument("--permutations", type=int, default=0,
                   help="also a permutation p-value over this many shuffles (default none)")
    args = p.parse_args(argv)
    return run(args, lambda cohort: analyse(
        cohort, by=args.by, outcome=args.outcome, adjust=args.adjust, strata=args.strata,
        seed=args.seed, n_bootstrap=args.bootstrap, n_permutations=args.permutations),
        tables=TABLES, figures=FIGURES, pages=PAGES)


if __name__ == "__main__":
    main()
