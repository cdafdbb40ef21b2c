r"""The interval-censored proportional-hazards likelihood and its maximiser.

The model
---------
:math:`S(t \mid x) = S_0(t)^{\exp(x'\beta)}` with :math:`S_0` a step function on
Turnbull's support intervals :math:`(q_j, p_j]`, :math:`j = 1, \dots, K` (the
places the data can put an event; :func:`regen.survival.npmle.support_intervals`).
Write :math:`\Lambda_j = -\log S_0` after interval :math:`j`, so
:math:`0 = \Lambda_0 \le \Lambda_1 \le \dots \le \Lambda_{K-1}` and
:math:`\Lambda_K = \infty` (no row starts after the last support interval, so the
maximum puts all the remaining mass on it). A row covering the run
:math:`a+1, \dots, b` of intervals contributes, with :math:`\eta = x'\beta`,
:math:`s = \log\Lambda_a + \eta` and :math:`t = \log\Lambda_b + \eta`,

.. math:: f(s, t) = \log\{\exp(-e^{s}) - \exp(-e^{t})\}

(right-censored, :math:`b = K`: :math:`f = -e^{s}`; left-censored, :math:`a = 0`:
:math:`f = \log\{1 - \exp(-e^{t})\}`; a row covering every interval says nothing).

Why the maximiser provably converges
------------------------------------
:math:`f` is the log-probability that a standard minimum-extreme-value variable
(whose density is log-concave) falls in :math:`(s, t]`, so by Prékopa's theorem it
is jointly concave in :math:`(s, t)`; :math:`s, t` are linear in
:math:`(\beta, u)` with :math:`u_j = \log\Lambda_j`. The log-likelihood is thus
concave in :math:`(\beta, u)`, and :math:`\Lambda` nondecreasing is the convex
set :math:`u_1 \le \dots \le u_{K-1}`. With :math:`z = (\beta, u_1, \delta)`,
:math:`\delta_k = u_k - u_{k-1} \ge 0`, it is a concave maximisation under simple
bounds, solved by Bertsekas' (1982) projected Newton method: the
:math:`\varepsilon`-active bounds (:math:`\delta_k \le \varepsilon` with the
gradient pushing outwards) take a projected gradient step, the rest a Newton
step, and an Armijo search along the projection arc accepts the move. Bertsekas
proves that every limit point is a maximum, and that the active set settles and
the steps become pure Newton steps (quadratic convergence). A Newton step in
:math:`z` with some :math:`\delta_k` fixed at 0 is a Newton step on the *groups*
of tied :math:`u` (a sparse system, as each row touches two of them), which is how
it is solved. The fit stops on the Karush–Kuhn–Tucker conditions: the Newton
decrement of the free coordinates below ``tol`` and every bound at 0 with a
gradient that pushes outwards (``kkt`` reports the largest violation).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
from scipy import sparse
from scipy.sparse.linalg import splu

from regen.exceptions import ConvergenceWarning, ModelError

__all__ = ["PHLikelihood", "Solution"]

#: Armijo's sufficient-increase fraction.
ARMIJO = 1e-4
#: The largest epsilon of the epsilon-active bounds (on log cumulative hazards). Any
#: positive value keeps the proof; at 1e-3 bounds the Newton step would clear were held
#: back, and 100,000 episodes took 12 iterations instead of 4.
EPSILON = 1e-6
#: A Newton decrement below this times |loglik| is lost in the log-likelihood's rounding.
ROUNDING = 1e-12


@dataclass
class Derivatives:
    """Value, gradient and Hessian of the log-likelihood at (beta, u)."""
    value: float
    g_u: np.ndarray            # (m,)
    g_beta: np.ndarray         # (p,)
    h_uu: sparse.csr_matrix    # (m, m)
    h_ub: np.ndarray           # (m, p)
    h_bb: np.ndarray           # (p, p)
    row_scores: tuple          # (w f_s, w f_t) per row, for efficient scores


@dataclass
class Solution:
    """A maximum: coefficients, log cumulative baseline hazards, value and how it was reached."""
    beta: np.ndarray
    u: np.ndarray
    loglik: float
    iterations: int
    kkt: float
    groups: np.ndarray         # group of each u (equal neighbours share one)


class PHLikelihood:
    """The log-likelihood of rows covering support intervals ``a+1..b`` with covariates ``X``.

    Parameters
    ----------
    a, b : int arrays
        Each row's run of support intervals, as indices into
        :math:`\\Lambda_0, \\dots, \\Lambda_K`: the row says
        :math:`\\Lambda_a < -\\log S_0(T) \\le \\Lambda_b`.
    X : (n, p) array
        Covariates (no intercept: the baseline holds it).
    w : (n,) array
        Case weights (rows with identical a, b and x may be collapsed into one).
    n_intervals : int
        K, the number of support intervals.
    """

    def __init__(self, a, b, X, w, n_intervals: int):
        informative = (a > 0) | (b < n_intervals)
        #: Which of the given rows the likelihood holds (a row covering every interval
        #: says nothing and is left out).
        self.informative = informative
        self.a = np.asarray(a)[informative]
        self.b = np.asarray(b)[informative]
        self.X = np.asarray(X, dtype="float64")[informative]
        self.w = np.asarray(w, dtype="float64")[informative]
        self.K = n_intervals
        self.m = n_intervals - 1
        self.p = self.X.shape[1]
        self.right = self.b == n_intervals
        self.left = self.a == 0

    # ------------------------------------------------------------ pieces --
    def _ends(self, beta, u):
        eta = self.X @ beta if self.p else np.zeros(len(self.a))
        full = np.concatenate([[-np.inf], u, [np.inf]])
        with np.errstate(over="ignore"):
            A = np.exp(full[self.a] + eta)
            B = np.exp(full[self.b] + eta)
        return A, B

    def value(self, beta, u) -> float:
        A, B = self._ends(beta, u)
        f = np.empty(len(A))
        r = self.right
        f[r] = -A[r]
        with np.errstate(divide="ignore", invalid="ignore"):   # a trial step out to inf: -inf
            D = B[~r] - A[~r]
            f[~r] = -A[~r] + np.log(-np.expm1(-D))
        return float(self.w @ f)

    def row_terms(self, beta, u) -> dict:
        """Each row's f and its first and second derivatives in s and t (unweighted)."""
        A, B = self._ends(beta, u)
        r = self.right
        n = len(A)
        f = np.empty(n)
        fs, ft, fss, ftt, fst = (np.zeros(n) for _ in range(5))
        f[r], fs[r], fss[r] = -A[r], -A[r], -A[r]
        a_, b_ = A[~r], B[~r]
        with np.errstate(invalid="ignore"):
            D = b_ - a_
        with np.errstate(over="ignore", divide="ignore", invalid="ignore"):
            g1 = 1.0 / np.expm1(D)
            f[~r] = -a_ + np.log(-np.expm1(-D))
        g2 = -g1 * (1.0 + g1)
        fs[~r] = -a_ * (1.0 + g1)
        ft[~r] = b_ * g1
        fss[~r] = fs[~r] + a_ * a_ * g2
        ftt[~r] = ft[~r] + b_ * b_ * g2
        fst[~r] = -a_ * b_ * g2
        return {"f": f, "s": fs, "t": ft, "ss": fss, "tt": ftt, "st": fst}

    def derivatives(self, beta, u) -> Derivatives:
        terms = self.row_terms(beta, u)
        f, fs, ft = terms["f"], terms["s"], terms["t"]
        fss, ftt, fst = terms["ss"], terms["tt"], terms["st"]
        n = len(f)
        w = self.w
        m = self.m
        ia, ib = self.a - 1, self.b - 1              # u indices (-1 or m: no parameter)
        has_a, has_b = ~self.left, ~self.right
        g_u = (np.bincount(ia[has_a], w[has_a] * fs[has_a], minlength=m)
               + np.bincount(ib[has_b], w[has_b] * ft[has_b], minlength=m))
        both = has_a & has_b
        rows = np.concatenate([ia[has_a], ib[has_b], ia[both], ib[both]])
        cols = np.concatenate([ia[has_a], ib[has_b], ib[both], ia[both]])
        vals = np.concatenate([(w * fss)[has_a], (w * ftt)[has_b], (w * fst)[both],
                               (w * fst)[both]])
        h_uu = sparse.csr_matrix((vals, (rows, cols)), shape=(m, m))
        index = np.arange(n)
        mixed = sparse.csr_matrix(
            (np.concatenate([(w * (fss + fst))[has_a], (w * (fst + ftt))[has_b]]),
             (np.concatenate([ia[has_a], ib[has_b]]),
              np.concatenate([index[has_a], index[has_b]]))), shape=(m, n))
        h_ub = np.asarray(mixed @ self.X) if self.p else np.zeros((m, 0))
        eta_weight = w * (fss + 2 * fst + ftt)
        h_bb = (self.X.T * eta_weight) @ self.X
        g_beta = self.X.T @ (w * (fs + ft))
        return Derivatives(float(w @ f), g_u, g_beta, h_uu, h_ub, h_bb, (w * fs, w * ft))

    # ------------------------------------------------------------ solve --
    def maximise(self, beta, u, *, fixed_beta: bool = False, tol: float = 1e-10,
                 max_iter: int = 200) -> Solution:
        """Bertsekas' projected Newton method from (beta, u) (u nondecreasing)."""
        beta = np.asarray(beta, dtype="float64").copy()
        u = np.maximum.accumulate(np.asarray(u, dtype="float64"))
        current = self.derivatives(beta, u)
        kkt = np.inf
        for iteration in range(1, max_iter + 1):
            step = self._direction(current, u, fixed_beta)
            at_bounds = not (np.diff(u)[step.active] > 0).any()
            if step.decrement < tol and at_bounds:
                return Solution(beta, u, current.value, iteration - 1, step.kkt, _ties(u))
            moved = self._search(beta, u, current, step, fixed_beta)
            if moved is None:     # no ascent left within rounding: numerically the maximum
                if step.decrement < ROUNDING * max(1.0, abs(current.value)):
                    return Solution(beta, u, current.value, iteration - 1, step.kkt, _ties(u))
                raise ModelError("the proportional-hazards fit found no step that raises the "
                                 f"likelihood (Newton decrement {step.decrement:.1e}): the "
                                 "information is nearly singular; fit fewer covariates")
            beta, u, current = moved
            kkt = step.kkt
        warnings.warn(f"the proportional-hazards fit stopped after {max_iter} iterations "
                      f"(largest KKT violation {kkt:.1e}); the estimates may be slightly off "
                      "the maximum. Raise max_iter.", ConvergenceWarning, stacklevel=4)
        step = self._direction(current, u, fixed_beta)
        return Solution(beta, u, current.value, max_iter, step.kkt, _ties(u))

    def _direction(self, d: Derivatives, u, fixed_beta: bool):
        delta = np.diff(u)
        g_delta = np.cumsum(d.g_u[::-1])[::-1][1:]      # gradient in delta_k = u_k - u_{k-1}
        projected = np.where(delta > 0, g_delta, np.maximum(g_delta, 0.0))
        kkt = float(max(np.abs(projected).max(initial=0.0), abs(d.g_u.sum()),
                        0.0 if fixed_beta else np.abs(d.g_beta).max(initial=0.0)))
        residual = np.abs(delta - np.maximum(delta + g_delta, 0.0)).max(initial=0.0)
        epsilon = min(EPSILON, residual)
        active = (delta <= epsilon) & (g_delta < 0)
        groups = np.concatenate([[0], np.cumsum(~active)])
        direction_v, decrement = self._newton(d, groups, fixed_beta)
        n_groups = groups[-1] + 1
        d_u = direction_v[:n_groups][groups]
        d_beta = np.zeros(self.p) if fixed_beta else direction_v[n_groups:]
        d_delta = np.diff(d_u)
        scale = np.abs(d.h_uu.diagonal()[1:]) + 1.0
        d_delta[active] = g_delta[active] / scale[active]
        return _Step(d_u[0], d_delta, d_beta, active, g_delta, decrement, kkt, groups)

    def _newton(self, d: Derivatives, groups, fixed_beta: bool):
        """The Newton direction in (group values, beta), from the sparse bordered system."""
        n_groups = groups[-1] + 1
        M = sparse.csr_matrix((np.ones(self.m), (np.arange(self.m), groups)),
                              shape=(self.m, n_groups))
        h_vv = (M.T @ d.h_uu @ M).tocsc()
        g = M.T @ d.g_u
        if fixed_beta or self.p == 0:
            system, gradient = -h_vv, g
        else:
            h_vb = sparse.csc_matrix(M.T @ d.h_ub)
            system = -sparse.bmat([[h_vv, h_vb], [h_vb.T, sparse.csc_matrix(d.h_bb)]],
                                  format="csc")
            gradient = np.concatenate([g, d.g_beta])
        solution = _solve(system, gradient)
        return solution, float(gradient @ solution)

    def _search(self, beta, u, current: Derivatives, step, fixed_beta: bool):
        delta = np.diff(u)
        alpha = 1.0
        g_u0 = current.g_u.sum()
        free = ~step.active
        while alpha > 1e-14:
            new_delta = np.maximum(delta + alpha * step.d_delta, 0.0)
            new_u = np.concatenate([[u[0] + alpha * step.d_u0], new_delta]).cumsum()
            new_beta = beta + alpha * step.d_beta
            promised = (alpha * (g_u0 * step.d_u0 + step.g_delta[free] @ step.d_delta[free]
                                 + (0.0 if fixed_beta else current.g_beta @ step.d_beta))
                        + step.g_delta[step.active] @ (new_delta - delta)[step.active])
            value = self.value(new_beta, new_u)
            if np.isfinite(value) and value - current.value >= ARMIJO * promised:
                return new_beta, new_u, self.derivatives(new_beta, new_u)
            alpha /= 2
        return None


