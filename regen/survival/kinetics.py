"""The machinery of the regeneration kinetics fit (:mod:`regen.survival.regeneration`).

:class:`Kinetics` is the model's likelihood for a given lag (an AFT of the regrowth time
per mm, ``(T - lag) / distance``, through :mod:`regen.survival.likelihood`) and jointly in
(beta, log sigma, lag); :class:`LagProfile` profiles the lag out and gives its estimate and
profile-likelihood interval; :func:`kinetics_covariance` the model-based or cluster-robust
covariance, the lag's included when the joint information allows; :class:`Refit` and
:func:`simex` refit with perturbed distances for the distance-error sensitivity.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pandas as pd
from scipy import optimize

from regen._util import distinct_rows
from regen.exceptions import ConvergenceWarning, ModelError
from regen.serialize import stored_number, stored_numbers
from regen.survival.covariance import cluster_sandwich, information_inverse
from regen.survival.frailty import fit_frailty, frailty_test
from regen.survival.frailtylik import NODES, FrailtyLikelihood
from regen.survival.likelihood import (
    DISTRIBUTIONS,
    IntervalLikelihood,
    Patterns,
    newton_maximum,
)

__all__ = ["FAILED_FREEZE", "SIMEX_LEVELS", "Kinetics", "LagProfile", "Refit", "frailty_at_lag",
           "kinetics_covariance", "known_dist", "simex", "stored_failed_freeze", "stored_frailty",
           "stored_level", "stored_profile_table"]

#: Ways of treating episodes that recovered before the minimum regrowth time.
FAILED_FREEZE = ("exclude", "keep")
#: The profile's fits stop when a Newton step would raise the log-likelihood by less than this
#: (the search and the interval read values; the fit at the estimate converges in theta).
GAIN_TOL = 1e-9
#: SIMEX: the extra measurement-error variances added, as multiples λ of the assumed one.
SIMEX_LEVELS = (0.5, 1.0, 1.5, 2.0)


class Kinetics:
    """The likelihood in (beta, log sigma) for a given lag; with ``groups`` (each row's
    patient), in (beta, log sigma, tau) with a shared patient effect on log velocity."""

    def __init__(self, X, low, up, distance, weights, dist="lognormal", groups=None):
        self.X, self.low, self.up, self.d, self.w = X, low, up, distance, weights
        self.dist = DISTRIBUTIONS[dist]
        self.groups = groups
        #: Nodes of the frailty quadrature (fixed once the final fit has chosen them).
        self.n_nodes = NODES
        self.exact = low == up
        self.jacobian = float(weights[self.exact] @ np.log(distance[self.exact]))
        finite = np.isfinite(up)
        self.lag_max = float(up[finite].min()) if finite.any() else np.inf
        self._merged: tuple | None = None

    def intervals(self, lag: float, rows=slice(None)) -> tuple[np.ndarray, np.ndarray]:
        """The episodes (or these ``rows`` of them) as intervals of Y = (T - lag) / d."""
        low, up, d = self.low[rows], self.up[rows], self.d[rows]
        y_low = np.where(self.exact[rows], (low - lag) / d, np.maximum(low - lag, 0.0) / d)
        return y_low, (up - lag) / d

    def aft(self, lag: float) -> IntervalLikelihood:
        """The likelihood at this lag, row by row (per-row scores and Hessians)."""
        return IntervalLikelihood(self.dist, -self.X, *self.intervals(lag), self.w)

    def merged(self, lag: float) -> IntervalLikelihood:
        """The likelihood at this lag over the merged rows, which the lag's profile reads.

        Episodes with the same covariates, interval and distance have the same interval of
        Y at every lag: they are merged once (weights summed), and each lag's likelihood
        starts from them, its covariates' distinct rows known (distances are whole mm in
        practice, so visit data repeat).
        """
        if self._merged is None:
            patterns = Patterns.of(-self.X)
            codes, first = distinct_rows(patterns.codes, self.low, self.up, self.d)
            counts = np.bincount(patterns.codes[first], minlength=len(patterns.rows))
            self._merged = (first, np.bincount(codes, self.w, len(first)),
                            Patterns(patterns.rows, patterns.codes[first], counts))
        first, weights, patterns = self._merged
        return IntervalLikelihood(self.dist, patterns.rows[patterns.codes],
                                  *self.intervals(lag, first), weights, patterns, merge=False)

    def frailty(self, lag: float) -> FrailtyLikelihood:
        """The shared-frailty likelihood of the regrowth times per mm at this lag."""
        return FrailtyLikelihood(self.dist, -self.X, *self.intervals(lag), self.w, self.groups,
                                 self.n_nodes)

    def profile(self, lag: float, start: np.ndarray | None = None, *, gain_tol: float | None = None
                ) -> tuple[float, np.ndarray]:
        """max over (beta, log sigma[, tau]) of the log-likelihood at this lag, and the
        maximiser.

        Newton starts from ``start`` when given (:meth:`LagProfile.start`, from the maximisers
        at nearby lags: a few steps; with ``groups`` its last entry, tau, is left out), and
        from the least-squares start without it or when that fails to converge to a finite
        maximum; both reach the same maximum. ``gain_tol`` stops Newton once a step would
        gain less (:func:`newton_maximum`): the lag's profile needs the value, not theta.
        """
        likelihood = self.merged(lag)
        found = None
        if start is not None:
            found = newton_maximum(likelihood, start[:-1] if self.groups is not None else start,
                                   1e-9, 100, gain_tol=gain_tol, warn=False)
            if not (found.converged and np.isfinite(found.value)):
                found = None
        if found is None:
            found = newton_maximum(likelihood, likelihood.start(), 1e-9, 100, gain_tol=gain_tol)
        theta = found.theta
        if self.groups is None:
            return found.value - self.jacobian, theta
        frailty = self.frailty(lag)
        theta, _ = frailty.maximise(np.append(theta, 0.5 * np.exp(theta[-1])), 1e-9, 100)
        theta[-1] = abs(theta[-1])
        return frailty.value(theta) - self.jacobian, theta

    def frailty_information(self, params: np.ndarray) -> np.ndarray:
        """The observed information in (beta, log sigma, tau, lag) of the frailty model:
        analytic in the first three, central differences in the lag (as joint_rows)."""
        theta, lag = params[:-1], float(params[-1])
        h = min(1e-3 * max(1.0, lag), (self.lag_max - lag) / 2)
        here, up, down = self.frailty(lag), self.frailty(lag + h), self.frailty(lag - h)
        k = len(params)
        hessian = np.empty((k, k))
        hessian[:-1, :-1] = here.hessian(theta)
        hessian[:-1, -1] = hessian[-1, :-1] = (up.gradient(theta) - down.gradient(theta)) / (2 * h)
        hessian[-1, -1] = (up.value(theta) - 2 * here.value(theta) + down.value(theta)) / h**2
        return -hessian

    def joint_rows(self, params: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Per-row scores and Hessians in (beta, log sigma, lag).

        Analytic in (beta, log sigma); central differences in the lag. Below 0
        the episodes' intervals extend smoothly (a left-censored row gets a
        vanishing lower end), so at a lag of 0 these are the derivatives of that
        extension: the information treats 0 as any other point, which keeps the
        lag's uncertainty in the velocity's and the ratios' intervals there too.
        """
        theta, lag = params[:-1], float(params[-1])
        h = min(1e-3 * max(1.0, lag), (self.lag_max - lag) / 2)
        here, up, down = self.aft(lag), self.aft(lag + h), self.aft(lag - h)
        value, value_up, value_down = (a.terms(theta)[0] * self.w for a in (here, up, down))
        k = len(params)
        scores = np.empty((len(self.w), k))
        scores[:, :-1] = here.scores(theta)
        scores[:, -1] = (value_up - value_down) / (2 * h)
        hessians = np.empty((len(self.w), k, k))
        hessians[:, :-1, :-1] = here.row_hessians(theta)
        hessians[:, :-1, -1] = hessians[:, -1, :-1] = \
            (up.scores(theta) - down.scores(theta)) / (2 * h)
        hessians[:, -1, -1] = (value_up - 2 * value + value_down) / h**2
        return scores, hessians

    def loglik(self, params: np.ndarray) -> float:
        """Joint log-likelihood at (beta, log sigma, lag)."""
        lag = params[-1]
        if not 0 <= lag < self.lag_max:
            return -np.inf
        return self.merged(lag).value(params[:-1]) - self.jacobian

