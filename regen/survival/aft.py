r"""Accelerated-failure-time regression for interval-censored (l, u] episodes.

The model
---------
For an episode with covariates :math:`x` (a row of the formula's design)

.. math:: \log T = x'\beta + \sigma \varepsilon,

with :math:`\varepsilon` standard extreme-value (minimum; ``weibull``), normal
(``lognormal``) or logistic (``loglogistic``). With
:math:`z(t) = (\log t - x'\beta)/\sigma` and :math:`F, S = 1 - F, f` the
standard distribution, survival and density of :math:`\varepsilon`, each row
contributes

- interval ``0 < l < u < inf``: :math:`\log\{F(z(u)) - F(z(l))\}`
- right-censored ``u = inf``: :math:`\log S(z(l))`
- left-censored ``l = 0``: :math:`\log F(z(u))`
- exact ``l = u = t``: :math:`\log f(z(t)) - \log\sigma - \log t` (the density
  of :math:`T` in days, as R's ``survreg``)

Each distribution's :math:`\log F`, :math:`\log S`, :math:`\log f` and their
derivatives in :math:`z` are written once, in log space; the gradient in
:math:`(\beta, \log\sigma)` follows by the chain rule
(:math:`\partial z/\partial\beta = -x/\sigma`, :math:`\partial z/\partial\log\sigma = -z`).
The fit is Newton's method on :math:`(\beta, \log\sigma)` with step halving,
from a least-squares start on log interval midpoints, with the analytic
Hessian (both derivatives are checked against finite differences in the tests).

``exp(beta_k)`` is a *time ratio*: the factor by which the covariate
multiplies every quantile of the time to the event.

=====================  ===============================
symbol                 attribute
=====================  ===============================
:math:`\beta`          ``params`` (all but the last)
:math:`\log\sigma`     ``params["log_scale"]``
:math:`\sigma`         ``scale``
:math:`e^{\beta_k}`    ``summary.time_ratio``
=====================  ===============================
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd

from regen.design import Design, formula_columns, formula_frame
from regen.exceptions import DataWarning, ModelError
from regen.survival.covariance import (
    check_clusters,
    cluster_sandwich,
    information_inverse,
)
from regen.survival.frailty import FrailtyFit, fit_frailty
from regen.survival.likelihood import (
    DISTRIBUTIONS,
    IntervalLikelihood,
    newton_maximum,
)
from regen.survival.npmle import check_intervals
from regen.survival.recoveryfit import RecoveryFit

__all__ = ["DISTRIBUTIONS", "RecoveryFit", "choose_distribution", "compare_distributions",
           "fit_recovery"]


# ---------------------------------------------------------------------- fit --

def fit_recovery(formula: str, data: pd.DataFrame, *, lower: str = "lower", upper: str = "upper",
                 dist: str = "weibull", cluster: str | None = None, weights: str | None = None,
                 frailty: str | None = None, tol: float = 1e-9,
                 max_iter: int = 100) -> RecoveryFit:
    """Fit an accelerated-failure-time model to (l, u] episodes by maximum likelihood.

    Parameters
    ----------
    formula : str
        Right-hand side, e.g. ``"~ nerve + age + diabetes"`` (formulaic syntax:
        categoricals, interactions, ``bs(age, df=3)`` splines).
    data : DataFrame
        Episodes, e.g. :meth:`regen.Cohort.episodes`; not changed.
    lower, upper : str
        Interval columns: the event happened in ``(lower, upper]`` days.
    dist : {"weibull", "lognormal", "loglogistic"}
        Distribution of the time (of its logarithm's error).
    cluster : str, optional
        Column of a clustering unit (``"patient_id"``), as both sides and repeat
        treatments of one patient are not independent. The rule, whatever the
        number of clusters G: standard errors from the bias-reduced cluster
        sandwich (CR2, Bell & McCaffrey 2002; :func:`cluster_sandwich`), and
        intervals and p-values from Student's t on G - 1 degrees of freedom
        (``RecoveryFit.reference_df``), as R's clubSandwich does. Normal
        quantiles and the G/(G-1) factor were too optimistic with tens of
        patients; with hundreds the two agree.
    weights : str, optional
        Column of non-negative case weights.
    frailty : str, optional
        Column of the patient ids (``"patient_id"``) for a shared frailty: every
        episode of patient i has its log time shifted by the same b_i ~ N(0, tau^2),
        so the fit says how much patients differ (``frailty_sd``) and predicts from a
        patient's own earlier episodes (``predict_quantile(..., history=)``). Returns
        a :class:`~regen.FrailtyFit`; the model is in :mod:`regen.survival.frailty`.
        Not with ``cluster=``.
    tol : float, default 1e-9
        Newton stops when no parameter moves by more than ``tol``.
    max_iter : int, default 100

    Returns
    -------
    RecoveryFit, or FrailtyFit with ``frailty=``

    Examples
    --------
    >>> ep = cohort.episodes("numbness")  # doctest: +SKIP
    >>> fit = regen.fit_recovery("~ nerve + age + diabetes", ep, cluster="patient_id")  # doctest: +SKIP
    >>> fit.summary[["time_ratio", "time_ratio_ci_lower", "time_ratio_ci_upper"]]  # doctest: +SKIP
    """
    if dist not in DISTRIBUTIONS:
        raise ValueError(f"dist must be one of {', '.join(DISTRIBUTIONS)}, not {dist!r}")
    if not isinstance(data, pd.DataFrame):
        raise TypeError(f"data must be a DataFrame, not {type(data).__name__}")
    if frailty is not None and cluster is not None:
        raise ValueError("give frailty= or cluster=, not both: frailty= models the likeness of "
                         "a patient's episodes, which cluster= only corrects the intervals for")
    needed = [lower, upper] + [c for c in (cluster, weights, frailty) if c is not None]
    missing = [c for c in needed if c not in data.columns]
    if missing:
        raise ValueError(f"no column {', '.join(map(repr, missing))} in data")
    original = data
    data = formula_frame(formula_columns(data, formula, lower, upper, cluster, weights, frailty))
    design, matrix = Design.fit(formula, data, original)
    dropped = len(data) - len(matrix)
    if dropped:
        warnings.warn(f"{dropped} episode(s) have a missing value in a covariate of {formula!r} "
                      "and are left out of the fit (RecoveryFit.n_dropped).", DataWarning,
                      stacklevel=2)
    rows = data.loc[matrix.index]
    low = rows[lower].to_numpy(dtype="float64")
    up = rows[upper].to_numpy(dtype="float64")
    w = np.ones(len(rows)) if weights is None else rows[weights].to_numpy(dtype="float64")
    if len(rows) == 0:
        raise ModelError("no episode left to fit")
    check_intervals(low, up, w, rows.index)
    if np.isinf(up).all():
        raise ModelError("every episode is right-censored: no recovery was observed, so the "
                         "time to recovery cannot be estimated")
    if (low == 0).all():
        raise ModelError("every episode is left-censored: the event happened before the first "
                         "visit every time, so the time to it cannot be estimated")
    X = np.asarray(matrix, dtype="float64")
    names = design.names
    likelihood = IntervalLikelihood(DISTRIBUTIONS[dist], X, low, up, w)
    # The distinct design rows, weighted to X's Gram matrix, have X's rank: the check reads
    # hundreds of rows, not every episode.
    design.check(likelihood.patterns.gram_rows(), rows,
                 why=" (a covariate with a single value, or collinear covariates)")
    if cluster is not None:
        check_clusters(rows[cluster])
    if frailty is not None:
        check_clusters(rows[frailty])
    found = newton_maximum(likelihood, likelihood.start(), tol, max_iter)
    theta, iterations = found.theta, found.iterations
    if frailty is not None:
        parts = fit_frailty(dist, X, low, up, w, rows[frailty], names, start=theta,
                            loglik_without=found.value, tol=tol, max_iter=max_iter)
        return FrailtyFit(
            params=pd.Series(parts["theta"], index=parts["index"]),
            covariance=pd.DataFrame(parts["covariance"], index=parts["index"],
                                    columns=parts["index"]),
            loglik=parts["loglik"], dist=dist, formula=formula, design=design, n=len(rows),
            n_dropped=dropped, iterations=parts["iterations"], frailty=frailty,
            frailty_ci=parts["frailty_ci"], frailty_test=parts["frailty_test"],
            n_nodes=parts["n_nodes"], n_patients=parts["n_patients"])
    covariance = information_inverse(-found.hessian, theta, names + ["log_scale"])
    n_clusters = None
    if cluster is not None:
        covariance = cluster_sandwich(covariance, likelihood.scores(theta),
                                      likelihood.row_hessians(theta), rows[cluster])
        n_clusters = int(rows[cluster].nunique())
    return RecoveryFit(
        params=pd.Series(theta, index=[*names, "log_scale"]),
        covariance=pd.DataFrame(covariance, index=[*names, "log_scale"],
                                columns=[*names, "log_scale"]),
        loglik=found.value, dist=dist, formula=formula,
        design=design, n=len(rows), n_dropped=dropped,
        iterations=iterations, cluster=cluster, n_clusters=n_clusters)


# --------------------------------------------------------------- comparison --

def choose_distribution(formula: str, data: pd.DataFrame, **options
                        ) -> tuple[RecoveryFit, pd.DataFrame]:
    """Fit the three distributions and keep the one with the lowest AIC.

    The three laws have the same number of parameters, so the AIC ranks them as the
    log-likelihood does; a difference under about 2 means the data barely tell them
    apart (the table says by how much each trails).

    Parameters
    ----------
    formula, data, **options
        As for :func:`fit_recovery` (``dist`` aside).

    Returns
    -------
    fit : RecoveryFit
        The fit with the lowest AIC.
    table : DataFrame
        ``dist, loglik, n_params, aic, delta_aic``, best first.

    Examples
    --------
    >>> fit, table = regen.choose_distribution("~ nerve + age", episodes)  # doctest: +SKIP
    >>> fit.dist, table  # doctest: +SKIP
    """
    if "dist" in options:
        raise TypeError("choose_distribution() fits every dist; call fit_recovery(dist=...) for one")
    fits = {dist: fit_recovery(formula, data, dist=dist, **options) for dist in DISTRIBUTIONS}
    table = _aic_table(fits)
    return fits[table["dist"].iloc[0]], table


def _aic_table(fits: dict[str, RecoveryFit]) -> pd.DataFrame:
    table = pd.DataFrame({
        "dist": list(fits), "loglik": [f.loglik for f in fits.values()],
        "n_params": [len(f.params) for f in fits.values()],
        "aic": [f.aic for f in fits.values()],
    }).sort_values("aic", ignore_index=True, kind="stable")
    table["delta_aic"] = table["aic"] - table["aic"].iloc[0]
    return table


def compare_distributions(formula: str, data: pd.DataFrame, *, by: str | None = "nerve",
                          times=None, **options) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Fit the three distributions; rank them by AIC; give the curves to overlay on the NPMLE.

    Parameters
    ----------
    formula : str
        Right-hand side, as for :func:`fit_recovery`.
    data : DataFrame
        Episodes.
    by : str or None, default "nerve"
        Group whose fitted curves (other covariates at their median or most
        common value) and NPMLE are returned for overlaying; None: one curve.
    times : array-like, optional
        Days at which to evaluate the curves (default: 0 to the largest finite
        ``upper``, 100 points).
    **options
        Passed to :func:`fit_recovery` (``lower``, ``upper``, ``cluster``, ...).

    Returns
    -------
    table : DataFrame
        ``dist, loglik, n_params, aic, delta_aic``, best first.
    curves : DataFrame
        ``group, time, curve, survival``: for each group the NPMLE (``curve``
        ``"npmle"``) and each distribution's S(t).

    Examples
    --------
    >>> table, curves = regen.compare_distributions("~ nerve", episodes)  # doctest: +SKIP
    """
    from regen.survival.npmle import turnbull

    lower, upper = options.get("lower", "lower"), options.get("upper", "upper")
    if times is None:
        finite = data[upper].replace(np.inf, np.nan)
        times = np.linspace(0, float(finite.max()), 100)
    times = np.asarray(times, dtype="float64")
    fits = {dist: fit_recovery(formula, data, dist=dist, **options) for dist in DISTRIBUTIONS}
    table = _aic_table(fits)

    groups = [None] if by is None else sorted(data[by].dropna().unique())
    profiles = fits["weibull"].design.typical_profiles(data, by, groups)
    npmle = turnbull(data, lower=lower, upper=upper, by=by).survival_at(times)
    parts = [npmle.rename(columns={by: "group"} if by else {}).assign(curve="npmle")]
    for dist, fit in fits.items():
        predicted = fit.predict_survival(profiles, times)
        parts.append(pd.DataFrame({
            "group": predicted[by] if by else None, "time": predicted["time"],
            "survival": predicted["estimate"], "curve": dist}))
    curves = pd.concat(parts, ignore_index=True)
    if by is None:
        curves["group"] = "all"
    return table, curves[["group", "time", "curve", "survival"]]
