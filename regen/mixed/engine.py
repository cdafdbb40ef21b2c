r"""The profiled (RE)ML criterion of a two-level linear mixed model, from per-group statistics.

The model, for group :math:`g` (a patient) with :math:`n_g` visits,

.. math::

    y_g = X_g\beta + Z_g b_g + \varepsilon_g,\qquad
    b_g \sim N(0, \sigma^2\Lambda\Lambda'),\quad \varepsilon_g \sim N(0, \sigma^2 I),

with :math:`\Lambda` lower triangular (:math:`q \times q`, :math:`q \le 4`) and
parameters :math:`\theta`, its non-zero entries. With
:math:`V_g = I + Z_g\Lambda\Lambda' Z_g'` and Woodbury,

.. math::

    A_g = \Lambda' Z_g'Z_g\Lambda + I = L_g L_g',\qquad
    \log|V_g| = 2\textstyle\sum\log\operatorname{diag} L_g,\qquad
    X'V^{-1}X = \sum_g X_g'X_g - C_g'C_g,\quad C_g = L_g^{-1}\Lambda' Z_g'X_g,

and likewise for :math:`X'V^{-1}y` and :math:`y'V^{-1}y`. Then
:math:`\hat\beta(\theta)` is generalised least squares,
:math:`r^2(\theta) = y'V^{-1}y - \hat\beta' X'V^{-1}y`, and :math:`\sigma^2` is
profiled out:

.. math::

    -2\ell_{ML}(\theta) = \log|V| + n\{1 + \log(2\pi r^2 / n)\},\qquad
    -2\ell_{REML}(\theta) = \log|V| + \log|X'V^{-1}X| + (n-p)\{1 + \log(2\pi r^2/(n-p))\},

exactly lme4's criteria (Bates et al. 2015, *J. Stat. Softw.* 67(1), eqs. 34 and 41).
Each evaluation is a handful of batched :math:`q \times q` operations over the
groups; nothing touches the :math:`n` rows again. :math:`X` enters through its QR
factor (:math:`X = QR`, :math:`\log|X'V^{-1}X| = \log|Q'V^{-1}Q| + 2\log|\det R|`)
so that badly scaled fixed effects cannot spoil the solve, and the optimiser sees
:math:`Z` with each column centred and scaled (:math:`\tilde Z = ZT`), which the
model is invariant to, so days and years give the same fit.
"""

from __future__ import annotations

import numpy as np

LOG_2PI = float(np.log(2 * np.pi))


class GroupStatistics:
    """Per-group cross products of ``Z`` with ``[Q, y]``, computed once."""

    def __init__(self, y: np.ndarray, X: np.ndarray, Z: np.ndarray, codes: np.ndarray):
        order = np.argsort(codes, kind="stable")
        codes = codes[order]
        y, X, Z = y[order], X[order], Z[order]
        self.n, self.p = X.shape
        self.q = Z.shape[1]
        self.starts = np.flatnonzero(np.r_[True, codes[1:] != codes[:-1]])
        Q, R = np.linalg.qr(X)
        self.R = R
        self.log_det_R2 = 2.0 * float(np.sum(np.log(np.abs(np.diag(R)))))
        self.Qty = Q.T @ y
        self.yty = float(y @ y)
        self.ZtZ = np.stack([np.add.reduceat(Z * Z[:, [a]], self.starts, axis=0)
                             for a in range(self.q)], axis=1)              # (G, q, q)
        self.ZtQ = np.stack([np.add.reduceat(Q * Z[:, [a]], self.starts, axis=0)
                             for a in range(self.q)], axis=1)              # (G, q, p)
        self.Zty = np.add.reduceat(Z * y[:, None], self.starts, axis=0)    # (G, q)


def lower_triangle(theta: np.ndarray, q: int) -> np.ndarray:
    """``Lambda`` from its lower-triangular entries, row by row."""
    out = np.zeros((q, q))
    out[np.tril_indices(q)] = theta
    return out


def diagonal_positions(q: int) -> np.ndarray:
    """Positions in theta of Lambda's diagonal (bounded below by 0)."""
    rows, cols = np.tril_indices(q)
    return np.flatnonzero(rows == cols)


