r"""Regeneration kinetics: axonal regrowth velocity (mm/day) and lag from (l, u] episodes.

Physiology
----------
A percutaneous freeze is a Sunderland grade II axonotmesis. Distal to the ice
ball the axons undergo Wallerian degeneration over the first days; the
endoneurial tubes stay intact, and after a lag the axons regrow down them at
roughly 1–2 mm/day (Seddon; about 1.4 mm/day on average) until they reach the
skin territory, when numbness fades. So the time to recovery is a lag plus the
distance from the freeze site to the territory divided by the velocity.

The model
---------
For an episode with distance :math:`d` (mm) and covariates :math:`x`

.. math::

    T = L + d / v, \qquad \log v = x'\beta - \sigma\varepsilon,

so :math:`\log\{(T - L)/d\} = -x'\beta + \sigma\varepsilon`: for a fixed lag the
model is an accelerated-failure-time model of :math:`Y = (T - L)/d`, the
regrowth time per mm, with coefficients :math:`-\beta`. ``velocity_dist``
chooses the law of :math:`\varepsilon` as :func:`regen.fit_recovery` does:
normal by default (log-normal velocity), logistic, or standard minimum
extreme-value (Weibull regrowth time). An episode :math:`(l, u]` becomes
:math:`((l - L)/d, (u - L)/d]` (left-censored when :math:`l \le L`). The
log-likelihood is the AFT's (:mod:`regen.survival.aft`) minus :math:`\log d`
for each exact row. The lag :math:`L \ge 0` must lie below every finite upper
end; it is estimated by maximising the profile log-likelihood
:math:`\ell_p(L) = \max_{\beta,\sigma} \ell(\beta, \sigma, L)`,
and its interval is the profile-likelihood interval
:math:`\{L : 2(\ell_p(\hat L) - \ell_p(L)) \le c\}`, :math:`c = \chi^2_{1, 1-\alpha}`,
which behaves where a Wald interval near 0 does not. The lag is identified only
through the spread of distances; when the profile is flat the fit warns with
the range and suggests fixing it (``lag=``), and a lag estimate below
:data:`NEAR_ZERO_LAG` of the median recovery bound (at or near the bound 0, which
no freeze produces)
warns too, naming the episodes with the earliest recovery, which cap the lag.

No axon regrows :data:`MAX_VELOCITY_RATIO` (6) times faster than the cohort's
typical one, :math:`\tilde v = \operatorname{median}(d_i / u_i)` over the
recoveries (a lower bound of the typical velocity; 6 times it is about 5–6 mm/day,
above every reported velocity), so an episode with :math:`u < d / (6 \tilde v)`
recovered before any regrowth could reach the territory: a freeze that missed the
nerve, or a data error. One such row caps the lag near 0 and
pulls the velocity down (by 14–19% in simulated cohorts); ``failed_freeze="exclude"``
(the default) leaves these rows out and lists them in ``excluded``, and
``"keep"`` fits them; either way they are named in a DataWarning.

Error in the recorded distance flattens the relation of recovery time to distance,
which biases the velocity and the lag up; :meth:`RegenerationFit.sensitivity` gauges
this by SIMEX (simulation-extrapolation, Cook & Stefanski 1994).

Standard errors of :math:`(\beta, \log\sigma)` come from the joint observed
information in :math:`(\beta, \log\sigma, L)` whenever the lag is estimated,
on its bound 0 too (the derivatives in :math:`L` are those of the likelihood's
smooth extension below 0), so the velocity's and the ratios' Wald intervals
carry the lag's uncertainty and its strong negative correlation with the
velocity; with a fixed lag they come from the conditional information.

With ``cluster=`` every interval is cluster-robust, by one rule whatever the
number of clusters :math:`G`: the covariance is the bias-reduced CR2 sandwich
(:func:`regen.survival.covariance.cluster_sandwich`, Bell & McCaffrey 2002), Wald
intervals and p-values use Student's t on :math:`G - 1` degrees of freedom
(``reference_df``), and the lag's profile interval uses the adjusted cut
:math:`c = t^2_{G-1, 1-\alpha/2}\, V_R / V_M` (:math:`V_R, V_M` the robust and
model-based variances of :math:`\hat L`), which puts the profile on the robust
variance's scale. Why Wald rather than a profile or bootstrap interval for the
velocity, and the coverage this gives, is in ``docs/kinetics.md``.

================================  ===============================================
symbol                            attribute
================================  ===============================================
:math:`e^{\beta_0 - \sigma m}`    ``velocity``: median mm/day, covariates at 0
                                  (:math:`m` the median of :math:`\varepsilon`:
                                  0, except :math:`\log\log 2` for weibull)
:math:`e^{\beta_k}`               ``velocity_ratios``
:math:`L`                         ``lag`` (days, profile-likelihood interval)
:math:`\sigma`                    ``scale``
================================  ===============================================

Centre covariates in the formula (``~ I(age - 50) + diabetes``) so that
``velocity`` is the velocity of a meaningful reference patient.
"""

from __future__ import annotations

import re
import warnings

import numpy as np
import pandas as pd
from scipy import stats