class Refit:
    """What a fit needs to be refitted with other distances (the SIMEX sensitivity)."""

    def __init__(self, X, low, up, d, dist, lag):
        self.X, self.low, self.up, self.d, self.dist, self.lag = X, low, up, d, dist, lag

    def estimates(self, d: np.ndarray) -> np.ndarray:
        """(beta, log sigma[, lag]) refitted with distances d."""
        kinetics = Kinetics(self.X, self.low, self.up, d, np.ones(len(d)), self.dist)
        with warnings.catch_warnings(), np.errstate(all="ignore"):
            warnings.simplefilter("ignore", ConvergenceWarning)
            profile = LagProfile(kinetics)
            lag = profile.estimate() if self.lag is None else float(self.lag)
            theta = kinetics.profile(lag, profile.start(lag))[1]
        return theta if self.lag is not None else np.append(theta, lag)

def kinetics_covariance(kinetics: Kinetics, theta: np.ndarray, lag_hat: float, estimated: bool,
                 names: list[str], rows: pd.DataFrame, cluster: str | None):
    """Parameters, the reported covariance and the model-based one, and their names.

    An estimated lag (anywhere in [0, lag_max), its bound 0 included) joins
    (beta, log sigma) in the information, so velocity and ratios carry its
    uncertainty; a fixed lag does not. With ``cluster`` the reported covariance
    is the CR2 sandwich.
    """
    if kinetics.groups is not None:
        return _frailty_covariance(kinetics, theta, lag_hat, estimated, names)
    if estimated:
        params = np.append(theta, lag_hat)
        index = [*names, "log_scale", "lag"]
        scores, hessians = kinetics.joint_rows(params)
        try:
            model_based = information_inverse(-hessians.sum(axis=0), params, index)
        except ModelError:
            estimated = False  # the caller warns that the lag is then treated as known
    if not estimated:
        params, index = theta, [*names, "log_scale"]
        likelihood = kinetics.aft(lag_hat)
        scores, hessians = likelihood.scores(theta), likelihood.row_hessians(theta)
        model_based = information_inverse(-likelihood.hessian(theta), params, index)
    covariance = model_based if cluster is None else \
        cluster_sandwich(model_based, scores, hessians, rows[cluster])
    return params, covariance, model_based, index

