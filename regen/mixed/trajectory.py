r"""Longitudinal trajectories of a score: a fast two-level linear mixed model.

:func:`fit_trajectory` fits

.. math:: y_{gj} = x_{gj}'\beta + z_{gj}'b_g + \varepsilon_{gj},\qquad
          b_g \sim N(0, \Sigma_b),\quad \varepsilon_{gj} \sim N(0, \sigma^2)

by REML (default) or ML, with the fixed effects from a formula (splines of time
included, e.g. ``bs(day, df=4)``) and a random intercept plus up to three random
slopes from ``re_formula``. The criterion and its per-group algebra are in
:mod:`regen.mixed.engine`; the optimiser works on the relative Cholesky factor
of :math:`\Sigma_b/\sigma^2` with its diagonal bounded below by 0, so a variance
estimated at 0 is a boundary the fit reports, not an error.

=========================  ==============================================
symbol                     attribute
=========================  ==============================================
:math:`\beta`              ``params`` (``bse``, ``summary``, ``conf_int()``)
:math:`\Sigma_b`           ``random_cov``; ``random_sd``, ``random_corr``
:math:`\sigma`             ``residual_sd``
:math:`\hat b_g`           ``random_effects`` (conditional modes, BLUPs)
=========================  ==============================================

Standard errors of :math:`\beta` are
:math:`\hat\sigma^2 (X'V^{-1}X)^{-1}` at the estimated variance parameters (as
lme4's ``vcov``); the intervals are normal (Wald).
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
from scipy import optimize

from regen._bootstrap import run_replicates
from regen.design import Design, formula_frame
from regen.exceptions import ConvergenceWarning, DataWarning, ModelError, RegenWarning
from regen.mixed.crossing import time_to
from regen.mixed.engine import GroupStatistics, diagonal_positions, evaluate, lower_triangle
from regen.results import FitResult
from regen.serialize import (
    MAX_PARAMETERS,
    stored_number,
    stored_numbers,
    stored_parameters,
    stored_random_covariance,
)

__all__ = ["TrajectoryFit", "fit_trajectory"]

#: The fast engine's envelope: a random intercept and up to three random slopes.
MAX_RANDOM_TERMS = 4
#: A relative Cholesky diagonal below this is on the boundary (lme4's isSingular default).
SINGULAR_TOL = 1e-4


def fit_trajectory(formula: str, data: pd.DataFrame, *, groups: str = "patient_id",
                   re_formula: str = "~ day", reml: bool = True,
                   engine: str = "auto") -> TrajectoryFit:
    """Fit a linear mixed model of a score over time, with random effects per group.

    Parameters
    ----------
    formula : str
        Response and fixed effects, e.g.
        ``"pain ~ cr(day, df=4, constraints='center') + baseline_pain"``
        (formulaic syntax: ``cr``/``bs`` splines, categoricals, interactions).
    data : DataFrame
        One row per measurement, e.g. :meth:`regen.Cohort.measurements`.
    groups : str, default "patient_id"
        The grouping column: each group gets its own random effects.
    re_formula : str, default "~ day"
        The random effects: ``"~ 1"`` a random intercept, ``"~ day"`` an
        intercept and a slope in day; at most four terms with the fast engine.
    reml : bool, default True
        Restricted maximum likelihood (unbiased variance components); False for
        ML, to compare models that differ in their fixed effects by likelihood.
    engine : {"auto", "regen", "statsmodels"}
        ``"auto"`` uses regen's engine and falls back to statsmodels' MixedLM,
        with a warning saying why, for more than four random-effect terms.

    Returns
    -------
    TrajectoryFit

    Warns
    -----
    ConvergenceWarning
        Once, when the fit is on a boundary (a variance at 0, a correlation at
        ±1), naming the term and suggesting a simpler ``re_formula``.
    DataWarning
        When rows with a missing value are left out (counted in ``n_dropped``).

    Examples
    --------
    >>> pain = cohort.measurements("pain").query("day >= 1")  # doctest: +SKIP
    >>> traj = regen.fit_trajectory("pain ~ bs(day, df=4) + baseline_pain", pain)  # doctest: +SKIP
    >>> traj.time_to(0.8, profile, direction="above", relative_to="baseline_pain")  # doctest: +SKIP
    """
    if engine not in ("auto", "regen", "statsmodels"):
        raise ValueError(f"engine must be 'auto', 'regen' or 'statsmodels', not {engine!r}")
    design = _MixedRows.build(formula, re_formula, data, groups)
    q = design.Z.shape[1]
    if engine == "auto":
        engine = "regen" if q <= MAX_RANDOM_TERMS else "statsmodels"
        if engine == "statsmodels":
            warnings.warn(f"re_formula {re_formula!r} has {q} random-effect terms; regen's engine "
                          f"covers an intercept and up to {MAX_RANDOM_TERMS - 1} slopes, so this "
                          "fit uses statsmodels' MixedLM, which is much slower.", RegenWarning,
                          stacklevel=2)
    elif engine == "regen" and q > MAX_RANDOM_TERMS:
        raise ValueError(f"regen's engine covers at most {MAX_RANDOM_TERMS} random-effect terms; "
                         f"re_formula {re_formula!r} has {q}. Use engine='statsmodels'.")
    stats_ = GroupStatistics(design.y, design.X, design.Z_scaled, design.codes)
    if engine == "regen":
        theta, converged = _optimise(stats_, reml)
    else:
        theta, converged = _statsmodels_theta(design, reml)
    fit = TrajectoryFit.from_theta(design, stats_, theta, reml=reml, engine=engine)
    if not converged:
        warnings.warn("the variance parameters did not converge; the estimates may be "
                      f"inaccurate. Try a simpler re_formula than {re_formula!r}.",
                      ConvergenceWarning, stacklevel=2)
    boundary = fit.boundary()
    if boundary:
        advice = (f"simplify the random effects, e.g. re_formula={fit.simpler_re_formula()!r}" if q > 1 else
                  f"the {groups} groups do not differ beyond the residual, so an ordinary "
                  "regression fits as well")
        warnings.warn(f"the fit is on a boundary: {boundary}. The fixed effects are usable; "
                      f"{advice}.", ConvergenceWarning, stacklevel=2)
    return fit


class _MixedRows:
    """Response, fixed and random design, groups; rows with a missing value set aside."""

    @classmethod
    def build(cls, formula, re_formula, data, groups) -> _MixedRows:
        if not isinstance(data, pd.DataFrame):
            raise TypeError(f"data must be a DataFrame, not {type(data).__name__}")
        if "~" not in formula or not formula.split("~")[0].strip():
            raise ValueError(f"formula {formula!r} needs a response: 'pain ~ bs(day, df=4)'")
        if not re_formula.strip().startswith("~"):
            raise ValueError(f"re_formula {re_formula!r} must start with '~', e.g. '~ day'")
        if groups not in data.columns:
            raise ValueError(f"no column {groups!r} (groups) in data")
        if data[groups].isna().any():
            first = data.index[data[groups].isna().to_numpy()][0]
            raise ValueError(f"{int(data[groups].isna().sum())} row(s) have no {groups} "
                             f"(first: row {first}); every measurement needs its group")
        frame = formula_frame(data)
        _, first = Design.fit(formula, frame, data)
        rows = first.rhs.index.intersection(first.lhs.index)
        random_design, random = Design.fit(re_formula, frame.loc[rows])
        rows = random.index
        self = cls()
        self.formula, self.re_formula, self.groups = formula, re_formula, groups
        self.n_dropped = len(data) - len(rows)
        if self.n_dropped:
            warnings.warn(f"{self.n_dropped} row(s) have a missing value in {formula!r} or "
                          f"{re_formula!r} and are left out (TrajectoryFit.n_dropped).",
                          DataWarning, stacklevel=4)
        if len(rows) == 0:
            raise ModelError("no row with the response and every covariate to fit")
        design, matrices = Design.fit(formula, frame.loc[rows], data)
        if matrices.lhs.shape[1] != 1:
            raise ValueError(f"formula {formula!r} must have one numeric response")
        self.response = matrices.lhs.columns[0]
        self.y = np.asarray(matrices.lhs, dtype="float64")[:, 0]
        self.X = np.asarray(matrices.rhs, dtype="float64")
        self.fixed_names = design.names
        self.design = design
        if len(self.y) and np.ptp(self.y) == 0:
            raise ModelError(f"{self.response} is {self.y[0]:g} in every row: there is nothing "
                             "to model")
        self.Z = np.asarray(random, dtype="float64")
        self.random_names = random_design.names
        self.random_design = Design(re_formula, random_design.spec)
        self.index = rows
        self.frame = frame.loc[rows]
        self.codes, self.levels = pd.factorize(frame.loc[rows, groups])
        self._check()
        self.T = _standardiser(self.Z, self.random_names)
        self.Z_scaled = self.Z @ self.T
        return self

    def _check(self) -> None:
        n, p = self.X.shape
        if len(self.levels) < 2:
            raise ModelError(f"a mixed model needs at least 2 values of {self.groups}; found "
                             f"{len(self.levels)}")
        self.design.check(self.X, self.frame, what=f"the fixed effects of {self.formula!r} are")
        if len(self.levels) >= n:
            raise ModelError(f"each {self.groups} has a single measurement ({n} rows, "
                             f"{len(self.levels)} groups): random effects cannot be told from "
                             "the residual; use an ordinary regression")
        if n <= p:
            raise ModelError(f"{n} rows for {p} fixed effects: too few to fit")
        if np.linalg.matrix_rank(self.Z) < self.Z.shape[1]:
            raise ModelError(f"the random effects of {self.re_formula!r} are rank deficient: "
                             "a term with a single value, or collinear terms")


def _standardiser(Z: np.ndarray, names: list[str]) -> np.ndarray:
    """T with Z T centred and scaled column by column (centred only next to an intercept)."""
    q = Z.shape[1]
    T = np.eye(q)
    ones = [j for j in range(q) if np.all(Z[:, j] == 1.0)]
    for j in range(q):
        if j in ones:
            continue
        column = Z[:, j]
        centre = column.mean() if ones else 0.0
        spread = np.sqrt(np.mean((column - centre) ** 2))
        if not spread > 0:
            raise ModelError(f"random-effect term {names[j]!r} does not vary")
        T[j, j] = 1.0 / spread
        if ones:
            T[ones[0], j] = -centre / spread
    return T


def _optimise(stats_: GroupStatistics, reml: bool, start: np.ndarray | None = None):
    """theta minimising the profiled deviance.

    Lambda enters only through Lambda Lambda', which does not change when a column
    of Lambda changes sign, so theta is left unbounded (L-BFGS-B with the analytic
    gradient) and each column is given a non-negative diagonal afterwards. Bounding
    the diagonal at 0 instead would trap the search: the deviance is even in each
    diagonal entry, so a step clipped to 0 lands on a stationary point. For the same
    reason a diagonal that ends near 0 is restarted once from 0.5: a truly singular
    fit comes back to 0, a false one moves away.
    """
    q = stats_.q
    diagonal = diagonal_positions(q)
    identity = np.eye(q)[np.tril_indices(q)]
    theta = identity if start is None else np.asarray(start, dtype="float64")

    def deviance(theta):
        value, gradient = evaluate(stats_, theta, reml, gradient=True)
        if not np.isfinite(value):
            return 1e300, np.zeros_like(theta)
        return value, gradient

    def minimise(theta0):
        result = optimize.minimize(deviance, theta0, jac=True, method="L-BFGS-B",
                                   options={"ftol": 1e-13, "gtol": 1e-7, "maxiter": 5000})
        return _canonical(result.x, q), float(result.fun)

    theta, value = minimise(theta)
    tiny = diagonal[np.abs(theta[diagonal]) < 1e-3]
    if len(tiny):
        retry = theta.copy()
        retry[tiny] = 0.5
        other, other_value = minimise(retry)
        if other_value < value:
            theta, value = other, other_value
    value, gradient = deviance(theta)
    converged = bool(value < 1e299
                     and np.max(np.abs(gradient), initial=0.0) < 1e-4 * max(1.0, abs(value)))
    return theta, converged


def _canonical(theta: np.ndarray, q: int) -> np.ndarray:
    """The same Lambda Lambda' with every diagonal entry of Lambda >= 0."""
    Lambda = lower_triangle(theta, q)
    Lambda = Lambda * np.where(np.diag(Lambda) < 0, -1.0, 1.0)[None, :]
    return Lambda[np.tril_indices(q)]


