r"""The shared likelihood engine of the parametric interval-censored models.

The accelerated-failure-time fit (:mod:`regen.survival.aft`) and the kinetics
fit (:mod:`regen.survival.regeneration`) both model ``log T = x'beta + sigma
eps`` for (l, u] rows; this module holds what they share:

- one :class:`Distribution` subclass per law of eps (extreme value, normal,
  logistic), each with log F, log S, log f and the derivatives of log f in z,
  written once in log space;
- :func:`row_terms`, each row's log-likelihood and its first and second
  derivatives in (eta = x'beta, log sigma) for right-, left-, interval-censored
  and exact rows (the formulas are in :mod:`regen.survival.aft`'s docstring);
- :class:`IntervalLikelihood`, the weighted sum over rows in theta = (beta, log
  sigma), with per-row scores and Hessians for the cluster sandwich
  (:mod:`regen.survival.covariance`);
- :func:`newton_maximum` with step halving, from :meth:`IntervalLikelihood.start`, one
  pass over the rows per iterate (:meth:`IntervalLikelihood.derivatives`).

The fit works on a compact form of the rows (:class:`Compact`). Rows with the same
design row, lower and upper end are one row weighted by their summed weight, and
eta = x'beta is computed once per distinct design row (:class:`Patterns`): the scores
and Hessian of the rows sum to those of their design rows first (a ``bincount``), so a
Newton step costs O(rows) exp/log and O(patterns x p^2) for the Hessian. Visit data
repeat a lot (100,000 simulated episodes are 52,600 distinct rows on 861 design rows).
The per-row scores and Hessians (:meth:`IntervalLikelihood.scores`,
:meth:`~IntervalLikelihood.row_hessians`) stay on the rows as given.
"""

from __future__ import annotations

import warnings
from functools import cached_property
from typing import ClassVar, NamedTuple

import numpy as np
import pandas as pd
from scipy import special, stats

from regen._util import distinct_rows, first_appearance
from regen.exceptions import ConvergenceWarning

__all__ = ["DISTRIBUTIONS", "Compact", "Distribution", "IntervalLikelihood", "NewtonResult",
           "Patterns", "distinct_matrix_rows", "kind_rows", "log_midpoints", "newton_maximum",
           "row_terms"]


# ------------------------------------------------------------ distributions --

class Distribution:
    """A standard distribution of epsilon, in log space, with derivatives in z.

    One subclass per law; each writes its own log F, log S, log f, the first two
    derivatives of log f in z, and the quantile function.
    """

    #: The law of the time (``dist=`` of the models), and how a sentence names it.
    name: ClassVar[str]
    label: ClassVar[str]
    #: Symmetric about 0, so that S(z) = F(-z) (log S and log F are then one function).
    symmetric: ClassVar[bool] = False

    def log_cdf(self, z):
        raise NotImplementedError

    def log_sf(self, z):
        raise NotImplementedError

    def log_pdf(self, z):
        raise NotImplementedError

    def d_log_pdf(self, z):
        """d/dz log f(z)."""
        raise NotImplementedError

    def d2_log_pdf(self, z):
        """d^2/dz^2 log f(z)."""
        raise NotImplementedError

    def quantile(self, p):
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"<{self.name} distribution>"


class ExtremeValue(Distribution):
    """Standard (minimum) extreme value: T is Weibull."""

    name = "weibull"
    label = "Weibull"

    def log_cdf(self, z):
        return np.log(-np.expm1(-np.exp(z)))

    def log_sf(self, z):
        return -np.exp(z)

    def log_pdf(self, z):
        return z - np.exp(z)

    def d_log_pdf(self, z):
        return 1.0 - np.exp(z)

    def d2_log_pdf(self, z):
        return -np.exp(z)

    def quantile(self, p):
        return np.log(-np.log1p(-p))


_HALF_LOG_2PI = 0.5 * np.log(2 * np.pi)


