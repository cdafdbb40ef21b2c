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

The per-group statistics are stored group last (``(q, q, G)``, ``(q, p, G)``), and
the :math:`q \times q` algebra of every group at once is written out entry by entry
(:func:`cholesky`, :func:`forward`, :func:`backward`): with :math:`q \le 4` each entry
is one vector operation over the groups, where a LAPACK call per 2 x 2 matrix cost 40-60
ms at 100,000 patients.
"""

from __future__ import annotations

import numpy as np

LOG_2PI = float(np.log(2 * np.pi))


class GroupStatistics:
    """Per-group cross products of ``Z`` with ``[Q, y]``, computed once, stored group last:
    ``ZtZ`` (q, q, G), ``ZtQ`` (q, p, G), ``Zty`` (q, G)."""

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
        self.ZtZ = np.stack([np.add.reduceat(Z * Z[:, [a]], self.starts, axis=0).T
                             for a in range(self.q)])                      # (q, q, G)
        self.ZtQ = np.stack([np.add.reduceat(Q * Z[:, [a]], self.starts, axis=0).T
                             for a in range(self.q)])                      # (q, p, G)
        self.Zty = np.add.reduceat(Z * y[:, None], self.starts, axis=0).T  # (q, G)


def lower_triangle(theta: np.ndarray, q: int) -> np.ndarray:
    """``Lambda`` from its lower-triangular entries, row by row."""
    out = np.zeros((q, q))
    out[np.tril_indices(q)] = theta
    return out


def diagonal_positions(q: int) -> np.ndarray:
    """Positions in theta of Lambda's diagonal (bounded below by 0)."""
    rows, cols = np.tril_indices(q)
    return np.flatnonzero(rows == cols)


# ------------------------------------------- every group's q x q algebra at once --

def cholesky(A: np.ndarray) -> np.ndarray | None:
    """Each group's lower Cholesky factor of ``A`` (q, q, G); None when one is not
    positive definite."""
    q = A.shape[0]
    L = np.zeros_like(A)
    for j in range(q):
        pivot = A[j, j] - np.sum(L[j, :j] ** 2, axis=0)
        if not np.all(pivot > 0):
            return None
        L[j, j] = np.sqrt(pivot)
        for i in range(j + 1, q):
            L[i, j] = (A[i, j] - np.sum(L[i, :j] * L[j, :j], axis=0)) / L[j, j]
    return L


def forward(L: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Each group's solution of L x = b, L (q, q, G) lower triangular, b (q, ..., G)."""
    x = np.empty(b.shape)
    for i in range(L.shape[0]):
        total = b[i] - sum(L[i, k] * x[k] for k in range(i)) if i else b[i]
        x[i] = total / L[i, i]
    return x


def backward(L: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Each group's solution of L' x = b (L as in :func:`forward`)."""
    q = L.shape[0]
    x = np.empty(b.shape)
    for i in reversed(range(q)):
        total = b[i] - sum(L[k, i] * x[k] for k in range(i + 1, q)) if i < q - 1 else b[i]
        x[i] = total / L[i, i]
    return x


def _times(M: np.ndarray, stack: np.ndarray) -> np.ndarray:
    """M (q, q) times each group's block of ``stack`` (q, ..., G): one matrix product."""
    return np.tensordot(M, stack, axes=(1, 0))


def _by(stack: np.ndarray, M: np.ndarray) -> np.ndarray:
    """Each group's block of ``stack`` (q, r, G) times M (r, s)."""
    return np.stack([sum(stack[:, k] * M[k, j] for k in range(M.shape[0]))
                     for j in range(M.shape[1])], axis=1)


def _each(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Each group's product of its blocks of ``a`` (q, r, G) and ``b`` (r, ..., G)."""
    return np.stack([sum(a[i, k] * b[k] for k in range(a.shape[1])) for i in range(len(a))])


def _total(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """The sum over the groups of a_g b_g' for ``a`` (q, ..., G) and ``b`` (r, ..., G)
    (q x r): one dot product per entry."""
    a, b = a.reshape(len(a), -1), b.reshape(len(b), -1)
    return a @ b.T


class Solution:
    """Everything the criterion computes at one theta, for the estimates afterwards:
    the fixed effects in Q's units, r^2, Q'V^-1 Q, Lambda, and each group's conditional
    mode in the scaled units (``u``, groups x q)."""

    __slots__ = ("beta_q", "r2", "QVQ", "Lambda", "u")


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
    A = _by(_times(Lambda.T, stats.ZtZ), Lambda)
    A[np.arange(q), np.arange(q)] += 1.0
    L = cholesky(A)
    if L is None:
        return failed
    C = forward(L, _times(Lambda.T, stats.ZtQ))                          # (q, p, G)
    d = forward(L, Lambda.T @ stats.Zty)                                 # (q, G)
    QVQ = np.eye(p) - sum(c @ c.T for c in C)
    QVy = stats.Qty - sum(c @ e for c, e in zip(C, d, strict=True))
    yVy = stats.yty - float(np.sum(d * d))
    log_det_V = 2.0 * float(np.sum(np.log(L[np.arange(q), np.arange(q)])))
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
    residual = stats.Zty - np.stack([beta_q @ block for block in stats.ZtQ])  # Z'(y - Q beta)
    if keep:
        sol = Solution()
        sol.beta_q, sol.r2, sol.QVQ, sol.Lambda = beta_q, r2, QVQ, Lambda
        # The conditional modes: u_g = A_g^-1 Lambda' Z_g'(y_g - Q beta).
        sol.u = backward(L, forward(L, Lambda.T @ residual)).T
        out += (sol,)
    if gradient:
        W = backward(L, forward(L, np.broadcast_to(Lambda.T[..., None], A.shape)))  # A^-1 L'
        K = -_each(_by(stats.ZtZ, Lambda), W)
        K[np.arange(q), np.arange(q)] += 1.0                             # I - Z'Z Lambda W
        a = _each(K, residual)
        G1 = sum(_total(K[:, k], stats.ZtZ[k]) for k in range(q))
        G2 = a @ a.T
        if reml:
            B = _each(K, stats.ZtQ)                                      # (q, p, G)
            inverse = np.linalg.inv(QVQ)
            G3 = _total(B, np.stack([inverse @ block for block in B]))
            G = G1 - G3 - (n - p) / r2 * G2
        else:
            G = G1 - n / r2 * G2
        G = 0.5 * (G + G.T)
        out += ((2.0 * G @ Lambda)[np.tril_indices(q)],)
    return out if len(out) > 1 else out[0]
