r"""The shared-frailty likelihood of interval-censored episodes, by adaptive Gauss–Hermite
quadrature.

The model
---------
Patient :math:`i`'s episodes :math:`j = 1, \dots, n_i` share a random effect:

.. math:: \log T_{ij} = x_{ij}'\beta + \tau u_i + \sigma\varepsilon_{ij}, \qquad
          u_i \sim N(0, 1),

so :math:`b_i = \tau u_i \sim N(0, \tau^2)` lengthens or shortens every episode of
patient :math:`i` by the same factor :math:`e^{b_i}`; :math:`\varepsilon` is one of the
laws of :mod:`regen.survival.likelihood`. Given :math:`u_i` the episodes are
independent, and each contributes the probability :math:`P_{ij}(u)` of its interval
(:func:`~regen.survival.likelihood.row_terms` with :math:`\eta = x'\beta + \tau u`). The
log-likelihood is

.. math:: \ell = \sum_i \log \int \prod_j P_{ij}(u)^{w_{ij}} \, \phi(u) \, du .

Writing the effect as :math:`\tau u` with a standard normal :math:`u` puts :math:`\tau`
in the linear predictor, not in the prior: :math:`\tau = 0` is an ordinary point where
:math:`\ell` is the model without frailty exactly, and :math:`\ell` is even in
:math:`\tau` (the fit reports :math:`|\tau|`).

Quadrature
----------
Each integrand :math:`g_i(u) = \sum_j w_{ij}\log P_{ij}(u) - u^2/2` is strictly concave
(the three laws are log-concave, so are their interval probabilities), so it has one
mode :math:`\hat u_i`, found by Newton's method for all patients at once, with curvature
:math:`\hat s_i^{-2} = -g_i''(\hat u_i)`. With the Gauss–Hermite nodes and weights
:math:`(x_k, \omega_k)`, :math:`k = 1..K`, the nodes :math:`u_{ik} = \hat u_i +
\sqrt 2 \hat s_i x_k` give

.. math:: L_i \approx \sqrt 2 \hat s_i \sum_k \omega_k e^{x_k^2}
          \prod_j P_{ij}(u_{ik})^{w_{ij}} \phi(u_{ik}),

exact for :math:`\tau = 0` and for a Gaussian integrand. The fit starts with
:data:`NODES` (7) nodes and doubles them until doing so moves the log-likelihood by less
than 1e-6 (``FrailtyFit.n_nodes`` says where it stopped; ``docs/frailty.md`` shows the
values). The gradient and Hessian are those of the quadrature formula with
the nodes held where they are: the posterior weights :math:`\pi_{ik}` of the nodes turn
the complete-data scores :math:`S_{ik}` and Hessians :math:`H_{ik}` (analytic, from
``row_terms``) into :math:`\nabla \ell_i = \sum_k \pi_{ik} S_{ik}` and Louis' identity
:math:`\nabla^2 \ell_i = \sum_k \pi_{ik}(H_{ik} + S_{ik}S_{ik}') - \nabla\ell_i
\nabla\ell_i'`. The nodes move with the parameters, so these differ from the
derivatives of the adapted formula by the quadrature error only.

=============================  =======================================
symbol                         attribute of :class:`regen.FrailtyFit`
=============================  =======================================
:math:`\beta`                  ``params`` (the coefficients)
:math:`\log\sigma`             ``params["log_scale"]``
:math:`\tau`                   ``frailty_sd`` (``params["frailty_sd"]``)
=============================  =======================================
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
from scipy import special

from regen.exceptions import ConvergenceWarning
from regen.survival.likelihood import IntervalLikelihood, row_terms

__all__ = ["NODES", "FrailtyLikelihood", "Posterior"]

#: Adaptive Gauss–Hermite nodes per patient.
NODES = 7
#: Newton steps of the modes stop when none moves by more than this (on the u scale).
MODE_TOL = 1e-10
_LOG_ROOT_2PI = 0.5 * np.log(2 * np.pi)


class Posterior:
    """Each patient's nodes ``u`` (patients x nodes) and their posterior weights ``weights``
    (rows sum to 1), with the patient's log-likelihood ``loglik``."""

    def __init__(self, u, weights, loglik):
        self.u, self.weights, self.loglik = u, weights, loglik

    @property
    def mean(self) -> np.ndarray:
        """E[u | the patient's episodes]."""
        return (self.weights * self.u).sum(axis=1)

    @property
    def variance(self) -> np.ndarray:
        """Var[u | the patient's episodes]."""
        return np.maximum((self.weights * self.u**2).sum(axis=1) - self.mean**2, 0.0)


