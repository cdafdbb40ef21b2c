r"""Turnbull's nonparametric maximum likelihood estimator for (l, u] data.

Each row says the event happened after ``lower`` and at or before ``upper``:
interval-censored ``0 < l < u < inf``, left-censored ``l = 0``,
right-censored ``u = inf``, exact ``l = u`` (read as ``(u-, u]``).

The model
---------
Sort every left end (just after its value; an exact row's left end just
before) and every right end (at its value). The *support intervals*
:math:`(q_j, p_j]` are the places where a left end is immediately followed by
a right end (Turnbull 1976); the NPMLE puts all its mass on them. Row
:math:`i` contains a contiguous run :math:`j = lo_i, \dots, hi_i` of support
intervals, so with masses :math:`\pi_j \ge 0, \sum_j \pi_j = 1` the
log-likelihood of the distinct rows with counts :math:`w_i` is

.. math:: \ell(\pi) = \sum_i w_i \log a_i, \qquad a_i = \sum_{j=lo_i}^{hi_i} \pi_j .

It is concave; its gradient is :math:`d_j = \sum_{i \ni j} w_i / a_i`, and
:math:`\hat\pi` is the optimum exactly when :math:`d_j \le W = \sum_i w_i`
for every :math:`j` (with equality where :math:`\hat\pi_j > 0`): the
Karush–Kuhn–Tucker conditions. The fit stops on that criterion
(``max_j d_j / W - 1 < tol``), not on the estimate "no longer changing";
by concavity :math:`\ell(\hat\pi) - \ell(\pi) \le \max_j d_j - W`, so the gap
bounds how far from the maximum the fit can be.

Algorithm: the constrained Newton method of Wang (2007, JRSS B 69:185–198):
a Newton step from the quadratic approximation of :math:`\ell`, solved as a
non-negative least-squares problem, then a backtracking line search. Because
rows cover contiguous runs, :math:`a`, :math:`d` and the Hessian are built
with cumulative sums in :math:`O(n + m^2)` for :math:`n` distinct rows and
:math:`m` support intervals; visit days are whole numbers, so :math:`m` stays
small even for very large cohorts.

Survival :math:`S(t) = P(T > t)` is identified at every endpoint outside the
support intervals; inside one, the NPMLE only says the mass lies somewhere in
it. between visits the data cannot place the mass, so
:meth:`TurnbullFit.survival_at` spreads it evenly over its interval by default
(``within="linear"``) and gives the bounds the data allow with
``within="upper"`` (mass at the right end) and ``"lower"`` (left end); all
three agree at every observed endpoint. :attr:`TurnbullFit.intervals` gives the
intervals themselves.

=====================  ====================================
symbol                 attribute
=====================  ====================================
:math:`(q_j, p_j]`     ``intervals.lower``, ``intervals.upper``
:math:`\hat\pi_j`      ``intervals.mass``
:math:`\ell(\hat\pi)`  ``loglik``
:math:`\max_j d_j/W-1` ``kkt_gap``
=====================  ====================================
"""

from __future__ import annotations

import functools
import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.linalg import cho_factor, solve_triangular
from scipy.optimize import nnls

from regen._bootstrap import run_replicates
from regen.exceptions import ConvergenceWarning, DataWarning, ModelError

__all__ = ["TurnbullFit", "support_intervals", "turnbull"]

QUANTILE_SLACK = 1e-6


@dataclass(frozen=True)
class _Curve:
    """One group's NPMLE."""

    lower: np.ndarray      # support intervals (q_j, p_j]
    upper: np.ndarray
    mass: np.ndarray
    loglik: float
    kkt_gap: float
    iterations: int
    n: float               # total weight (rows when unweighted)

    def survival(self, times: np.ndarray, within: str = "linear") -> np.ndarray:
        """S(t) = P(T > t); ``within`` places each mass inside its interval."""
        survival = np.clip(1.0 - self._distribution(times, within), 0.0, 1.0)
        # The masses sum to 1 only to rounding: after the last one, 1e-16 is 0.
        return np.where(survival < 1e-12, 0.0, survival)

    def _distribution(self, times: np.ndarray, within: str) -> np.ndarray:
        """P(T <= t): masses of intervals passed, and the placed share of the current one."""
        t = np.asarray(times, dtype="float64")[..., None]
        q, p = self.lower, self.upper
        spread = np.isfinite(p) & (p > q)
        if within == "upper":
            share = (t >= p).astype(float)
        elif within == "lower":
            share = np.where(spread, t > q, t >= p).astype(float)
        else:
            width = np.where(spread, p - q, 1.0)
            share = np.where(spread, np.clip((t - q) / width, 0.0, 1.0), (t >= p).astype(float))
        return share @ self.mass

    def quantile(self, q: np.ndarray, within: str = "linear") -> np.ndarray:
        """Smallest t with P(T <= t) >= q (inf when the curve never gets there).

        Masses are exact to about the fit's tolerance, so a cumulative mass within
        1e-6 of ``q`` counts as reaching it (a tie then gives the smaller time).
        """
        cumulative = np.cumsum(self.mass)
        at = np.searchsorted(cumulative, q - QUANTILE_SLACK, side="left")
        inside = at < len(self.upper)
        j = np.minimum(at, len(self.upper) - 1)
        lower, upper, mass = self.lower[j], self.upper[j], self.mass[j]
        if within == "upper":
            point = upper
        elif within == "lower":
            point = np.where(np.isfinite(upper), lower, np.inf)
        else:
            before = cumulative[j] - mass
            fraction = np.clip((q - before) / mass, 0.0, 1.0)
            point = np.where(np.isfinite(upper), lower + fraction * (upper - lower), np.inf)
        return np.where(inside, point, np.inf)


