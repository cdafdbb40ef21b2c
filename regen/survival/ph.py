r"""Semiparametric proportional hazards for interval-censored (l, u] episodes.

The model
---------
:math:`S(t \mid x) = S_0(t)^{\exp(x'\beta)}`, with the baseline :math:`S_0` left
free: a step function on Turnbull's support intervals, the places the visits can
put an event (the model of Finkelstein 1986; R's ``icenReg::ic_sp``). Each row
contributes :math:`\log\{S(l \mid x) - S(u \mid x)\}`: right-censored rows
:math:`\log S(l \mid x)`, left-censored :math:`\log\{1 - S(u \mid x)\}`, an exact
time :math:`t` the interval :math:`(t-, t]`. ``exp(beta_k)`` is a *hazard ratio*:
how many times the hazard of the event (numbness fading, relief ending) is
multiplied by the covariate, at every time.

With exact times and right-censoring only, this is the grouped-continuous PH
model: the binomial GLM with complementary log-log link on person-period data with
one level per distinct event time. It is not Cox's partial likelihood, whose
estimates differ from it by about 1% when times are tied or grouped.

The fit
-------
The log-likelihood is concave in :math:`(\beta, \log\Lambda_0)` and maximised
jointly under the order constraints by a projected Newton method with a proof of
convergence (:mod:`regen.survival.phlik`); it stops on the Karush–Kuhn–Tucker
conditions (``kkt``).

Standard errors
---------------
``variance="profile"`` (default): the observed information of the *profile*
log-likelihood :math:`pl(\beta) = \max_{\Lambda_0} \ell(\beta, \Lambda_0)`,
analytically: the Schur complement of the baseline block in the observed
information over :math:`\beta` and the baseline's jumps (at a maximum the Hessian
of the profile is that complement, tied jumps counting as one). ``"numeric"``: the
same curvature by second differences of the profile log-likelihood, refitting the
baseline at :math:`\hat\beta \pm h_k` with :math:`h_k = 1/(\sqrt n\,\mathrm{sd}(x_k))`
(Zeng, Mao & Lin 2016); slower (a baseline fit per difference) and close to the
default. ``cluster=``: the cluster sandwich of the same information (robust to
episodes of one patient being alike). ``n_bootstrap``: the (cluster) bootstrap
covariance of refits on resampled patients or rows. docs/comparing.md shows their
coverage in simulation.

=====================  ===============================
symbol                 attribute
=====================  ===============================
:math:`\beta`          ``params``
:math:`e^{\beta_k}`    ``summary.hazard_ratio``
:math:`\Lambda_0`      ``baseline.cumulative_hazard``
=====================  ===============================
"""

from __future__ import annotations

import functools
import warnings

import numpy as np
import pandas as pd
from scipy import sparse

from regen._bootstrap import run_replicates
from regen.design import Design, formula_frame
from regen.exceptions import DataWarning, ModelError
from regen.results import FitResult, check_probabilities
from regen.serialize import stored_numbers, stored_parameters
from regen.survival.covariance import check_clusters, information_inverse, stored_cluster_count
from regen.survival.npmle import check_intervals, support_intervals
from regen.survival.phlik import PHLikelihood, information

__all__ = ["PHFit", "fit_ph"]

#: The constant of the profile likelihood's steps, h = STEP / (sqrt(n) sd(x)).
STEP = 1.0
#: The most support intervals a fit takes: its information is a dense square of this size.
#: Visit days keep episodes far below it; exact times in continuous units can pass it.
MAX_SUPPORT = 2000


# ---------------------------------------------------------------------- data --

