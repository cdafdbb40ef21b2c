r"""Shared frailty for repeated treatments: the AFT with a patient effect, and predictions
that learn from a patient's own earlier episodes.

:func:`regen.fit_recovery` with ``frailty="patient_id"`` fits

.. math:: \log T_{ij} = x_{ij}'\beta + b_i + \sigma\varepsilon_{ij}, \qquad
          b_i \sim N(0, \tau^2),

by maximum likelihood, integrating each patient's effect out by adaptive
Gauss–Hermite quadrature (:mod:`regen.survival.frailtylik`, which states the
formulas). :math:`e^{b_i}` multiplies every duration of patient :math:`i`: with
:math:`\tau = 0.4`, one patient in four has durations at least :math:`e^{0.67 \cdot
0.4} = 1.31` times the typical patient's, every time.

The fit
-------
The model without frailty (:math:`\tau = 0`) is fitted first; from it, with
:math:`\tau = \sigma/2`, Newton's method with the analytic (Louis) Hessian finds the
maximum. The node count starts at :data:`~regen.survival.frailtylik.NODES` and is
doubled (and the fit refined) until doubling it changes the log-likelihood by less
than :data:`QUADRATURE_TOL` (``n_nodes`` says where it stopped).

Inference on :math:`\tau`
-------------------------
:math:`\tau = 0` lies on the boundary of the parameter space, where Wald intervals
fail, so

- ``frailty_test``: the likelihood-ratio test of :math:`\tau = 0`, with the 50:50
  mixture of :math:`\chi^2_0` and :math:`\chi^2_1` as its null distribution (Self &
  Liang 1987): the p-value is half the :math:`\chi^2_1` one;
- ``frailty_ci``: the profile-likelihood interval
  :math:`\{\tau \ge 0 : 2(\hat\ell - \ell_p(\tau)) \le \chi^2_{1, 1-\alpha}\}`,
  which starts at 0 when the test does not reject;
- an estimate at 0 warns (``DataWarning``); the coefficients' covariance is then that
  of the model without frailty, which it equals there.

The coefficients' standard errors come from the inverse of the observed information
in :math:`(\beta, \log\sigma, \tau)`.

Predictions
-----------
Without a history, a profile's prediction is *marginal*: the law of the duration of a
new patient, :math:`S(t \mid x) = E_b\, S_\varepsilon((\log t - x'\beta - b)/\sigma)`,
with delta-method intervals for the parameters' uncertainty. With a ``history`` of the
patient's earlier episodes the prediction is the *patient's own*: their duration law
:math:`S_\varepsilon((\log t - x'\beta - b_i)/\sigma)` at the posterior mean of
:math:`b_i` given those (interval-censored) episodes, and its interval adds the
posterior variance of :math:`b_i` to the parameters' (delta-method) variance on the
log-time or :math:`z` scale.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
from scipy import stats

from regen.exceptions import DataWarning, ModelError
from regen.results import check_probabilities
from regen.serialize import stored_number, stored_numbers
from regen.survival.covariance import information_inverse
from regen.survival.frailtylik import NODES, FrailtyLikelihood
from regen.survival.likelihood import DISTRIBUTIONS
from regen.survival.npmle import check_intervals
from regen.survival.recoveryfit import RecoveryFit

__all__ = ["QUADRATURE_TOL", "FrailtyFit", "fit_frailty", "frailty_test", "jacobian",
           "marginal_log_quantile"]

#: The fit doubles the nodes until doubling them moves the log-likelihood by less than this.
QUADRATURE_TOL = 1e-6
#: The most nodes per patient the fit uses.
MAX_NODES = 112
#: Gauss–Hermite nodes of the marginal (population) predictions' integral over b.
MARGINAL_NODES = 40
#: Precision of the profile refits, of the frailty SD interval's ends (relative), and of the
#: profile log-likelihood at them.
PROFILE_TOL = 1e-5
PROFILE_XTOL = 1e-4
PROFILE_FTOL = 1e-2
#: A likelihood-ratio statistic below this puts the frailty SD on its bound 0.
BOUNDARY_LR = 1e-7


def fit_frailty(dist: str, X: np.ndarray, low: np.ndarray, up: np.ndarray, w: np.ndarray,
                groups: pd.Series, names: list[str], *, start: np.ndarray, loglik_without: float,
                tol: float, max_iter: int, alpha: float = 0.05) -> dict:
    """Maximum likelihood of the shared-frailty AFT from the fit without frailty (``start``,
    ``loglik_without``); the pieces of a :class:`FrailtyFit`."""
    counts = groups.value_counts()
    if (counts >= 2).sum() < 2:
        raise ModelError(f"frailty={groups.name!r} needs patients with two or more episodes (at "
                         f"least 2 such patients; found {int((counts >= 2).sum())}): with one "
                         "episode each, a patient's effect cannot be told from the episode's")
    law = DISTRIBUTIONS[dist]
    theta = np.append(start, 0.5 * np.exp(start[-1]))

    def at(n_nodes):
        return FrailtyLikelihood(law, X, low, up, w, groups.to_numpy(), n_nodes)

    # Fit, then double the nodes (and refit from there) until doubling changes nothing.
    n_nodes = NODES
    while True:
        likelihood = at(n_nodes)
        theta, iterations = likelihood.maximise(theta, tol, max_iter)
        value = likelihood.value(theta)
        more = _nodes_for(at, theta, n_nodes, value)
        if more == n_nodes:
            break
        n_nodes = more
    theta[-1] = abs(theta[-1])
    if 2 * (value - loglik_without) < BOUNDARY_LR:
        theta, value = np.append(start, 0.0), loglik_without
        warnings.warn(
            f"the frailty SD is estimated at 0, its lower bound: the episodes of one "
            f"{groups.name} are no more alike than those of different ones. The coefficients "
            "equal the fit without frailty; frailty_ci is the profile-likelihood interval.",
            DataWarning, stacklevel=3)
    index = [*names, "log_scale", "frailty_sd"]
    covariance = information_inverse(-likelihood.hessian(theta), theta, index)
    critical = float(stats.chi2.ppf(1 - alpha, 1))
    interval = _profile_interval(likelihood, theta, value, covariance, critical,
                                 loglik_without, tol, max_iter)
    return {"theta": theta, "index": index, "covariance": covariance, "loglik": value,
            "iterations": iterations, "n_nodes": n_nodes, "frailty_ci": interval,
            "frailty_test": frailty_test(value, loglik_without),
            "n_patients": int(len(counts))}


def frailty_test(loglik: float, loglik_without: float) -> dict:
    """The likelihood-ratio test of tau = 0: ``statistic, p_value, loglik_without_frailty``,
    the p-value from the 50:50 mixture of chi-square 0 and 1 (half the chi-square 1 one)."""
    statistic = max(2 * (loglik - loglik_without), 0.0)
    p_value = 1.0 if statistic == 0 else 0.5 * float(stats.chi2.sf(statistic, 1))
    return {"statistic": statistic, "p_value": p_value, "loglik_without_frailty": loglik_without}


def _nodes_for(at, theta, n_nodes: int, value: float) -> int:
    """The fewest nodes from ``n_nodes`` on (doubling) with which doubling them moves the
    log-likelihood at theta (``value`` with ``n_nodes``) by less than :data:`QUADRATURE_TOL`;
    :data:`MAX_NODES` with a warning when even those do not."""
    if 2 * n_nodes > MAX_NODES:   # already as many as the fit uses (and it said so)
        return n_nodes
    while 2 * n_nodes <= MAX_NODES:
        finer = at(2 * n_nodes).value(theta)
        moved = abs(finer - value)
        if moved < QUADRATURE_TOL:
            return n_nodes
        n_nodes, value = 2 * n_nodes, finer
    warnings.warn(
        f"the quadrature over the patients' effects is not exact to {QUADRATURE_TOL:g} even "
        f"with {n_nodes} nodes (the log-likelihood moved by {moved:.1e} when "
        "they were doubled): a patient effect far larger than the spread within a patient "
        "(frailty SD / scale) makes each patient's posterior very skewed, which the Weibull "
        "law does most. Try dist='lognormal' or 'loglogistic'.", DataWarning, stacklevel=4)
    return n_nodes


def _profile_interval(likelihood, theta, value, covariance, critical, loglik_without, tol,
                      max_iter) -> tuple[float, float]:
    """{tau >= 0 : 2 (value - l_p(tau)) <= critical}.

    Each end is a root of f(tau) = l_p(tau) - cut, found by Newton's method on f, whose
    slope is d l / d tau at the profile's maximiser (the envelope theorem), from the
    Wald end, kept within a bracket; each profile point is refitted from the last one.
    """
    tau_hat = theta[-1]
    cut = value - critical / 2
    se = np.sqrt(covariance[-1, -1])
    slope = covariance[:-1, -1] / covariance[-1, -1]  # the rest's regression on tau
    seen: dict[float, tuple[float, float]] = {}
    free = np.r_[np.ones(len(theta) - 1, bool), False]

    def profile(tau: float) -> tuple[float, float]:
        if tau not in seen:
            start = np.append(theta[:-1] + slope * (tau - tau_hat), tau)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                full, _ = likelihood.maximise(start, PROFILE_TOL, max_iter, free=free)
            seen[tau] = (likelihood.value(full) - cut, float(likelihood.gradient(full)[-1]))
        return seen[tau]

    def end(inside: float, outside: float, guess: float) -> float:
        """The root between ``inside`` (f > 0) and ``outside`` (f < 0)."""
        tau = guess
        for _ in range(50):
            f, slope_f = profile(tau)
            if abs(f) < PROFILE_FTOL:   # tau is then off by f / slope, under 1% of an SE
                return float(tau)
            if f > 0:
                inside = tau
            else:
                outside = tau
            proposal = tau - f / slope_f if slope_f != 0 else np.inf
            if not min(inside, outside) < proposal < max(inside, outside):
                proposal = (inside + outside) / 2
            if abs(proposal - tau) < PROFILE_XTOL * max(tau_hat, 1e-2):
                return float(proposal)
            tau = proposal
        return float(tau)

    # First guesses: the Wald ends on the log scale, where the profile is closer to quadratic.
    reach = np.sqrt(critical) * max(se, 1e-3) / max(tau_hat, 1e-3)
    lower = 0.0 if loglik_without >= cut else end(tau_hat, 0.0, tau_hat * np.exp(-reach))
    # From tau = 0 (an estimate on the bound) the log-scale end is 0 too: step on tau's scale.
    high = max(tau_hat * np.exp(reach), tau_hat + np.sqrt(critical) * se, 1e-3)
    guess = high
    for _ in range(60):
        if profile(high)[0] < 0:
            break
        high = 2 * high
    else:
        return lower, np.inf
    return lower, end(tau_hat, high, min(guess, high))


def marginal_log_quantile(law, mean: np.ndarray, sigma: float, tau: float, p: float
                          ) -> np.ndarray:
    """The p-quantile of ``mean + b + sigma eps`` over b ~ N(0, tau^2) and eps ~ ``law``,
    for each mean: bisection on the survival function, integrated over b by
    :data:`MARGINAL_NODES`-point Gauss–Hermite quadrature."""
    x, omega = np.polynomial.hermite.hermgauss(MARGINAL_NODES)
    shifts = np.sqrt(2.0) * tau * x
    weights = omega / np.sqrt(np.pi)
    centre = mean + sigma * law.quantile(p)
    low, high = centre - 12 * abs(tau) - 1.0, centre + 12 * abs(tau) + 1.0
    for _ in range(80):
        middle = (low + high) / 2
        z = (middle[:, None] - mean[:, None] - shifts[None, :]) / sigma
        above = np.exp(law.log_sf(z)) @ weights < 1 - p   # the quantile is below the middle
        high = np.where(above, middle, high)
        low = np.where(above, low, middle)
    return (low + high) / 2


def jacobian(function, theta) -> np.ndarray:
    """Central differences of ``function`` (an array) in each parameter of theta."""
    columns = []
    for k in range(len(theta)):
        h = 1e-6 * max(1.0, abs(theta[k]))
        step = np.zeros(len(theta))
        step[k] = h
        columns.append((function(theta + step) - function(theta - step)) / (2 * h))
    return np.column_stack(columns)


# ------------------------------------------------------------------ results --

class FrailtyFit(RecoveryFit, kind="FrailtyFit"):
    r"""Result of :func:`regen.fit_recovery` with ``frailty=``: the AFT with a patient effect.

    Attributes
    ----------
    params, bse : Series
        The coefficients (log-time scale), ``log_scale`` (:math:`\log\sigma`, the
        spread of one patient's episodes) and ``frailty_sd`` (:math:`\tau`, the SD of
        the patients' effects on log time).
    frailty : str
        The column of the patient ids.
    frailty_sd : float
        :math:`\tau`.
    frailty_ci : tuple of float
        Its profile-likelihood interval at the fit's level.
    frailty_test : dict
        ``statistic, p_value, loglik_without_frailty``: the likelihood-ratio test of
        :math:`\tau = 0` on the 50:50 mixture of :math:`\chi^2_0` and :math:`\chi^2_1`.
    n_nodes : int
        Adaptive Gauss–Hermite nodes per patient.
    n_patients : int
    """

    not_coefficients = ("log_scale", "frailty_sd")

    def __init__(self, *, frailty, frailty_ci, frailty_test, n_nodes, n_patients, **parts):
        super().__init__(cluster=None, **parts)
        self.frailty = frailty
        self.frailty_ci = tuple(float(v) for v in frailty_ci)
        self.frailty_test = dict(frailty_test)
        self.n_nodes = int(n_nodes)
        self.n_patients = int(n_patients)

    @property
    def frailty_sd(self) -> float:
        """tau, the SD of the patients' effects on log time."""
        return float(self.params["frailty_sd"])

    def _theta(self):
        return self.params.to_numpy()

    def conf_int(self, alpha: float = 0.05) -> pd.DataFrame:
        """Wald intervals, and the frailty SD's profile-likelihood interval (at the fit's
        level only)."""
        table = super().conf_int(alpha)
        if not np.isclose(alpha, self.alpha, rtol=0, atol=1e-12):
            raise ValueError(f"the frailty SD's profile-likelihood interval was computed at "
                             f"alpha={self.alpha:g}")
        table.loc["frailty_sd", ["ci_lower", "ci_upper"]] = self.frailty_ci
        return table

    def p_values(self) -> pd.Series:
        """Wald p-values; the frailty SD's is the likelihood-ratio test's (``frailty_test``)."""
        p = super().p_values()
        p["frailty_sd"] = self.frailty_test["p_value"]
        return p

    # ---------------------------------------------------------- predictions --
    def _law(self):
        return DISTRIBUTIONS[self.dist]

    def _split(self, theta):
        return theta[:-2], np.exp(theta[-2]), theta[-1]

    def _marginal_log_time(self, theta, X, p) -> np.ndarray:
        """log of the marginal p-quantile of T for each row of X."""
        beta, sigma, tau = self._split(theta)
        return marginal_log_quantile(self._law(), X @ beta, sigma, tau, p)

    def _marginal_log_sf(self, theta, X, t) -> np.ndarray:
        beta, sigma, tau = self._split(theta)
        x, omega = np.polynomial.hermite.hermgauss(MARGINAL_NODES)
        z = (np.log(t) - (X @ beta)[:, None] - np.sqrt(2.0) * tau * x[None, :]) / sigma
        return np.log(np.exp(self._law().log_sf(z)) @ (omega / np.sqrt(np.pi)))

    def _history(self, profiles, history, lower, upper):
        """Each profile's posterior (mean, variance of u, number of earlier episodes) as
        functions of theta, or None for profiles without a history."""
        if self.frailty not in profiles.columns:
            raise ValueError(f"with history=, each profile needs its {self.frailty!r} (the "
                             "patient whose earlier episodes are in history)")
        missing = [c for c in (self.frailty, lower, upper) if c not in history.columns]
        if missing:
            raise ValueError(f"history has no column {', '.join(map(repr, missing))}; it needs "
                             f"the patient's earlier episodes with {self.frailty}, {lower}, "
                             f"{upper} and the model's covariates")
        history = history.loc[history[self.frailty].isin(profiles[self.frailty])]
        if len(history):
            check_intervals(history[lower].to_numpy(dtype="float64"),
                            history[upper].to_numpy(dtype="float64"),
                            np.ones(len(history)), history.index)
        ids = profiles[self.frailty].to_numpy()
        counts = history[self.frailty].value_counts()
        episodes = np.array([int(counts.get(i, 0)) for i in ids])

        likelihood = None
        if len(history):   # built once: only the parameters change between calls
            likelihood = FrailtyLikelihood(
                self._law(), self.design.matrix(history), history[lower].to_numpy("float64"),
                history[upper].to_numpy("float64"), np.ones(len(history)),
                history[self.frailty].to_numpy(), max(self.n_nodes, NODES))
            where = {g: k for k, g in enumerate(likelihood.groups)}
            at = np.array([where.get(i, -1) for i in ids])
            known = at >= 0

        def moments(theta):
            """Posterior mean and variance of u for each profile (0 and 1: the prior)."""
            mean, variance = np.zeros(len(ids)), np.ones(len(ids))
            if likelihood is not None:
                posterior = likelihood.posterior(theta)
                mean[known] = posterior.mean[at[known]]
                variance[known] = posterior.variance[at[known]]
            return mean, variance

        return moments, episodes

    def predict_quantile(self, profiles: pd.DataFrame, q=(0.25, 0.5, 0.75), alpha: float = 0.05,
                         *, history: pd.DataFrame | None = None, lower: str = "lower",
                         upper: str = "upper") -> pd.DataFrame:
        """Quantiles of the time to the event for each profile, with CIs.

        Parameters
        ----------
        profiles : DataFrame
            One row per prediction: the model's covariates (and, with ``history``, the
            patient's id in the ``frailty`` column).
        q : sequence of float
        alpha : float, default 0.05
        history : DataFrame, optional
            Earlier episodes (``lower``, ``upper``, covariates, the ``frailty`` column).
            A profile whose patient has episodes there gets the patient's own quantile
            (``prediction`` "patient"), the others the marginal one ("marginal").

        Returns
        -------
        DataFrame
            The profile's columns, ``q, estimate, ci_lower, ci_upper`` (days),
            ``std_err_log``, ``prediction`` and ``history_episodes``.
        """
        X = self._design(profiles)
        q = check_probabilities(q)
        theta = self._theta()
        z = self.critical_value(alpha)
        covariance = self.covariance.to_numpy()
        moments, episodes = (None, np.zeros(len(X), int)) if history is None else \
            self._history(profiles, history, lower, upper)
        own = episodes > 0
        parts = []
        for p in q:
            eps = self._law().quantile(p)

            def log_time(th, p=p, eps=eps):
                out = self._marginal_log_time(th, X, p)
                if moments is not None and own.any():
                    beta, sigma, tau = self._split(th)
                    mean, _ = moments(th)
                    out = np.where(own, X @ beta + tau * mean + sigma * eps, out)
                return out

            estimate = log_time(theta)
            slopes = jacobian(log_time, theta)
            variance = np.einsum("ij,jk,ik->i", slopes, covariance, slopes)
            if moments is not None and own.any():
                variance = variance + np.where(own, theta[-1]**2 * moments(theta)[1], 0.0)
            se = np.sqrt(variance)
            parts.append(profiles.reset_index(drop=True).assign(
                q=p, estimate=np.exp(estimate), ci_lower=np.exp(estimate - z * se),
                ci_upper=np.exp(estimate + z * se), std_err_log=se,
                prediction=np.where(own, "patient", "marginal"), history_episodes=episodes))
        return pd.concat(parts, ignore_index=True)

    def predict_survival(self, profiles: pd.DataFrame, times, alpha: float = 0.05, *,
                         history: pd.DataFrame | None = None, lower: str = "lower",
                         upper: str = "upper") -> pd.DataFrame:
        """S(t | profile) at ``times`` with CIs: marginal, or the patient's own with a
        ``history`` (see :meth:`predict_quantile`).

        Returns
        -------
        DataFrame
            The profile's columns, ``time, estimate, ci_lower, ci_upper, prediction,
            history_episodes``.
        """
        X = self._design(profiles)
        theta = self._theta()
        crit = self.critical_value(alpha)
        covariance = self.covariance.to_numpy()
        law = self._law()
        moments, episodes = (None, np.zeros(len(X), int)) if history is None else \
            self._history(profiles, history, lower, upper)
        own = episodes > 0
        parts = []
        for t in np.atleast_1d(np.asarray(times, dtype="float64")):
            frame = profiles.reset_index(drop=True).assign(
                time=t, prediction=np.where(own, "patient", "marginal"),
                history_episodes=episodes)
            if t <= 0:
                parts.append(frame.assign(estimate=1.0, ci_lower=1.0, ci_upper=1.0))
                continue

            def z_scale(th, t=t):
                # the normal-scale equivalent: log(-log S) for the marginal, z for the own
                out = np.log(-self._marginal_log_sf(th, X, t))
                if moments is not None and own.any():
                    beta, sigma, tau = self._split(th)
                    mean, _ = moments(th)
                    own_z = (np.log(t) - X @ beta - tau * mean) / sigma
                    out = np.where(own, own_z, out)
                return out

            value = z_scale(theta)
            slopes = jacobian(z_scale, theta)
            variance = np.einsum("ij,jk,ik->i", slopes, covariance, slopes)
            if moments is not None and own.any():
                sigma, tau = np.exp(theta[-2]), theta[-1]
                variance = variance + np.where(own, (tau / sigma)**2 * moments(theta)[1], 0.0)
            se = np.sqrt(variance)
            marginal = np.exp(-np.exp(value + np.array([[0.0], [crit], [-crit]]) * se))
            patient = np.exp(law.log_sf(value + np.array([[0.0], [crit], [-crit]]) * se))
            survival = np.where(own, patient, marginal)
            parts.append(frame.assign(estimate=survival[0], ci_lower=survival[1],
                                      ci_upper=survival[2]))
        columns = [*profiles.columns, "time", "estimate", "ci_lower", "ci_upper", "prediction",
                   "history_episodes"]
        return pd.concat(parts, ignore_index=True)[columns]

    # --------------------------------------------------------------- saving --
    def document(self) -> dict:
        return {**super().document(), "frailty": self.frailty,
                "frailty_ci": [self.frailty_ci[0], self.frailty_ci[1]],
                "frailty_test": dict(self.frailty_test), "n_nodes": self.n_nodes,
                "n_patients": self.n_patients}

    trailing = ("log_scale", "frailty_sd")

    @classmethod
    def stored_parts(cls, document: dict) -> dict:
        parts = super().stored_parts({**document, "cluster": None, "n_clusters": None})
        del parts["cluster"], parts["n_clusters"]
        frailty = document["frailty"]
        if not isinstance(frailty, str):
            raise ValueError("frailty is not a column name")
        ci = stored_numbers(document, "frailty_ci", (2,), finite=False)
        if not (np.isfinite(ci[0]) and 0 <= ci[0] <= ci[1]) or np.isnan(ci[1]):
            raise ValueError("frailty_ci is not an interval of numbers >= 0")
        test = document["frailty_test"]
        if not isinstance(test, dict) or set(test) != {"statistic", "p_value",
                                                       "loglik_without_frailty"}:
            raise ValueError("frailty_test is not a likelihood-ratio test")
        return {**parts, "frailty": frailty, "frailty_ci": ci,
                "frailty_test": {key: stored_number(test, key) for key in test},
                "n_nodes": _count(document, "n_nodes", MAX_NODES),
                "n_patients": _count(document, "n_patients", 10**9)}

    def __repr__(self) -> str:
        return (f"<FrailtyFit {self.dist} {self.formula!r}: {self.n} episodes of "
                f"{self.n_patients} patients, frailty SD {self.frailty_sd:.3f}, "
                f"loglik {self.loglik:.3f}, AIC {self.aic:.1f}>")


def _count(document: dict, key: str, most: int) -> int:
    value = stored_number(document, key, positive=True)
    if value != int(value) or value > most:
        raise ValueError(f"{key} {value:g} is not a whole number from 1 to {most}")
    return int(value)
