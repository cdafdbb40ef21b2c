r"""The generalized log-rank test for interval-censored (l, u] episodes.

Do the recovery curves of k groups differ? The score test of the group terms in
the proportional-hazards model (:mod:`regen.survival.ph`) at :math:`\beta = 0`,
with the baseline estimated under the null: there it is the Turnbull NPMLE of all
groups together (Finkelstein 1986). With :math:`\psi_i = \partial\ell_i/\partial\eta`
at the null fit (:math:`\sum_i \psi_i = 0`), the score of group :math:`g` is
:math:`U_g = \sum_{i \in g} \psi_i` (observed minus expected events), and

.. math:: X^2 = U' V^{-1} U \sim \chi^2_{k-1},

with :math:`V` the efficient information: the observed information of the group
terms after the baseline jumps are profiled out (a Schur complement of the
information of :func:`~regen.survival.phlik.information`). On right-censored data
this is the score test of the grouped-continuous PH model, within about 2% of
the classical log-rank chi-square (which is the score test of Cox's partial
likelihood). With ``strata``, each stratum has its own baseline and the scores and
informations add up. ``n_permutations`` adds a permutation p-value: the groups
are shuffled within strata, the baseline under the null does not change, and the
statistic is recomputed (seeded; exact in small samples whatever the asymptotics).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy import sparse, stats
from scipy.sparse.linalg import splu

from regen._bootstrap import run_replicates
from regen.exceptions import DataWarning, ModelError
from regen.survival.npmle import check_intervals
from regen.survival.ph import interval_problem

__all__ = ["LogrankResult", "logrank_test"]


@dataclass
class LogrankResult:
    """Result of :func:`logrank_test`.

    Attributes
    ----------
    statistic, df, p_value : float, int, float
        The chi-square statistic, its degrees of freedom (groups - 1) and p-value.
    table : DataFrame
        Per group: ``n`` episodes, ``events`` (episodes whose event was seen, upper
        finite), ``expected`` events under the null and ``observed_minus_expected``
        (the score).
    permutation_p_value : float or None
        With ``n_permutations``: the share of permutations at least as extreme
        (counting the data's own, so never 0).
    """
    statistic: float
    df: int
    p_value: float
    table: pd.DataFrame
    by: str
    strata: str | None = None
    cluster: str | None = None
    n_permutations: int = 0
    permutation_p_value: float | None = None
    covariance: np.ndarray = field(default=None, repr=False)

    def to_text(self) -> str:
        """The test as a terminal shows it."""
        line = (f"Generalized log-rank test by {self.by}"
                + (f", stratified by {self.strata}" if self.strata else "")
                + (f", robust over {self.cluster}" if self.cluster else "")
                + f": chi-square {self.statistic:.3f} on {self.df} df, p = {self.p_value:.4g}")
        if self.permutation_p_value is not None:
            line += (f" (permutation p = {self.permutation_p_value:.4g} over "
                     f"{self.n_permutations} permutations)")
        with pd.option_context("display.width", 120):
            body = self.table.to_string(float_format=lambda v: f"{v:.4g}")
        return f"{line}\n{body}"


def logrank_test(data: pd.DataFrame, by: str, *, lower: str = "lower", upper: str = "upper",
                 strata: str | None = None, cluster: str | None = None,
                 n_permutations: int = 0, seed=None, n_jobs: int = 1,
                 progress: bool | None = None) -> LogrankResult:
    """Test whether the event-time distributions of the groups of ``by`` differ.

    Parameters
    ----------
    data : DataFrame
        Episodes (interval-censored ``(lower, upper]``); not changed.
    by : str
        The group column (two or more groups).
    lower, upper : str
        Interval columns.
    strata : str, optional
        A column whose levels each get their own baseline (e.g. ``"nerve"`` when
        comparing diabetes): the test compares groups within strata.
    cluster : str, optional
        Column of a clustering unit (``"patient_id"``): the score's variance is then the
        robust one, the sum over clusters of their efficient scores' outer products
        times G/(G - 1) (Lin & Wei 1989), so that both sides or repeat treatments of
        one patient do not count as independent evidence.
    n_permutations : int, default 0
        Also give a permutation p-value over this many shuffles of the groups (of
        episodes; with ``cluster``, read it with care: it treats episodes as
        exchangeable).
    seed, n_jobs, progress
        The permutations' seed, worker processes and progress bar.

    Returns
    -------
    LogrankResult

    Examples
    --------
    >>> regen.logrank_test(episodes, by="nerve").p_value  # doctest: +SKIP
    """
    frame = _checked(data, by, lower, upper, strata, cluster)
    groups = pd.Categorical(frame[by])
    levels = list(groups.categories)
    if len(levels) < 2:
        raise ModelError(f"{by!r} has a single group ({levels[0]!r}) among the episodes: "
                         "nothing to compare")
    codes = np.asarray(groups.codes)
    stratum = (np.zeros(len(frame), dtype=int) if strata is None
               else pd.factorize(frame[strata])[0])
    parts = _null_parts(frame[lower].to_numpy("float64"), frame[upper].to_numpy("float64"),
                        stratum)
    clusters = None if cluster is None else pd.factorize(frame[cluster])[0]
    if clusters is not None and clusters.max() < 1:
        raise ModelError(f"a robust test needs at least 2 values of {cluster}; found 1")
    statistic, score, V = _statistic(parts, codes, len(levels), clusters)
    df = len(levels) - 1
    table = _table(frame, upper, codes, levels, parts)
    result = LogrankResult(statistic=statistic, df=df, p_value=float(stats.chi2.sf(statistic, df)),
                           table=table, by=by, strata=strata, cluster=cluster, covariance=V)
    if n_permutations:
        shared = (parts, codes, len(levels), stratum, clusters)
        shuffled = run_replicates(_permutation_batch, shared,
                                  int(n_permutations), seed, n_jobs=n_jobs, progress=progress)
        extreme = sum(s >= statistic * (1 - 1e-10) for s in shuffled)
        result.n_permutations = int(n_permutations)
        result.permutation_p_value = (extreme + 1) / (n_permutations + 1)
    return result


def _checked(data, by, lower, upper, strata, cluster) -> pd.DataFrame:
    if not isinstance(data, pd.DataFrame):
        raise TypeError(f"data must be a DataFrame, not {type(data).__name__}")
    columns = list(dict.fromkeys(c for c in (by, lower, upper, strata, cluster) if c is not None))
    missing = [c for c in columns if c not in data.columns]
    if missing:
        raise ValueError(f"no column {', '.join(map(repr, missing))} in data")
    complete = data[columns].notna().all(axis=1).to_numpy()
    if not complete.all():
        warnings.warn(f"{int((~complete).sum())} episode(s) have no "
                      + " or ".join(c for c in (by, strata, cluster) if c) + " and are left out "
                      "of the test",
                      DataWarning, stacklevel=3)
    frame = data.loc[complete, columns]
    if len(frame) == 0:
        raise ModelError("no episode left to test")
    check_intervals(frame[lower].to_numpy("float64"), frame[upper].to_numpy("float64"),
                    np.ones(len(frame)), frame.index)
    return frame


@dataclass
class _NullFit:
    """One stratum's null fit: each row's score and its place on the baseline's levels."""
    rows: np.ndarray          # the stratum's rows (positions in the data)
    psi: np.ndarray           # d loglik_i / d eta_i at the null
    score_start: np.ndarray   # d loglik_i / d v at the row's left-end level
    score_end: np.ndarray     # ... and at its right-end level
    start: np.ndarray         # level of the row's left end (0: before every event)
    end: np.ndarray           # level of its right end (-1: right-censored)
    levels: np.ndarray        # cumulative hazard at each level, 0 first


def _null_parts(low, up, stratum) -> list[_NullFit]:
    """The null fit (one baseline per stratum): every row's score and interval on it."""
    parts = []
    for s in np.unique(stratum):
        rows = np.flatnonzero(stratum == s)
        no_covariate, ones = np.zeros((len(rows), 0)), np.ones(len(rows))
        # fitted on the distinct intervals (a few hundred), evaluated on every row
        collapsed, _, _, start = interval_problem(low[rows], up[rows], no_covariate, ones)
        solution = collapsed.maximise(np.zeros(0), start, fixed_beta=True)
        likelihood = interval_problem(low[rows], up[rows], no_covariate, ones, collapse=False,
                                      start=False)[0]
        terms = likelihood.row_terms(solution.beta, solution.u)
        psi = np.zeros(len(rows))
        kept = likelihood.informative
        psi[kept] = terms["s"] + terms["t"]
        score_start, score_end = np.zeros(len(rows)), np.zeros(len(rows))
        score_start[kept], score_end[kept] = terms["s"], terms["t"]
        # Tied log cumulative hazards are one level: level of u index j is groups[j] + 1.
        level = np.concatenate([[0], solution.groups + 1, [-1]])
        a = np.zeros(len(rows), dtype=np.int64)
        b = np.full(len(rows), likelihood.K, dtype=np.int64)
        a[kept], b[kept] = likelihood.a, likelihood.b
        levels = np.concatenate([[0.0], np.exp(solution.u[np.flatnonzero(
            np.diff(solution.groups, prepend=-1))])])
        parts.append(_NullFit(rows, psi, score_start, score_end, level[a], level[b], levels))
    return parts


def _fisher_information(part: _NullFit, Z: np.ndarray) -> np.ndarray:
    """The efficient information of the group terms at the null: the expected information of
    the model read as a sequence of Bernoulli steps (each row survives every level up to its
    left end, then has its event by its right end), the baseline levels profiled out.

    On right-censored data the steps are the person-period rows of the cloglog GLM and this
    is that GLM's Fisher information, so the test equals its Rao score test.
    """
    n_levels = len(part.levels) - 1
    k = Z.shape[1]
    # Survival steps: level l-1 -> l, by every row whose left end is at level >= l.
    count = np.bincount(part.start, minlength=n_levels + 1)[::-1].cumsum()[::-1]
    sums = _reverse_sums(part.start, Z, n_levels)
    outer = _reverse_sums(part.start, Z[:, :, None] * Z[:, None, :], n_levels)
    low = np.arange(n_levels)
    steps = [(low, low + 1, count[1:], sums[1:], outer[1:])]
    ended = part.end >= 0
    if ended.any():
        steps.append((part.start[ended], part.end[ended], np.ones(int(ended.sum())), Z[ended],
                      Z[ended][:, :, None] * Z[ended][:, None, :]))
    entries: list[tuple] = []
    i_vb = np.zeros((n_levels, k))
    i_bb = np.zeros((k, k))
    for lo, hi, n, sz, szz in steps:
        big_lo, big_hi = part.levels[lo], part.levels[hi]
        jump = big_hi - big_lo
        odds = np.exp(-jump) / -np.expm1(-jump)             # e / (1 - e): the weight
        j_hi, j_lo, j_b = big_hi, -big_lo, jump              # derivatives of pi over e
        i_bb += np.einsum("s,sij->ij", odds * j_b * j_b, szz)
        for index, j in ((hi, j_hi), (lo, j_lo)):
            has = index > 0
            np.add.at(i_vb, index[has] - 1, (odds * j * j_b)[has, None] * sz[has])
            for index2, j2 in ((hi, j_hi), (lo, j_lo)):
                both = has & (index2 > 0)
                entries.append((index[both] - 1, index2[both] - 1, (odds * j * j2 * n)[both]))
    rows, cols, values = (np.concatenate(parts) for parts in zip(*entries, strict=True))
    i_vv = sparse.csc_matrix((values, (rows, cols)), shape=(n_levels, n_levels))
    projection = splu(i_vv).solve(i_vb)                  # I_vv^-1 I_vb
    return i_bb - i_vb.T @ projection, projection


def _efficient_scores(part: _NullFit, Z: np.ndarray, projection: np.ndarray) -> np.ndarray:
    """Each row's score of the group terms less its projection on the baseline's scores."""
    scores = part.psi[:, None] * Z
    for level, score in ((part.start, part.score_start), (part.end, part.score_end)):
        has = level > 0
        scores[has] -= score[has, None] * projection[level[has] - 1]
    return scores


def _reverse_sums(level: np.ndarray, values: np.ndarray, n_levels: int) -> np.ndarray:
    """Sum of ``values`` over the rows at each level or above, for levels 0..n_levels."""
    total = np.zeros((n_levels + 1, *values.shape[1:]))
    np.add.at(total, level, values)
    return total[::-1].cumsum(axis=0)[::-1]


def _statistic(parts: list[_NullFit], codes: np.ndarray, k: int, clusters=None):
    """Score of groups 2..k and its efficient information, summed over strata; with
    ``clusters`` (codes per row) the robust variance of the score instead."""
    U = np.zeros(k - 1)
    V = np.zeros((k - 1, k - 1))
    efficient = None if clusters is None else np.zeros((clusters.max() + 1, k - 1))
    for part in parts:
        c = codes[part.rows]
        Z = (c[:, None] == np.arange(1, k)[None, :]).astype(float)
        U += Z.T @ part.psi
        information, projection = _fisher_information(part, Z)
        V += information
        if efficient is not None:
            np.add.at(efficient, clusters[part.rows], _efficient_scores(part, Z, projection))
    if efficient is not None:
        n = len(efficient)
        V = n / (n - 1) * efficient.T @ efficient
    try:
        statistic = float(U @ np.linalg.solve(V, U))
    except np.linalg.LinAlgError:
        raise ModelError("the groups cannot be compared: within a stratum, a group whose "
                         "episodes tell nothing about the time of the event") from None
    return statistic, U, V


def _table(frame, upper, codes, levels, parts) -> pd.DataFrame:
    psi = np.zeros(len(frame))
    for part in parts:
        psi[part.rows] = part.psi
    events = np.isfinite(frame[upper].to_numpy("float64")).astype(float)
    score = np.bincount(codes, psi, len(levels))
    observed = np.bincount(codes, events, len(levels))
    return pd.DataFrame({"n": np.bincount(codes, minlength=len(levels)), "events": observed,
                         "expected": observed - score, "observed_minus_expected": score},
                        index=pd.Index(levels, name="group"))


def _permutation_batch(shared, seeds) -> list[float]:
    parts, codes, k, stratum, clusters = shared
    out = []
    for sequence in seeds:
        rng = np.random.default_rng(sequence)
        shuffled = codes.copy()
        for s in np.unique(stratum):
            where = np.flatnonzero(stratum == s)
            shuffled[where] = rng.permutation(codes[where])
        out.append(_statistic(parts, shuffled, k, clusters)[0])
    return out