WITHIN = ("linear", "upper", "lower")


def _check_within(within: str) -> str:
    if within not in WITHIN:
        raise ValueError(f"within must be one of {', '.join(WITHIN)}, not {within!r}")
    return within


def turnbull(data: pd.DataFrame | None = None, *, lower="lower", upper="upper", by=None,
             weights=None, n_bootstrap: int = 0, alpha: float = 0.05, cluster=None,
             seed: int | None = None, n_jobs: int = 1, progress: bool | None = None,
             tol: float = 1e-7, max_iter: int = 1000) -> TurnbullFit:
    """Fit the NPMLE of the distribution of an interval-censored time.

    Parameters
    ----------
    data : DataFrame, optional
        Episodes, e.g. from :meth:`regen.Cohort.episodes`. Without it, ``lower``
        and ``upper`` are the arrays themselves.
    lower, upper : str or array-like
        Column names (with ``data``) or arrays: the event happened in
        ``(lower, upper]``; ``upper = inf`` is right-censored, ``lower = 0``
        left-censored, ``lower == upper`` exact.
    by : str or list of str, optional
        Fit each group of these columns of ``data`` separately.
    weights : str or array-like, optional
        Non-negative case weights (a column name with ``data``).
    n_bootstrap : int, default 0
        Bootstrap replicates for pointwise confidence intervals of S(t) and of
        quantiles (percentile intervals); 0 fits without intervals. Each
        replicate resamples episodes (or clusters) with replacement and refits.
    alpha : float, default 0.05
        1 − confidence level of the intervals.
    cluster : str or array-like, optional
        Resample these units (e.g. ``"patient_id"``: both sides and every
        retreatment of a patient together) instead of single episodes.
    seed : int, optional
        Seed of the bootstrap; the same seed gives the same intervals for any
        ``n_jobs``.
    n_jobs : int, default 1
        Processes for the bootstrap (joblib; -1: all cores).
    progress : bool, optional
        Show a progress bar for the bootstrap; default: only on a terminal.
    tol : float, default 1e-7
        Stop when the KKT gap ``max_j d_j / W - 1`` is below ``tol``. By
        concavity the log-likelihood is then within ``tol * W`` of its maximum
        (``W``: the number of episodes); 1e-7 is near what double precision
        resolves for a hundred thousand episodes.
    max_iter : int, default 1000
        Newton iterations at most; a fit that stops short warns with
        :class:`~regen.exceptions.ConvergenceWarning`.

    Returns
    -------
    TurnbullFit

    Raises
    ------
    ValueError
        A missing, negative or inverted interval (naming the row), or no rows.

    Examples
    --------
    >>> import numpy as np
    >>> from regen import turnbull
    >>> fit = turnbull(lower=[0, 7, 7, 30], upper=[7, 30, np.inf, 60])
    >>> fit.survival_at([7, 30]).round(3)["survival"].tolist()
    [0.75, 0.375]
    """
    if isinstance(n_bootstrap, bool) or not isinstance(n_bootstrap, int | np.integer) \
            or n_bootstrap < 0:
        raise ValueError(f"n_bootstrap must be a whole number >= 0, not {n_bootstrap!r}")
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must lie between 0 and 1 (0.05: 95% intervals), not {alpha!r}")
    frame = _as_frame(data, lower, upper, by, weights)
    frame["_cluster"] = _cluster_codes(data, cluster, len(frame))
    if by is None:
        frame = frame.assign(_all="all")
    groups = ["_all"] if by is None else ([by] if isinstance(by, str) else list(by))
    missing = frame[groups].isna().any(axis=1)
    n_dropped = int(missing.sum())
    if n_dropped:
        warnings.warn(f"{n_dropped} episode(s) have no {' / '.join(groups)} and are left out of "
                      "the curves (TurnbullFit.n_dropped).", DataWarning, stacklevel=2)
        frame = frame.loc[~missing]
        if frame.empty:
            raise ValueError(f"every episode lacks {' / '.join(groups)}: nothing to fit")
    curves, parts = {}, {}
    for key, part in frame.groupby(groups, sort=True):
        key = key[0] if len(groups) == 1 else key
        parts[key] = part
        curves[key] = _fit(part["_lower"].to_numpy(), part["_upper"].to_numpy(),
                           part["_weight"].to_numpy(), tol, max_iter)
    replicates = None
    if n_bootstrap:
        single = [key for key, part in parts.items() if part["_cluster"].nunique() < 2]
        if single and cluster is not None and len(parts) == 1:
            raise ModelError(f"the bootstrap resamples {cluster}: a single {cluster} cannot give "
                             "an interval; use more of them, or n_bootstrap=0")
        if single:
            names = ", ".join(map(str, single[:5]))
            warnings.warn(f"{len(single)} group(s) have a single {cluster or 'episode'} "
                          f"({names}): no bootstrap interval for them (NaN).", DataWarning,
                          stacklevel=2)
        replicates = _bootstrap({k: p for k, p in parts.items() if k not in single}, n_bootstrap,
                                seed, n_jobs, progress, tol, max_iter)
        failed = {key: sum(curve.kkt_gap >= tol for curve in curves_) for key, curves_ in
                  replicates.items()}
        if any(failed.values()):
            replicates = {key: [curve for curve in curves_ if curve.kkt_gap < tol]
                          for key, curves_ in replicates.items()}
            listed = "" if by is None else " (by group: " + ", ".join(
                f"{key} {n}" for key, n in failed.items() if n) + ")"
            warnings.warn(f"{sum(failed.values())} of {n_bootstrap} bootstrap refit(s) did not "
                          f"reach the KKT tolerance {tol:.0e} in {max_iter} iterations and are "
                          f"left out of the intervals{listed}; see TurnbullFit.n_failed. Raise "
                          "max_iter if they are many.", ConvergenceWarning, stacklevel=2)
    observed = {key: (part["_lower"].to_numpy(), part["_upper"].to_numpy(),
                      part["_weight"].to_numpy()) for key, part in parts.items()}
    fit = TurnbullFit(curves, None if by is None else groups, replicates, alpha, observed)
    fit.n_dropped = n_dropped
    if replicates is not None:
        fit.n_failed = failed if by is not None else sum(failed.values())
    return fit