class Normal(Distribution):
    """Standard normal: T is log-normal."""

    name = "lognormal"
    label = "log-normal"
    symmetric = True

    def log_cdf(self, z):
        return special.log_ndtr(z)

    def log_sf(self, z):
        return special.log_ndtr(-z)

    def log_pdf(self, z):
        return -0.5 * z**2 - _HALF_LOG_2PI

    def d_log_pdf(self, z):
        return -z

    def d2_log_pdf(self, z):
        return np.full_like(z, -1.0)

    def quantile(self, p):
        return stats.norm.ppf(p)


class Logistic(Distribution):
    """Standard logistic: T is log-logistic."""

    name = "loglogistic"
    label = "log-logistic"
    symmetric = True

    def log_cdf(self, z):
        return -np.logaddexp(0.0, -z)

    def log_sf(self, z):
        return -np.logaddexp(0.0, z)

    def log_pdf(self, z):
        return z - 2 * np.logaddexp(0.0, z)

    def d_log_pdf(self, z):
        return 1.0 - 2.0 * special.expit(z)

    def d2_log_pdf(self, z):
        p = special.expit(z)
        return -2.0 * p * (1.0 - p)

    def quantile(self, p):
        return np.log(p / (1 - p))


#: The laws of log T's error by the name a user gives (``dist=``).
DISTRIBUTIONS: dict[str, Distribution] = {d.name: d for d in (ExtremeValue(), Normal(), Logistic())}


def kind_rows(kind) -> tuple:
    """The rows of each kind that carries information (right-, left-, interval-censored,
    exact), as :func:`row_terms` picks them: a boolean mask per kind, None for a kind with
    no rows (kind 4, (0, inf), carries none)."""
    return tuple(rows if rows.any() else None for rows in (kind == k for k in range(4)))


def row_terms(dist: Distribution, eta, log_sigma, log_l, log_u, kind, second=False):
    """Per row: log-likelihood, its derivatives in (eta, log sigma) and, with ``second``,
    the second derivatives (eta-eta, eta-log sigma, log sigma-log sigma).

    ``kind`` is each row's kind (0 right-, 1 left-, 2 interval-censored, 3 exact, 4 no
    information) or, precomputed, :func:`kind_rows` of it (slices when the rows are sorted
    by kind). Each row's term is a function g of z_l and/or z_u, z = (log t - eta) / sigma,
    so dz/deta = -1/sigma, dz/dls = -z, d2z/deta dls = 1/sigma, d2z/dls2 = z.
    """
    sigma = np.exp(log_sigma)
    n = len(eta)
    ll = np.zeros(n)
    # g_k, g_kk for the lower (l) and upper (u) end, and the cross term g_lu
    gl, gu, gll, guu, glu = (np.zeros(n) for _ in range(5))
    zl = np.where(np.isfinite(log_l), (log_l - eta) / sigma, 0.0)
    zu = np.where(np.isfinite(log_u), (log_u - eta) / sigma, 0.0)

    right, left, interval, exact = kind_rows(kind) if isinstance(kind, np.ndarray) else kind
    if right is not None:
        # right-censored: log S(z_l); g' = -h, g'' = -h (psi + h), h = f / S
        z = zl[right]
        ll[right] = log_s = dist.log_sf(z)
        hazard = np.exp(dist.log_pdf(z) - log_s)
        gl[right] = -hazard
        gll[right] = -hazard * (dist.d_log_pdf(z) + hazard)
    if left is not None:
        # left-censored: log F(z_u); g' = r, g'' = r (psi - r), r = f / F
        z = zu[left]
        ll[left] = log_f = dist.log_cdf(z)
        ratio = np.exp(dist.log_pdf(z) - log_f)
        gu[left] = ratio
        guu[left] = ratio * (dist.d_log_pdf(z) - ratio)
    if interval is not None:
        _interval_terms(dist, zl[interval], zu[interval], interval, ll, gl, gu, gll, guu, glu)
    if exact is not None:
        # exact: log f(z) - log sigma - log t (z stored as z_u)
        z = zu[exact]
        ll[exact] = dist.log_pdf(z) - log_sigma - log_u[exact]
        gu[exact] = dist.d_log_pdf(z)
        guu[exact] = dist.d2_log_pdf(z)

    g_sum, gl_zl, gu_zu = gl + gu, gl * zl, gu * zu
    d_eta = -g_sum / sigma
    d_ls = -(gl_zl + gu_zu)
    if exact is not None:
        d_ls[exact] -= 1.0
    if not second:
        return ll, d_eta, d_ls
    h_ee = (gll + 2 * glu + guu) / sigma**2
    h_es = (gll * zl + glu * (zl + zu) + guu * zu) / sigma + g_sum / sigma
    h_ss = gll * zl**2 + 2 * glu * zl * zu + guu * zu**2 + gl_zl + gu_zu
    return ll, d_eta, d_ls, h_ee, h_es, h_ss