from regen.design import Design, formula_frame
from regen.exceptions import DataWarning, ModelError
from regen.results import ScaledFit, check_probabilities
from regen.serialize import stored_number, stored_numbers, stored_parameters
from regen.survival.covariance import (
    check_clusters,
    stored_cluster_count,
)
from regen.survival.frailty import jacobian, marginal_log_quantile
from regen.survival.kinetics import (
    FAILED_FREEZE,
    Kinetics,
    LagProfile,
    Refit,
    frailty_at_lag,
    kinetics_covariance,
    known_dist,
    simex,
    stored_failed_freeze,
    stored_frailty,
    stored_level,
    stored_profile_table,
)
from regen.survival.likelihood import (
    DISTRIBUTIONS,
)
from regen.survival.npmle import check_intervals

__all__ = ["RegenerationFit", "fit_regeneration"]

#: Below this coefficient of variation of the distances, the lag is not identified by them.
MIN_DISTANCE_SPREAD = 0.1
#: Fewer episodes with an observed recovery cannot estimate velocity, spread and lag.
MIN_RECOVERIES = 10
#: A lag estimate below this share of the median finite upper end (about 1 day when the
#: recoveries are seen around day 50) is at or near its bound 0, and warns. A share, not a
#: number of days, so that the rule does not depend on the unit of time.
NEAR_ZERO_LAG = 0.02
#: No axon regrows this many times faster than the cohort's typical one. Human axons
#: regrow at about 1–2 mm/day (Seddon), the fastest reports 3–4 mm/day close to the cell
#: body; the typical velocity is taken as the median of distance / upper end over the
#: recoveries (a lower bound, about 0.8–1 mm/day in simulated cohorts), so 6 times it is
#: about 5–6 mm/day, above every reported velocity; genuine episodes reached at most 3.6
#: in cohorts simulated with a 2-day lag and a wide velocity spread. A ratio, not mm/day,
#: so that the rule does not depend on the unit of time.
MAX_VELOCITY_RATIO = 6.0