def _cluster_codes(data, cluster, n: int) -> np.ndarray:
    if cluster is None:
        return np.arange(n)
    if isinstance(cluster, str):
        if data is None or cluster not in data.columns:
            raise ValueError(f"no column {cluster!r} to resample by (cluster=)")
        cluster = data[cluster]
    values = pd.Series(np.asarray(cluster, dtype=object))
    if len(values) != n:
        raise ValueError("cluster must have one value per row")
    if values.isna().any():
        raise ValueError("cluster has missing values: every row needs its cluster (e.g. patient)")
    return pd.factorize(values)[0]


def _bootstrap(parts: dict, n_bootstrap: int, seed, n_jobs: int, progress, tol, max_iter):
    """Replicate curves per group: resample clusters, refit. Seeds per replicate, so the
    result does not depend on how the replicates are split between processes."""
    # Clusters are numbered within each group, so that a group resamples its own patients
    # (numbered across the data, a small group could draw none of its own and fail).
    arrays = {key: (part["_lower"].to_numpy(), part["_upper"].to_numpy(),
                    part["_weight"].to_numpy(), pd.factorize(part["_cluster"])[0])
              for key, part in parts.items()}
    done = run_replicates(functools.partial(_replicate_batch, tol=tol, max_iter=max_iter),
                          arrays, n_bootstrap, seed, n_jobs=n_jobs, progress=progress)
    return {key: [replicate[key] for replicate in done] for key in parts}


def _replicate_batch(arrays: dict, seeds, tol, max_iter) -> list[dict]:
    out = []
    for sequence in seeds:
        rng = np.random.default_rng(sequence)
        fits = {}
        for key, (low, up, weight, cluster) in arrays.items():
            n_clusters = cluster.max() + 1
            drawn = rng.multinomial(n_clusters, np.full(n_clusters, 1.0 / n_clusters))
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", ConvergenceWarning)
                fits[key] = _fit(low, up, weight * drawn[cluster], tol, max_iter)
        out.append(fits)
    return out