def _interval_terms(dist, a, b, rows, ll, gl, gu, gll, guu, glu) -> None:
    """Fill the interval-censored ``rows`` of :func:`row_terms`' arrays: log(F(b) - F(a)),
    from whichever tail is more accurate, and its derivatives in the ends a and b."""
    upper_tail = a > 0   # both ends above the centre: from the survival function
    if dist.symmetric:  # S(a) - S(b) = F(-a) - F(-b): one formula, on reflected ends
        lower, upper = np.where(upper_tail, -b, a), np.where(upper_tail, -a, b)
        log_upper = dist.log_cdf(upper)
        log_mass = log_upper + np.log(-np.expm1(np.minimum(dist.log_cdf(lower) - log_upper,
                                                           -1e-300)))
    else:
        log_mass = np.empty(len(a))
        lower_tail = ~upper_tail
        at, bt = a[upper_tail], b[upper_tail]
        log_at = dist.log_sf(at)
        log_mass[upper_tail] = log_at + np.log(-np.expm1(np.minimum(dist.log_sf(bt) - log_at,
                                                                    -1e-300)))
        at, bt = a[lower_tail], b[lower_tail]
        log_bt = dist.log_cdf(bt)
        log_mass[lower_tail] = log_bt + np.log(-np.expm1(np.minimum(dist.log_cdf(at) - log_bt,
                                                                     -1e-300)))
    ll[rows] = log_mass
    fa = np.exp(dist.log_pdf(a) - log_mass)
    fb = np.exp(dist.log_pdf(b) - log_mass)
    gl[rows], gu[rows] = -fa, fb
    gll[rows] = -fa * dist.d_log_pdf(a) - fa**2
    guu[rows] = fb * dist.d_log_pdf(b) - fb**2
    glu[rows] = fa * fb


# ------------------------------------------------------------ compact rows --