def fit_regeneration(data: pd.DataFrame, *, distance: str = "distance_mm", formula: str = "~ 1",
                     lower: str = "lower", upper: str = "upper", velocity_dist: str = "lognormal",
                     lag: float | None = None, cluster: str | None = None,
                     alpha: float = 0.05, failed_freeze: str = "exclude",
                     frailty: str | None = None) -> RegenerationFit:
    """Fit regrowth velocity and lag: T = lag + distance / velocity.

    Parameters
    ----------
    data : DataFrame
        Numbness episodes with a distance column (:meth:`regen.Cohort.episodes`).
    distance : str, default "distance_mm"
        Freeze site to the territory, mm (> 0).
    formula : str, default "~ 1"
        Covariates of log velocity, e.g. ``"~ I(age - 50) + diabetes"``.
    lower, upper : str
        The episode's interval ``(lower, upper]`` in days.
    velocity_dist : {"lognormal", "loglogistic", "weibull"}, default "lognormal"
        Distribution of the regrowth time per mm, ``(T - lag) / d = 1 / v``, as
        in :func:`regen.fit_recovery`: log-normal and log-logistic make the
        velocity log-normal / log-logistic too; ``"weibull"`` makes the
        regrowth time Weibull (the velocity then has an inverse-Weibull law).
    lag : float, optional
        Fix the lag (days) instead of estimating it.
    cluster : str, optional
        Cluster-robust inference over this unit (e.g. ``"patient_id"``), for every
        interval, the lag's too. The rule, whatever the number of clusters G:
        the bias-reduced CR2 sandwich and Student's t on G - 1 degrees of
        freedom (see the module docstring).
    alpha : float, default 0.05
        1 − confidence level of every interval the fit reports (``velocity``,
        ``velocity_ratios``, ``lag``, ``summary``, the predictions).
    failed_freeze : {"exclude", "keep"}, default "exclude"
        What to do with episodes whose numbness had faded before the minimum
        regrowth time, ``upper < distance / (6 * typical)``, ``typical`` the
        median of ``distance / upper`` over the recoveries
        (:data:`MAX_VELOCITY_RATIO`; about 5–6 mm/day): no regrowing axon gets
        there so soon, so the freeze most likely missed the nerve (or the entry
        is wrong). Distances outside 5–500 mm are warned about as such instead. Such an
        episode caps the lag (which must lie below every upper end) and pulls the
        velocity down. ``"exclude"`` leaves them out of the fit and lists them in
        ``RegenerationFit.excluded`` with reason ``possible_failed_freeze``;
        ``"keep"`` fits them as given. Either way a DataWarning names them.
    frailty : str, optional
        Column of the patient ids (``"patient_id"``): a patient effect
        b_i ~ N(0, tau^2) on log velocity shared by all the patient's episodes
        (:mod:`regen.survival.frailty` has the quadrature and the inference on tau):
        ``frailty_sd``, ``frailty_ci`` and ``frailty_test`` as for
        :func:`regen.fit_recovery`. ``velocity`` is then a typical patient's
        (b = 0) and the predicted quantiles are marginal over patients. The
        frailty SD's interval is profiled at the estimated lag. Not with ``cluster=``.

    Returns
    -------
    RegenerationFit

    Warns
    -----
    DataWarning
        When the data cannot tell the lag: its profile-likelihood interval
        covers most of the possible lags, or the distances hardly vary; fix it.
        When the lag estimate is below :data:`NEAR_ZERO_LAG` (2%) of the median
        finite upper end, naming the
        episode(s) with the earliest recovery (the lag must lie below it).
        When episodes recovered before the minimum regrowth time (``failed_freeze``),
        naming them by ``treatment_id`` (or row label).

    Examples
    --------
    >>> kin = regen.fit_regeneration(ep, formula="~ I(age - 50) + diabetes")  # doctest: +SKIP
    >>> kin.velocity, kin.lag, kin.velocity_ratios  # doctest: +SKIP
    """
    _check_arguments(data, formula, (lower, upper, distance), cluster, velocity_dist,
                     failed_freeze, frailty)
    rows, design, X, dropped, (low, up, d), implausible, excluded = _kinetics_rows(
        data, formula, lower, upper, distance, failed_freeze, (cluster, frailty))
    if np.isinf(up).all():
        raise ModelError("every episode is right-censored: no recovery observed")
    if (low == 0).all():
        raise ModelError("every episode is left-censored: numbness had faded by the first visit "
                         "every time, so velocity and lag cannot be estimated")
    recovered = int(np.isfinite(up).sum())
    if recovered < MIN_RECOVERIES:
        raise ModelError(f"only {recovered} episode(s) with an observed recovery; velocity and lag "
                         f"need at least {MIN_RECOVERIES}")
    if implausible.any():
        warnings.warn(f"{int(implausible.sum())} {distance} value(s) outside 5–500 mm (e.g. "
                      f"{d[implausible][0]:g}); check the units (mm) and the entries, as one such "
                      "value can move the velocity and lag.", DataWarning, stacklevel=2)
    design.check(X, rows, why=" (a covariate with a single value, or collinear covariates)")
    names = design.names
    groups = None
    if frailty is not None:
        check_clusters(rows[frailty])
        groups = rows[frailty].to_numpy()
    kinetics = Kinetics(X, low, up, d, np.ones(len(rows)), velocity_dist, groups)
    if lag is not None and not 0 <= lag < kinetics.lag_max:
        raise ValueError(f"lag must lie in [0, {kinetics.lag_max:g}) days: the earliest "
                         f"recovery was seen by day {kinetics.lag_max:g}")
    n_clusters = None
    if cluster is not None:
        check_clusters(rows[cluster])
        n_clusters = int(rows[cluster].nunique())
    profile = LagProfile(kinetics)
    estimated = lag is None
    lag_hat = profile.estimate() if estimated else float(lag)
    loglik, theta = kinetics.profile(lag_hat, profile.start(lag_hat))
    shared = None
    if frailty is not None:
        loglik, theta, shared = frailty_at_lag(kinetics, lag_hat, rows[frailty], names, lag)
    params, covariance, model_based, index = kinetics_covariance(kinetics, theta, lag_hat, estimated,
                                                          names, rows, cluster)
    if estimated and "lag" not in index:
        warnings.warn(
            f"the joint information in velocity, spread and lag is singular at the lag estimate "
            f"{lag_hat:.1f} days, so the velocity's and the ratios' intervals treat the lag as "
            "known and are too narrow. Fix the lag from physiology, e.g. "
            "fit_regeneration(..., lag=7).", DataWarning, stacklevel=2)
    reference_df = None if n_clusters is None else n_clusters - 1
    if estimated:
        lag_interval, flat = _estimated_lag_interval(
            kinetics, profile, lag_hat, covariance[-1, -1] / model_based[-1, -1]
            if cluster is not None and "lag" in index else 1.0, reference_df, alpha,
            velocity_dist, rows, upper)
    else:
        lag_interval, flat = (float(lag), float(lag)), False
    fit = RegenerationFit(
        params=pd.Series(params, index=index), covariance=pd.DataFrame(covariance, index, index),
        lag_estimate=lag_hat, lag_interval=lag_interval, lag_fixed=lag is not None,
        lag_flat=flat, loglik=loglik, formula=formula, distance=distance,
        velocity_dist=velocity_dist,
        design=design, n=len(rows), n_dropped=dropped, alpha=alpha, profile=profile.table(),
        cluster=cluster, n_clusters=n_clusters, failed_freeze=failed_freeze, excluded=excluded,
        refit=None if frailty else Refit(X, low, up, d, velocity_dist, lag),  # never saved
        frailty=shared)
    return fit


def _check_arguments(data, formula: str, columns: tuple[str, str, str], cluster, velocity_dist,
                     failed_freeze, frailty=None) -> None:
    """Refuse arguments fit_regeneration cannot use, saying what to give instead."""
    lower, upper, distance = columns
    if not isinstance(data, pd.DataFrame):
        raise TypeError(f"data must be a DataFrame, not {type(data).__name__}")
    if velocity_dist not in DISTRIBUTIONS:
        raise ValueError(f"velocity_dist must be one of {', '.join(DISTRIBUTIONS)}, "
                         f"not {velocity_dist!r}")
    if formula.split("~")[0].strip() or "~" not in formula:
        raise ValueError(f"formula {formula!r} must be the covariates only, e.g. "
                         "'~ I(age - 50) + diabetes': the kinetics model's response is the episode")
    missing = [c for c in (lower, upper, distance) if c not in data.columns]
    if missing:
        raise ValueError(f"no column {', '.join(map(repr, missing))} in data; the kinetics "
                         f"model needs each numbness episode's ({lower}, {upper}] and {distance}")
    if cluster is not None and cluster not in data.columns:
        raise ValueError(f"no column {cluster!r} (cluster) in data; e.g. cluster='patient_id'")
    if frailty is not None and (cluster is not None or frailty not in data.columns):
        raise ValueError(f"no column {frailty!r} (frailty) in data" if cluster is None else
                         "give frailty= or cluster=, not both")
    if not isinstance(failed_freeze, str) or failed_freeze not in FAILED_FREEZE:
        raise ValueError(f"failed_freeze must be 'exclude' or 'keep', not {failed_freeze!r}")


