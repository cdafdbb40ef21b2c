"""The one result base of regen's fitted parametric models.

Every fitted model (:class:`~regen.RecoveryFit`, :class:`~regen.RegenerationFit`,
:class:`~regen.TrajectoryFit`, :class:`~regen.ProbabilityFit`) is a
:class:`FitResult`: its estimates ``params`` and their ``covariance`` give
``bse``, ``conf_int(alpha)``, ``p_values()``, the coefficient table
(:meth:`FitResult.coef_table`, the one place it is built; ``summary`` is it at
the fit's level) and delta-method standard errors (:meth:`FitResult.delta_se`).
A result shows itself: :meth:`FitResult.to_text` in a terminal,
``_repr_html_`` in a notebook.

Saving: each result class names its model-file kind when it is declared
(``class RecoveryFit(FitResult, kind="RecoveryFit")``) and writes its content
with ``document()``; :func:`load_model` finds the class by the file's kind in
that registry, so this module imports no model.
"""

from __future__ import annotations

import html
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pandas as pd
from scipy import stats

from regen.serialize import ModelFileError, read_model_file, write_model_file

__all__ = ["FitResult", "ScaledFit", "check_probabilities", "load_model"]

#: The columns of every coefficient table, in order (whatever alpha is).
COEF_COLUMNS = ("estimate", "std_err", "ci_lower", "ci_upper", "p_value")


class FitResult:
    """What every fitted parametric model shares.

    Attributes
    ----------
    params : Series
        The estimates.
    covariance : DataFrame
        Their covariance (model-based, or cluster-robust with ``cluster=``).
    design : regen.design.Design
        The fitted formula: it rebuilds the covariates for new profiles, knows the
        levels and which covariates were yes/no, and is saved with the model.
    reference_df : int or None
        Degrees of freedom of the Student t reference of intervals and p-values
        (G - 1 with a cluster-robust covariance over G clusters); None: the normal.
    """

    #: The model-file kind of a result class, set by ``kind=`` where it is declared.
    kind: ClassVar[str]
    #: Every result class by its kind (:func:`load_model` reads it).
    kinds: ClassVar[dict[str, type[FitResult]]] = {}
    #: Name of the exp(estimate) columns of the coefficient table ("time_ratio": columns
    #: ``time_ratio, time_ratio_ci_lower, time_ratio_ci_upper``), or None for none.
    ratio: ClassVar[str | None] = None
    #: Parameters that are no coefficient and get no ratio (``log_scale``).
    not_coefficients: ClassVar[tuple[str, ...]] = ()

    #: What :meth:`effects` measures, as a forest plot's axis names it.
    effect_name: ClassVar[str] = "Effect"

    params: pd.Series
    covariance: pd.DataFrame
    design: Any
    reference_df: int | None = None
    loglik: float = float("nan")
    #: The fit's level is 1 - alpha: ``summary`` and :meth:`effects` use it.
    alpha: float = 0.05

    def __init_subclass__(cls, *, kind: str | None = None, **options):
        super().__init_subclass__(**options)
        if kind is not None:
            if kind in FitResult.kinds:
                raise TypeError(f"two result classes declare the model-file kind {kind!r}")
            cls.kind = kind
            FitResult.kinds[kind] = cls

    @property
    def yes_no(self) -> tuple[str, ...] | None:
        """The covariates that were yes/no columns in the data fitted to (None: not known,
        a model file from an older regen); a prediction takes only yes/no words for them."""
        return self.design.yes_no

    @property
    def model_spec(self):
        """formulaic's spec of the fitted covariates (``design.spec``)."""
        return self.design.spec

    # ------------------------------------------------------------ inference --
    @property
    def bse(self) -> pd.Series:
        """Standard errors, the square roots of the covariance's diagonal."""
        return pd.Series(np.sqrt(np.diag(self.covariance)), index=self.params.index)

    def critical_value(self, alpha: float) -> float:
        """The two-sided 1 - alpha quantile of the reference (t on ``reference_df``, or normal)."""
        if self.reference_df is None:
            return float(stats.norm.ppf(1 - alpha / 2))
        return float(stats.t.ppf(1 - alpha / 2, self.reference_df))

    def p_values(self) -> pd.Series:
        """Two-sided Wald p-values against the same reference as the intervals."""
        statistic = np.abs(self.params / self.bse)
        reference = stats.norm if self.reference_df is None else stats.t(self.reference_df)
        return pd.Series(2 * reference.sf(statistic), index=self.params.index)

    def conf_int(self, alpha: float = 0.05) -> pd.DataFrame:
        """Wald intervals, ``ci_lower, ci_upper``, at level 1 - alpha."""
        z = self.critical_value(alpha)
        return pd.DataFrame({"ci_lower": self.params - z * self.bse,
                             "ci_upper": self.params + z * self.bse})

    def coef_table(self, alpha: float = 0.05) -> pd.DataFrame:
        """One row per parameter: ``estimate, std_err, ci_lower, ci_upper, p_value`` at level
        1 - alpha, and for models with a ratio scale (``time_ratio``, ``odds_ratio``) the
        exp of the estimate and of the interval's ends."""
        table = pd.DataFrame({"estimate": self.params, "std_err": self.bse,
                              **self.conf_int(alpha), "p_value": self.p_values()})
        if self.ratio is not None:
            with np.errstate(over="ignore"):        # an unbounded interval: up to inf
                ratios = np.exp(table[["estimate", "ci_lower", "ci_upper"]])
            ratios.loc[ratios.index.isin(self.not_coefficients)] = np.nan
            table[self.ratio] = ratios["estimate"]
            table[f"{self.ratio}_ci_lower"] = ratios["ci_lower"]
            table[f"{self.ratio}_ci_upper"] = ratios["ci_upper"]
        return table

    @property
    def summary(self) -> pd.DataFrame:
        """:meth:`coef_table` at the fit's level, 1 - ``alpha`` (95% unless the fit was
        asked for another)."""
        return self.coef_table(self.alpha)

    @property
    def effects_are_ratios(self) -> bool:
        """Whether :meth:`effects` are ratios (drawn on a log axis, 1 meaning no effect)."""
        return self.ratio is not None

    def effects(self, alpha: float | None = None) -> pd.DataFrame:
        """Each covariate's effect with its interval, ``estimate, ci_lower, ci_upper``, on the
        scale a reader compares (time or odds ratios where the model has them), without the
        intercept or the scale: what a forest plot draws. At 1 - ``alpha`` (default the
        fit's level)."""
        table = self.coef_table(self.alpha if alpha is None else alpha)
        table = table.drop(index=["Intercept", *self.not_coefficients], errors="ignore")
        if self.ratio is None:
            return table[["estimate", "ci_lower", "ci_upper"]]
        columns = [self.ratio, f"{self.ratio}_ci_lower", f"{self.ratio}_ci_upper"]
        return table[columns].set_axis(["estimate", "ci_lower", "ci_upper"], axis=1)

    def delta_se(self, jacobian: np.ndarray, names=None) -> np.ndarray:
        """Delta-method standard errors of functions of the parameters: one per row of
        ``jacobian`` (its columns the parameters ``names``, default all, in order)."""
        cov = self.covariance if names is None else self.covariance.loc[names, names]
        return np.sqrt(np.einsum("ij,jk,ik->i", jacobian, cov.to_numpy(), jacobian))

    # ------------------------------------------------------------- showing --
    def to_text(self, alpha: float | None = None) -> str:
        """The result as a terminal shows it: one line on the fit, then its coefficient
        table (``summary``, or :meth:`coef_table` at ``alpha``)."""
        table = self.summary if alpha is None else self.coef_table(alpha)
        with pd.option_context("display.width", 120, "display.max_columns", None):
            body = table.to_string(float_format=lambda v: f"{v:.4g}")
        return f"{self!r}\n{body}"

    def _repr_html_(self) -> str:
        """The coefficient table as an HTML table for notebooks; every name escaped."""
        table = self.summary
        head = "".join(f"<th>{html.escape(str(name))}</th>" for name in table.columns)
        rows = "".join(
            f"<tr><th>{html.escape(str(name))}</th>"
            + "".join(f"<td>{value:.4g}</td>" for value in values) + "</tr>"
            for name, values in zip(table.index, table.to_numpy(dtype="float64"), strict=True))
        return (f"<p>{html.escape(repr(self))}</p><table><thead><tr><th></th>{head}</tr>"
                f"</thead><tbody>{rows}</tbody></table>")

    # -------------------------------------------------------------- saving --
    def document(self) -> dict:
        """The model file's content (JSON-ready) for this result's kind."""
        raise NotImplementedError

    @classmethod
    def from_document(cls, document: dict) -> FitResult:
        """The result a model file of this kind holds (``document`` as
        :func:`~regen.serialize.read_model_file` returns it)."""
        raise NotImplementedError

    def save(self, path, *, force: bool = False) -> Path:
        """Write the model to a JSON file (never pickle); read it with :func:`regen.load_model`.

        The file holds the formula, the estimates and their covariance, and what is
        needed to build covariates for new profiles (categorical levels, spline
        knots, which covariates are yes/no). The write is atomic; a file at ``path``
        that regen did not write is refused with
        :class:`~regen.exceptions.OutputError` unless ``force=True``.
        """
        return write_model_file(path, self.kind, self.document(), force=force)


