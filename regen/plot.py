"""Figures: recovery curves with an at-risk table, trajectories, forest and calibration plots,
and the cohort's flow diagram.

Every function takes the data or result first and everything else by keyword, draws
on ``ax`` (a new figure when ``None``) and returns the Axes. Each nerve has one colour
everywhere (:func:`colours`). The regen style is applied through :func:`style`, a
context manager, while a figure is drawn; importing regen changes no matplotlib
setting. :func:`save` writes a figure as PNG and SVG.

>>> with regen.plot.style():  # doctest: +SKIP
...     ax = regen.plot.recovery(np_fit, ylabel="Still relieved")
>>> regen.plot.save(ax, "relief_by_nerve")  # doctest: +SKIP
"""

from __future__ import annotations

import re
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pandas as pd

from regen._write import literal
from regen.design import typical_value
from regen.plot_flow import draw_flow
from regen.results import FitResult
from regen.tables import KNOWN_NERVES, VISITS

__all__ = ["at_risk_table", "calibration", "colours", "flow", "forest", "power", "recovery",
           "recovery_panels", "save", "sensitivity", "style", "trajectories"]

#: Journal single-column width, inches.
WIDTH = 3.5
_RC = {
    "font.size": 8, "axes.titlesize": 9, "axes.labelsize": 8, "xtick.labelsize": 7,
    "ytick.labelsize": 7, "legend.fontsize": 7, "legend.frameon": False,
    "axes.spines.top": False, "axes.spines.right": False, "lines.linewidth": 1.3,
    "figure.dpi": 150, "savefig.dpi": 300, "savefig.bbox": "tight", "svg.fonttype": "none",
    "font.family": "sans-serif", "font.sans-serif": ["DejaVu Sans", "Arial", "Helvetica"],
    # Text comes from the data (nerve names): draw it as written, never as math.
    "text.parse_math": False,
}


@contextmanager
def style():
    """regen's figure style (seaborn 'ticks', journal font sizes) for the block inside."""
    import matplotlib as mpl
    import seaborn as sns

    with mpl.rc_context(), sns.axes_style("ticks"):
        mpl.rcParams.update(_RC)
        yield


#: More groups than this are drawn as small multiples (:func:`recovery_panels`) by the
#: report and the demo: in one panel their bands would cover each other.
PANELS_ABOVE = 4
#: Paul Tol's "muted" scheme: nine hues that stay apart for colour-blind readers and in
#: greyscale print, in the order of :data:`regen.tables.KNOWN_NERVES` (the most treated
#: nerves take the darkest), then darker shades for other names.
PALETTE = ("#332288", "#CC6677", "#117733", "#882255", "#44AA99", "#999933", "#AA4499",
           "#88CCEE", "#DDCC77")
_EXTRA = ("#1b1b1b", "#5a3d00", "#3b5b1a", "#5c2a5c", "#174a5c", "#6b1a1a")


def colours(groups) -> dict:
    """One colour per nerve (or any group), the same in every figure.

    The known nerves take fixed colours of a colour-blind-safe scheme (:data:`PALETTE`),
    in the order of :data:`regen.tables.KNOWN_NERVES`; other names follow in sorted order.
    """
    palette = list(PALETTE) + list(_EXTRA)
    fixed = {name: palette[i] for i, name in enumerate(KNOWN_NERVES)}
    others = sorted({str(g) for g in groups} - set(fixed))
    extra = palette[len(KNOWN_NERVES):]
    out = {}
    for group in groups:
        name = str(group)
        out[group] = fixed[name] if name in fixed else extra[others.index(name) % len(extra)]
    return out


def _label(group) -> str:
    """A group's name as drawn: underscores as spaces, control characters escaped."""
    if isinstance(group, tuple):
        return ", ".join(_label(g) for g in group)
    return literal(str(group).replace("_", " "))


def _axes(ax, height: float = 2.6, width: float = WIDTH):
    import matplotlib.pyplot as plt

    if ax is not None:
        return ax
    _, ax = plt.subplots(figsize=(width, height), layout="constrained")
    return ax


def _day_ticks(top: float) -> np.ndarray:
    """Every 4 weeks up to ~7 months, then every 8 or 13 weeks."""
    step = 28.0 if top <= 210 else 56.0 if top <= 420 else 91.0
    return np.arange(0, top + 1e-9, step)