def distinct_matrix_rows(X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """:func:`distinct_rows` of a matrix's columns, from one hash: rows are grouped by
    their product with a fixed random vector, and the grouping is kept only when every
    row equals its group's first row (else the columns are hashed one by one)."""
    if X.shape[1] == 0:
        return distinct_rows(np.zeros(len(X)))
    with np.errstate(invalid="ignore"):  # inf - inf: such rows fail the check below
        projection = X @ np.random.default_rng(0).uniform(1.0, 2.0, X.shape[1])
    codes, first = first_appearance(pd.factorize(projection, use_na_sentinel=False)[0])
    if np.array_equal(X, X[first][codes]):
        return codes, first
    return distinct_rows(*X.T)


class Patterns(NamedTuple):
    """The distinct rows of a design matrix X: ``rows`` (k x p), each row of X's ``codes``
    into them, and how many rows of X each holds (``counts``)."""

    rows: np.ndarray
    codes: np.ndarray
    counts: np.ndarray

    @classmethod
    def of(cls, X: np.ndarray) -> Patterns:
        codes, first = distinct_matrix_rows(X)
        return cls(X[first], codes, np.bincount(codes, minlength=len(first)))

    def gram_rows(self) -> np.ndarray:
        """k rows with X's Gram matrix (sqrt(count) times each pattern): a rank or QR check
        on them is one on X, without reading X's n rows."""
        return self.rows * np.sqrt(self.counts)[:, None]


class Compact(NamedTuple):
    """The rows of an :class:`IntervalLikelihood` with the same design row and ends merged,
    sorted by kind: the design rows (``X``, distinct) and each row's ``pattern`` in them,
    log l, log u, the summed weights, and each kind's rows as a slice (:func:`kind_rows`)."""

    X: np.ndarray
    pattern: np.ndarray
    log_l: np.ndarray
    log_u: np.ndarray
    w: np.ndarray
    kinds: tuple

    @classmethod
    def of(cls, patterns: Patterns, log_l, log_u, kind, weights, merge: bool = True) -> Compact:
        """The rows merged (``merge=False``: rows a caller has merged already, only sorted)."""
        if merge:
            ends = np.empty(len(log_l), dtype=np.complex128)  # (log l, log u) as one value
            ends.real, ends.imag = log_l, log_u                # (1j * inf would be nan + inf j)
            codes, first = distinct_rows(patterns.codes, ends)
        else:
            codes = first = np.arange(len(log_l))
        w = np.bincount(codes, weights=weights, minlength=len(first))
        order = np.argsort(kind[first], kind="stable")
        rows = first[order]
        starts = np.searchsorted(kind[rows], np.arange(5))
        kinds = tuple(slice(starts[k], starts[k + 1]) if starts[k + 1] > starts[k] else None
                      for k in range(4))
        return cls(patterns.rows, patterns.codes[rows], log_l[rows], log_u[rows], w[order], kinds)


class IntervalLikelihood:
    """The weighted log-likelihood of (l, u] rows under ``log T = X beta + sigma eps``, in
    theta = (beta, log sigma): value, per-row scores, gradient, per-row and total Hessian.

    ``patterns`` (:meth:`Patterns.of` X), when the caller has them, saves finding them
    again, and ``merge=False`` says the rows are merged already (the kinetics fit builds one
    likelihood per lag on rows it merged once).
    """

    def __init__(self, dist, X, lower, upper, weights, patterns: Patterns | None = None,
                 merge: bool = True):
        self.dist, self.X, self.w = dist, X, weights
        self._patterns, self._merge = patterns, merge
        with np.errstate(divide="ignore"):
            self.log_l = np.log(lower)
            self.log_u = np.log(upper)
        # kinds: 0 right-, 1 left-, 2 interval-censored, 3 exact, 4 (0, inf): no information
        # (the kinetics model makes these when a lag passes a right-censored row's lower end);
        # each assignment below overrides the ones before it.
        at_zero, unbounded = lower == 0, np.isinf(upper)
        kind = np.full(len(lower), 2)
        kind[at_zero] = 1
        kind[unbounded] = 0
        kind[at_zero & unbounded] = 4
        kind[lower == upper] = 3
        self.kind = kind

    @cached_property
    def patterns(self) -> Patterns:
        """The distinct rows of X (:class:`Patterns`)."""
        return self._patterns if self._patterns is not None else Patterns.of(self.X)

    @cached_property
    def compact(self) -> Compact:
        """The rows merged and sorted by kind (:class:`Compact`), which the fit reads."""
        return Compact.of(self.patterns, self.log_l, self.log_u, self.kind, self.w, self._merge)

    def terms(self, theta):
        beta, log_sigma = theta[:-1], theta[-1]
        # Far from the optimum (a trial step, an extreme lag) terms may overflow; the
        # resulting inf/NaN rejects the step instead of warning.
        with np.errstate(all="ignore"):
            return row_terms(self.dist, self.X @ beta, log_sigma, self.log_l, self.log_u,
                              self.kind)

    def value(self, theta) -> float:
        """The log-likelihood at theta (over the merged rows)."""
        rows = self.compact
        with np.errstate(all="ignore"):
            eta = (rows.X @ theta[:-1])[rows.pattern]
            ll = row_terms(self.dist, eta, theta[-1], rows.log_l, rows.log_u, rows.kinds)[0]
        return float(rows.w @ ll)

    def scores(self, theta) -> np.ndarray:
        """Per-row gradient in (beta, log sigma), rows x parameters."""
        _, d_eta, d_ls = self.terms(theta)
        return np.column_stack([self.X * d_eta[:, None], d_ls]) * self.w[:, None]

    def gradient(self, theta) -> np.ndarray:
        return self.derivatives(theta)[1]

    def row_hessians(self, theta) -> np.ndarray:
        """Per-row (weighted) Hessian in (beta, log sigma): rows x parameters x parameters.

        They sum to :meth:`hessian`; the bias-reduced cluster sandwich
        (:func:`cluster_sandwich`) needs each cluster's share.
        """
        *_, h_ee, h_es, h_ss = self.second_terms(theta)
        n, k = len(self.X), len(theta)
        out = np.empty((n, k, k))
        out[:, :-1, :-1] = np.einsum("i,ij,ik->ijk", self.w * h_ee, self.X, self.X)
        out[:, :-1, -1] = out[:, -1, :-1] = self.X * (self.w * h_es)[:, None]
        out[:, -1, -1] = self.w * h_ss
        return out

    def hessian(self, theta) -> np.ndarray:
        """Analytic Hessian in (beta, log sigma)."""
        return self.derivatives(theta)[2]

    def derivatives(self, theta) -> tuple[float, np.ndarray, np.ndarray]:
        """:meth:`value`, :meth:`gradient` and :meth:`hessian` at theta from one pass over
        the merged rows (what each Newton iterate needs).

        eta is computed per design row; the rows' derivatives in eta are summed per design
        row (``bincount``) before they meet X, so X's n rows are never read.
        """
        rows = self.compact
        X, pattern, w, k = rows.X, rows.pattern, rows.w, len(rows.X)
        # A trial step far from the optimum may give inf/NaN terms; Newton rejects it.
        with np.errstate(all="ignore"):
            ll, d_eta, d_ls, h_ee, h_es, h_ss = row_terms(
                self.dist, (X @ theta[:-1])[pattern], theta[-1], rows.log_l, rows.log_u,
                rows.kinds, second=True)
            gradient = np.empty(len(theta))
            gradient[:-1] = np.bincount(pattern, w * d_eta, k) @ X
            gradient[-1] = w @ d_ls
            hessian = np.empty((len(theta), len(theta)))
            hessian[:-1, :-1] = (X * np.bincount(pattern, w * h_ee, k)[:, None]).T @ X
            hessian[:-1, -1] = hessian[-1, :-1] = np.bincount(pattern, w * h_es, k) @ X
            hessian[-1, -1] = w @ h_ss
            return float(w @ ll), gradient, hessian

    def start(self) -> np.ndarray:
        """Where Newton starts: least squares of a log midpoint (:func:`log_midpoints`) on
        the covariates, over the merged rows weighted by their weights (through the design
        rows' p x p normal equations); the scale from the residuals."""
        rows, k = self.compact, len(self.compact.X)
        mid = log_midpoints(rows.log_l, rows.log_u)
        at_pattern = np.bincount(rows.pattern, rows.w, k)
        beta, *_ = np.linalg.lstsq((rows.X * at_pattern[:, None]).T @ rows.X,
                                   np.bincount(rows.pattern, rows.w * mid, k) @ rows.X,
                                   rcond=None)
        residual = mid - (rows.X @ beta)[rows.pattern]
        spread = np.sqrt((rows.w @ residual**2) / max(rows.w.sum(), 1e-300))
        return np.append(beta, np.log(max(spread, 0.1)))

    def second_terms(self, theta) -> tuple[np.ndarray, ...]:
        """:func:`row_terms` with the second derivatives, at theta."""
        beta, log_sigma = theta[:-1], theta[-1]
        with np.errstate(all="ignore"):
            return row_terms(self.dist, self.X @ beta, log_sigma, self.log_l, self.log_u,
                             self.kind, second=True)


# ------------------------------------------------------------------- newton --

def log_midpoints(log_l, log_u) -> np.ndarray:
    """A log time inside each (l, u]: the middle of log l and log u, half a unit past the
    finite end of a censored row (ends below 0.001 days are read as 0.001)."""
    floor = np.log(1e-3)
    with np.errstate(invalid="ignore"):
        return np.where(np.isinf(log_u), np.maximum(log_l, floor) + 0.5,
                        np.where(np.isneginf(log_l), np.maximum(log_u, floor) - 0.5,
                                 (np.maximum(log_l, floor) + log_u) / 2))


class NewtonResult(NamedTuple):
    """Where :func:`newton_maximum` stopped: theta, the log-likelihood, its gradient and
    Hessian there, the number of iterations, and whether it converged."""

    theta: np.ndarray
    value: float
    gradient: np.ndarray
    hessian: np.ndarray
    iterations: int
    converged: bool


def newton_maximum(likelihood, theta, tol, max_iter, *, gain_tol=None, warn=True,
                   stacklevel=3) -> NewtonResult:
    """Maximise ``likelihood`` (``derivatives``: value, gradient and Hessian in theta) from
    ``theta`` by Newton's method with step halving: theta, the log-likelihood, gradient and
    Hessian at the end, the iterations, and whether it converged (a step below ``tol``, or
    a small gradient); a ConvergenceWarning when it did not, unless ``warn=False``.

    Each iterate costs one pass over the rows (``likelihood.derivatives``): a trial
    step's gradient and Hessian are those of the next iterate when it is accepted.
    ``gain_tol`` also stops, before that pass, when the Newton step would raise the
    log-likelihood by less than it (half the Newton decrement, g'(-H)^-1 g / 2): what a
    caller wanting the maximum's value, not theta to ``tol``, needs (the lag's profile).
    """
    value, gradient, hessian = likelihood.derivatives(theta)
    for iteration in range(1, max_iter + 1):
        try:
            step = np.linalg.solve(-hessian, gradient)
        except np.linalg.LinAlgError:
            step = gradient * 1e-3
        if gradient @ step <= 0:  # not an ascent direction: fall back to the gradient
            step = gradient / max(1.0, np.abs(gradient).max())
        elif gain_tol is not None and gradient @ step / 2 < gain_tol:
            return NewtonResult(theta, value, gradient, hessian, iteration - 1, True)
        alpha = 1.0
        while alpha > 1e-10:
            trial = theta + alpha * step
            trial_value, trial_gradient, trial_hessian = likelihood.derivatives(trial)
            if np.isfinite(trial_value) and trial_value >= value - 1e-12 * abs(value):
                break
            alpha /= 2
        else:
            break  # no step along the Newton direction improves the likelihood
        theta, value, gradient, hessian = trial, trial_value, trial_gradient, trial_hessian
        if np.abs(alpha * step).max() < tol:
            return NewtonResult(theta, value, gradient, hessian, iteration, True)
    if np.abs(gradient).max() < 1e-6 * max(1.0, abs(value)):
        return NewtonResult(theta, value, gradient, hessian, iteration, True)
    if warn:
        warnings.warn(f"the {likelihood.dist.name} fit stopped after {iteration} Newton "
                      f"iterations with gradient norm {np.linalg.norm(gradient):.2e}; "
                      "simplify the formula or try another dist.", ConvergenceWarning,
                      stacklevel=stacklevel)
    return NewtonResult(theta, value, gradient, hessian, iteration, False)