def _frailty_covariance(kinetics: Kinetics, theta, lag_hat, estimated, names):
    """As kinetics_covariance, for the frailty model (model-based only)."""
    index = [*names, "log_scale", "frailty_sd"]
    if estimated:
        params = np.append(theta, lag_hat)
        try:
            covariance = information_inverse(kinetics.frailty_information(params), params,
                                             [*index, "lag"])
            return params, covariance, covariance, [*index, "lag"]
        except ModelError:
            pass  # the caller warns that the lag is then treated as known
    covariance = information_inverse(-kinetics.frailty(lag_hat).hessian(theta), theta, index)
    return theta, covariance, covariance, index


class LagProfile:
    """The profile log-likelihood of the lag, :meth:`Kinetics.profile` at each lag asked for,
    kept (``points``, and the maximisers in ``thetas``); each new lag's Newton search starts
    from the maximisers at the nearest lags already profiled (:meth:`start`), a few steps
    from its own."""

    def __init__(self, kinetics: Kinetics) -> None:
        self.kinetics = kinetics
        self.points: dict[float, float] = {}
        self.thetas: dict[float, np.ndarray] = {}

    def __call__(self, lag: float) -> float:
        if lag not in self.points:
            with warnings.catch_warnings(), np.errstate(over="ignore", invalid="ignore",
                                                         divide="ignore"):
                # Lags far from the optimum can fit badly; only the final fit must converge.
                warnings.simplefilter("ignore", ConvergenceWarning)
                value, theta = self.kinetics.profile(lag, self.start(lag), gain_tol=GAIN_TOL)
            self.points[lag] = value if np.isfinite(value) else -np.inf
            if np.isfinite(value):
                self.thetas[float(lag)] = theta
        return self.points[lag]

    def start(self, lag: float) -> np.ndarray | None:
        """A start for the maximiser at ``lag``: the polynomial through the maximisers at the
        (up to) three nearest profiled lags, at ``lag`` (None before the first)."""
        lag = float(lag)
        near = sorted(self.thetas, key=lambda g: abs(g - lag))[:3]
        if not near:
            return None
        start = 0.0
        for g in near:  # Lagrange's form
            start = start + math.prod((lag - h) / (g - h) for h in near if h != g) * self.thetas[g]
        return start

    @property
    def top(self) -> float:
        """The largest lag searched: just below the earliest recovery (at most a year)."""
        return min(self.kinetics.lag_max, 365.0) * (1 - 1e-6)

    def estimate(self) -> float:
        """The lag maximising the profile: a grid of 16, then a bounded search around the best."""
        top = self.top
        grid = np.linspace(0.0, top, 16)
        values = np.array([self(g) for g in grid])
        best = int(np.argmax(values))
        low, high = grid[max(best - 1, 0)], grid[min(best + 1, len(grid) - 1)]
        found = optimize.minimize_scalar(lambda g: -self(g), bounds=(low, high),
                                         method="bounded", options={"xatol": 1e-4})
        return float(found.x) if -found.fun >= values[best] else float(grid[best])

    def interval(self, lag_hat: float, critical: float) -> tuple[float, float]:
        """{lag : 2 (l_p(lag_hat) - l_p(lag)) <= critical}, within [0, top]."""
        top = self.top
        cut = self(lag_hat) - critical / 2

        def side(a, b):
            if self(a) >= cut:
                return a
            a, b = self._bracket(a, b, cut)
            return optimize.brentq(lambda g: self(g) - cut, a, b, xtol=1e-4)

        return (side(0.0, lag_hat) if lag_hat > 0 else 0.0,
                side(top, lag_hat) if lag_hat < top else top)

    def _bracket(self, outer: float, inner: float, cut: float) -> tuple[float, float]:
        """A narrower bracket of the crossing of ``cut`` between ``outer`` (below it) and
        ``inner`` (the estimate, above it), from the lags already profiled (the grid and
        the search): the same root, found in fewer profile fits."""
        between = [(g, v) for g, v in self.points.items()
                   if (g - outer) * (inner - g) > 0 and np.isfinite(v)]
        below = [g for g, v in between if v < cut]
        if below:
            outer = min(below, key=lambda g: abs(inner - g))
        above = [g for g, v in between if v >= cut and (g - outer) * (inner - g) > 0]
        if above:
            inner = min(above, key=lambda g: abs(g - outer))
        return outer, inner

    def table(self) -> pd.DataFrame:
        lags = sorted(self.points)
        return pd.DataFrame({"lag": lags, "profile_loglik": [self.points[g] for g in lags]})