def _week_ticks(top: float) -> np.ndarray:
    """Every 4 weeks up to about a year, then every 8 or 13 weeks (in days)."""
    step = 28.0 if top <= 400 else 56.0 if top <= 800 else 91.0
    return np.arange(0, top + 1e-9, step)


def _group_columns(np_fit) -> list[str]:
    return list(np_fit.by) if np_fit.by is not None else []


def _group_key(frame: pd.DataFrame, columns: list[str]):
    if not columns:
        return pd.Series(["all"] * len(frame), index=frame.index)
    if len(columns) == 1:
        return frame[columns[0]]
    return pd.Series(list(zip(*(frame[c] for c in columns), strict=True)), index=frame.index)


def at_risk_table(np_fit, times) -> pd.DataFrame:
    """The counts under a recovery curve: ``time, at_risk, event, censored, undetermined``.

    See :meth:`regen.TurnbullFit.at_risk` for how interval-censored episodes are
    counted (``at_risk``: known to be still numb / relieved at that day).
    """
    return np_fit.at_risk(times)


def recovery(np_fit, parametric=None, *, profiles: pd.DataFrame | None = None, ax=None,
             complement: bool = False, ci: bool = True, at_risk: bool = True, times=None,
             max_day: float | None = None, ylabel: str = "Proportion still numb",
             xlabel: str | None = None, legend: bool = True,
             at_risk_below: int | None = None, weeks: bool = False, **kwargs):
    """NPMLE recovery curves by group, with CI bands, an optional model overlay and at-risk counts.

    Parameters
    ----------
    np_fit : TurnbullFit
        From :func:`regen.turnbull` (``n_bootstrap`` > 0 for CI bands).
    parametric : RecoveryFit, optional
        Drawn dashed over each group, at ``profiles`` (one row per group, with
        the group column); by default each group's own value of the group
        column, which suffices for ``fit_recovery("~ nerve", ...)``. A model with
        more covariates needs ``profiles``, e.g.
        ``parametric.design.typical_profiles(episodes, "nerve", np_fit.groups)``.
    complement : bool, default False
        Draw 1 − S(t) (the share recovered, or whose relief has ended).
    ci : bool, default True
        Shade the pointwise 95% bootstrap interval.
    at_risk : bool, default True
        A table under the axes: treatments known to be still event-free at
        each tick (:meth:`regen.TurnbullFit.at_risk`).
    times : sequence of float, optional
        The ticks (days) of the axis and the table; by default every 4 weeks (every 8 or
        13 beyond seven months).
    weeks : bool, default False
        Label the time axis in weeks (ticks on whole weeks, ``xlabel`` "Weeks after the
        freeze"), as a report for patients does; the data stay in days.
    at_risk_below : int, optional
        Show an at-risk count from 1 to below this number as ``<n`` (a count of one or two
        treatments, published, could point to a patient); the practice report uses its
        ``min_patients``.
    **kwargs
        Passed to matplotlib's ``plot`` for each group's curve (``linewidth=2``,
        ``drawstyle="steps-post"``, ...; ``color`` replaces the palette).
    """
    with style():
        columns = _group_columns(np_fit)
        ax = _axes(ax, height=2.8, width=WIDTH if len(np_fit.groups) <= 3 else 2 * WIDTH)
        curve = np_fit.to_frame()
        curve["_group"] = _group_key(curve, columns)
        top = max_day or float(np.nanmax(curve.loc[np.isfinite(curve["time"]), "time"]))
        grid = np.linspace(0, top, 240)
        band = np_fit.survival_at(grid)
        band["_group"] = _group_key(band, columns)
        groups = list(dict.fromkeys(curve["_group"]))
        palette = colours(groups)
        flip = (lambda s: 1 - s) if complement else (lambda s: s)
        for group in groups:
            part = band.loc[band["_group"] == group]
            colour = palette[group]
            ax.plot(part["time"], flip(part["survival"]),
                    **{"color": colour, "label": _label(group), **kwargs})
            if ci and "ci_lower" in part.columns:
                low, high = flip(part["ci_lower"]), flip(part["ci_upper"])
                ax.fill_between(part["time"], np.minimum(low, high), np.maximum(low, high),
                                color=colour, alpha=0.15, linewidth=0, step=None)
        if parametric is not None:
            _overlay(ax, parametric, profiles, columns, groups, grid, palette, flip)
        ax.set_xlim(0, top)
        ax.set_ylim(0, 1.02)
        ax.set_xlabel(xlabel or ("Weeks after the freeze" if weeks else "Days after the freeze"))
        ax.set_ylabel(ylabel)
        default = _week_ticks(top) if weeks else _day_ticks(top)
        ticks = np.asarray(times if times is not None else default, dtype="float64")
        ax.set_xticks(ticks, [f"{t / 7:g}" for t in ticks] if weeks else None)
        if legend and (len(groups) > 1 or parametric is not None):
            ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), handlelength=1.4)
        if at_risk:
            _draw_at_risk(ax, np_fit, ticks, columns, groups, palette, at_risk_below)
        return ax