def _kinetics_rows(data: pd.DataFrame, formula: str, lower: str, upper: str, distance: str,
                   failed_freeze: str, also=()):
    """The episodes the kinetics model fits: with a distance and complete covariates, less
    possible failed freezes when ``failed_freeze="exclude"``. Returns the rows (the columns
    the fit reads, :func:`_columns_read`; ``also``: the cluster and frailty columns), their
    design and covariates, the number dropped, (lower, upper, distance) as arrays, which
    distances are implausible, and the failed-freeze table."""
    narrowed = _columns_read(data, formula, (lower, upper, distance, "treatment_id", *also))
    frame = formula_frame(narrowed)
    has_distance = frame[distance].notna()
    if not has_distance.all():
        warnings.warn(f"{int((~has_distance).sum())} episode(s) have no {distance} and are left "
                      "out of the kinetics fit.", DataWarning, stacklevel=3)
    frame = frame.loc[has_distance]
    try:
        design, matrix = Design.fit(formula, frame, narrowed)
    except ValueError:
        if narrowed is not data:  # the message names the closest of all the data's columns
            Design.fit(formula, formula_frame(data).loc[has_distance], data)
        raise
    dropped = len(data) - len(matrix)
    if len(frame) > len(matrix):
        warnings.warn(f"{len(frame) - len(matrix)} episode(s) have a missing value in a covariate "
                      f"of {formula!r} and are left out (RegenerationFit.n_dropped).",
                      DataWarning, stacklevel=3)
    rows = frame.loc[matrix.index]
    if len(rows) == 0:
        raise ModelError("no episode with a distance and complete covariates to fit")
    low = rows[lower].to_numpy(dtype="float64")
    up = rows[upper].to_numpy(dtype="float64")
    d = rows[distance].to_numpy(dtype="float64")
    check_intervals(low, up, np.ones(len(rows)), rows.index)
    if (d <= 0).any():
        raise ValueError(f"{distance} must be > 0; first bad value {d[d <= 0][0]}")
    implausible = (d < 5) | (d > 500)
    finite = np.isfinite(up) & (up > 0)
    typical = float(np.median(d[finite] / up[finite])) if finite.any() else 0.0
    fastest = MAX_VELOCITY_RATIO * typical
    early = (up < d / fastest) & ~implausible if fastest > 0 else np.zeros(len(d), bool)
    excluded = _failed_freezes(rows.loc[early], up[early], d[early], fastest, upper,
                               failed_freeze)
    if early.any() and failed_freeze == "exclude":
        rows, low, up, d = rows.loc[~early], low[~early], up[~early], d[~early]
        implausible = implausible[~early]
        matrix = design.rows(rows)  # the same columns, on the rows kept
    return (rows, design, np.asarray(matrix, dtype="float64"), dropped, (low, up, d),
            implausible, excluded)


def _columns_read(data: pd.DataFrame, formula: str, needed) -> pd.DataFrame:
    """``data`` narrowed to the columns a fit reads: ``needed`` and each column whose name is
    in the formula's text (a superset of its variables), so that preparing the rows does not
    copy and convert the others (most of a fit's fixed cost on a wide episodes table). All
    of ``data`` when its column names repeat, or when the formula has a ``.`` (every
    column)."""
    if not data.columns.is_unique or re.search(r"(?<![\w.])\.(?![\w.])", formula):
        return data
    return data[[c for c in data.columns if c in needed or str(c) in formula]]


def _estimated_lag_interval(kinetics: Kinetics, profile: LagProfile, lag_hat: float,
                            inflation: float, reference_df: int | None, alpha: float,
                            velocity_dist: str, rows: pd.DataFrame, upper: str):
    """The estimated lag's profile-likelihood interval and whether the lag is not identified
    (with a warning), and a warning when it is at or near 0.

    With ``cluster=`` the interval is robust: the likelihood-ratio cut is scaled by
    ``inflation``, the robust over the model-based variance of the lag (an adjusted profile
    likelihood), on t(G - 1).
    """
    critical = stats.chi2.ppf(1 - alpha, 1) if reference_df is None \
        else stats.t.ppf(1 - alpha / 2, reference_df) ** 2
    lag_interval = profile.interval(lag_hat, critical * inflation)
    top = profile.top
    flat = lag_interval[1] - lag_interval[0] > 0.5 * top or lag_interval[1] >= top * 0.999
    spread = float(np.std(kinetics.d) / np.mean(kinetics.d))
    if flat or spread < MIN_DISTANCE_SPREAD:
        reason = (f"its {1 - alpha:.0%} profile-likelihood interval covers most of the "
                  f"possible lags, 0–{kinetics.lag_max:g} days" if flat else
                  f"the distances hardly vary (coefficient of variation {spread:.2f}), so only "
                  f"the assumed {velocity_dist} shape separates lag from velocity")
        flat = True
        warnings.warn(
            f"the lag is not identified by these data: {reason}; the estimate "
            f"{lag_hat:.1f} days (profile interval {lag_interval[0]:.1f}–"
            f"{lag_interval[1]:.1f}) should not be trusted. Fix the lag from physiology "
            "(Wallerian degeneration takes days), e.g. fit_regeneration(..., lag=7) or "
            "'regen fit regeneration ... --lag 7'.",
            DataWarning, stacklevel=3)
    ends = kinetics.up[np.isfinite(kinetics.up)]
    if len(ends) and lag_hat < NEAR_ZERO_LAG * float(np.median(ends)):
        warnings.warn(_near_zero_message(lag_hat, kinetics, rows, upper), DataWarning,
                      stacklevel=3)
    return lag_interval, flat