def simex(refit, d: np.ndarray, naive: dict, errors: np.ndarray, replicates: int,
          seed: int) -> pd.DataFrame:
    """SIMEX estimates under multiplicative error in the distances ``d``.

    ``refit(d)`` returns the reported parameters (a dict) refitted with distances ``d``;
    ``naive`` is the same dict for the fit itself. For each error SD in ``errors`` the
    distances are multiplied by ``exp(sqrt(λ) s Z)`` at each λ in :data:`SIMEX_LEVELS`,
    ``replicates`` times, and the mean estimates are extrapolated by a quadratic in λ to
    λ = -1; a ``lag`` is kept >= 0. Returns ``distance_error, parameter, naive, simex,
    shift``.
    """
    noise = np.random.default_rng(seed).standard_normal(
        (len(SIMEX_LEVELS), replicates, len(d)))
    levels = np.array([0.0, *SIMEX_LEVELS])
    rows = []
    for s in errors:
        means = [list(naive.values())]
        for j, level in enumerate(SIMEX_LEVELS):
            fits = [refit(d * np.exp(np.sqrt(level) * s * z)) for z in noise[j]]
            means.append([np.mean([f[key] for f in fits]) for key in naive])
        coef = np.polyfit(levels, np.array(means), 2)
        corrected = coef[0] - coef[1] + coef[2]  # the quadratic at λ = -1
        for i, key in enumerate(naive):
            value = max(corrected[i], 0.0) if key == "lag" else corrected[i]
            rows.append((float(s), key, naive[key], value, value - naive[key]))
    return pd.DataFrame(rows, columns=["distance_error", "parameter", "naive", "simex", "shift"])