def recovery_panels(np_fit, parametric=None, *, profiles: pd.DataFrame | None = None,
                    complement: bool = False, ci: bool = True, max_day: float | None = None,
                    ylabel: str = "Proportion still numb", weeks: bool = False, columns: int = 3,
                    **kwargs):
    """One panel per group (shared axes): the small multiples regen draws for more than four
    groups, where curves in one panel would cover each other's bands.

    Each panel draws its group's NPMLE with its 95% band (and the model at ``profiles``, as
    :func:`recovery` does) over the other groups' curves in light grey, and names the group
    with its number of episodes (n). ``**kwargs`` go to matplotlib's ``plot`` for each curve.
    Returns the Figure (``regen.plot.save`` takes it).
    """
    import matplotlib.pyplot as plt

    group_columns = _group_columns(np_fit)
    curve = np_fit.to_frame()
    top = max_day or float(np.nanmax(curve.loc[np.isfinite(curve["time"]), "time"]))
    grid = np.linspace(0, top, 240)
    band = np_fit.survival_at(grid)
    band["_group"] = _group_key(band, group_columns)
    groups = list(dict.fromkeys(_group_key(curve, group_columns)))
    palette = colours(groups)
    flip = (lambda v: 1 - v) if complement else (lambda v: v)
    rows = -(-len(groups) // columns)
    with style():
        figure, axes = plt.subplots(rows, columns, figsize=(2 * WIDTH, 1.55 * rows + 0.4),
                                    sharex=True, sharey=True, layout="constrained",
                                    squeeze=False)
        ticks = _week_ticks(top) if weeks else _day_ticks(top)
        ticks = ticks[::2] if len(ticks) > 8 else ticks       # a small panel holds fewer
        for ax, group in zip(axes.flat, groups, strict=False):
            for other in groups:
                part = band.loc[band["_group"] == other]
                if other != group:
                    ax.plot(part["time"], flip(part["survival"]), color="0.85", linewidth=0.7)
            part = band.loc[band["_group"] == group]
            ax.plot(part["time"], flip(part["survival"]),
                    **{"color": palette[group], "linewidth": 1.4, **kwargs})
            if ci and "ci_lower" in part.columns:
                low, high = flip(part["ci_lower"]), flip(part["ci_upper"])
                ax.fill_between(part["time"], np.minimum(low, high), np.maximum(low, high),
                                color=palette[group], alpha=0.2, linewidth=0)
            if parametric is not None:
                _overlay(ax, parametric, _panel_profiles(profiles, group_columns, group),
                         group_columns, [group], grid, palette, flip)
            n = np_fit.n.get(group, None) if hasattr(np_fit.n, "get") else None
            ax.set_title(_label(group) + (f" (n={int(n)})" if n is not None else ""),
                         loc="left", fontsize=7, color="0.1")
            ax.set_xticks(ticks, [f"{t / 7:g}" for t in ticks] if weeks else None)
        for i, ax in enumerate(axes.flat):
            if i >= len(groups):
                ax.axis("off")
            elif i + columns >= len(groups):      # nothing drawn below it: label its axis
                ax.xaxis.set_tick_params(labelbottom=True)
        from matplotlib.lines import Line2D
        key = [Line2D([], [], color="0.2", linewidth=1.4, label="NPMLE, 95% band"),
               Line2D([], [], color="0.85", linewidth=0.7, label="the other groups")]
        if parametric is not None:
            name = getattr(parametric, "dist_label", "")
            key.append(Line2D([], [], color="0.2", linestyle="--", linewidth=0.9,
                              label=f"{name} model".strip()))
        spare = list(axes.flat)[len(groups):]
        (spare[0] if spare else figure).legend(handles=key, loc="center" if spare else "outside "
                                               "lower center", frameon=False, fontsize=7)
        axes.flat[0].set_xlim(0, top)
        axes.flat[0].set_ylim(0, 1.02)
        figure.supxlabel("Weeks after the freeze" if weeks else "Days after the freeze",
                         fontsize=8)
        figure.supylabel(ylabel, fontsize=8)
    return figure


def _panel_profiles(profiles, columns, group):
    if profiles is None:
        return None
    key = columns[0]
    return profiles.loc[profiles[key] == group].reset_index(drop=True)


def _overlay(ax, parametric, profiles, columns, groups, grid, palette, flip):
    if profiles is None:
        if len(columns) != 1:
            raise ValueError("give profiles= (one row per group) to overlay the model")
        others = sorted(set(parametric.design.variables) - set(columns))
        if others:
            raise ValueError(
                f"the model also has {', '.join(others)}, which the curves by {columns[0]} do not "
                f"set: give profiles= with one row per {columns[0]} and a value for each (e.g. "
                f"model.design.typical_profiles(episodes, {columns[0]!r}, np_fit.groups) sets "
                f"each at its median or most common value), or overlay a model of "
                f"'~ {columns[0]}' only")
        profiles = pd.DataFrame({columns[0]: groups})
    times = grid[grid > 0]
    predicted = parametric.predict_survival(profiles.reset_index(drop=True), times=times)
    key = columns[0] if len(columns) == 1 else None
    for i, group in enumerate(groups):
        if key is not None:
            rows = predicted.loc[predicted[key] == group]
        else:
            rows = predicted.iloc[i * len(times):(i + 1) * len(times)]
        ax.plot(rows["time"], flip(rows["estimate"]), color=palette[group], linestyle="--",
                linewidth=0.9)
    ax.plot([], [], color="0.3", linestyle="--", linewidth=0.9,
            label=f"{parametric.dist_label} model" if hasattr(parametric, "dist_label")
            else "model")


def _draw_at_risk(ax, np_fit, ticks, columns, groups, palette, smallest: int | None = None):
    table = np_fit.at_risk(ticks)
    table["_group"] = _group_key(table, columns)
    n = len(groups)
    height = 0.075 * (n + 1)
    table_axes = ax.inset_axes([0, -0.22 - height, 1, height], sharex=ax)
    table_axes.set_ylim(n + 0.5, -0.5)
    table_axes.axis("off")
    label_at = table_axes.get_yaxis_transform()
    table_axes.text(-0.05, -0.5, "At risk", transform=label_at, ha="right", va="center",
                    fontsize=7, fontweight="bold")
    for row, group in enumerate(groups):
        counts = table.loc[table["_group"] == group]
        # Dark text, keyed to its curve by a mark in the curve's colour.
        table_axes.text(-0.05, row + 0.5, _label(group), transform=label_at, ha="right",
                        va="center", fontsize=6.5, color="0.1")
        table_axes.plot([-0.03], [row + 0.5], transform=label_at, marker="s", markersize=4,
                        color=palette[group], clip_on=False, linestyle="none")
        for t, count in zip(counts["time"], counts["at_risk"], strict=True):
            shown = f"<{smallest}" if smallest and 0 < count < smallest else f"{count:g}"
            table_axes.text(t, row + 0.5, shown, ha="center", va="center", fontsize=6.5)
    return table_axes


def trajectories(fit, data: pd.DataFrame, *, profile: dict | None = None, time: str = "day",
                 ax=None, n_patients: int = 60, seed: int = 0, ylabel: str | None = None,
                 xlabel: str = "Days after the freeze", colour=None,
                 threshold: float | None = None, threshold_label: str = "threshold", **kwargs):
    """Patients' scores as thin lines, with the fitted population mean and its 95% band.

    Parameters
    ----------
    fit : TrajectoryFit
    data : DataFrame
        The measurements the model was fitted to (``fit.groups``, ``time`` and
        the response).
    profile : dict, optional
        Covariates of the mean curve; by default each at its median (numbers)
        or most common value in ``data``.
    n_patients : int, default 60
        How many patients' lines to draw (a seeded random sample), so that the
        figure stays readable. Each treated nerve (``treatment_id`` when the data
        have it) is one line; the legend says how many patients of how many.
    threshold : float, optional
        A level to draw as a dashed line (the level whose crossing day is reported),
        named ``threshold_label`` in the legend.
    **kwargs
        Passed to matplotlib's ``plot`` for the population mean (``linewidth=3``,
        ``linestyle="--"``, ...).

    A score the visits table declares with a range (pain and numbness, 0–10) is drawn
    on its whole scale.
    """
    with style():
        own = ax is None
        ax = _axes(ax, height=3.0)
        response, groups = fit.response, fit.groups
        rng = np.random.default_rng(seed)
        ids = data[groups].dropna().unique()
        shown = rng.choice(ids, size=min(n_patients, len(ids)), replace=False)
        line_by = "treatment_id" if "treatment_id" in data.columns else groups
        for _, rows in data.loc[data[groups].isin(shown)].sort_values(time).groupby(line_by):
            ax.plot(rows[time], rows[response], color="0.55", linewidth=0.4, alpha=0.5)
        lo, hi = float(data[time].min()), float(data[time].max())
        grid = pd.DataFrame({time: np.linspace(lo, hi, 200)})
        for name in sorted(set(fit.design.variables) - {time}):
            grid[name] = profile[name] if profile is not None and name in profile \
                else typical_value(data[name])
        mean = fit.predict(grid)
        line = colour or "#0173b2"
        ax.fill_between(mean[time], mean["ci_lower"], mean["ci_upper"], color=line, alpha=0.25,
                        linewidth=0)
        ax.plot(mean[time], mean["estimate"], **{"color": line, "linewidth": 1.8,
                                                 "label": "population mean (95% CI)", **kwargs})
        if threshold is not None:
            ax.axhline(threshold, color="0.2", linewidth=0.9, linestyle="--",
                       label=threshold_label)
        ax.plot([], [], color="0.55", linewidth=0.6,
                label=f"one treated nerve ({len(shown)} of {len(ids)} patients shown)")
        declared = VISITS[response] if response in VISITS.names else None
        if declared is not None and declared.minimum is not None and declared.maximum is not None:
            ax.set_ylim(declared.minimum - 0.2, declared.maximum + 0.2)
        ax.set_xlim(lo, hi)
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel or response.replace("_", " ") + (
            f" ({declared.minimum:g}–{declared.maximum:g})" if declared is not None and
            declared.maximum is not None else ""))
        ax.set_xticks(_day_ticks(hi))
        ax.set_xlim(lo, hi)
        if own:   # under the axes, not on the lines
            ax.figure.legend(*ax.get_legend_handles_labels(), loc="outside lower center",
                             ncols=2, fontsize=6.5)
        else:
            ax.legend(loc="best")
        return ax


