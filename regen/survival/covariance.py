"""Covariance of regen's maximum-likelihood fits (the AFT and the kinetics model):
the model-based one from the observed information (or why there is none), the
bias-reduced CR2 cluster sandwich, used with Student's t on G - 1 degrees of
freedom, and the checks of the cluster column and of a model file's cluster count."""

from __future__ import annotations

import numpy as np
import pandas as pd

from regen.exceptions import ModelError

__all__ = ["check_clusters", "cluster_sandwich", "information_inverse", "stored_cluster_count"]

#: A scale below this (on the log-time scale) means the model fits the data exactly.
MIN_SCALE = 1e-3
#: Standard errors above this (times the estimate, when larger than 1) mean a parameter is
#: not identified.
MAX_STD_ERR = 1e4


def information_inverse(information: np.ndarray, theta: np.ndarray, names,
                        unbounded=()) -> np.ndarray:
    """The covariance from the observed information, or a ModelError saying why there is none.

    A singular information, a scale that collapsed to ~0 or standard errors in the
    millions all mean the same to the user: the data cannot tell this parameter,
    typically because groups are perfectly separated (each group's events lie
    apart from the others') or there are too few episodes.
    """
    reason = ("the data cannot estimate it: groups whose episodes do not overlap at all "
              "(perfect separation), or too few episodes. Fit fewer covariates or more data")
    try:
        covariance = np.linalg.inv(information)
    except np.linalg.LinAlgError:
        raise ModelError(f"the model's information matrix is singular; {reason}") from None
    with np.errstate(invalid="ignore"):
        se = np.sqrt(np.diag(covariance))
    names = list(names)
    if "log_scale" in names and theta[names.index("log_scale")] < np.log(MIN_SCALE):
        raise ModelError(f"the model fits the episodes exactly (scale "
                         f"{np.exp(theta[names.index('log_scale')]):.1e}); {reason}")
    # Relative to the estimate, so a covariate in tiny units (a large coefficient) is not refused.
    bad = ~np.isfinite(se) | (se > MAX_STD_ERR * np.maximum(1.0, np.abs(theta)))
    bad &= ~np.isin(np.asarray(names, dtype=object), list(unbounded))  # known, and warned of
    if bad.any():
        raise ModelError(f"{names[int(np.flatnonzero(bad)[0])]} has no finite standard error; "
                         f"{reason}")
    return covariance


def check_clusters(cluster: pd.Series) -> None:
    """Every row has a cluster id, and there are at least two clusters."""
    if cluster.isna().any():
        first = cluster.index[cluster.isna().to_numpy()][0]
        raise ValueError(f"{int(cluster.isna().sum())} episode(s) have no {cluster.name} "
                         f"(first: row {first}); fill it in or fit without cluster=")
    found = cluster.nunique()
    if found < 2:
        raise ModelError(f"robust standard errors need at least 2 values of {cluster.name}; "
                         f"found {found}")


def cluster_sandwich(covariance: np.ndarray, scores: np.ndarray, hessians: np.ndarray,
                     cluster: pd.Series) -> np.ndarray:
    r"""Bias-reduced (CR2) cluster-robust covariance of a maximum-likelihood fit.

    With :math:`A = -\sum_i H_i` the observed information (``covariance`` is
    its inverse), :math:`s_g` and :math:`B_g = -\sum_{i \in g} H_i` cluster
    :math:`g`'s summed scores and information, the covariance is

    .. math:: A^{-1} \Big(\sum_g \tilde s_g \tilde s_g'\Big) A^{-1}, \qquad
              \tilde s_g = (I - B_g A^{-1})^{-1/2} s_g,

    the principal square root, computed as :math:`L (I - L^{-1} B_g L^{-T})^{-1/2} L^{-1}`
    with :math:`A = L L'`. :math:`(I - B_g A^{-1})^{-1} s_g` is, to first order,
    cluster :math:`g`'s score at the fit without it (the jackknife, CR3); the
    square root is Bell & McCaffrey's (2002) CR2. For a linear model
    (:math:`s_g = X_g'e_g`, :math:`B_g = X_g'X_g`) it is exactly their
    :math:`X_g'(I - H_{gg})^{-1/2} e_g`, R's ``clubSandwich::vcovCR(type = "CR2")``
    with an identity working model. A cluster that alone determines a direction
    (eigenvalue of :math:`L^{-1} B_g L^{-T}` at 1) gets the pseudo-inverse of the
    root there (its score in that direction is dropped, not divided by 0). Use it
    with Student's t on G - 1 degrees of freedom.

    Parameters
    ----------
    covariance : ndarray
        The model-based covariance, the inverse of the observed information.
    scores : ndarray
        Per-row gradients of the log-likelihood, rows x parameters.
    hessians : ndarray
        Per-row Hessians of the log-likelihood, rows x parameters x parameters.
    cluster : Series
        Cluster id of each row; a row without one is an error (pooling it
        anywhere would understate the variance).
    """
    check_clusters(cluster)
    codes, groups = pd.factorize(cluster)
    k = scores.shape[1]
    per_score = np.zeros((len(groups), k))
    np.add.at(per_score, codes, scores)
    per_information = np.zeros((len(groups), k, k))
    np.add.at(per_information, codes, -hessians)
    try:
        root = np.linalg.cholesky(np.linalg.inv(covariance))
    except np.linalg.LinAlgError:
        raise ModelError("the observed information is not positive definite at the estimate, "
                         "so no robust standard errors can be computed; fit without cluster= "
                         "or with fewer covariates") from None
    root_inv = np.linalg.inv(root)
    leverage = root_inv @ per_information @ root_inv.T
    leverage = (leverage + np.swapaxes(leverage, 1, 2)) / 2
    values, vectors = np.linalg.eigh(leverage)
    room = 1.0 - values
    factor = np.where(room > 1e-10, 1.0 / np.sqrt(np.maximum(room, 1e-10)), 0.0)
    u = per_score @ root_inv.T                                   # L^-1 s_g, one row per cluster
    adjusted = np.einsum("gij,gj,gkj,gk->gi", vectors, factor, vectors, u)
    influence = adjusted @ root_inv                              # rows: (L^-T (.))'
    return influence.T @ influence


def stored_cluster_count(document: dict, cluster) -> int | None:
    """A model file's ``n_clusters``: absent (an older file, or no cluster=) or a whole
    number >= 2 that goes with a cluster column."""
    count = document.get("n_clusters")
    if count is None:
        return None
    if isinstance(count, bool) or not isinstance(count, int) or count < 2 or cluster is None:
        raise ValueError(f"n_clusters {count!r} is not a count of at least 2 clusters of a "
                         "cluster column")
    return count
