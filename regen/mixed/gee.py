r"""Population-averaged probability of a yes/no outcome over time: GEE with a logit link.

:func:`fit_probability` fits, with statsmodels' generalised estimating equations,

.. math:: \operatorname{logit} P(y_{gj} = 1 \mid x_{gj}) = x_{gj}'\beta

with a working correlation within each group (exchangeable, or AR(1) in the
time variable) and robust (sandwich) standard errors, so the intervals stay
valid when the working correlation is wrong. :math:`e^{\beta_k}` is an odds
ratio averaged over the population, not a patient-specific one.

=====================  ======================================
symbol                 attribute
=====================  ======================================
:math:`\beta`          ``params`` (log odds), ``summary``
:math:`e^{\beta_k}`    ``summary.odds_ratio``
working correlation    ``working_correlation``
=====================  ======================================
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
from scipy import special

from regen.design import Design, formula_frame
from regen.exceptions import ConvergenceWarning, DataWarning, ModelError
from regen.results import FitResult
from regen.serialize import (
    stored_number,
    stored_parameters,
)
from regen.validation import BOOLEAN_WORDS

__all__ = ["ProbabilityFit", "fit_probability"]

CORRELATIONS = ("exchangeable", "ar1", "independence")


def fit_probability(formula: str, data: pd.DataFrame, *, groups: str = "patient_id",
                    correlation: str = "exchangeable", time: str = "day",
                    max_iter: int = 100) -> ProbabilityFit:
    """P(outcome | time, covariates) by GEE with a logit link.

    Parameters
    ----------
    formula : str
        A 0/1 or yes/no response and the covariates, e.g.
        ``"numb ~ cr(day, df=4, constraints='center') + diabetes"``.
    data : DataFrame
        One row per visit, e.g. ``cohort.measurements("numb")``.
    groups : str, default "patient_id"
        Rows of one group are correlated.
    correlation : {"exchangeable", "ar1", "independence"}
        The working correlation; ``"ar1"`` decays with the number of visits
        between two rows of a group (``rho ** |j - k|``, visits in ``time`` order).
    time : str, default "day"
        The time column: orders each group's visits.

    Returns
    -------
    ProbabilityFit

    Examples
    --------
    >>> numb = cohort.measurements("numb").query("day >= 1")  # doctest: +SKIP
    >>> gee = regen.fit_probability("numb ~ bs(day, df=4)", numb)  # doctest: +SKIP
    >>> gee.predict(pd.DataFrame({"day": [30, 90, 180]}))  # doctest: +SKIP
    """
    from statsmodels.genmod import cov_struct, families
    from statsmodels.genmod.generalized_estimating_equations import GEE

    if correlation not in CORRELATIONS:
        raise ValueError(f"correlation must be one of {', '.join(CORRELATIONS)}, "
                         f"not {correlation!r}")
    if not isinstance(data, pd.DataFrame):
        raise TypeError(f"data must be a DataFrame, not {type(data).__name__}")
    for name in (groups, time):
        if name not in data.columns:
            raise ValueError(f"no column {name!r} in data")
    if data[groups].isna().any():
        raise ValueError(f"{int(data[groups].isna().sum())} row(s) have no {groups}; every "
                         "row needs its group")
    design, frame, rows, y, X = _probability_rows(formula, data)
    n_dropped = len(data) - len(rows)
    codes = pd.factorize(frame.loc[rows, groups])[0]
    if codes.max() < 1:
        raise ModelError(f"GEE needs at least 2 values of {groups} (its standard errors come "
                         "from the differences between them); found 1")
    order = np.lexsort((frame.loc[rows, time].to_numpy(dtype="float64"), codes))
    working = {"exchangeable": cov_struct.Exchangeable, "independence": cov_struct.Independence,
               "ar1": lambda: cov_struct.Autoregressive(grid=True)}[correlation]()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model = GEE(y[order], X[order], groups=codes[order], family=families.Binomial(),
                    cov_struct=working)
        try:
            result = model.fit(maxiter=max_iter)
        except (ValueError, np.linalg.LinAlgError, FloatingPointError) as error:
            raise ModelError(f"the GEE fit of {formula!r} with a {correlation} working "
                             f"correlation failed ({error}); try correlation='independence' or "
                             "fewer covariates") from None
    if any(type(w.message).__name__ == "PerfectSeparationWarning" or
           "perfect separation" in str(w.message).lower() for w in caught):
        raise ModelError(f"{formula!r}: a covariate predicts the outcome perfectly (perfect "
                         "separation), so its odds ratio is infinite and cannot be estimated; "
                         "drop or merge that covariate")
    converged = result.converged if hasattr(result, "converged") else True
    trouble = [str(w.message) for w in caught
               if "converge" in str(w.message).lower() or "iteration" in str(w.message).lower()]
    if not converged or trouble:
        warnings.warn(f"the GEE fit of {formula!r} did not converge in {max_iter} iterations; "
                      "try correlation='independence' or fewer covariates.",
                      ConvergenceWarning, stacklevel=2)
    params = np.asarray(result.params, dtype="float64")
    covariance = np.asarray(result.cov_params(), dtype="float64")
    dependence = float(np.atleast_1d(working.dep_params)[0]) \
        if correlation != "independence" else 0.0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        qic = float(result.qic(scale=1.0)[0])
    return ProbabilityFit(
        params=pd.Series(params, index=design.names),
        covariance=pd.DataFrame(covariance, index=design.names, columns=design.names),
        formula=formula, groups=groups, correlation=correlation,
        working_correlation=dependence, qic=qic, design=design,
        n=len(rows), n_groups=int(codes.max() + 1), n_dropped=n_dropped)


def _probability_rows(formula: str, data: pd.DataFrame):
    """The design of ``formula``, the formula frame, the rows with the response and every
    covariate (a warning counts the others), their 0/1 response and their covariates."""
    frame = formula_frame(data)
    response = formula.split("~")[0].strip()
    if response in frame.columns and not pd.api.types.is_numeric_dtype(frame[response]):
        frame[response] = _yes_no(frame[response], response)
    design, matrices = Design.fit(formula, frame, data)
    rows = matrices.rhs.index.intersection(matrices.lhs.index)
    n_dropped = len(data) - len(rows)
    if n_dropped:
        warnings.warn(f"{n_dropped} row(s) have a missing value in {formula!r} and are left "
                      "out (ProbabilityFit.n_dropped).", DataWarning, stacklevel=3)
    if len(rows) == 0:
        raise ModelError("no row with the response and every covariate to fit")
    y = np.asarray(matrices.lhs.loc[rows], dtype="float64")
    if y.ndim != 2 or y.shape[1] != 1:
        raise ValueError(f"formula {formula!r} must have one yes/no response")
    y = y[:, 0]
    if not np.isin(y, (0.0, 1.0)).all():
        bad = y[~np.isin(y, (0.0, 1.0))][0]
        raise ValueError(f"the response of {formula!r} must be 0/1 or yes/no; found {bad:g}")
    if y.min() == y.max():
        raise ModelError(f"the response is {int(y[0])} in every row: no probability to model")
    X = np.asarray(matrices.rhs.loc[rows], dtype="float64")
    design.check(X, frame.loc[rows])
    return design, frame, rows, y, X


def _yes_no(column: pd.Series, name: str) -> pd.Series:
    """yes/no, true/false or 1/0 text as 1.0/0.0 (missing stays missing)."""
    text = column.astype("string").str.strip().str.lower()
    bad = text.notna() & ~text.isin(list(BOOLEAN_WORDS))
    if bad.any():
        raise ValueError(f"the response {name} must be 0/1 or yes/no; found "
                         f"{column[bad].iloc[0]!r}")
    return text.map(BOOLEAN_WORDS).astype("float64")


class ProbabilityFit(FitResult, kind="ProbabilityFit"):
    """Result of :func:`fit_probability`.

    Attributes
    ----------
    params, bse, covariance : log odds ratios, robust standard errors, covariance.
    summary : DataFrame
        ``estimate, std_err, ci_lower, ci_upper, p_value, odds_ratio,
        odds_ratio_ci_lower, odds_ratio_ci_upper``.
    working_correlation : float
        The exchangeable correlation, or the AR(1) correlation per unit of time.
    qic : float
        Pan's quasi-information criterion (lower is better), for comparing
        working correlations and formulas. GEE has no likelihood: ``loglik`` and
        ``aic`` are NaN.
    """

    ratio = "odds_ratio"
    effect_name = "Odds ratio"
    loglik = float("nan")
    aic = float("nan")

    def __init__(self, *, params, covariance, formula, groups, correlation,
                 working_correlation, qic, design, n, n_groups, n_dropped):
        self.params, self.covariance = params, covariance
        self.design = design
        self.formula, self.groups, self.correlation = formula, groups, correlation
        self.working_correlation, self.qic = working_correlation, qic
        self.n, self.n_groups, self.n_dropped = n, n_groups, n_dropped


    def predict(self, profiles: pd.DataFrame, ci: bool = True, alpha: float = 0.05) -> pd.DataFrame:
        """P(outcome) for each profile: ``estimate`` and, with ``ci``, ``ci_lower, ci_upper``
        (a Wald interval on the logit scale, transformed)."""
        X = self.design.matrix(profiles)
        eta = X @ self.params.to_numpy()
        out = profiles.reset_index(drop=True).assign(estimate=special.expit(eta))
        if ci:
            se = self.delta_se(X)
            z = self.critical_value(alpha)
            out = out.assign(ci_lower=special.expit(eta - z * se),
                             ci_upper=special.expit(eta + z * se))
        return out

    def document(self) -> dict:
        return {
            "formula": self.formula, "groups": self.groups, "correlation": self.correlation,
            "working_correlation": self.working_correlation, "qic": self.qic,
            "parameters": list(self.params.index), "params": self.params.tolist(),
            "covariance": self.covariance.to_numpy().tolist(),
            "n": self.n, "n_groups": self.n_groups, "n_dropped": self.n_dropped,
            "design": self.design.to_dict()}

    @classmethod
    def from_document(cls, document: dict) -> ProbabilityFit:
        params, covariance = stored_parameters(document)  # before any design
        if document["correlation"] not in CORRELATIONS:
            raise ValueError(f"unknown correlation {document['correlation']!r}")
        design = Design.from_dict(document["formula"], document["design"])
        if design.names != list(params.index):
            raise ValueError("the coefficients do not match the formula's design")
        # Reported, never computed with: these two may be NaN.
        return cls(params=params, covariance=covariance,
                   formula=document["formula"], groups=document["groups"],
                   correlation=document["correlation"],
                   working_correlation=stored_number(document, "working_correlation",
                                                     finite=False),
                   qic=stored_number(document, "qic", finite=False), design=design,
                   n=int(document["n"]), n_groups=int(document["n_groups"]),
                   n_dropped=int(document["n_dropped"]))

    def __repr__(self) -> str:
        return (f"<ProbabilityFit {self.formula!r} ({self.correlation}): {self.n} rows, "
                f"{self.n_groups} groups>")