def forest(fit, *, ax=None, terms=None, title: str | None = None, **kwargs):
    """Effects with 95% CIs: time ratios (AFT), velocity ratios, odds ratios, or coefficients.

    Ratios are drawn on a log axis around 1; a mixed model's coefficients on a
    linear axis around 0. ``**kwargs`` go to matplotlib's ``errorbar``
    (``color="C3"``, ``markersize=5``, ...).
    """
    table, label, ratio = _effects(fit)
    if terms is not None:
        table = table.loc[list(terms)]
    with style():
        ax = _axes(ax, height=0.35 + 0.22 * max(len(table), 1))
        y = np.arange(len(table))[::-1]
        estimate, low, high = (table[c].to_numpy(dtype="float64")   # arrays: matplotlib
                               for c in ("estimate", "ci_lower", "ci_upper"))  # reads a Series
        ax.errorbar(estimate, y, xerr=[estimate - low, high - estimate],
                    **{"fmt": "o", "color": "0.15", "markersize": 3.5, "capsize": 2,
                       "linewidth": 1, **kwargs})
        ax.axvline(1.0 if ratio else 0.0, color="0.5", linewidth=0.8, linestyle=":")
        yes_no = set(getattr(fit, "yes_no", None) or ())
        ax.set_yticks(y, [_term_label(t, yes_no) for t in table.index])
        ax.set_ylim(-0.7, len(table) - 0.3)      # no row sits on the axis
        if ratio:
            ax.set_xscale("log")
            from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter
            ax.xaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
            ax.xaxis.set_minor_locator(LogLocator(base=10, subs=np.arange(1, 10) * 1.0))
            ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
            ax.xaxis.set_minor_formatter(NullFormatter())
        ax.set_xlabel(label)
        ax.spines["left"].set_visible(False)
        ax.tick_params(axis="y", length=0)
        references = _references(fit, table.index)
        if references:
            ax.annotate("Compared with " + "; ".join(references), xy=(0, 0),
                        xycoords="axes fraction", xytext=(0, -30), textcoords="offset points",
                        fontsize=6.5, color="0.3", va="top")
        if title:
            ax.set_title(title, loc="left")
        return ax