def _as_frame(data, lower, upper, by, weights) -> pd.DataFrame:
    if data is None:
        if by is not None:
            raise ValueError("by= needs data: pass the DataFrame and the column names")
        lows = np.asarray(lower, dtype="float64")
        ups = np.asarray(upper, dtype="float64")
        weight = np.ones(len(lows)) if weights is None else np.asarray(weights, dtype="float64")
        frame = pd.DataFrame({"_lower": lows, "_upper": ups, "_weight": weight})
        where = "row"
    else:
        if not isinstance(data, pd.DataFrame):
            raise TypeError(f"data must be a DataFrame, not {type(data).__name__}")
        named = [lower, upper] + ([] if by is None else ([by] if isinstance(by, str) else by))
        missing = [c for c in named + ([weights] if isinstance(weights, str) else [])
                   if c not in data.columns]
        if missing:
            raise ValueError(f"no column {', '.join(map(repr, missing))} in data; "
                             f"it has: {', '.join(map(str, data.columns))}")
        kept = list(dict.fromkeys(named[2:]))  # only the group columns travel along
        frame = data[kept].assign(
            _lower=pd.to_numeric(data[lower], errors="coerce").astype("float64"),
            _upper=pd.to_numeric(data[upper], errors="coerce").astype("float64"),
            _weight=1.0 if weights is None else (
                data[weights] if isinstance(weights, str) else np.asarray(weights)))
        where = "data row"
    if len(frame) == 0:
        raise ValueError("no rows to fit")
    if len(frame["_lower"]) != len(frame["_upper"]) or len(frame["_weight"]) != len(frame):
        raise ValueError("lower, upper and weights must have the same length")
    low, up, weight = (frame[c].to_numpy(dtype="float64") for c in ("_lower", "_upper", "_weight"))
    labels = frame.index if data is not None else np.arange(len(frame))
    check_intervals(low, up, weight, labels, where)
    return frame


def check_intervals(low: np.ndarray, up: np.ndarray, weight: np.ndarray, labels,
                    where: str = "data row") -> None:
    """Raise ValueError naming the first bad row: episodes need 0 <= lower <= upper."""
    checks = [
        (np.isnan(low) | np.isnan(up), "missing or non-numeric lower/upper"),
        (low < 0, "lower < 0"),
        (np.isinf(low), "lower is infinite"),
        (up < low, "upper < lower"),
        ((low == 0) & (up == 0), "an exact time of 0"),
        (~(weight >= 0) | np.isinf(weight), "weight missing, negative or infinite"),
    ]
    for bad, what in checks:
        if bad.any():
            first = int(np.flatnonzero(bad)[0])
            label = labels[first]
            label = label.item() if isinstance(label, np.generic) else label
            raise ValueError(f"{int(bad.sum())} row(s) with {what}; first at {where} "
                             f"{label!r} (lower={low[first]}, upper={up[first]}). Episodes "
                             "need 0 <= lower <= upper, upper = inf when right-censored.")


def _fit(low: np.ndarray, up: np.ndarray, weight: np.ndarray, tol: float, max_iter: int) -> _Curve:
    keep = weight > 0
    if not keep.any():
        raise ModelError("every weight is 0: nothing to fit")
    # Distinct (l, u] pairs with their counts: as complex numbers, one fast 1-d sort.
    keys = np.empty(int(keep.sum()), dtype=np.complex128)
    keys.real, keys.imag = low[keep], up[keep]   # (1j * inf would give a NaN real part)
    pairs, inverse = np.unique(keys, return_inverse=True)
    w = np.bincount(inverse.ravel(), weights=weight[keep])
    q, p, lo, hi = support_intervals(pairs.real, pairs.imag)
    mass, loglik, gap, iterations = _maximise(lo, hi, w, len(q), tol, max_iter)
    shown = mass > 0
    return _Curve(q[shown], p[shown], mass[shown] / mass[shown].sum(), loglik, gap, iterations,
                  float(w.sum()))


def support_intervals(low: np.ndarray, up: np.ndarray):
    """Turnbull's innermost intervals, and the run of them each row contains."""
    n = len(low)
    exact = low == up
    values = np.concatenate([low, up])
    # At one value: an exact row's left end (just before it), right ends (at it),
    # then ordinary left ends (just after it).
    kind = np.concatenate([np.where(exact, -1, 1), np.zeros(n, dtype=int)])
    order = np.lexsort((kind, values))
    is_left = order < n
    position = np.empty(2 * n, dtype=np.int64)
    position[order] = np.arange(2 * n)
    starts = np.flatnonzero(is_left[:-1] & ~is_left[1:])   # a left end followed by a right end
    q, p = values[order[starts]], values[order[starts + 1]]
    lo = np.searchsorted(starts, position[:n], side="left")
    hi = np.searchsorted(starts + 1, position[n:], side="right") - 1
    return q, p, lo, hi