def _statsmodels_theta(design: _MixedRows, reml: bool):
    """theta (of the scaled Z) from statsmodels' MixedLM, its warnings held back."""
    from statsmodels.regression.mixed_linear_model import MixedLM

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model = MixedLM(design.y, design.X, groups=design.codes, exog_re=design.Z_scaled)
        result = model.fit(reml=reml)
    relative = np.asarray(result.cov_re, dtype="float64") / result.scale
    try:
        chol = np.linalg.cholesky(relative + 1e-12 * np.eye(len(relative)))
    except np.linalg.LinAlgError:
        chol = np.diag(np.sqrt(np.clip(np.diag(relative), 0, None)))
    converged = bool(result.converged) and not any(
        "converge" in str(w.message).lower() for w in caught)
    return chol[np.tril_indices(len(relative))], converged


class TrajectoryFit(FitResult, kind="TrajectoryFit"):
    """Result of :func:`fit_trajectory`.

    Attributes
    ----------
    params, bse, covariance : the fixed effects, their standard errors and covariance.
    summary : DataFrame
        ``estimate, std_err, ci_lower, ci_upper, p_value`` per fixed effect.
    random_sd, random_corr, random_cov : the random effects' SDs (Series),
        correlations and covariance (DataFrames), in the units of the data.
    residual_sd : float
    variance_components : DataFrame
        The same as one table: ``component, term, estimate``.
    random_effects : DataFrame
        Each group's conditional modes (BLUPs), indexed by group.
    loglik, aic : float
        REML (or ML) log-likelihood as lme4 reports it, and its AIC.
    n, n_groups, n_dropped : int
    """

    def __init__(self, *, params, covariance, random_cov, residual_sd, random_effects, loglik,
                 theta, reml, engine, formula, re_formula, groups, response, design,
                 random_design, n, n_groups, n_dropped, data=None, spans=None):
        self.params, self.covariance = params, covariance
        self.random_cov, self.residual_sd = random_cov, residual_sd
        self.random_effects = random_effects
        self.loglik, self.theta, self.reml, self.engine = loglik, theta, reml, engine
        self.formula, self.re_formula, self.groups = formula, re_formula, groups
        self.response, self.design, self.random_design = response, design, random_design
        self.n, self.n_groups, self.n_dropped = n, n_groups, n_dropped
        #: The fitted rows (None for a loaded model: a file holds no patient's data).
        self._rows = data
        #: The fitted range of each numeric variable the formulas name (time_to's search
        #: range), from the rows or, for a loaded model, from its file.
        self.spans = self._fitted_spans() if spans is None else spans

    @property
    def effect_name(self) -> str:
        """What the fixed effects measure: a change in the response."""
        return f"Effect on {self.response}"

    # ---------------------------------------------------------------- build --
    @classmethod
    def from_theta(cls, design: _MixedRows, stats_: GroupStatistics, theta: np.ndarray, *,
                   reml: bool, engine: str) -> TrajectoryFit:
        """The result at the variance parameters ``theta``: fixed effects, their
        covariance, the random effects' covariance and modes, from the engine."""
        deviance, sol = evaluate(stats_, theta, reml, keep=True)
        if sol is None:
            raise ModelError("the mixed model could not be evaluated at its estimate")
        n, p = stats_.n, stats_.p
        sigma2 = sol.r2 / (n - p if reml else n)
        R_inv = np.linalg.inv(stats_.R)
        beta = R_inv @ sol.beta_q
        cov_beta = sigma2 * R_inv @ np.linalg.inv(sol.QVQ) @ R_inv.T
        relative = design.T @ sol.Lambda              # Lambda in the units of the data
        cov_re = sigma2 * relative @ relative.T
        b = sol.u @ (design.T @ sol.Lambda).T                       # (G, q), groups sorted
        names = design.fixed_names
        return cls(
            params=pd.Series(beta, index=names),
            covariance=pd.DataFrame(cov_beta, index=names, columns=names),
            random_cov=pd.DataFrame(cov_re, index=design.random_names,
                                    columns=design.random_names),
            residual_sd=float(np.sqrt(sigma2)),
            random_effects=pd.DataFrame(b, index=pd.Index(design.levels, name=design.groups),
                                        columns=design.random_names),
            loglik=-0.5 * float(deviance), theta=np.asarray(theta, dtype="float64"),
            reml=reml, engine=engine, formula=design.formula, re_formula=design.re_formula,
            groups=design.groups, response=design.response, design=design.design,
            random_design=design.random_design, n=n,
            n_groups=len(design.levels), n_dropped=design.n_dropped, data=design)

    # ------------------------------------------------------------- results --
    @property
    def aic(self) -> float:
        q = len(self.random_cov)
        return 2 * (len(self.params) + q * (q + 1) // 2 + 1) - 2 * self.loglik


    @property
    def random_sd(self) -> pd.Series:
        return pd.Series(np.sqrt(np.clip(np.diag(self.random_cov), 0, None)),
                         index=self.random_cov.index, name="sd")

    @property
    def random_corr(self) -> pd.DataFrame:
        sd = self.random_sd.to_numpy()
        with np.errstate(invalid="ignore", divide="ignore"):
            corr = self.random_cov.to_numpy() / np.outer(sd, sd)
        np.fill_diagonal(corr, 1.0)
        return pd.DataFrame(corr, index=self.random_cov.index, columns=self.random_cov.columns)

    @property
    def variance_components(self) -> pd.DataFrame:
        rows = [("sd", term, value) for term, value in self.random_sd.items()]
        corr = self.random_corr
        names = list(corr.index)
        for i in range(len(names)):
            for j in range(i + 1, len(names)):
                rows.append(("corr", f"{names[i]}, {names[j]}", corr.iloc[i, j]))
        rows.append(("sd", "residual", self.residual_sd))
        return pd.DataFrame(rows, columns=["component", "term", "estimate"])

    def boundary(self) -> str:
        """What is on the boundary of the parameter space, or ''."""
        q = len(self.random_cov)
        diagonal = self.theta[diagonal_positions(q)]
        scale = max(1.0, float(np.max(np.abs(self.theta))))
        if not (diagonal < SINGULAR_TOL * scale).any():
            return ""
        sd, corr, names = self.random_sd, self.random_corr.to_numpy(), list(self.random_cov.index)
        found = []
        for j in np.flatnonzero(diagonal < SINGULAR_TOL * scale):
            if sd.iloc[j] < 1e-6 * max(self.residual_sd, 1e-300):
                found.append(f"the variance of {names[j]} is estimated at 0")
                continue
            partners = [k for k in range(q) if k != j and abs(corr[j, k]) > 0.99]
            if partners:
                k = partners[0]
                found.append(f"the correlation of {names[min(j, k)]} and {names[max(j, k)]} is "
                             f"estimated at {corr[j, k]:+.2f}")
            else:
                found.append(f"the random effects are degenerate in {names[j]}")
        return "; ".join(dict.fromkeys(found))

    def simpler_re_formula(self) -> str:
        """A re_formula with one random slope fewer (the one weakest for its variable's
        spread), or ``"~ 1"``: what a boundary warning suggests."""
        names = list(self.random_cov.index)
        if len(names) <= 1:
            return "~ 1"
        sd = self.random_sd
        weakest = min((n for n in names if n != "Intercept"),
                      key=lambda n: sd[n] / max(self._random_spread(n), 1e-300))
        kept = [n for n in names if n not in ("Intercept", weakest)]
        return "~ " + (" + ".join(kept) if kept else "1")

    def _random_spread(self, name: str) -> float:
        j = list(self.random_cov.index).index(name)
        return float(1.0 / self._rows.T[j, j]) if self._rows is not None else 1.0

    # ---------------------------------------------------------- prediction --
    def _X(self, profiles: pd.DataFrame) -> np.ndarray:
        return self.design.matrix(profiles)

    def predict(self, profiles: pd.DataFrame, ci: bool = True, alpha: float = 0.05) -> pd.DataFrame:
        """The population mean of the response for each profile (random effects at 0).

        Returns the profiles with ``estimate`` and, with ``ci``, ``std_err, ci_lower,
        ci_upper`` (Wald, from the fixed effects' covariance).
        """
        X = self._X(profiles)
        out = profiles.reset_index(drop=True).assign(estimate=X @ self.params.to_numpy())
        if ci:
            se = self.delta_se(X)
            z = self.critical_value(alpha)
            out = out.assign(std_err=se, ci_lower=out["estimate"] - z * se,
                             ci_upper=out["estimate"] + z * se)
        return out

    def predict_subject(self, data: pd.DataFrame) -> pd.DataFrame:
        """Each row's mean given its group's random effects (``estimate``).

        Rows of a group the model has not seen get the population mean, flagged
        by ``known_group`` False.
        """
        if self.groups not in data.columns:
            raise ValueError(f"data need the {self.groups!r} column to predict per subject")
        if self._rows is None:
            raise ModelError("a loaded model keeps no patient's random effects (they would "
                             "identify patients); refit the model to predict per patient")
        X = self._X(data)
        Z = self.random_design.matrix(data)
        effects = self.random_effects.reindex(data[self.groups].to_numpy())
        known = effects.notna().all(axis=1).to_numpy()
        b = effects.fillna(0.0).to_numpy()
        return data.reset_index(drop=True).assign(
            estimate=X @ self.params.to_numpy() + np.einsum("ij,ij->i", Z, b), known_group=known)

    def residuals(self) -> pd.DataFrame:
        """Residual diagnostics per fitted row, in the data's order and index.

        ``group, observed, fitted_population, fitted_subject, residual`` (observed −
        fitted_subject), ``standardized`` (residual / residual SD) and
        ``population_residual`` (observed − fitted_population).
        """
        design = self._rows
        if design is None:
            raise ModelError("a loaded model has no data; refit to see its residuals")
        population = design.X @ self.params.to_numpy()
        b = self.random_effects.to_numpy()[design.codes]
        subject = population + np.einsum("ij,ij->i", design.Z, b)
        residual = design.y - subject
        return pd.DataFrame({
            "group": design.levels[design.codes], "observed": design.y,
            "fitted_population": population, "fitted_subject": subject, "residual": residual,
            "standardized": residual / self.residual_sd,
            "population_residual": design.y - population}, index=design.index)

    def time_to(self, threshold: float, profile: pd.DataFrame | dict, *,
                direction: str = "below", time: str = "day", relative_to: str | None = None,
                start: float | None = None, end: float | None = None, method: str = "delta",
                alpha: float = 0.05, n_bootstrap: int = 200, seed=None, n_jobs: int = 1,
                progress: bool | None = None) -> pd.Series:
        """The first day the mean trajectory of ``profile`` crosses ``threshold``.

        Parameters
        ----------
        threshold : float
            On the response's scale, or a fraction of ``profile[relative_to]``
            (``threshold=0.8, relative_to="baseline_pain"``: 80% of baseline).
        profile : DataFrame (one row) or dict
            The covariates; ``time`` is varied.
        direction : {"below", "above"}
            Crossing downwards (numbness fading below 1) or upwards (pain coming
            back above 80% of baseline): the first time the mean moves from the
            other side to this side.
        start, end : float, optional
            The search range; by default the fitted data's range of ``time``. The
            answer is never extrapolated beyond it.
        method : {"delta", "bootstrap"}
            The CI: delta method (fast) or a seeded parametric bootstrap that
            simulates the data from the fit and refits (``n_bootstrap``, through
            joblib, with a progress bar on a terminal).

        Returns
        -------
        Series
            ``estimate, ci_lower, ci_upper, threshold`` (days), and for the
            bootstrap ``n_no_crossing``. The estimate is NaN when the mean does
            not cross within the range; a CI bound is ``inf`` when too many
            bootstrap trajectories do not cross.
        """
        return time_to(self, threshold, profile, direction=direction, time=time,
                       relative_to=relative_to, start=start, end=end, method=method,
                       alpha=alpha, n_bootstrap=n_bootstrap, seed=seed, n_jobs=n_jobs,
                       progress=progress)

    def bootstrap_fixed_effects(self, n_bootstrap: int, seed=None, n_jobs: int = 1,
                                progress: bool | None = None) -> np.ndarray:
        """Fixed effects refitted to data simulated from the fit (parametric bootstrap):
        one row per replicate, seeded, through :func:`regen._bootstrap.run_replicates`."""
        design = self._rows
        if design is None:
            raise ModelError("a loaded model has no data to bootstrap; use method='delta'")
        parts = dict(X=design.X, Z=design.Z, Z_scaled=design.Z_scaled, codes=design.codes,
                     beta=self.params.to_numpy(), cov_re=self.random_cov.to_numpy(),
                     sigma=self.residual_sd, reml=self.reml, theta=self.theta)
        out = run_replicates(_bootstrap_batch, parts, n_bootstrap, seed, n_jobs=n_jobs,
                             progress=progress, batch_size=20)
        return np.array(out)

    # -------------------------------------------------------------- saving --
    def document(self) -> dict:
        return {
            "formula": self.formula, "re_formula": self.re_formula, "groups": self.groups,
            "response": self.response, "reml": self.reml, "engine": self.engine,
            "parameters": list(self.params.index), "params": self.params.tolist(),
            "covariance": self.covariance.to_numpy().tolist(),
            "random_terms": list(self.random_cov.index),
            "random_cov": self.random_cov.to_numpy().tolist(), "residual_sd": self.residual_sd,
            "theta": self.theta.tolist(), "loglik": self.loglik,
            "n": self.n, "n_groups": self.n_groups, "n_dropped": self.n_dropped,
            "spans": {name: list(span) for name, span in self.spans.items()},
            "design": self.design.to_dict(),
            "random_design": self.random_design.to_dict(),
        }

    @classmethod
    def from_document(cls, document: dict) -> TrajectoryFit:
        terms = document["random_terms"]
        if not isinstance(terms, list) or not 0 < len(terms) <= MAX_PARAMETERS:
            raise ValueError("random_terms is not a list of names")
        params, covariance = stored_parameters(document)  # before any design
        design = Design.from_dict(document["formula"], document["design"])
        random_design = Design.from_dict(document["re_formula"], document["random_design"])
        if design.names != list(params.index) or random_design.names != terms:
            raise ValueError("the coefficients do not match the formulas' designs")
        stored = document["spans"]
        if not isinstance(stored, dict):
            raise ValueError("spans is not an object of the formulas' variables")
        spans = {str(k): tuple(stored_numbers(stored, k, (2,))) for k in stored}
        if any(low > high for low, high in spans.values()):
            raise ValueError("a span ends before it starts")
        return cls(
            params=params, covariance=covariance,
            random_cov=stored_random_covariance(document, "random_cov", terms),
            residual_sd=stored_number(document, "residual_sd", positive=True),
            random_effects=pd.DataFrame(columns=terms, dtype="float64"),
            loglik=float(document["loglik"]),
            theta=stored_numbers(document, "theta", (len(terms) * (len(terms) + 1) // 2,)),
            reml=bool(document["reml"]), engine=str(document["engine"]),
            formula=document["formula"], re_formula=document["re_formula"],
            groups=document["groups"], response=document["response"], design=design,
            random_design=random_design,
            n=int(document["n"]), n_groups=int(document["n_groups"]),
            n_dropped=int(document["n_dropped"]), spans=spans)

    def _fitted_spans(self) -> dict[str, tuple[float, float]]:
        frame = self._rows.frame
        text = self.formula + " " + self.re_formula
        return {name: (float(frame[name].min()), float(frame[name].max()))
                for name in frame.columns
                if name in text and pd.api.types.is_numeric_dtype(frame[name])}

    def __repr__(self) -> str:
        method = "REML" if self.reml else "ML"
        return (f"<TrajectoryFit {self.formula!r}, random {self.re_formula!r} by {self.groups}: "
                f"{self.n} rows, {self.n_groups} groups, {method} loglik {self.loglik:.3f}>")


def _bootstrap_batch(parts: dict, seeds) -> list[np.ndarray]:
    X, Z, codes = parts["X"], parts["Z"], parts["codes"]
    n_groups = codes.max() + 1
    chol = np.linalg.cholesky(parts["cov_re"] + 1e-12 * np.eye(len(parts["cov_re"])))
    out = []
    for sequence in seeds:
        rng = np.random.default_rng(sequence)
        b = rng.standard_normal((n_groups, Z.shape[1])) @ chol.T
        y = X @ parts["beta"] + np.einsum("ij,ij->i", Z, b[codes]) \
            + parts["sigma"] * rng.standard_normal(len(X))
        stats_ = GroupStatistics(y, X, parts["Z_scaled"], codes)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            theta, _ = _optimise(stats_, parts["reml"], start=parts["theta"])
            _, sol = evaluate(stats_, theta, parts["reml"], keep=True)
        out.append(np.linalg.solve(stats_.R, sol.beta_q))
    return out