def _references(fit, terms) -> list[str]:
    """"nerve anterior femoral cutaneous": the reference level of each categorical covariate
    whose levels the forest draws (read from the fitted design)."""
    design = getattr(fit, "design", None)
    if design is None:
        return []
    shown = {str(t).split("[T.", 1)[0] for t in terms if "[T." in str(t)}
    return [literal(f"{name.replace('_', ' ')} {levels[0].replace('_', ' ')}")
            for name, levels in design.levels.items() if name in shown or
            any(key.endswith(f"{name})") or key.startswith(f"C({name}") for key in shown)]


def sensitivity(table: pd.DataFrame, *, ax=None, title: str | None = None, **kwargs):
    """Distance-error sensitivity: each parameter as fitted and SIMEX-corrected, by error SD.

    ``table`` is :meth:`RegenerationFit.sensitivity`'s. One line per parameter
    shows how far the SIMEX correction moves it, as a percentage change of the
    velocity or a velocity ratio (``log_*`` parameters, ``exp(shift) - 1``) and
    in days for the lag (right-hand axis); an error SD of 0 is the fit itself.
    ``**kwargs`` go to matplotlib's ``plot`` for every line (``linewidth=2``, ...).

    Examples
    --------
    >>> ax = regen.plot.sensitivity(kin.sensitivity(distance_error=[0.05, 0.1, 0.2]))  # doctest: +SKIP
    """
    needed = {"distance_error", "parameter", "shift"}
    if not isinstance(table, pd.DataFrame) or not needed <= set(table.columns):
        raise ValueError("table must be RegenerationFit.sensitivity()'s, with columns "
                         "distance_error, parameter, shift")
    with style():
        ax = _axes(ax)
        lag_ax = None
        for parameter, part in table.groupby("parameter", sort=False):
            part = part.sort_values("distance_error")
            x = np.r_[0.0, part["distance_error"].to_numpy(dtype="float64") * 100]
            shift = part["shift"].to_numpy(dtype="float64")
            name = str(parameter)
            if name == "lag":
                lag_ax = lag_ax or ax.twinx()
                lag_ax.plot(x, np.r_[0.0, shift], **{
                    "marker": "s", "markersize": 3, "color": "0.45", "linestyle": "--",
                    "label": "lag (days, right axis)", **kwargs})
                lag_ax.set_ylabel("SIMEX shift of the lag (days)")
                continue
            label = "velocity" if name == "log_velocity" else \
                "velocity ratio, " + name.removeprefix("log_ratio:")
            ax.plot(x, np.r_[0.0, np.expm1(shift) * 100], **{
                "marker": "o", "markersize": 3, "label": literal(label.replace("_", " ")),
                **kwargs})
        ax.axhline(0.0, color="0.5", linewidth=0.8, linestyle=":")
        ax.set_xlabel("Assumed error in distance (SD, %)")
        ax.set_ylabel("SIMEX shift (%)")
        handles, labels = ax.get_legend_handles_labels()
        if lag_ax is not None:
            extra = lag_ax.get_legend_handles_labels()
            handles, labels = handles + extra[0], labels + extra[1]
        ax.legend(handles, labels, loc="best")
        if title:
            ax.set_title(literal(title), loc="left")
        return ax