def _maximise(lo, hi, w, m, tol, max_iter):
    """Wang's (2007) constrained Newton method on an active set of support intervals.

    It starts from the fewest intervals that every row covers (uniform mass on them),
    and each iteration adds, in every gap between the intervals holding mass, the one
    where the gradient is highest if it passes ``W``; the Newton step is solved over
    the active intervals only, so its cost follows the intervals that hold mass (tens)
    rather than all candidates (thousands for continuous times).
    """
    total = w.sum()
    mass = np.zeros(m)
    start = _stabbing(lo, hi)
    mass[start] = 1.0 / len(start)

    def covered(mass):
        cumulative = np.concatenate([[0.0], np.cumsum(mass)])
        return cumulative[hi + 1] - cumulative[lo]

    def gradient(a):
        r = w / a
        return np.cumsum(np.bincount(lo, r, m + 1) - np.bincount(hi + 1, r, m + 1))[:m]

    a = covered(mass)
    loglik = float(w @ np.log(a))
    for iteration in range(1, max_iter + 1):
        d = gradient(a)
        gap = d.max() / total - 1.0
        if gap < tol:
            return mass, loglik, gap, iteration - 1
        held = np.flatnonzero(mass > 0)
        active = np.union1d(held, _gap_maxima(d, held, total))
        step = _newton_step(lo, hi, w, a, d, active, m)
        direction = step - mass
        slope = float(direction @ d)
        alpha = 1.0
        while alpha > 1e-12:
            trial = mass + alpha * direction
            a_trial = covered(trial)
            if (a_trial > 0).all():
                # The gain itself, not a difference of two large log-likelihoods: with tens
                # of thousands of rows that difference loses the digits the gap needs.
                gain = float(w @ np.log1p((a_trial - a) / a))
                if gain >= alpha * slope / 3:
                    break
            alpha /= 2
        else:
            # No ascent along the Newton direction: the step is as precise as the
            # non-negative least squares allow (about 1e-7 of the gap when the Hessian is
            # badly conditioned). Move mass from the held interval with the lowest
            # gradient to the one with the highest instead, which always ascends.
            exchanged = _exchange(mass, d, lo, hi, w, a)
            if exchanged is None:
                break   # numerically at the optimum
            trial, a_trial, gain = exchanged
        mass, a, loglik = trial, a_trial, loglik + gain
    d = gradient(a)
    gap = d.max() / total - 1.0
    if gap >= tol:
        warnings.warn(f"Turnbull NPMLE stopped after {iteration} iterations with KKT gap {gap:.2e} "
                      f"(tolerance {tol:.0e}); the curve may be slightly off the optimum. Raise "
                      "max_iter or tol.", ConvergenceWarning, stacklevel=4)
    return mass, loglik, gap, iteration


def _exchange(mass, d, lo, hi, w, a):
    """One vertex-exchange step (Böhning 1986): move mass from the held interval of lowest
    gradient to the interval of highest, as much as maximises the likelihood along that
    line (found by bisection on its derivative, which is decreasing). Returns the masses,
    the rows' covered masses and the gain, or None if no move helps. The covered masses
    are updated by the move itself, not recomputed from cumulative sums, whose rounding
    (1e-16 of the total) would swamp a move of 1e-9."""
    to = int(np.argmax(d))
    held = np.flatnonzero(mass > 0)
    source = int(held[np.argmin(d[held])])
    if to == source or d[to] <= d[source]:
        return None
    # Rows whose run holds ``to`` gain, those holding ``source`` lose (both: no change).
    change = ((lo <= to) & (hi >= to)).astype(float) - ((lo <= source) & (hi >= source))

    def slope(step: float) -> float:
        moved = a + step * change
        if (moved <= 1e-12 * a).any():   # a row left without mass: the likelihood is 0 there
            return -np.inf
        return float(w @ (change / moved))

    low, high = 0.0, float(mass[source])
    if slope(high) >= 0:
        step = high
    else:
        for _ in range(60):
            middle = (low + high) / 2
            low, high = (middle, high) if slope(middle) > 0 else (low, middle)
        step = low
    if step <= 0:
        return None
    moved = mass.copy()
    moved[to] += step
    moved[source] -= step
    return moved, a + step * change, float(w @ np.log1p(step * change / a))