def interval_problem(low: np.ndarray, up: np.ndarray, X: np.ndarray, w: np.ndarray, *,
                     collapse: bool = True, start: bool = True):
    """The PH likelihood of rows (l, u] with covariates X, and the support intervals.

    Rows with identical (run of support intervals, covariates) are counted once with
    their summed weight (``collapse=False``: every row kept, in order; ``start=False``:
    no start, for evaluating a fit on the rows). Returns
    ``(likelihood, q, p, start_u)``; ``start_u`` is the log cumulative hazard at beta = 0
    (:func:`null_baseline`), where every fit starts.
    """
    keep = w > 0
    low, up, X, w = low[keep], up[keep], X[keep], w[keep]
    q, p, lo, hi = support_intervals(low, up)
    K = len(q)
    if K < 2:
        raise ModelError("every episode's interval covers the same single stretch of time, "
                         "so the data cannot tell when events happen: no hazard ratio can be "
                         "estimated")
    if K > MAX_SUPPORT:
        raise ModelError(f"the episodes' ends make {K} support intervals (at most "
                         f"{MAX_SUPPORT}): times in continuous units? Round lower and upper to "
                         "whole days, as visits record them")
    a, b = lo, hi + 1
    keys = np.column_stack([a, b, X])
    if collapse:
        first, inverse = _distinct_rows(keys)
        keys, weight = keys[first], np.bincount(inverse, weights=w)
    else:
        weight = w
    a_, b_ = keys[:, 0].astype(np.int64), keys[:, 1].astype(np.int64)
    likelihood = PHLikelihood(a_, b_, keys[:, 2:], weight, K)
    return likelihood, q, p, null_baseline(a_, b_, weight, K) if start else None