_POWER_MEASURES = {"power": "Power", "type_i_error": "Type-I error",
                   "median_ci_width": "Median CI width", "coverage": "CI coverage",
                   "rmse": "RMSE", "bias": "Bias"}


def power(result, *, measure: str = "power", x: str = "n_patients", by: str | None = None,
          target: float | None = None, ax=None, title: str | None = None, **kwargs):
    """A plan's power (or CI width, coverage, ...) against sample size, one line per design.

    ``result`` is :func:`regen.plan`'s :class:`~regen.planning.PlanResult` (or its
    ``table``). Each point has an error bar of two Monte-Carlo standard errors; ``by``
    (default: the other grid key, when there is one) gives one line per value, and the
    remaining grid keys must then be fixed. ``target`` draws a reference line (0.8 for
    power, ``alpha`` for a type-I error). ``**kwargs`` go to matplotlib's ``errorbar``.

    Examples
    --------
    >>> ax = regen.plot.power(result, target=0.8)  # doctest: +SKIP
    """
    if measure not in _POWER_MEASURES:
        raise ValueError(f"measure must be one of {', '.join(_POWER_MEASURES)}, not {measure!r}")
    table = getattr(result, "table", result)
    if not isinstance(table, pd.DataFrame) or measure not in table.columns:
        raise ValueError(f"result must be a PlanResult or its table, with a {measure!r} column")
    if x not in table.columns:
        raise ValueError(f"the plan's table has no column {x!r} to draw along: give x= one of "
                         "its grid keys (the grid must vary it)")
    grid = [c for c in table.columns[1:table.columns.get_loc("truth")] if c != x]
    by = by if by is not None else (grid[0] if len(grid) == 1 else None)
    fixed = [c for c in grid if c != by]
    varying = [c for c in fixed if table[c].astype(str).nunique() > 1]
    if varying:
        raise ValueError(f"the grid also varies {', '.join(varying)}: draw one of its values at a "
                         f"time (result.table[result.table[{varying[0]!r}] == ...]) or give by=")
    se = f"{measure}_se"
    with style():
        ax = _axes(ax)
        groups = table.groupby(by, sort=False) if by else [(None, table)]
        for value, part in groups:
            part = part.sort_values(x)
            errors = 2 * part[se] if se in part.columns else None
            label = None if by is None else _label(f"{by}: {value}")
            ax.errorbar(part[x].to_numpy(dtype="float64"), part[measure].to_numpy(dtype="float64"),
                        yerr=None if errors is None else errors.to_numpy(dtype="float64"),
                        **{"marker": "o", "markersize": 3, "capsize": 2, "label": label,
                           **kwargs})
        if target is not None:
            ax.axhline(target, color="0.5", linewidth=0.8, linestyle=":")
        ax.set_xlabel(_label(x))
        ax.set_ylabel(_POWER_MEASURES[measure])
        if measure in ("power", "type_i_error", "coverage"):
            ax.set_ylim(0, 1.02)
        if by is not None:
            ax.legend(loc="lower right" if measure == "power" else "best")
        if title:
            ax.set_title(literal(title), loc="left")
        return ax