def _stabbing(lo, hi) -> np.ndarray:
    """The fewest support intervals such that every row's run [lo, hi] holds one (the
    greedy stabbing of intervals by right end, which is optimal)."""
    chosen, last = [], -1
    for row in np.argsort(hi, kind="stable"):
        if lo[row] > last:
            last = int(hi[row])
            chosen.append(last)
    return np.asarray(chosen, dtype=np.int64)


def _gap_maxima(d, held, total) -> np.ndarray:
    """In each gap between intervals holding mass (and before the first, after the last),
    the interval where the gradient is highest, if it is above ``total``."""
    m = len(d)
    candidates = np.setdiff1d(np.arange(m), held, assume_unique=True)
    candidates = candidates[d[candidates] > total]
    if not len(candidates):
        return candidates
    gap = np.searchsorted(held, candidates)
    order = np.lexsort((-d[candidates], gap))
    first = np.concatenate([[True], gap[order][1:] != gap[order][:-1]])
    return candidates[order][first]


def _newton_step(lo, hi, w, a, d, active, m):
    """Constrained Newton step (Wang 2007) for the Lagrangian l(x) - W sum(x), over the
    ``active`` intervals (the others stay at 0).

    With r_i = A_i x / a_i, log r ~ (r - 1) - (r - 1)^2 / 2, so the step is
    argmin_{x >= 0} 1/2 sum_i w_i (r_i - 2)^2 + W sum_j x_j: the normal equations
    H x = 2 d - W with H = sum_i w_i A_i A_i' / a_i^2, solved as a non-negative
    least-squares problem on the Cholesky factor of H. At the optimum the
    Lagrangian's maximiser sums to one by itself; the step is renormalised.
    """
    k = len(active)
    first = np.searchsorted(active, lo, side="left")        # the active intervals of a row
    last = np.searchsorted(active, hi, side="right") - 1
    rows = first <= last
    c = (w / a**2)[rows]
    cells = np.bincount(first[rows] * k + last[rows], c, k * k).reshape(k, k)   # [first, last]
    # H[j, k] (j <= k) = sum of c_i over rows with first_i <= j and last_i >= k.
    upper = np.cumsum(np.cumsum(cells, axis=0)[:, ::-1], axis=1)[:, ::-1]
    hessian = np.triu(upper) + np.triu(upper, 1).T
    hessian[np.diag_indices(k)] += 1e-12 * max(hessian.diagonal().max(), 1.0)
    factor, _ = cho_factor(hessian, lower=True)
    chol = np.tril(factor)
    target = solve_triangular(chol, 2.0 * d[active] - w.sum(), lower=True)
    x, _ = nnls(chol.T, target, maxiter=50 * k)
    step = np.zeros(m)
    total = x.sum()
    if total > 0:
        step[active] = x / total
    else:
        step[active] = 1.0 / k
    return step