def _ties(u: np.ndarray) -> np.ndarray:
    """The group of each log cumulative hazard at a maximum: equal neighbours (a support
    interval without mass) are one parameter."""
    return np.concatenate([[0], np.cumsum(np.diff(u) > 0)])


@dataclass
class _Step:
    d_u0: float
    d_delta: np.ndarray
    d_beta: np.ndarray
    active: np.ndarray
    g_delta: np.ndarray
    decrement: float
    kkt: float
    groups: np.ndarray


def _solve(system, gradient) -> np.ndarray:
    """Solve the (negative) Hessian system; a tiny ridge where it is singular (a flat
    direction of a concave function: any step along it is as good)."""
    ridge = 0.0
    size = system.shape[0]
    top = max(1.0, float(np.abs(system.diagonal()).max(initial=1.0)))
    for _ in range(8):
        try:
            matrix = system + ridge * sparse.identity(size, format="csc")
            solution = splu(matrix.tocsc()).solve(gradient)
            if np.isfinite(solution).all():
                return solution
        except RuntimeError:   # exactly singular
            pass
        ridge = top * 1e-12 if ridge == 0 else ridge * 100
    raise ModelError("the proportional-hazards model's information is singular: a covariate "
                     "the data cannot estimate (e.g. a group whose episodes are all censored)")


def information(lik: PHLikelihood, solution: Solution) -> np.ndarray:
    """The observed information (minus the Hessian) in (group values, beta) at a maximum,
    dense; tied log cumulative hazards (bounds at 0) count as one parameter."""
    d = lik.derivatives(solution.beta, solution.u)
    groups = solution.groups
    n_groups = groups[-1] + 1
    M = sparse.csr_matrix((np.ones(lik.m), (np.arange(lik.m), groups)), shape=(lik.m, n_groups))
    h_vv = (M.T @ d.h_uu @ M).toarray()
    h_vb = np.asarray(M.T @ d.h_ub)
    return -np.block([[h_vv, h_vb], [h_vb.T, d.h_bb]])