#: The unit of a covariate whose effect is per unit, singular and plural.
UNITS = {"age": ("year", "years"), "bmi": ("kg/m²", "kg/m²"), "distance_mm": ("mm", "mm"),
         "baseline_pain": ("point", "points")}


def _term_label(term: str, yes_no=()) -> str:
    """A coefficient's name as a reader says it: "nerve: greater occipital", "diabetes: yes",
    "age (per 10 years)" for ``I((age - 50) / 10)``, "age (per year)"."""
    if "[T." in term:
        name, level = term.split("[T.", 1)
        return literal(f"{name.replace('_', ' ')}: {level.rstrip(']').replace('_', ' ')}")
    if term in yes_no:
        return literal(f"{term.replace('_', ' ')}: yes")
    scaled = re.fullmatch(r"I\(\(?\s*(\w+)\s*(?:-\s*[\d.]+\s*)?\)?\s*/\s*([\d.]+)\s*\)", term)
    if scaled:
        name, step = scaled.group(1), float(scaled.group(2))
        unit = UNITS.get(name, ("unit", "units"))[step != 1]
        return literal(f"{name.replace('_', ' ')} (per {step:g} {unit})")
    if term in UNITS:
        return literal(f"{term.replace('_', ' ')} (per {UNITS[term][0]})")
    return literal(term.replace("_", " "))


def _effects(fit) -> tuple[pd.DataFrame, str, bool]:
    if not isinstance(fit, FitResult):
        raise TypeError(f"forest() draws a fitted model's effects, not a {type(fit).__name__}")
    label = f"{fit.effect_name} ({100 * (1 - fit.alpha):g}% CI)"
    return fit.effects(), label, fit.effects_are_ratios