def _failed_freezes(early: pd.DataFrame, up: np.ndarray, d: np.ndarray, fastest: float,
                    upper: str, setting: str) -> pd.DataFrame:
    """The episodes that recovered before the minimum regrowth time, and their warning."""
    has_id = "treatment_id" in early.columns
    table = pd.DataFrame({
        "row": early.index, "treatment_id": early["treatment_id"].astype(str).to_numpy()
        if has_id else None, "upper": up, "distance_mm": d,
        "minimum_time": d / fastest if fastest > 0 else np.inf,
        "reason": "possible_failed_freeze"})
    if len(table):
        ids = (table["treatment_id"].tolist() if has_id
               else [f"row {label}" for label in table["row"]])
        named = ", ".join(ids[:5]) + (f" and {len(ids) - 5} more" if len(ids) > 5 else "")
        what = ("left out of the kinetics fit (RegenerationFit.excluded, reason "
                "possible_failed_freeze); pass failed_freeze='keep' to fit them as given"
                if setting == "exclude" else
                "fitted as given (failed_freeze='keep'); they cap the lag and pull the velocity "
                "down, so check them or use failed_freeze='exclude'")
        warnings.warn(
            f"{len(ids)} episode(s) recovered before the minimum regrowth time, the distance at "
            f"{fastest:.3g} mm per unit of time ({MAX_VELOCITY_RATIO:g} times the cohort's median "
            f"distance / {upper}; e.g. {upper} {up[0]:g} for {d[0]:g} mm, at least "
            f"{table['minimum_time'].iloc[0]:.3g}): {named}. No regrowing axon gets there so "
            f"soon; the freeze probably missed the nerve, or the entry is wrong. They are {what}.",
            DataWarning, stacklevel=3)
    return table


def _near_zero_message(lag_hat: float, kinetics: Kinetics, rows: pd.DataFrame,
                       upper: str) -> str:
    """The warning for a lag estimate at or near its bound 0, naming the earliest recoveries."""
    earliest = rows.loc[rows[upper].to_numpy(dtype="float64") == kinetics.lag_max]
    ids = (earliest["treatment_id"].astype(str).tolist() if "treatment_id" in rows.columns
           else [f"row {label}" for label in earliest.index])
    named = ", ".join(ids[:5]) + (f" and {len(ids) - 5} more" if len(ids) > 5 else "")
    return (f"the lag estimate {lag_hat:.2f} days is at or near its lower bound 0, which a freeze "
            "cannot produce (Wallerian degeneration takes days). The intervals include the lag's "
            "uncertainty, but the velocity is then estimated low. The lag must lie below the "
            f"earliest recovery, day {kinetics.lag_max:g}, seen in {named}: check that "
            "episode (a freeze that missed the nerve, or a data error), or fix the lag, e.g. "
            "fit_regeneration(..., lag=7).")