class TurnbullFit:
    """Result of :func:`turnbull`: the NPMLE of one or more groups.

    Attributes
    ----------
    intervals : DataFrame
        Support intervals ``(lower, upper]`` with their ``mass`` (and the
        group columns when fitted ``by=``).
    loglik : float
        Log-likelihood at the optimum, summed over groups.
    kkt_gap : float
        Largest ``max_j d_j / W - 1`` over groups (below ``tol`` at the optimum).
    n : float or Series
        Total weight fitted (rows when unweighted).
    n_dropped : int
        Episodes left out because a ``by=`` column was missing.
    n_failed : int or dict
        Bootstrap refits that did not converge and were left out of the
        intervals (a dict by group when fitted ``by=``; 0 without a bootstrap).
        The fit warns when there are any.
    """

    n_dropped = 0
    n_failed: int | dict = 0

    @property
    def by(self) -> list[str] | None:
        """The columns the curves are grouped by (``by=`` of :func:`turnbull`), or None."""
        return self._by

    def __init__(self, curves: dict, by: list[str] | None, replicates: dict | None = None,
                 alpha: float = 0.05, observed: dict | None = None) -> None:
        self._curves = curves
        self._observed = observed
        self._by = by
        self._replicates = replicates
        self.alpha = alpha

    def _interval(self, key, low, high=None) -> dict:
        """Percentile interval over the bootstrap replicates: the ``alpha / 2`` quantile of
        ``low(curve)`` and the ``1 - alpha / 2`` quantile of ``high(curve)`` (``low`` for
        both when ``high`` is None). With ``low`` and ``high`` the lower and upper bounds
        the data allow, the interval covers the whole set of values the data leave open,
        not just one point of it."""
        if self._replicates is None:
            return {}
        high = low if high is None else high
        if key not in self._replicates or not self._replicates[key]:
            shape = np.shape(low(self._curves[key]))   # a single cluster: no interval
            return {"ci_lower": np.full(shape, np.nan), "ci_upper": np.full(shape, np.nan)}
        replicates = self._replicates[key]
        lows = np.array([low(curve) for curve in replicates])
        highs = lows if high is low else np.array([high(curve) for curve in replicates])
        return {"ci_lower": np.quantile(lows, self.alpha / 2, axis=0, method="inverted_cdf"),
                "ci_upper": np.quantile(highs, 1 - self.alpha / 2, axis=0,
                                        method="inverted_cdf")}

    # -- helpers --------------------------------------------------------------
    def _frame(self, rows: dict) -> pd.DataFrame:
        parts = []
        for key, columns in rows.items():
            part = pd.DataFrame(columns)
            if self._by is not None:
                values = key if isinstance(key, tuple) else (key,)
                for name, value in zip(self._by, values, strict=True):
                    part.insert(len(part.columns) - len(columns), name, value)
            parts.append(part)
        return pd.concat(parts, ignore_index=True)

    @property
    def groups(self) -> list:
        """The group keys (``[None]``-like single key when not fitted by group)."""
        return list(self._curves)

    # -- results ------------------------------------------------------------
    @property
    def intervals(self) -> pd.DataFrame:
        return self._frame({key: {"lower": c.lower, "upper": c.upper, "mass": c.mass}
                            for key, c in self._curves.items()})

    @property
    def loglik(self) -> float:
        return float(sum(c.loglik for c in self._curves.values()))

    @property
    def kkt_gap(self) -> float:
        return float(max(c.kkt_gap for c in self._curves.values()))

    @property
    def n(self):
        if self._by is None:
            return next(iter(self._curves.values())).n
        return pd.Series({key: c.n for key, c in self._curves.items()}, name="n")

    def survival_at(self, times, *, within: str = "linear") -> pd.DataFrame:
        """S(t) = P(T > t) at ``times`` (days), by group.

        Between two visits the data do not say when the events happened, only
        how many happened in between: S(t) there is known to lie between the
        bounds ``survival_lower`` (each support interval's mass at its left end)
        and ``survival_upper`` (at its right end). The bounds meet at every
        observed endpoint (a visit day), where S(t) is identified.

        Parameters
        ----------
        times : float or array-like
            Days after the treatment.
        within : {"linear", "upper", "lower"}, default "linear"
            Where ``survival`` places a support interval's mass, which the data
            cannot tell: spread evenly over it (``linear``), at its right end
            (``upper``: the highest S(t) the data allow) or at its left end
            (``lower``: the lowest). All three agree at every observed endpoint.

        Returns
        -------
        DataFrame
            ``time, survival, survival_lower, survival_upper`` (and the group
            columns). With ``n_bootstrap`` also ``ci_lower, ci_upper``: a
            pointwise interval for the whole range the data leave open, the
            ``alpha / 2`` percentile of the replicates' ``survival_lower`` and
            the ``1 - alpha / 2`` percentile of their ``survival_upper``. Where
            no episode had its event by t (the bounds are 1) every replicate
            says 1 too, and that would be an interval of no width; the lower
            limit is then the exact binomial one for no event in the episodes
            known event-free at t, ``(alpha / 2) ** (1 / n)`` (0.89 for 30
            episodes at alpha 0.05), and likewise at 0.
        """
        _check_within(within)
        times = np.atleast_1d(np.asarray(times, dtype="float64"))
        rows = {}
        for key, c in self._curves.items():
            low, high = c.survival(times, "lower"), c.survival(times, "upper")
            columns = {"time": times, "survival": c.survival(times, within),
                       "survival_lower": low, "survival_upper": high,
                       **self._interval(key, lambda r: r.survival(times, "lower"),
                                        lambda r: r.survival(times, "upper"))}
            if "ci_lower" in columns and self._observed is not None:
                self._no_event_limits(key, times, low, high, columns)
            rows[key] = columns
        return self._frame(rows)

    def _no_event_limits(self, key, times, low, high, columns) -> None:
        """Widen the interval where the bounds sit on 1 (no event yet) or 0 (every episode
        had it): the bootstrap cannot leave such a boundary; an exact binomial limit can."""
        episodes_low, episodes_up, weight = self._observed[key]
        t = times[:, None]
        free = ((episodes_low[None, :] >= t) * weight).sum(axis=1)   # known event-free at t
        ended = ((episodes_up[None, :] <= t) * weight).sum(axis=1)   # known to have had it
        half = self.alpha / 2
        with np.errstate(divide="ignore"):
            floor = np.where(free > 0, half ** (1 / np.maximum(free, 1e-300)), 0.0)
            ceiling = np.where(ended > 0, 1 - half ** (1 / np.maximum(ended, 1e-300)), 1.0)
        at_one, at_zero = low >= 1 - 1e-12, high <= 1e-12
        columns["ci_lower"] = np.where(at_one, np.minimum(columns["ci_lower"], floor),
                                       columns["ci_lower"])
        columns["ci_upper"] = np.where(at_zero, np.maximum(columns["ci_upper"], ceiling),
                                       columns["ci_upper"])

    def quantile(self, q=0.5, *, within: str = "linear") -> pd.DataFrame:
        """Smallest time t with P(T <= t) >= q, by group (``inf`` when never reached).

        ``within`` places the mass inside its support interval as in
        :meth:`survival_at`; ``time_lower`` and ``time_upper`` are the earliest
        and latest times the data allow (the mass at the left or right end of
        its interval).

        Returns
        -------
        DataFrame
            ``q, time, time_lower, time_upper`` (and the group columns); with
            ``n_bootstrap`` also ``ci_lower, ci_upper``: the ``alpha / 2``
            percentile of the replicates' ``time_lower`` and the ``1 - alpha /
            2`` percentile of their ``time_upper`` (``inf`` where the
            replicates do not reach ``q``).
        """
        q = np.atleast_1d(np.asarray(q, dtype="float64"))
        if ((q <= 0) | (q >= 1)).any():
            raise ValueError(f"quantiles must lie strictly between 0 and 1, got {q.tolist()}")
        _check_within(within)
        return self._frame({key: {"q": q, "time": c.quantile(q, within),
                                  "time_lower": c.quantile(q, "lower"),
                                  "time_upper": c.quantile(q, "upper"),
                                  **self._interval(key, lambda r: r.quantile(q, "lower"),
                                                   lambda r: r.quantile(q, "upper"))}
                            for key, c in self._curves.items()})

    @property
    def median(self):
        """Median time: a float, or a Series by group."""
        if self._by is None:
            return float(next(iter(self._curves.values())).quantile(np.array([0.5]))[0])
        return pd.Series({key: float(c.quantile(np.array([0.5]))[0])
                          for key, c in self._curves.items()}, name="median")

    def at_risk(self, times) -> pd.DataFrame:
        """Where the episodes stand at each day, for the table under a curve.

        With interval-censored data the day of the event is not known, so each
        episode ``(lower, upper]`` is counted at day t in exactly one of:

        - ``at_risk``: known to be still event-free (``lower >= t``: still numb or
          relieved at a visit on or after t);
        - ``event``: known to have had the event (``upper <= t``);
        - ``censored``: left follow-up before t event-free (``lower < t``,
          ``upper`` infinite);
        - ``undetermined``: the event lies in an interval around t
          (``lower < t < upper < inf``).

        ``at_risk`` is therefore a lower bound of the true risk set, and reaches
        it at every visit day. Weighted fits count weights.

        Returns
        -------
        DataFrame
            ``time, at_risk, event, censored, undetermined`` (and the group columns).
        """
        if self._observed is None:
            raise ValueError("this fit does not keep its episodes; refit with regen.turnbull")
        times = np.atleast_1d(np.asarray(times, dtype="float64"))
        rows = {}
        for key, (low, up, weight) in self._observed.items():
            t = times[:, None]
            known_free = low[None, :] >= t
            event = up[None, :] <= t
            censored = ~known_free & np.isinf(up)[None, :]
            rows[key] = {"time": times, "at_risk": (known_free * weight).sum(axis=1),
                         "event": (event * weight).sum(axis=1),
                         "censored": (censored * weight).sum(axis=1),
                         "undetermined": ((~known_free & ~event & ~censored) * weight).sum(axis=1)}
        return self._frame(rows)

    def to_frame(self) -> pd.DataFrame:
        """The curve at 0 and at every support bound: ``time, survival, survival_upper,
        survival_lower`` (the estimate with mass spread evenly, and the bounds the data
        allow between endpoints), for plotting."""
        rows = {}
        for key, c in self._curves.items():
            times = np.unique(np.concatenate([[0.0], c.lower, c.upper[np.isfinite(c.upper)]]))
            rows[key] = {"time": times, "survival": c.survival(times),
                         "survival_upper": c.survival(times, "upper"),
                         "survival_lower": c.survival(times, "lower")}
        return self._frame(rows)

    def __repr__(self) -> str:
        groups = "" if self._by is None else f", {len(self._curves)} groups by {self._by}"
        return (f"<TurnbullFit: {sum(c.n for c in self._curves.values()):g} episodes{groups}, "
                f"loglik {self.loglik:.4f}, KKT gap {self.kkt_gap:.1e}>")