class FrailtyLikelihood:
    """The shared-frailty log-likelihood of (l, u] rows grouped by patient, in theta =
    (beta, log sigma, tau): value, gradient, Hessian and per-patient scores.

    Parameters
    ----------
    dist : Distribution
    X : ndarray
        Covariates, rows x coefficients.
    lower, upper, weights : ndarray
        The rows' intervals and case weights.
    groups : array-like
        Each row's patient (any hashable ids).
    n_nodes : int, default :data:`NODES`
    """

    def __init__(self, dist, X, lower, upper, weights, groups, n_nodes: int = NODES):
        codes, self.groups = pd.factorize(pd.Series(np.asarray(groups, dtype=object)),
                                          sort=False)
        order = np.argsort(codes, kind="stable")
        self.order = order
        self.codes = codes[order]
        self.rows = IntervalLikelihood(dist, X[order], lower[order], upper[order],
                                       weights[order])
        self.dist, self.X, self.w = dist, self.rows.X, self.rows.w
        self.starts = np.flatnonzero(np.r_[True, self.codes[1:] != self.codes[:-1]])
        self.sizes = np.diff(np.r_[self.starts, len(self.codes)])
        self.n_nodes = n_nodes
        x, omega = np.polynomial.hermite.hermgauss(n_nodes)
        self.nodes, self.log_node_weights = x, np.log(omega) + x**2
        # The rows repeated once per node, in the order of (rows x nodes).ravel().
        self.log_l = np.repeat(self.rows.log_l, n_nodes)
        self.log_u = np.repeat(self.rows.log_u, n_nodes)
        self.kind = np.repeat(self.rows.kind, n_nodes)
        self._cache: tuple[bytes, dict] | None = None
        self._modes: np.ndarray | None = None

    @property
    def n_groups(self) -> int:
        return len(self.starts)

    def _sum(self, values):
        """Sum over each patient's rows (axis 0)."""
        return np.add.reduceat(values, self.starts, axis=0)

    # ------------------------------------------------------------- modes --
    def modes(self, theta) -> tuple[np.ndarray, np.ndarray]:
        """Each patient's posterior mode of u and the posterior's curvature scale s."""
        beta, log_sigma, tau = theta[:-2], theta[-2], theta[-1]
        eta = self.X @ beta
        # From the last modes found (the next parameters are close): fewer steps.
        u = np.zeros(self.n_groups) if self._modes is None else self._modes.copy()
        with np.errstate(all="ignore"):
            for _ in range(100):
                _, d_eta, _, h_ee, *_ = row_terms(self.dist, eta + tau * u[self.codes],
                                                  log_sigma, self.rows.log_l, self.rows.log_u,
                                                  self.rows.kind, second=True)
                slope = tau * self._sum(self.w * d_eta) - u
                curvature = tau**2 * self._sum(self.w * h_ee) - 1.0
                step = np.clip(-slope / np.minimum(curvature, -1.0), -3.0, 3.0)
                step = np.where(np.isfinite(step), step, 0.0)
                u = u + step
                if np.abs(step).max(initial=0.0) < MODE_TOL:
                    break
        self._modes = u
        return u, 1.0 / np.sqrt(np.maximum(-curvature, 1.0))

    # --------------------------------------------------------- evaluation --
    def posterior(self, theta) -> Posterior:
        """The adapted nodes of each patient and their posterior weights at theta."""
        return self.evaluate(theta)["posterior"]

    def evaluate(self, theta, nodes=None) -> dict:
        """``value``, ``gradient``, ``hessian``, per-patient ``unit_scores`` and the
        ``posterior`` at theta, with the nodes adapted there or, given ``nodes`` (``u_hat,
        s_hat`` from :meth:`modes`), held where those put them."""
        theta = np.asarray(theta, dtype="float64")
        key = theta.tobytes()
        if nodes is None and self._cache is not None and self._cache[0] == key:
            return self._cache[1]
        adapted = nodes is None
        u_hat, s_hat = self.modes(theta) if adapted else nodes
        beta, log_sigma, tau = theta[:-2], theta[-2], theta[-1]
        u = u_hat[:, None] + np.sqrt(2.0) * s_hat[:, None] * self.nodes[None, :]
        u_rows = u[self.codes]                                         # rows x nodes
        eta = (self.X @ beta)[:, None] + tau * u_rows
        with np.errstate(all="ignore"):
            terms = row_terms(self.dist, eta.ravel(), log_sigma, self.log_l, self.log_u,
                              self.kind, second=True)
        shape = eta.shape
        ll, d_eta, d_ls, h_ee, h_es, h_ss = (t.reshape(shape) for t in terms)
        # A node far out in a tail can give an episode probability 0 (its log -inf, or NaN
        # from two ends that both underflow): the node then carries no weight, and its
        # derivatives, multiplied by that weight, must not turn NaN.
        lost = ~np.isfinite(ll)
        if lost.any():
            ll = np.where(lost, -np.inf, ll)
            d_eta, d_ls, h_ee, h_es, h_ss = (np.where(lost, 0.0, t)
                                             for t in (d_eta, d_ls, h_ee, h_es, h_ss))
        log_f = (self._sum(self.w[:, None] * ll) - u**2 / 2 - _LOG_ROOT_2PI
                 + self.log_node_weights[None, :] + np.log(np.sqrt(2.0) * s_hat)[:, None])
        with np.errstate(invalid="ignore"):
            log_l = special.logsumexp(log_f, axis=1)
            weights = np.exp(log_f - log_l[:, None])
        value = float(log_l.sum())
        out = {"value": value if np.isfinite(value) else -np.inf, "nodes": (u_hat, s_hat),
               "posterior": Posterior(u, weights, log_l)}
        if np.isfinite(value):
            pw = weights[self.codes] * self.w[:, None]                 # rows x nodes
            k = len(theta)
            # complete-data scores per patient and node: patients x nodes x parameters
            scores = np.empty((self.n_groups, self.n_nodes, k))
            we = self.w[:, None] * d_eta
            for m in range(k - 2):
                scores[:, :, m] = self._sum(self.X[:, m, None] * we)
            scores[:, :, -2] = self._sum(self.w[:, None] * d_ls)
            scores[:, :, -1] = self._sum(we) * u
            unit = np.einsum("gk,gkm->gm", weights, scores)
            hessian = np.empty((k, k))
            a = (pw * h_ee).sum(axis=1)
            b = (pw * h_ee * u_rows).sum(axis=1)
            c = (pw * h_es).sum(axis=1)
            hessian[:-2, :-2] = (self.X * a[:, None]).T @ self.X
            hessian[:-2, -2] = hessian[-2, :-2] = self.X.T @ c
            hessian[:-2, -1] = hessian[-1, :-2] = self.X.T @ b
            hessian[-2, -2] = (pw * h_ss).sum()
            hessian[-2, -1] = hessian[-1, -2] = (pw * h_es * u_rows).sum()
            hessian[-1, -1] = (pw * h_ee * u_rows**2).sum()
            spread = np.einsum("gk,gkm,gkn->mn", weights, scores, scores) - unit.T @ unit
            out.update(unit_scores=unit, gradient=unit.sum(axis=0), hessian=hessian + spread)
        if adapted:
            self._cache = (key, out)
        return out

    def value(self, theta) -> float:
        """The log-likelihood, with the nodes adapted at theta."""
        return self.evaluate(theta)["value"]

    def gradient(self, theta) -> np.ndarray:
        return self.evaluate(theta)["gradient"]

    def hessian(self, theta) -> np.ndarray:
        return self.evaluate(theta)["hessian"]

    def scores(self, theta) -> np.ndarray:
        """Per-patient gradients, patients x parameters (in the order of ``groups``)."""
        return self.evaluate(theta)["unit_scores"]

    # ---------------------------------------------------------- maximising --
    def maximise(self, theta, tol: float, max_iter: int, free=None) -> tuple[np.ndarray, int]:
        """Newton's method over the parameters ``free`` (a mask; default all) from theta.

        Each iteration adapts the nodes at the current point; its Newton step (the
        derivatives are those of the formula with the nodes held there) is taken whole when
        the log-likelihood with the nodes adapted at the new point is higher, and otherwise
        shortened by a line search with the nodes held, on the very function the step is a
        Newton step of. It stops when no parameter moves by more than ``tol``; (theta,
        iterations), or a ConvergenceWarning.
        """
        theta = np.array(theta, dtype="float64")
        free = np.ones(len(theta), bool) if free is None else np.asarray(free, bool)
        for iteration in range(1, max_iter + 1):
            here = self.evaluate(theta)
            value, gradient = here["value"], here["gradient"][free]
            hessian = here["hessian"][np.ix_(free, free)]
            try:
                step = np.linalg.solve(-hessian, gradient)
            except np.linalg.LinAlgError:
                step = gradient * 1e-3
            if gradient @ step <= 0:   # not an ascent direction: along the gradient
                step = gradient / max(1.0, np.abs(gradient).max())
            # The full step, with the nodes adapted there (the next iteration starts from that
            # evaluation); if it does not improve, a line search with the nodes held.
            alpha = 1.0
            trial = theta.copy()
            trial[free] += step
            if not _improves(self.evaluate(trial)["value"], value):
                while True:
                    trial = theta.copy()
                    trial[free] += alpha * step
                    if _improves(self.evaluate(trial, here["nodes"])["value"], value):
                        break
                    alpha /= 2
                    if alpha < 1e-10:
                        return theta, iteration   # nothing along the step improves: a maximum
            theta = trial
            if np.abs(alpha * step).max() < tol:
                return theta, iteration
        gradient = self.evaluate(theta)["gradient"][free]
        if np.abs(gradient).max() >= 1e-6 * max(1.0, abs(self.value(theta))):
            warnings.warn(f"the {self.dist.name} frailty fit stopped after {max_iter} Newton "
                          f"iterations with gradient norm {np.linalg.norm(gradient):.2e}; "
                          "simplify the formula or try another dist.", ConvergenceWarning,
                          stacklevel=3)
        return theta, max_iter


def _improves(candidate: float, value: float) -> bool:
    """Whether a trial log-likelihood is finite and not below ``value`` (to rounding)."""
    return bool(np.isfinite(candidate) and candidate >= value - 1e-12 * abs(value))