class RegenerationFit(ScaledFit, kind="RegenerationFit"):
    """Result of :func:`fit_regeneration`.

    Attributes
    ----------
    params, bse : Series
        ``beta`` (log velocity), ``log_scale`` and, when estimated, ``lag``.
    velocity : Series
        ``estimate, ci_lower, ci_upper``: median velocity (mm/day) when every
        covariate is 0.
    velocity_ratios : DataFrame
        Per covariate: ``estimate, ci_lower, ci_upper`` of exp(beta).
    lag : Series
        ``estimate, ci_lower, ci_upper`` (days; profile-likelihood interval,
        robust-adjusted with ``cluster=``).
    lag_profile : DataFrame
        The profile log-likelihood at the lags evaluated.
    summary : DataFrame
        ``estimate, std_err, ci_lower, ci_upper, p_value`` at level 1 - ``alpha``.
    cluster, n_clusters, reference_df : str, int, int or None
        The cluster column, its number of clusters G and G - 1, the degrees of
        freedom of the t reference (None: no cluster=, normal reference).
    failed_freeze : str
        The ``failed_freeze`` setting of the fit ("keep" for files of regen
        versions before it existed, which fitted every episode).
    excluded : DataFrame
        The episodes that recovered before the minimum regrowth time:
        ``row, treatment_id, upper, distance_mm, minimum_time, reason``
        (``possible_failed_freeze``), left out when ``failed_freeze="exclude"``.
        ``n_excluded`` is their number (also in a loaded model, whose table is
        empty as the file does not hold the rows).

    Every interval is at the fit's level, 1 - ``alpha``.
    """

    def __init__(self, *, params, covariance, lag_estimate, lag_interval, lag_fixed, lag_flat,
                 loglik, formula, distance, design, n, n_dropped, alpha, profile,
                 velocity_dist="lognormal", cluster=None, n_clusters=None,
                 failed_freeze="keep", excluded=None, n_excluded=None, refit=None,
                 frailty=None):
        self.params, self.covariance = params, covariance
        #: With a patient effect: its column, tau's profile interval, the likelihood-ratio
        #: test of tau = 0 and the quadrature nodes (:func:`regen.fit_recovery`'s meaning).
        shared = frailty or {}
        self.frailty = shared.get("frailty")
        self.frailty_ci = tuple(shared["frailty_ci"]) if frailty else None
        self.frailty_test = dict(shared["frailty_test"]) if frailty else None
        self.n_nodes = shared.get("n_nodes")
        #: What sensitivity() refits with (the design, intervals, distances; None for a
        #: loaded model, whose file does not hold the rows).
        self._refit = refit
        self.design = design
        self.velocity_dist = velocity_dist
        self._lag = (lag_estimate, lag_interval)
        self.lag_fixed, self.lag_flat = lag_fixed, lag_flat
        self.loglik, self.formula, self.distance = loglik, formula, distance
        self.n, self.n_dropped, self.alpha = n, n_dropped, alpha
        self.lag_profile = profile
        self.cluster, self.n_clusters = cluster, n_clusters
        self.reference_df = None if n_clusters is None else n_clusters - 1
        self.failed_freeze = failed_freeze
        self.excluded = excluded if excluded is not None else pd.DataFrame(
            columns=["row", "treatment_id", "upper", "distance_mm", "minimum_time", "reason"])
        self.n_excluded = len(self.excluded) if n_excluded is None else n_excluded

    @property
    def aic(self) -> float:
        return 2 * (len(self.params) + (0 if "lag" in self.params or self.lag_fixed else 1)) \
            - 2 * self.loglik

    effect_name = "Velocity ratio"
    effects_are_ratios = True

    def effects(self, alpha: float | None = None) -> pd.DataFrame:
        """:attr:`velocity_ratios`: each covariate's factor on the velocity, at the fit's
        level (the only one its lag interval was computed at)."""
        if alpha is not None and not np.isclose(alpha, self.alpha, rtol=0, atol=1e-12):
            raise ValueError(f"the fit's intervals are at alpha={self.alpha:g}; refit with "
                             f"fit_regeneration(..., alpha={alpha:g}) for another level")
        return self.velocity_ratios

    def p_values(self) -> pd.Series:
        """Two-sided Wald p-values; none for the lag (its interval is a profile one)."""
        p = super().p_values()
        if "lag" in p.index:
            p["lag"] = np.nan
        if self.frailty:
            p["frailty_sd"] = self.frailty_test["p_value"]
        return p

    def conf_int(self, alpha: float | None = None) -> pd.DataFrame:
        """Intervals at level 1 - alpha (default: the fit's ``alpha``), ``ci_lower, ci_upper``.

        Wald intervals on the reference (Student's t on G - 1 degrees of freedom
        with ``cluster=``, else normal), and the lag's profile-likelihood
        interval, which exists only at the fit's level.
        """
        if alpha is None:
            alpha = self.alpha
        table = super().conf_int(alpha)
        if "lag" in table.index:
            if not np.isclose(alpha, self.alpha, rtol=0, atol=1e-12):
                raise ValueError(f"the lag's profile-likelihood interval was computed at "
                                 f"alpha={self.alpha:g}; refit with "
                                 f"fit_regeneration(..., alpha={alpha:g}) for another level")
            table.loc["lag", ["ci_lower", "ci_upper"]] = self._lag[1]
        if self.frailty:
            table.loc["frailty_sd", ["ci_lower", "ci_upper"]] = self.frailty_ci
        return table

    @property
    def lag(self) -> pd.Series:
        estimate, (low, high) = self._lag
        return pd.Series({"estimate": estimate, "ci_lower": low, "ci_upper": high}, name="lag")

    @property
    def frailty_sd(self) -> float | None:
        """SD of the patients' effects on log velocity (None without ``frailty=``)."""
        return float(self.params["frailty_sd"]) if self.frailty else None

    def _beta(self):
        names = [n for n in self.params.index if n not in ("log_scale", "frailty_sd", "lag")]
        return names, self.params[names].to_numpy(), self.covariance.loc[names, names].to_numpy()

    def _log_median_velocity(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """log of the median velocity for design rows X, and its standard error.

        ``log v = x'beta - sigma eps`` with ``eps`` the AFT error of 1/v, so the
        median is ``x'beta - sigma m`` with ``m`` the error's median (0 for the
        symmetric log-normal and log-logistic).
        """
        names, beta, _ = self._beta()
        m = float(DISTRIBUTIONS[self.velocity_dist].quantile(0.5))
        eta = X @ beta - self.scale * m
        jac = np.hstack([X, np.full((len(X), 1), -self.scale * m)])
        return eta, self.delta_se(jac, [*names, "log_scale"])

    @property
    def velocity(self) -> pd.Series:
        names, _, _ = self._beta()
        if "Intercept" not in names:
            raise ModelError("the formula has no intercept, so there is no reference velocity")
        row = np.zeros((1, len(names)))
        row[0, names.index("Intercept")] = 1.0
        eta, se = self._log_median_velocity(row)
        z = self.critical_value(self.alpha)
        return pd.Series({"estimate": np.exp(eta[0]), "ci_lower": np.exp(eta[0] - z * se[0]),
                          "ci_upper": np.exp(eta[0] + z * se[0])}, name="velocity_mm_per_day")

    @property
    def velocity_ratios(self) -> pd.DataFrame:
        names, beta, cov = self._beta()
        z = self.critical_value(self.alpha)
        se = np.sqrt(np.diag(cov))
        table = pd.DataFrame({"estimate": np.exp(beta), "ci_lower": np.exp(beta - z * se),
                              "ci_upper": np.exp(beta + z * se)}, index=names)
        return table.drop(index="Intercept", errors="ignore")

    def predict_velocity(self, profiles: pd.DataFrame) -> pd.DataFrame:
        """Median velocity (mm/day) for each profile: ``estimate, ci_lower, ci_upper``."""
        X = self.design.matrix(profiles)
        eta, se = self._log_median_velocity(X)
        z = self.critical_value(self.alpha)
        return profiles.reset_index(drop=True).assign(
            estimate=np.exp(eta), ci_lower=np.exp(eta - z * se), ci_upper=np.exp(eta + z * se))

    def predict_quantile(self, profiles: pd.DataFrame, q=(0.25, 0.5, 0.75)) -> pd.DataFrame:
        """Quantiles of the time to recovery (days) for profiles that include the distance.

        ``t_q = lag + d exp(-x'beta + sigma z_q)``; delta-method interval on the
        log scale over (beta, log sigma, lag).
        """
        if self.distance not in profiles.columns:
            raise ValueError(f"profiles need a {self.distance} column (mm)")
        X = self.design.matrix(profiles)
        d = profiles[self.distance].to_numpy(dtype="float64")
        if not (d > 0).all():
            raise ValueError(f"{self.distance} must be > 0 mm in every profile")
        q = check_probabilities(q)
        names, beta, _ = self._beta()
        lag = self._lag[0]
        crit = self.critical_value(self.alpha)
        parts = []
        for p in np.atleast_1d(np.asarray(q, dtype="float64")):
            if self.frailty:
                t, se = self._marginal_times(X, d, p)
            else:
                zq = float(DISTRIBUTIONS[self.velocity_dist].quantile(p))
                part = d * np.exp(-X @ beta + self.scale * zq)
                t = lag + part
                gradient = [-X * part[:, None], (self.scale * zq * part)[:, None]]
                if "lag" in self.params.index:
                    gradient.append(np.ones((len(t), 1)))
                se = self.delta_se(np.hstack(gradient)) / t
            parts.append(profiles.reset_index(drop=True).assign(
                q=p, estimate=t, ci_lower=t * np.exp(-crit * se), ci_upper=t * np.exp(crit * se)))
        return pd.concat(parts, ignore_index=True)

    def _marginal_times(self, X, d, p) -> tuple[np.ndarray, np.ndarray]:
        """The p-quantile of the recovery time over patients (their effects integrated
        out) and the delta-method SE of its log."""
        law = DISTRIBUTIONS[self.velocity_dist]
        k = len(self._beta()[0])
        theta = self.params.to_numpy()
        fixed_lag = self._lag[0]

        def log_time(th):
            lag = th[-1] if "lag" in self.params.index else fixed_lag
            per_mm = marginal_log_quantile(law, -X @ th[:k], np.exp(th[k]), th[k + 1], p)
            return np.log(lag + d * np.exp(per_mm))

        slopes = jacobian(log_time, theta)
        return np.exp(log_time(theta)), np.sqrt(
            np.einsum("ij,jk,ik->i", slopes, self.covariance.to_numpy(), slopes))

    def document(self) -> dict:
        estimate, interval = self._lag
        return {
            "formula": self.formula, "distance": self.distance,
            "velocity_dist": self.velocity_dist,
            "parameters": list(self.params.index), "params": self.params.tolist(),
            "covariance": self.covariance.to_numpy().tolist(), "loglik": self.loglik,
            "lag": {"estimate": estimate, "interval": list(interval), "fixed": self.lag_fixed,
                    "flat": self.lag_flat},
            "n": self.n, "n_dropped": self.n_dropped, "alpha": self.alpha,
            "cluster": self.cluster, "n_clusters": self.n_clusters,
            "design": self.design.to_dict(),
            "lag_profile": self.lag_profile.to_dict(orient="list"),
            "failed_freeze": {"setting": self.failed_freeze, "n_excluded": self.n_excluded},
        } | ({"frailty": {"column": self.frailty, "frailty_ci": list(self.frailty_ci),
                          "frailty_test": self.frailty_test, "n_nodes": self.n_nodes}}
             if self.frailty else {})

    @classmethod
    def from_document(cls, document: dict) -> RegenerationFit:
        params, covariance = stored_parameters(document, scale=True)  # before any design
        lag = document["lag"]
        estimate = stored_number(lag, "estimate")
        interval = tuple(stored_numbers(lag, "interval", (2,)))
        if not (estimate >= 0 and interval[0] <= interval[1]):
            raise ValueError(f"the lag {estimate:g} days or its interval {interval} is impossible")
        if not isinstance(document["distance"], str):
            raise ValueError("distance is not a column name")
        cluster = document.get("cluster")  # absent from files of older regen versions
        if cluster is not None and not isinstance(cluster, str):
            raise ValueError("cluster is not a column name")
        design = Design.from_dict(document["formula"], document["design"])
        names = [n for n in params.index if n not in ("log_scale", "frailty_sd", "lag")]
        if design.names != names or ("frailty" in document) != ("frailty_sd" in params.index):
            raise ValueError("the coefficients do not match the formula's design")
        return cls(
            params=params, covariance=covariance,
            lag_estimate=estimate, lag_interval=interval,
            lag_fixed=bool(lag["fixed"]), lag_flat=bool(lag["flat"]),
            loglik=float(document["loglik"]), formula=document["formula"],
            distance=document["distance"], design=design,
            n=int(document["n"]), n_dropped=int(document["n_dropped"]),
            alpha=stored_level(document["alpha"]), profile=stored_profile_table(document["lag_profile"]),
            velocity_dist=known_dist(document.get("velocity_dist", "lognormal")),
            cluster=cluster,
            n_clusters=stored_cluster_count(document, cluster),
            frailty=stored_frailty(document), **stored_failed_freeze(document))

    def sensitivity(self, distance_error=(0.05, 0.1, 0.2), *, replicates: int = 20,
                    seed: int = 0) -> pd.DataFrame:
        """How velocity, lag and ratios move under multiplicative error in the distance.

        SIMEX (simulation-extrapolation; Cook & Stefanski 1994): for an assumed
        error SD ``s`` of log distance (0.1 is about 10% error), the fit is
        repeated ``replicates`` times with the distances multiplied by
        ``exp(sqrt(λ) s Z)``, Z standard normal, at each λ in
        :data:`SIMEX_LEVELS` (0.5, 1, 1.5, 2: total error variance (1 + λ) s²);
        the mean estimates are extrapolated by a quadratic in λ to λ = −1, no
        error. Error in the distance flattens the relation of recovery time to
        distance, which biases the velocity up and the lag up (see
        ``docs/kinetics.md``).

        Parameters
        ----------
        distance_error : sequence of float, default (0.05, 0.1, 0.2)
            Assumed SDs of the log of the recorded distance's error (each > 0).
        replicates : int, default 20
            Refits per λ; each costs one fit, so the total is
            ``4 * replicates * len(distance_error)`` fits.
        seed : int, default 0
            Seed of the simulated errors; the same seed gives the same table.

        Returns
        -------
        DataFrame
            ``distance_error, parameter, naive, simex, shift``: per error SD and
            parameter (``log_velocity``: the log median velocity with every
            covariate 0, when the formula has an intercept; ``lag`` when it was
            estimated, its SIMEX value kept >= 0; ``log_ratio:<covariate>``), the
            fit's estimate, the SIMEX-corrected one and ``simex - naive``.

        Raises
        ------
        ModelError
            For a model loaded from a file: it does not hold the data to refit.

        Examples
        --------
        >>> kin.sensitivity(distance_error=[0.1, 0.2])  # doctest: +SKIP
        """
        refit = self._refit
        if refit is None and self.frailty:
            raise ModelError("sensitivity() does not refit the frailty model yet; fit without "
                             "frailty= to gauge the distance error")
        if refit is None:
            raise ModelError("this model was loaded from a file, which does not hold the episodes, "
                             "so it cannot be refitted; run fit_regeneration(data, ...) again and "
                             "call .sensitivity() on that fit")
        errors = np.atleast_1d(np.asarray(distance_error, dtype="float64"))
        if errors.ndim != 1 or len(errors) == 0 or not (np.isfinite(errors) & (errors > 0)).all():
            raise ValueError(f"distance_error must be SDs > 0 of the log distance, e.g. [0.1, 0.2], "
                             f"not {distance_error!r}")
        if isinstance(replicates, bool) or not isinstance(replicates, (int, np.integer)) \
                or replicates < 2:
            raise ValueError(f"replicates must be an integer >= 2, not {replicates!r}")
        names, m = self._beta()[0], float(DISTRIBUTIONS[self.velocity_dist].quantile(0.5))
        k = len(names)

        def reported(p: np.ndarray) -> dict:
            out = {}
            if "Intercept" in names:
                out["log_velocity"] = p[names.index("Intercept")] - np.exp(p[k]) * m
            if refit.lag is None:
                out["lag"] = p[-1]
            out.update({f"log_ratio:{n}": p[i] for i, n in enumerate(names) if n != "Intercept"})
            return out

        return simex(lambda d: reported(refit.estimates(d)), refit.d,
                     reported(self.params.to_numpy()), errors, replicates, seed)

    def __repr__(self) -> str:
        v = self.velocity if "Intercept" in self.params.index else None
        speed = f", velocity {v['estimate']:.2f} mm/day" if v is not None else ""
        return (f"<RegenerationFit {self.formula!r} ({self.velocity_dist}): {self.n} "
                f"episodes{speed}, lag "
                f"{self._lag[0]:.1f} d{' (fixed)' if self.lag_fixed else ''}, "
                + (f"frailty SD {self.frailty_sd:.3f}, " if self.frailty else "")
                + f"loglik {self.loglik:.3f}>")
