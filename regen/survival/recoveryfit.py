"""The result of :func:`regen.fit_recovery`: the accelerated-failure-time fit
(:mod:`regen.survival.aft` has the model), its predictions and its model file."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from regen.design import Design
from regen.results import ScaledFit, check_probabilities
from regen.serialize import stored_parameters, write_model_file
from regen.survival.covariance import stored_cluster_count
from regen.survival.likelihood import DISTRIBUTIONS

__all__ = ["RecoveryFit"]


# ------------------------------------------------------------------ results --

class RecoveryFit(ScaledFit, kind="RecoveryFit"):
    """Result of :func:`fit_recovery`.

    Attributes
    ----------
    params, bse : Series
        Estimates and standard errors of the coefficients (log-time scale) and
        ``log_scale``.
    loglik, aic : float
    scale : float
        :math:`\\sigma`.
    summary : DataFrame
        ``estimate, std_err, ci_lower, ci_upper, p_value, time_ratio,
        time_ratio_ci_lower, time_ratio_ci_upper`` (95%; with ``cluster=``, Student's
        t on ``reference_df`` = G - 1 degrees of freedom).
    n_clusters, reference_df : int or None
        Clusters behind the robust covariance, and G - 1.
    """

    ratio = "time_ratio"
    effect_name = "Time ratio"
    #: The column of a shared patient effect (a :class:`~regen.FrailtyFit`); None: none.
    frailty: str | None = None

    def __init__(self, *, params, covariance, loglik, dist, formula, design, n, n_dropped,
                 iterations, cluster, n_clusters=None):
        self.params = params
        self.design = design
        self.covariance = covariance
        self.loglik = loglik
        self.dist = dist
        self.formula = formula
        self.n = n
        self.n_dropped = n_dropped
        self.iterations = iterations
        self.cluster = cluster
        #: Clusters behind a robust covariance (None without cluster=, or from an older file,
        #: whose G/(G-1) sandwich went with normal quantiles and still does).
        self.n_clusters = n_clusters
        self.reference_df = None if n_clusters is None else n_clusters - 1

    @property
    def aic(self) -> float:
        return 2 * len(self.params) - 2 * self.loglik

    @property
    def dist_label(self) -> str:
        """The law of the time as a sentence names it: "Weibull", "log-normal", "log-logistic"."""
        return DISTRIBUTIONS[self.dist].label

    def _design(self, profiles: pd.DataFrame) -> np.ndarray:
        return self.design.matrix(profiles)

    def predict_quantile(self, profiles: pd.DataFrame, q=(0.25, 0.5, 0.75),
                         alpha: float = 0.05) -> pd.DataFrame:
        """Quantiles of the time to the event for each profile, with delta-method CIs.

        The interval is built on the log-time scale, where
        ``log t_q = x'beta + sigma Q(q)`` is linear in beta, and transformed back.

        Returns
        -------
        DataFrame
            One row per profile and quantile: the profile's columns, ``q,
            estimate, ci_lower, ci_upper`` (days).
        """
        X = self._design(profiles)
        q = check_probabilities(q)
        beta, sigma = self.params.iloc[:-1].to_numpy(), self.scale
        z = self.critical_value(alpha)
        parts = []
        for p in q:
            eps = DISTRIBUTIONS[self.dist].quantile(p)
            log_t = X @ beta + sigma * eps
            se = self.delta_se(np.column_stack([X, np.full(len(X), sigma * eps)]))
            parts.append(profiles.reset_index(drop=True).assign(
                q=p, estimate=np.exp(log_t), ci_lower=np.exp(log_t - z * se),
                ci_upper=np.exp(log_t + z * se), std_err_log=se))
        return pd.concat(parts, ignore_index=True)

    def predict_survival(self, profiles: pd.DataFrame, times, alpha: float = 0.05) -> pd.DataFrame:
        """S(t | profile) at ``times`` with delta-method CIs on the z scale.

        Returns
        -------
        DataFrame
            The profile's columns, ``time, estimate, ci_lower, ci_upper``.
        """
        X = self._design(profiles)
        beta, sigma = self.params.iloc[:-1].to_numpy(), self.scale
        dist = DISTRIBUTIONS[self.dist]
        crit = self.critical_value(alpha)
        parts = []
        for t in np.atleast_1d(np.asarray(times, dtype="float64")):
            if t <= 0:  # nobody has had the event at the treatment itself
                parts.append(profiles.reset_index(drop=True).assign(
                    time=t, estimate=1.0, ci_lower=1.0, ci_upper=1.0))
                continue
            zt = (np.log(t) - X @ beta) / sigma
            se = self.delta_se(np.column_stack([-X / sigma, -zt]))
            parts.append(profiles.reset_index(drop=True).assign(
                time=t, estimate=np.exp(dist.log_sf(zt)),
                ci_lower=np.exp(dist.log_sf(zt + crit * se)),
                ci_upper=np.exp(dist.log_sf(zt - crit * se))))
        return pd.concat(parts, ignore_index=True)

    # -- saving -----------------------------------------------------------
    #: What the times measure ("numbness" or "relief"), when known; ``regen predict`` says it.
    outcome: str | None = None

    def save(self, path, *, outcome: str | None = None, force: bool = False) -> Path:
        """Write the model to a JSON file (never pickle); read it with :func:`regen.load_model`.

        The file holds the formula, the coefficients and their covariance, and
        what is needed to build covariates for new profiles (categorical levels,
        spline knots, which covariates are yes/no). ``outcome`` ("numbness" or
        "relief") records what the times measure, for ``regen predict``. The write
        is atomic; a file at ``path`` that regen did not write is refused with
        :class:`~regen.exceptions.OutputError` unless ``force=True``.
        """
        if outcome is not None and outcome not in ("numbness", "relief"):
            raise ValueError(f"outcome must be 'numbness' or 'relief', not {outcome!r}")
        return write_model_file(path, self.kind, {**self.document(),
                                                  "outcome": outcome or self.outcome},
                                force=force)

    def document(self) -> dict:
        return {
            "dist": self.dist, "formula": self.formula, "outcome": self.outcome,
            "parameters": list(self.params.index), "params": self.params.tolist(),
            "covariance": self.covariance.to_numpy().tolist(), "loglik": self.loglik,
            "n": self.n, "n_dropped": self.n_dropped, "iterations": self.iterations,
            "cluster": self.cluster, "n_clusters": self.n_clusters,
            "design": self.design.to_dict(),
        }

    #: The parameters after the coefficients, in order.
    trailing = ("log_scale",)

    @classmethod
    def from_document(cls, document: dict) -> RecoveryFit:
        fit = cls(**cls.stored_parts(document))
        outcome = document.get("outcome")
        if outcome not in (None, "numbness", "relief"):
            raise ValueError(f"unknown outcome {outcome!r}")
        fit.outcome = outcome
        return fit

    @classmethod
    def stored_parts(cls, document: dict) -> dict:
        """The keyword arguments of the result a model file holds, checked."""
        if document["dist"] not in DISTRIBUTIONS:
            raise ValueError(f"unknown dist {document['dist']!r}")
        params, covariance = stored_parameters(document, scale=True)  # before any design
        design = Design.from_dict(document["formula"], document["design"])
        k = len(cls.trailing)
        if design.names != list(params.index[:-k]) or tuple(params.index[-k:]) != cls.trailing:
            raise ValueError("the coefficients do not match the formula's design")
        return {"params": params, "covariance": covariance,
                "loglik": float(document["loglik"]), "dist": document["dist"],
                "formula": document["formula"], "design": design, "n": int(document["n"]),
                "n_dropped": int(document["n_dropped"]),
                "iterations": int(document["iterations"]), "cluster": document["cluster"],
                "n_clusters": stored_cluster_count(document, document["cluster"])}

    def __repr__(self) -> str:
        return (f"<RecoveryFit {self.dist} {self.formula!r}: {self.n} episodes, "
                f"loglik {self.loglik:.3f}, AIC {self.aic:.1f}>")