class ScaledFit(FitResult):
    """A result with a ``log_scale`` parameter (the AFT and kinetics fits)."""

    not_coefficients = ("log_scale",)

    @property
    def scale(self) -> float:
        """sigma, exp of the ``log_scale`` parameter."""
        return float(np.exp(self.params["log_scale"]))


def check_probabilities(q) -> np.ndarray:
    """Quantile levels as an array, each strictly between 0 and 1."""
    q = np.atleast_1d(np.asarray(q, dtype="float64"))
    if not ((q > 0) & (q < 1)).all():
        raise ValueError(f"quantiles must lie strictly between 0 and 1, got {q.tolist()}")
    return q


def load_model(path: str | Path) -> FitResult:
    """Load a model saved with ``fit.save(path)``.

    Parameters
    ----------
    path : str or Path
        A JSON model file.

    Returns
    -------
    RecoveryFit, RegenerationFit, TrajectoryFit or ProbabilityFit
        The fitted model, ready to predict.

    Raises
    ------
    ModelFileError
        The file is missing, too large, not strict JSON, nested too deeply, not a
        regen model, of another schema version, or damaged or unsafe: a field
        missing or of the wrong type, a number that is not finite, a covariance
        that is not one, a formula outside the safe subset
        (:func:`regen.design.check_formula`), a design too large. The message
        names the file.

    Examples
    --------
    >>> model = regen.load_model("relief.json")  # doctest: +SKIP
    """
    document = read_model_file(path)
    kind = document.get("kind")
    kinds = FitResult.kinds
    if not isinstance(kind, str) or kind not in kinds:
        raise ModelFileError(f"{path}: unknown model kind {str(kind)[:40]!r}; known: "
                             f"{', '.join(sorted(kinds))}")
    try:
        return kinds[kind].from_document(document)
    except ModelFileError as error:
        raise ModelFileError(f"{path}: {error}") from None
    except Exception as error:
        raise ModelFileError(f"{path} is damaged ({type(error).__name__}: {str(error)[:300]}); "
                             "save the model again") from None