def frailty_at_lag(kinetics: Kinetics, lag_hat: float, groups: pd.Series, names, lag):
    """The frailty model at the estimated lag (the nodes and tau's interval as
    :func:`regen.fit_recovery` chooses them), and its likelihood-ratio test against the
    model without frailty at that model's own best lag."""
    plain = Kinetics(kinetics.X, kinetics.low, kinetics.up, kinetics.d, kinetics.w,
                     kinetics.dist.name)
    best_plain = LagProfile(plain).estimate() if lag is None else float(lag)
    loglik_without = plain.profile(best_plain)[0]
    likelihood = plain.aft(lag_hat)
    start = plain.profile(lag_hat)[1]
    parts = fit_frailty(kinetics.dist.name, -kinetics.X, *kinetics.intervals(lag_hat),
                        kinetics.w, groups, names, start=start,
                        loglik_without=likelihood.value(start), tol=1e-9, max_iter=100)
    kinetics.n_nodes = parts["n_nodes"]
    loglik = parts["loglik"] - kinetics.jacobian
    return loglik, parts["theta"], {"frailty": groups.name, "frailty_ci": parts["frailty_ci"],
                                    "frailty_test": frailty_test(loglik, loglik_without),
                                    "n_nodes": parts["n_nodes"]}


# ------------------------------------------------- the model file's parts --

def stored_failed_freeze(document: dict) -> dict:
    """The failed-freeze setting and count; files from before it fitted every episode."""
    stored = document.get("failed_freeze", {"setting": "keep", "n_excluded": 0})
    if not isinstance(stored, dict) or stored.get("setting") not in FAILED_FREEZE:
        raise ValueError("failed_freeze is not a setting and a count")
    count = stored_number(stored, "n_excluded")
    if count < 0 or count != int(count):
        raise ValueError(f"the number of excluded episodes {count:g} is not a count")
    return {"failed_freeze": stored["setting"], "n_excluded": int(count)}


def stored_frailty(document: dict) -> dict | None:
    """The stored patient effect's column, interval, test and nodes (None: none)."""
    stored = document.get("frailty")
    if stored is None:
        return None
    column, test = stored["column"], stored["frailty_test"]
    ci = stored_numbers(stored, "frailty_ci", (2,), finite=False)
    if not isinstance(column, str) or not (0 <= ci[0] <= ci[1]) or not isinstance(test, dict) \
            or set(test) != {"statistic", "p_value", "loglik_without_frailty"}:
        raise ValueError("the stored frailty is not a column, an interval and a test")
    nodes = stored_number(stored, "n_nodes", positive=True)
    return {"frailty": column, "frailty_ci": tuple(ci), "n_nodes": int(nodes),
            "frailty_test": {key: stored_number(test, key) for key in test}}


def known_dist(name) -> str:
    if name not in DISTRIBUTIONS:
        raise ValueError(f"velocity_dist {name!r} is not one of {', '.join(DISTRIBUTIONS)}")
    return name


def stored_level(alpha) -> float:
    """The stored alpha: a number strictly between 0 and 1."""
    alpha = float(alpha)
    if not 0 < alpha < 1:
        raise ValueError(f"alpha {alpha:g} is not between 0 and 1")
    return alpha


def stored_profile_table(stored) -> pd.DataFrame:
    """The stored lag profile: two lists of numbers of one length; the lags finite, the
    log-likelihood finite or -inf (a lag at which the episodes cannot be fitted)."""
    lags = stored_numbers(stored, "lag", (None,))
    values = stored_numbers(stored, "profile_loglik", (len(lags),), finite=False)
    if np.isnan(values).any() or (values == np.inf).any():
        raise ValueError("the lag profile's log-likelihood holds NaN or +inf")
    return pd.DataFrame({"lag": lags, "profile_loglik": values})