def calibration(fit, data: pd.DataFrame, *, time: float = 56.0, groups: int = 4, ax=None,
                n_bootstrap: int = 200, seed: int = 0, lower: str = "lower", upper: str = "upper",
                **kwargs):
    """Predicted against observed survival at ``time``, by risk group.

    The episodes are split into ``groups`` groups of about equal size by the
    model's predicted S(time); in each, the observed S(time) is the NPMLE
    (:func:`regen.turnbull`) with a patient-bootstrap 95% interval, and the
    predicted is the group's mean prediction. Points on the diagonal mean the
    model is calibrated. ``**kwargs`` go to matplotlib's ``errorbar`` (or ``plot``
    without bootstrap intervals) for the points.
    """
    from regen.survival.npmle import turnbull

    predicted = fit.predict_survival(data.reset_index(drop=True), times=[time])["estimate"]
    frame = data.reset_index(drop=True).assign(_predicted=predicted.to_numpy())
    frame = frame.loc[frame["_predicted"].notna()]
    frame["_risk"] = pd.qcut(frame["_predicted"].rank(method="first"), groups,
                             labels=False) + 1
    cluster = "patient_id" if "patient_id" in frame.columns else None
    observed = turnbull(frame, lower=lower, upper=upper, by="_risk", n_bootstrap=n_bootstrap,
                        seed=seed, cluster=cluster).survival_at([time])
    summary = frame.groupby("_risk")["_predicted"].mean().rename("predicted").reset_index()
    summary = summary.merge(observed.rename(columns={"survival": "observed"}), on="_risk")
    with style():
        ax = _axes(ax, height=WIDTH * 0.9)
        ax.plot([0, 1], [0, 1], color="0.6", linestyle=":", linewidth=0.8)
        if "ci_lower" in summary.columns:
            ax.errorbar(summary["predicted"], summary["observed"],
                        yerr=[summary["observed"] - summary["ci_lower"],
                              summary["ci_upper"] - summary["observed"]],
                        **{"fmt": "o", "color": "#0173b2", "markersize": 4, "capsize": 2,
                           "linewidth": 1, **kwargs})
        else:
            ax.plot(summary["predicted"], summary["observed"],
                    **{"marker": "o", "linestyle": "none", "color": "#0173b2", **kwargs})
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1)
        ax.set_aspect("equal")
        ax.set_xlabel(f"Predicted share event-free at day {time:g}")
        ax.set_ylabel(f"Observed (NPMLE) at day {time:g}")
        ax.calibration_table = summary
        return ax


def flow(cohort, *, outcome: str = "relief", ax=None, **kwargs):
    """The CONSORT-style flow diagram: from the patients to the episodes analysed.

    The main column goes patients → treatments (treated nerves) → visits analysed →
    (relief: treatments assessed for response →) episodes, the last box split by how the
    episodes ended; each step that leaves something out has a side box with the number
    left out and each reason with its count. Every number is one of ``cohort.flow()``'s;
    reasons are drawn literally (no math text).

    Parameters
    ----------
    cohort : Cohort or DataFrame
        A :class:`regen.Cohort`, or its ``flow()`` table (e.g. ``cohort.flow(threshold=0.3)``).
    outcome : {"relief", "numbness"}, default "relief"
    ax : Axes, optional
        Drawn on a new figure sized to the boxes when ``None``.
    **kwargs
        Passed to matplotlib's ``text`` for every box (``fontsize=9``, ``color="navy"``).

    Returns
    -------
    Axes
        With ``ax.flow_boxes``: the boxes as a DataFrame (``box, column, count, text``).

    Examples
    --------
    >>> ax = regen.plot.flow(cohort, outcome="relief")  # doctest: +SKIP
    >>> regen.plot.save(ax, "flow_relief")  # doctest: +SKIP
    """
    table = cohort if isinstance(cohort, pd.DataFrame) else cohort.flow()
    with style():
        return draw_flow(table, outcome=outcome, ax=ax, **kwargs)


def save(ax_or_figure, path, *, formats=("png", "svg"), force: bool = False,
         outputs=None) -> list[Path]:
    """Save the figure of ``ax_or_figure`` as ``path`` with each suffix in ``formats``.

    The files are written atomically, with text drawn literally (no math parsing of
    nerve names); a file there that regen did not write is refused with
    :class:`~regen.exceptions.OutputError` unless ``force=True``. ``outputs`` (a
    :class:`regen.Outputs`) checks the paths against a command's inputs and other outputs.
    """
    from regen._write import Outputs

    figure = getattr(ax_or_figure, "figure", ax_or_figure)
    stem = Path(path)
    stem = stem.with_suffix("") if stem.suffix.lower() in (".png", ".svg", ".pdf") else stem
    targets = [stem.with_name(f"{stem.name}.{suffix}") for suffix in formats]
    if outputs is None:  # on its own: check every file before writing any
        outputs = Outputs(force=force)
        outputs.files(targets)
    with style():
        for target in targets:
            outputs.save_figure(figure, target)
    return targets