class Solution:
    """Everything the criterion computes at one theta, for the estimates afterwards."""

    __slots__ = ("beta_q", "r2", "QVQ", "L", "Lambda", "u_rhs")


def evaluate(stats: GroupStatistics, theta: np.ndarray, reml: bool, keep: bool = False,
             gradient: bool = False):
    r"""-2 log-likelihood at theta, profiled over beta and sigma.

    With ``gradient`` also its gradient in theta; with ``keep`` also a
    :class:`Solution`. The gradient uses :math:`K_g = (I + Z_g'Z_g\Psi)^{-1}`,
    :math:`\Psi = \Lambda\Lambda'`:
    :math:`\partial(-2\ell)/\partial\Psi = \sum_g K_g Z_g'Z_g
    - \sum_g B_g (Q'V^{-1}Q)^{-1} B_g' - \frac{n-p}{r^2}\sum_g a_g a_g'` (REML; ML
    drops the middle term and has :math:`n`), with :math:`B_g = K_g Z_g'Q`,
    :math:`a_g = K_g Z_g'(y_g - Q\hat\beta)`, and
    :math:`\partial/\partial\Lambda = 2 (\partial/\partial\Psi)\Lambda`.
    """
    failed = (np.inf,) + ((None,) if keep else ()) + ((None,) if gradient else ())
    failed = failed if len(failed) > 1 else np.inf
    q, n, p = stats.q, stats.n, stats.p
    Lambda = lower_triangle(theta, q)
    A = Lambda.T @ stats.ZtZ @ Lambda + np.eye(q)
    try:
        L = np.linalg.cholesky(A)
    except np.linalg.LinAlgError:
        return failed
    L_inv = np.linalg.inv(L)
    C = L_inv @ (Lambda.T @ stats.ZtQ)
    d = (L_inv @ (stats.Zty @ Lambda)[..., None])[..., 0]
    QVQ = np.eye(p) - np.tensordot(C, C, axes=([0, 1], [0, 1]))
    QVy = stats.Qty - np.tensordot(C, d, axes=([0, 1], [0, 1]))
    yVy = stats.yty - float(np.sum(d * d))
    log_det_V = 2.0 * float(np.sum(np.log(np.diagonal(L, axis1=1, axis2=2))))
    try:
        chol = np.linalg.cholesky(QVQ)
    except np.linalg.LinAlgError:
        return failed
    beta_q = np.linalg.solve(chol.T, np.linalg.solve(chol, QVy))
    r2 = yVy - float(beta_q @ QVy)
    if not r2 > 0:
        return failed
    if reml:
        deviance = (log_det_V + 2.0 * float(np.sum(np.log(np.diag(chol)))) + stats.log_det_R2
                    + (n - p) * (1.0 + LOG_2PI + np.log(r2 / (n - p))))
    else:
        deviance = log_det_V + n * (1.0 + LOG_2PI + np.log(r2 / n))
    out: tuple = (deviance,)
    if keep:
        sol = Solution()
        sol.beta_q, sol.r2, sol.QVQ, sol.L, sol.Lambda = beta_q, r2, QVQ, L, Lambda
        # Right-hand side of the conditional modes: u_g = A_g^-1 Lambda' Z_g'(y_g - X_g beta).
        sol.u_rhs = (stats.Zty - stats.ZtQ @ beta_q) @ Lambda
        out += (sol,)
    if gradient:
        W = np.swapaxes(L_inv, 1, 2) @ (L_inv @ Lambda.T)                  # A^-1 Lambda'
        K = np.eye(q) - stats.ZtZ @ Lambda @ W                               # (G, q, q)
        a = (K @ (stats.Zty - stats.ZtQ @ beta_q)[..., None])[..., 0]
        G1 = (K @ stats.ZtZ).sum(axis=0)
        G2 = a.T @ a
        if reml:
            B = K @ stats.ZtQ
            G3 = np.tensordot(B @ np.linalg.inv(QVQ), B, axes=([0, 2], [0, 2]))
            G = G1 - G3 - (n - p) / r2 * G2
        else:
            G = G1 - n / r2 * G2
        G = 0.5 * (G + G.T)
        out += ((2.0 * G @ Lambda)[np.tril_indices(q)],)
    return out if len(out) > 1 else out[0]