def null_baseline(a: np.ndarray, b: np.ndarray, w: np.ndarray, K: int) -> np.ndarray:
    """The log cumulative baseline hazard at beta = 0 (the Turnbull NPMLE's), fitted on the
    distinct runs of support intervals (a few hundred rows) from :func:`nelson_aalen_start`:
    the start of every fit, a few Newton steps from its maximum."""
    runs, index = np.unique(a * (K + 1) + b, return_inverse=True)
    counts = np.bincount(index.ravel(), w)
    null = PHLikelihood(runs // (K + 1), runs % (K + 1), np.zeros((len(runs), 0)), counts, K)
    start = nelson_aalen_start(null.a, null.b, null.w, K)
    return null.maximise(np.zeros(0), start, fixed_beta=True).u


def nelson_aalen_start(a: np.ndarray, b: np.ndarray, w: np.ndarray, K: int) -> np.ndarray:
    """A start for the baseline: log of the Nelson–Aalen cumulative hazard after each of the
    first K - 1 support intervals, each row read as an event in the last interval of its run
    (right-censored rows as surviving their run's start). No linear algebra: the fit itself
    takes it to the maximum, from any nondecreasing start."""
    ended = b < K
    events = np.bincount(b[ended] - 1, w[ended], minlength=K)
    # at risk in interval j: an event at or after j, or a censoring after it (a > j)
    leaving = (np.bincount(b[ended] - 1, w[ended], minlength=K)
               + np.bincount(a[~ended], w[~ended], minlength=K + 1)[1:])
    at_risk = leaving[::-1].cumsum()[::-1]
    hazard = np.cumsum(np.divide(events, at_risk, out=np.zeros(K), where=at_risk > 0))[:-1]
    return np.log(np.maximum(hazard, 1e-12 * max(hazard.max(initial=0.0), 1.0)))



def _distinct_rows(keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The first row of each distinct row of ``keys`` and each row's distinct index (a
    lexicographic sort: several times faster than ``np.unique(axis=0)``)."""
    order = np.lexsort(keys.T[::-1])
    ordered = keys[order]
    new = np.concatenate([[True], (np.diff(ordered, axis=0) != 0).any(axis=1)])
    inverse = np.empty(len(keys), dtype=np.int64)
    inverse[order] = np.cumsum(new) - 1
    return order[new], inverse


def _columns(data, lower, upper, cluster, weights) -> None:
    if not isinstance(data, pd.DataFrame):
        raise TypeError(f"data must be a DataFrame, not {type(data).__name__}")
    needed = [lower, upper] + [c for c in (cluster, weights) if c is not None]
    missing = [c for c in needed if c not in data.columns]
    if missing:
        raise ValueError(f"no column {', '.join(map(repr, missing))} in data")


def _design(formula: str, data: pd.DataFrame, lower, upper, weights):
    """The design (its intercept left to the baseline) and the complete rows' arrays."""
    original, frame = data, formula_frame(data)
    design, matrix = Design.fit(formula, frame, original)
    names = design.names
    if "Intercept" not in names:
        raise ValueError(f"fit_ph needs the formula's intercept ({formula!r} removes it): the "
                         "baseline hazard takes its place. Drop the '0 +' or '- 1'")
    dropped = len(frame) - len(matrix)
    if dropped:
        warnings.warn(f"{dropped} episode(s) have a missing value in a covariate of {formula!r} "
                      "and are left out of the fit (PHFit.n_dropped).", DataWarning, stacklevel=3)
    rows = frame.loc[matrix.index]
    if len(rows) == 0:
        raise ModelError("no episode left to fit")
    low = rows[lower].to_numpy(dtype="float64")
    up = rows[upper].to_numpy(dtype="float64")
    w = np.ones(len(rows)) if weights is None else rows[weights].to_numpy(dtype="float64")
    check_intervals(low, up, w, rows.index)
    X = np.asarray(matrix, dtype="float64")
    design.check(X, rows, why=" (a covariate with a single value, or collinear covariates)")
    if X.shape[1] < 2:
        raise ValueError(f"{formula!r} has no covariate: give at least one (e.g. '~ nerve'); "
                         "for the curve alone use regen.turnbull")
    return design, rows, low, up, w, X[:, 1:], dropped


# ----------------------------------------------------------------------- fit --

def fit_ph(formula: str, data: pd.DataFrame, *, lower: str = "lower", upper: str = "upper",
           cluster: str | None = None, weights: str | None = None, variance: str = "profile",
           n_bootstrap: int = 0, seed=None, n_jobs: int = 1, progress: bool | None = None,
           tol: float = 1e-10, max_iter: int = 200) -> PHFit:
    """Fit the semiparametric proportional-hazards model to (l, u] episodes.

    Parameters
    ----------
    formula : str
        Right-hand side, e.g. ``"~ nerve + diabetes + age"`` (formulaic syntax). Its
        intercept is the baseline's: every other column gets a log hazard ratio.
    data : DataFrame
        Episodes, e.g. :meth:`regen.Cohort.episodes`; not changed.
    lower, upper : str
        Interval columns: the event happened in ``(lower, upper]`` days.
    cluster : str, optional
        Column of a clustering unit (``"patient_id"``: both sides and repeat
        treatments of one patient are not independent). Standard errors from the
        cluster sandwich over the baseline jumps and coefficients (the efficient
        scores summed by cluster, times G/(G - 1)), with intervals and p-values from
        Student's t on G - 1 degrees of freedom, as :func:`fit_recovery`'s; with
        ``n_bootstrap``, the unit the bootstrap resamples instead.
    weights : str, optional
        Column of non-negative case weights.
    variance : {"profile", "numeric"}, default "profile"
        Model-based standard errors from the observed information of the profile
        likelihood: analytic, or by its second differences (Zeng, Mao & Lin 2016;
        see the module's notes). Ignored with ``n_bootstrap``.
    n_bootstrap : int, default 0
        Bootstrap refits (of resampled ``cluster`` values, or rows); with more than 0
        the covariance of the coefficients is theirs.
    seed, n_jobs, progress
        The bootstrap's seed (replicates are seeded one by one, so the result does
        not depend on ``n_jobs``), worker processes and progress bar.
    tol : float, default 1e-10
        The fit stops when the Newton decrement (twice the increase a Newton step
        promises) is below ``tol`` and the KKT conditions hold.
    max_iter : int, default 200

    Returns
    -------
    PHFit

    Examples
    --------
    >>> ep = cohort.episodes("numbness")  # doctest: +SKIP
    >>> ph = regen.fit_ph("~ nerve + diabetes", ep)  # doctest: +SKIP
    >>> ph.summary[["hazard_ratio", "hazard_ratio_ci_lower",
    ...             "hazard_ratio_ci_upper"]]  # doctest: +SKIP
    """
    _columns(data, lower, upper, cluster, weights)
    if variance not in ("profile", "numeric"):
        raise ValueError(f"variance must be 'profile' or 'numeric', not {variance!r}")
    if int(n_bootstrap) < 0:
        raise ValueError(f"n_bootstrap must be 0 or more, not {n_bootstrap}")
    design, rows, low, up, w, X, dropped = _design(formula, data, lower, upper, weights)
    names = design.names[1:]
    likelihood, q, p, start = interval_problem(low, up, X, w)
    solution = likelihood.maximise(np.zeros(X.shape[1]), start, tol=tol, max_iter=max_iter)
    info = information(likelihood, solution)
    theta = np.concatenate([solution.u[_group_starts(solution.groups)], solution.beta])
    boundary = boundary_terms(likelihood, solution, X, w, names, tol, max_iter)
    jumps = [f"baseline {i}" for i in range(len(info) - len(names))]   # only predictions use
    full = information_inverse(info, theta, jumps + names, unbounded=boundary + jumps)  # them
    codes = None
    if cluster is not None:
        check_clusters(rows[cluster])
        codes = pd.factorize(rows[cluster])[0]
    fit = PHFit(params=pd.Series(solution.beta, index=names), covariance=None,
                loglik=solution.loglik, formula=formula, design=design, n=len(rows),
                n_dropped=dropped, iterations=solution.iterations, kkt=solution.kkt,
                baseline=_baseline_table(q, p, solution, full, len(names)), variance=variance,
                cluster=cluster, n_bootstrap=int(n_bootstrap))
    if n_bootstrap:
        covariance, fit.n_failed = _bootstrap_covariance(
            low, up, w, X, codes, n_bootstrap, seed, n_jobs, progress, tol, max_iter)
        fit.variance = "bootstrap"
    elif cluster is not None:
        covariance = robust_covariance(low, up, w, X, codes, solution, full[-len(names):])
        fit.variance, fit.n_clusters = "robust", int(codes.max() + 1)
        fit.reference_df = fit.n_clusters - 1
    elif variance == "numeric":
        covariance = profile_covariance(likelihood, solution, X, w, tol, max_iter)
    else:
        covariance = full[-len(names):, -len(names):]
    for name in boundary:   # no sandwich or bootstrap can bound it: the information's variance
        k = names.index(name)
        at = len(full) - len(names) + k
        variance_k = max(covariance[k, k], full[at, at])
        covariance[k, :] = covariance[:, k] = 0.0
        covariance[k, k] = variance_k
    fit.covariance = pd.DataFrame(covariance, index=names, columns=names)
    return fit


def boundary_terms(likelihood: PHLikelihood, solution, X, w, names, tol, max_iter) -> list[str]:
    """The coefficients whose estimate sits on the boundary, at +-infinity: the profile
    log-likelihood no longer rises (by 1e-4) when one moves 10 standard deviations of its
    covariate further out, as when no event of a group falls within the others' follow-up
    (its hazard ratio runs to 0). Each is named in a DataWarning."""
    sd = np.sqrt(np.maximum(np.cov(X, rowvar=False, aweights=w).reshape(len(names), -1)
                            .diagonal(), 1e-300))
    out = []
    for k in np.flatnonzero((np.abs(solution.beta) * sd > 1) | (np.abs(solution.beta) > 3)):
        moved = solution.beta.copy()
        moved[k] += np.sign(moved[k]) * 10 / sd[k]
        further = likelihood.maximise(moved, solution.u, fixed_beta=True, tol=tol,
                                      max_iter=max_iter).loglik
        if further > solution.loglik - 1e-4:
            out.append(names[k])
            direction = "0" if solution.beta[k] < 0 else "infinity"
            warnings.warn(
                f"the hazard ratio of {names[k]} runs to {direction}: the likelihood keeps "
                "rising as it moves out, so the data bound it on one side only (e.g. no event "
                "of that group falls within the others' follow-up). Its estimate is a point on "
                "the way and its interval spans everything; merge the group or leave it out.",
                DataWarning, stacklevel=3)
    return out


def robust_covariance(low, up, w, X, codes, solution, rows_of_inverse) -> np.ndarray:
    """The cluster sandwich of the coefficients, G/(G - 1) A^-1 B A^-1 over the baseline
    groups and the coefficients (A the observed information, B the outer products of the
    clusters' scores), its coefficient block: ``rows_of_inverse`` are A^-1's rows of the
    coefficients."""
    keep = w > 0
    likelihood = interval_problem(low, up, X, w, collapse=False, start=False)[0]
    terms = likelihood.row_terms(solution.beta, solution.u)
    clusters = codes[keep][likelihood.informative]
    n_clusters = int(codes.max() + 1)
    groups = solution.groups
    n_groups = groups[-1] + 1
    ws, wt = likelihood.w * terms["s"], likelihood.w * terms["t"]
    has_a, has_b = ~likelihood.left, ~likelihood.right
    index = np.arange(len(ws))
    by_row = sparse.csr_matrix(
        (np.concatenate([ws[has_a], wt[has_b]]),
         (np.concatenate([index[has_a], index[has_b]]),
          np.concatenate([groups[likelihood.a[has_a] - 1], groups[likelihood.b[has_b] - 1]]))),
        shape=(len(ws), n_groups))
    member = sparse.csr_matrix((np.ones(len(ws)), (clusters, index)),
                               shape=(n_clusters, len(ws)))
    scores_v = member @ by_row
    scores_b = member @ (likelihood.X * (ws + wt)[:, None])
    U = scores_v @ rows_of_inverse[:, :n_groups].T + scores_b @ rows_of_inverse[:, n_groups:].T
    return n_clusters / (n_clusters - 1) * (U.T @ U)


def _group_starts(groups: np.ndarray) -> np.ndarray:
    return np.flatnonzero(np.diff(groups, prepend=-1))


def profile_covariance(likelihood: PHLikelihood, solution, X, w, tol, max_iter) -> np.ndarray:
    """Minus the inverse of the profile log-likelihood's second differences at the maximum,
    with steps h_k = STEP / (sqrt(n) sd(x_k)) (Zeng, Mao & Lin 2016)."""
    n = float(w.sum())
    sd = np.sqrt(np.cov(X, rowvar=False, aweights=w).reshape(X.shape[1], X.shape[1]).diagonal())
    h = STEP / (np.sqrt(n) * np.where(sd > 0, sd, 1.0))
    beta, u = solution.beta, solution.u
    p = len(beta)

    @functools.cache
    def profile(steps: tuple) -> float:
        moved = beta + np.array(steps) * h
        return likelihood.maximise(moved, u, fixed_beta=True, tol=tol, max_iter=max_iter).loglik

    zero = (0,) * p
    hessian = np.empty((p, p))
    for k in range(p):
        for j in range(k, p):
            ek = tuple(int(i == k) for i in range(p))
            ej = tuple(int(i == j) for i in range(p))
            both = tuple(x + y for x, y in zip(ek, ej, strict=True))
            minus = tuple(-x - y for x, y in zip(ek, ej, strict=True))
            # central: pl(b + hk + hj) - pl(b + hk - hj) - ... as a symmetric 4-point form
            if k == j:
                value = (profile(ek) - 2 * profile(zero) + profile(tuple(-x for x in ek))) / h[k]**2
            else:
                mixed = tuple(x - y for x, y in zip(ek, ej, strict=True))
                value = (profile(both) - profile(mixed) - profile(tuple(-x for x in mixed))
                         + profile(minus)) / (4 * h[k] * h[j])
            hessian[k, j] = hessian[j, k] = value
    return information_inverse(-hessian, beta, [f"x{k}" for k in range(p)])


def _bootstrap_covariance(low, up, w, X, codes, n_bootstrap, seed, n_jobs, progress,
                          tol, max_iter):
    codes = np.arange(len(low)) if codes is None else codes
    shared = (low, up, w, X, codes)
    done = run_replicates(functools.partial(_replicate_batch, tol=tol, max_iter=max_iter),
                          shared, int(n_bootstrap), seed, n_jobs=n_jobs, progress=progress)
    estimates = np.array([d for d in done if d is not None])
    failed = sum(d is None for d in done)
    if len(estimates) < max(10, n_bootstrap // 2):
        raise ModelError(f"{failed} of {n_bootstrap} bootstrap refits failed (a resample "
                         "without events in a group); fit fewer covariates")
    if failed:
        warnings.warn(f"{failed} of {n_bootstrap} bootstrap refits failed and are left out "
                      "(PHFit.n_failed)", DataWarning, stacklevel=3)
    return np.atleast_2d(np.cov(estimates, rowvar=False)), failed


def _replicate_batch(shared, seeds, tol, max_iter) -> list:
    low, up, w, X, codes = shared
    n_clusters = codes.max() + 1
    out = []
    for sequence in seeds:
        rng = np.random.default_rng(sequence)
        drawn = rng.multinomial(n_clusters, np.full(n_clusters, 1.0 / n_clusters))
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                likelihood, _, _, start = interval_problem(low, up, X, w * drawn[codes])
                solution = likelihood.maximise(np.zeros(X.shape[1]), start, tol=tol,
                                               max_iter=max_iter)
            out.append(solution.beta if np.isfinite(solution.beta).all() else None)
        except (ModelError, np.linalg.LinAlgError):
            out.append(None)
    return out


def _baseline_table(q, p, solution, full, n_beta) -> pd.DataFrame:
    """Support intervals with the baseline's log cumulative hazard after each, its
    variance and its covariance with the coefficients (from the observed information)."""
    groups = solution.groups
    n_groups = groups[-1] + 1
    cov_v = full[:n_groups, :n_groups]
    cov_vb = full[:n_groups, n_groups:]
    K = len(q)
    log_h = np.append(solution.u, np.inf)
    var = np.append(np.diag(cov_v)[groups], np.nan)
    table = pd.DataFrame({"lower": q, "upper": p, "log_cumulative_hazard": log_h,
                          "cumulative_hazard": np.exp(log_h), "survival": np.exp(-np.exp(log_h)),
                          "log_cumulative_hazard_var": var})
    cross = np.vstack([cov_vb[groups], np.full((1, n_beta), np.nan)])
    for k in range(n_beta):
        table[f"cov_{k}"] = cross[:, k]
    return table.iloc[:K]


# ------------------------------------------------------------------- result --

class PHFit(FitResult, kind="PHFit"):
    """Result of :func:`fit_ph`.

    Attributes
    ----------
    params, bse : Series
        Log hazard ratios and their standard errors.
    summary : DataFrame
        ``estimate, std_err, ci_lower, ci_upper, p_value, hazard_ratio,
        hazard_ratio_ci_lower, hazard_ratio_ci_upper`` (95%, normal reference).
    loglik : float
        The maximised log-likelihood (of the baseline too: compare fits of one data).
    baseline : DataFrame
        The support intervals ``lower, upper`` and the baseline after each:
        ``cumulative_hazard``, ``survival`` (of a profile whose covariates are all 0).
    variance : str
        "profile", "numeric", "robust" (cluster sandwich) or "bootstrap": where the
        standard errors come from.
    kkt : float
        The largest violation of the optimality conditions at the end of the fit.
    """

    ratio = "hazard_ratio"
    effect_name = "Hazard ratio"
    #: How a figure's legend names the model.
    dist_label = "Proportional-hazards"

    def __init__(self, *, params, covariance, loglik, formula, design, n, n_dropped,
                 iterations, kkt, baseline, variance, cluster=None, n_bootstrap=0):
        self.params = params
        self.covariance = covariance
        self.loglik = float(loglik)
        self.formula = formula
        self.design = design
        self.n = n
        self.n_dropped = n_dropped
        self.iterations = iterations
        self.kkt = kkt
        self._baseline = baseline
        self.variance = variance
        self.cluster = cluster
        self.n_bootstrap = n_bootstrap
        self.n_failed = 0
        #: Clusters behind a robust covariance (None without ``cluster=`` or with a bootstrap).
        self.n_clusters = None

    @property
    def baseline(self) -> pd.DataFrame:
        """``lower, upper, cumulative_hazard, survival``: the baseline on each support interval."""
        return self._baseline[["lower", "upper", "cumulative_hazard", "survival"]].copy()

    @property
    def aic(self) -> float:
        """AIC counting the coefficients and every baseline jump the fit kept."""
        jumps = int((np.diff(self._baseline["log_cumulative_hazard"].to_numpy()[:-1]) > 0).sum())
        return 2 * (len(self.params) + jumps + 1) - 2 * self.loglik

    # ------------------------------------------------------------ predict --
    def _log_hazard(self, profiles: pd.DataFrame):
        """Each profile's log cumulative hazard after every support interval, with its SE."""
        X = self.design.matrix(profiles)[:, 1:]
        beta = self.params.to_numpy()
        table = self._baseline
        u = table["log_cumulative_hazard"].to_numpy()[:-1]
        var_u = table["log_cumulative_hazard_var"].to_numpy()[:-1]
        cross = table[[f"cov_{k}" for k in range(len(beta))]].to_numpy()[:-1]
        cov_b = self.covariance.to_numpy()
        eta = X @ beta
        var = (var_u[None, :] + 2 * X @ cross.T + np.einsum("ij,jk,ik->i", X, cov_b, X)[:, None])
        return u[None, :] + eta[:, None], np.sqrt(np.maximum(var, 0.0))

    def _bands(self, profiles: pd.DataFrame, alpha: float):
        """S(t | x) and its pointwise CI (estimate, lower, upper) at 0 and after each support
        interval, by profile."""
        log_h, se = self._log_hazard(profiles)
        z = self.critical_value(alpha)
        ones = np.ones((len(log_h), 1))
        zeros = np.zeros((len(log_h), 1))

        def survival(values):
            with np.errstate(over="ignore"):        # a cumulative hazard beyond 1e308: S = 0
                return np.hstack([ones, np.exp(-np.exp(values)), zeros])

        return (survival(log_h), survival(log_h + z * se), survival(log_h - z * se))

    def _at(self, curves, times: np.ndarray) -> np.ndarray:
        """Values at ``times`` of step curves given after each support interval, linear
        within a support interval (where the data cannot place the event) and flat
        beyond one that never closes."""
        q = self._baseline["lower"].to_numpy()
        p = self._baseline["upper"].to_numpy()
        j = np.searchsorted(p, times, side="right")           # intervals fully passed
        inside = (j < len(q)) & (times > q[np.minimum(j, len(q) - 1)])
        jj = np.minimum(j, len(q) - 1)
        width = np.where(np.isfinite(p[jj]), p[jj] - q[jj], np.inf)
        share = np.where(inside & np.isfinite(width), (times - q[jj]) / width, 0.0)
        before, after = curves[:, j], curves[:, np.minimum(j + 1, curves.shape[1] - 1)]
        return before + share * (after - before)

    def predict_survival(self, profiles: pd.DataFrame, times, alpha: float = 0.05) -> pd.DataFrame:
        """S(t | profile) at ``times`` with pointwise CIs (delta method on the log cumulative
        hazard, from the observed information; linear within a support interval).

        Returns
        -------
        DataFrame
            The profile's columns, ``time, estimate, ci_lower, ci_upper``.
        """
        times = np.atleast_1d(np.asarray(times, dtype="float64"))
        estimate, lower, upper = (self._at(c, times) for c in self._bands(profiles, alpha))
        base = profiles.reset_index(drop=True)
        parts = [base.assign(time=t, estimate=estimate[:, i], ci_lower=lower[:, i],
                             ci_upper=upper[:, i]) for i, t in enumerate(times)]
        return pd.concat(parts, ignore_index=True)

    def predict_quantile(self, profiles: pd.DataFrame, q=(0.25, 0.5, 0.75),
                         alpha: float = 0.05) -> pd.DataFrame:
        """Times by which a share ``q`` of each profile has had the event, with CIs from where
        the survival band crosses 1 - q (inf: not reached within the data).

        Returns
        -------
        DataFrame
            One row per profile and quantile: the profile's columns, ``q, estimate,
            ci_lower, ci_upper`` (days).
        """
        q = check_probabilities(q)
        curves = self._bands(profiles, alpha)
        ends = np.concatenate([[0.0], self._baseline["upper"].to_numpy()])
        starts = np.concatenate([[0.0], self._baseline["lower"].to_numpy()])
        base = profiles.reset_index(drop=True)
        parts = []
        for level in q:
            found = [_crossing(c, starts, ends, 1.0 - level) for c in curves]
            parts.append(base.assign(q=level, estimate=found[0], ci_lower=found[1],
                                     ci_upper=found[2]))
        return pd.concat(parts, ignore_index=True)

    # -------------------------------------------------------------- saving --
    def document(self) -> dict:
        table = self._baseline
        return {
            "formula": self.formula, "parameters": list(self.params.index),
            "params": self.params.tolist(), "covariance": self.covariance.to_numpy().tolist(),
            "loglik": self.loglik, "n": self.n, "n_dropped": self.n_dropped,
            "iterations": self.iterations, "kkt": self.kkt, "variance": self.variance,
            "cluster": self.cluster, "n_bootstrap": self.n_bootstrap,
            "n_clusters": self.n_clusters,
            "baseline": {c: table[c].tolist()
                         for c in ["lower", "upper", "log_cumulative_hazard",
                                   "log_cumulative_hazard_var"]},
            "baseline_covariance": table[[f"cov_{k}" for k in range(len(self.params))]]
            .to_numpy()[:-1].tolist(),
            "design": self.design.to_dict(),
        }

    @classmethod
    def from_document(cls, document: dict) -> PHFit:
        params, covariance = stored_parameters(document)
        design = Design.from_dict(document["formula"], document["design"])
        if design.names[1:] != list(params.index) or design.names[:1] != ["Intercept"]:
            raise ValueError("the coefficients do not match the formula's design")
        baseline = _stored_baseline(document, len(params))
        if document["variance"] not in ("profile", "numeric", "robust", "bootstrap"):
            raise ValueError(f"unknown variance {str(document['variance'])[:40]!r}")
        fit = cls(params=params, covariance=covariance, loglik=float(document["loglik"]),
                  formula=document["formula"], design=design, n=int(document["n"]),
                  n_dropped=int(document["n_dropped"]), iterations=int(document["iterations"]),
                  kkt=float(document["kkt"]), baseline=baseline, variance=document["variance"],
                  cluster=document["cluster"], n_bootstrap=int(document["n_bootstrap"]))
        if document["variance"] == "robust":
            fit.n_clusters = stored_cluster_count(document, document["cluster"])
            if fit.n_clusters is None:
                raise ValueError("a robust covariance without its number of clusters")
            fit.reference_df = fit.n_clusters - 1
        return fit

    def __repr__(self) -> str:
        return (f"<PHFit {self.formula!r}: {self.n} episodes, {len(self._baseline)} support "
                f"intervals, loglik {self.loglik:.3f}, {self.variance} SEs>")


def _crossing(curves: np.ndarray, starts, ends, level: float) -> np.ndarray:
    """First time each curve (at 0 and after each support interval; linear within one)
    falls to ``level`` or below; inf where it never does."""
    out = np.full(len(curves), np.inf)
    usable = curves.shape[1] - (0 if np.isfinite(ends[-1]) else 1)   # an open end never closes
    for i, curve in enumerate(curves):
        below = np.flatnonzero(curve[:usable] <= level + 1e-12)
        if len(below) == 0:
            continue
        j = below[0]
        if j == 0:
            out[i] = 0.0
            continue
        high, low = curve[j - 1], curve[j]
        width = ends[j] - starts[j]
        share = (high - level) / (high - low) if high > low else 1.0
        out[i] = starts[j] + share * width if np.isfinite(width) else np.inf
    return out


def _stored_baseline(document: dict, n_beta: int) -> pd.DataFrame:
    stored = document["baseline"]
    if not isinstance(stored, dict):
        raise ValueError("baseline is not an object")
    lower = np.asarray(stored["lower"], dtype="float64")
    K = len(lower)
    if not 2 <= K <= 100_000:
        raise ValueError(f"{K} support intervals; a model has 2 to 100000")
    upper = stored_numbers(stored, "upper", (K,), finite=False)
    log_h = stored_numbers(stored, "log_cumulative_hazard", (K,), finite=False)
    var = stored_numbers(stored, "log_cumulative_hazard_var", (K,), finite=False)
    cross = stored_numbers(document, "baseline_covariance", (K - 1, n_beta))
    if (not np.isfinite(lower).all() or not np.isfinite(log_h[:-1]).all()
            or not np.isfinite(var[:-1]).all() or (var[:-1] < 0).any()):
        raise ValueError("the baseline has a number that is not finite, or a negative variance")
    if (np.diff(lower) < 0).any() or (upper < lower).any() or (np.diff(log_h[:-1]) < 0).any():
        raise ValueError("the baseline's intervals or cumulative hazards are out of order")
    table = pd.DataFrame({"lower": lower, "upper": upper, "log_cumulative_hazard": log_h,
                          "cumulative_hazard": np.exp(log_h),
                          "survival": np.exp(-np.exp(log_h)), "log_cumulative_hazard_var": var})
    full = np.vstack([cross, np.full((1, n_beta), np.nan)])
    for k in range(n_beta):
        table[f"cov_{k}"] = full[:, k]
    return table
