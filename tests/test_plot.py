"""Figures: they draw what they are given, return the Axes, save PNG and SVG, leave rcParams alone."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import pytest

import regen
from regen import plot


@pytest.fixture(scope="module")
def cohort():
    return regen.read_cohort("data/example")


@pytest.fixture(scope="module")
def relief(cohort):
    return cohort.episodes("relief")


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


def test_importing_and_drawing_leave_global_style_alone(relief):
    before = dict(matplotlib.rcParams)
    plot.recovery(regen.turnbull(relief, by="nerve"))
    after = dict(matplotlib.rcParams)
    assert {k: v for k, v in after.items() if before.get(k) != v} == {}


def test_recovery_draws_each_nerve_in_its_colour_with_at_risk_counts(relief, tmp_path):
    fit = regen.turnbull(relief, by="nerve", n_bootstrap=20, seed=1, cluster="patient_id")
    model = regen.fit_recovery("~ nerve", relief)
    ax = plot.recovery(fit, model, ylabel="Still relieved", times=[0, 28, 56, 84])
    colours = plot.colours(fit.groups)
    solid = [line for line in ax.lines if line.get_linestyle() == "-"]
    assert len(solid) == len(fit.groups)
    for line, nerve in zip(solid, fit.groups, strict=True):
        assert line.get_color() == colours[nerve] or tuple(line.get_color()) == colours[nerve]
    assert len(ax.collections) == len(fit.groups)          # one CI band per nerve
    texts = [t.get_text() for child in ax.child_axes for t in child.texts]
    table = fit.at_risk([0, 28, 56, 84])
    first = table.loc[table["nerve"] == fit.groups[0], "at_risk"].tolist()
    assert [f"{v:g}" for v in first] == [t for t in texts if t.isdigit()][:4]
    written = plot.save(ax, tmp_path / "relief")
    assert [p.suffix for p in written] == [".png", ".svg"] and all(p.stat().st_size > 0
                                                                    for p in written)


def test_at_risk_counts_partition_the_episodes():
    fit = regen.turnbull(lower=[0, 7, 7, 30, 30], upper=[7, 30, np.inf, 60, np.inf])
    table = plot.at_risk_table(fit, [0, 7, 20, 30, 60])
    assert table[["at_risk", "event", "censored", "undetermined"]].sum(axis=1).eq(5).all()
    assert table["at_risk"].tolist() == [5, 4, 2, 2, 0]
    assert table.loc[table["time"] == 20, "undetermined"].item() == 1   # (7, 30] spans day 20
    assert table.loc[table["time"] == 60, ["event", "censored"]].values.tolist() == [[3, 2]]


def test_same_nerve_same_colour_everywhere():
    a = plot.colours(["greater_occipital", "my_nerve"])
    b = plot.colours(["supraorbital", "greater_occipital"])
    assert a["greater_occipital"] == b["greater_occipital"]
    assert len(set(plot.colours(list(regen.tables.KNOWN_NERVES)).values())) == 9


def test_forest_shows_time_ratios_on_a_log_axis(relief):
    fit = regen.fit_recovery("~ nerve + age + diabetes", relief)
    ax = plot.forest(fit)
    assert ax.get_xscale() == "log"
    labels = [t.get_text() for t in ax.get_yticklabels()]
    assert "diabetes: yes" in labels and "nerve: greater occipital" in labels
    assert "age (per year)" in labels
    assert [t.get_text() for t in ax.texts] == ["Compared with nerve anterior femoral cutaneous"]
    low, high = ax.get_ylim()
    assert low < -0.5 and high > len(labels) - 0.5                  # no row on the axis
    scaled = plot.forest(regen.fit_recovery("~ I((age - 50) / 10) + diabetes", relief))
    assert [t.get_text() for t in scaled.get_yticklabels()][0] == "age (per 10 years)"
    assert len(scaled.texts) == 0                                    # no categorical: no reference
    with pytest.raises(TypeError, match="fitted model"):
        plot.forest(relief)


def test_calibration_groups_and_trajectories(cohort, relief):
    fit = regen.fit_recovery("~ nerve + age + diabetes", relief)
    ax = plot.calibration(fit, relief, time=56, groups=4, n_bootstrap=20)
    table = ax.calibration_table
    assert len(table) == 4 and table["predicted"].is_monotonic_increasing
    assert (table["observed"] - table["predicted"]).abs().max() < 0.3
    pain = cohort.measurements("pain").query("day >= 1")
    traj = regen.fit_trajectory("pain ~ bs(day, df=4) + baseline_pain", pain, re_formula="~ 1")
    ax = plot.trajectories(traj, pain, n_patients=10)
    assert len(ax.lines) >= 11 and ax.get_ylabel() == "pain (0–10)"


def test_matplotlib_options_reach_the_drawn_lines(cohort, relief):
    fit = regen.turnbull(relief, by="nerve")
    ax = plot.recovery(fit, linewidth=2.5, drawstyle="steps-post", at_risk=False)
    assert {line.get_linewidth() for line in ax.lines} == {2.5}
    assert {line.get_drawstyle() for line in ax.lines} == {"steps-post"}
    model = regen.fit_recovery("~ nerve + age", relief)
    ax = plot.forest(model, color="C3", markersize=6)
    marker = ax.lines[0]
    assert marker.get_markersize() == 6 and marker.get_color() == "C3"
    pain = cohort.measurements("pain").query("day >= 1")
    traj = regen.fit_trajectory("pain ~ bs(day, df=4)", pain, re_formula="~ 1")
    ax = plot.trajectories(traj, pain, n_patients=5, linestyle="--", linewidth=3)
    mean = [line for line in ax.lines if line.get_label().startswith("population mean")]
    assert len(mean) == 1 and mean[0].get_linestyle() == "--" and mean[0].get_linewidth() == 3
    with pytest.raises(AttributeError):
        plot.recovery(fit, not_a_line_property=1)           # a typo is not silently ignored


def test_a_model_with_more_covariates_asks_for_profiles_by_name(relief):
    curve = regen.turnbull(relief, by="nerve")
    model = regen.fit_recovery("~ nerve + age + diabetes", relief)
    with pytest.raises(ValueError, match=r"the model also has age, diabetes, which the curves by "
                                         r"nerve do not set: give profiles="):
        plot.recovery(curve, model)
    ax = plot.recovery(curve, model, profiles=model.design.typical_profiles(relief, "nerve",
                                                                            curve.groups))
    assert any(line.get_linestyle() == "--" for line in ax.lines)


def test_the_model_overlay_is_named_as_a_sentence_names_its_law(relief):
    curve = regen.turnbull(relief, by="nerve")
    ax = plot.recovery(curve, regen.fit_recovery("~ nerve", relief, dist="lognormal"))
    assert "log-normal model" in [t.get_text() for t in ax.get_legend().get_texts()]


def test_recovery_in_weeks_for_a_report_that_patients_read(relief):
    curve = regen.turnbull(relief, by="nerve")
    ax = plot.recovery(curve, weeks=True)
    labels = [t.get_text() for t in ax.get_xticklabels()]
    assert labels[:4] == ["0", "4", "8", "12"] and ax.get_xlabel() == "Weeks after the freeze"
    assert plot.recovery(curve).get_xlabel() == "Days after the freeze"


def test_at_risk_labels_are_dark_and_keyed_by_a_mark_in_the_curve_colour(relief):
    import matplotlib.colors as mcolors

    curve = regen.turnbull(relief, by="nerve")
    ax = plot.recovery(curve)
    table = ax.child_axes[0]
    labels = [t for t in table.texts if t.get_text().replace(" ", "_") in curve.groups]
    assert len(labels) == len(curve.groups)
    assert all(sum(mcolors.to_rgb(t.get_color())) < 0.5 for t in labels)   # dark, readable
    marks = [line.get_color() for line in table.lines]
    assert marks == [plot.colours(curve.groups)[g] for g in curve.groups]


def test_the_palette_has_no_two_near_hues():
    import colorsys

    import matplotlib.colors as mcolors

    hues = sorted(colorsys.rgb_to_hls(*mcolors.to_rgb(c)) for c in plot.PALETTE)
    assert len(set(plot.PALETTE)) == 9
    pairs = [(a, b) for i, a in enumerate(hues) for b in hues[i + 1:]]
    # two colours of about the same hue differ clearly in lightness
    assert all(abs(a[0] - b[0]) > 0.03 or abs(a[1] - b[1]) > 0.15 for a, b in pairs)


def test_trajectories_show_the_scale_the_threshold_and_what_a_grey_line_is(cohort):
    pain = cohort.measurements("pain").query("day >= 1")
    traj = regen.fit_trajectory("pain ~ bs(day, df=4) + baseline_pain", pain, re_formula="~ 1")
    ax = plot.trajectories(traj, pain, n_patients=12, threshold=5.6, threshold_label="80% of 7")
    assert ax.get_ylim() == pytest.approx((-0.2, 10.2)) and ax.get_ylabel() == "pain (0–10)"
    legend = [t.get_text() for t in ax.figure.legends[0].get_texts()]   # under the axes
    assert "80% of 7" in legend
    assert f"one treated nerve (12 of {pain['patient_id'].nunique()} patients shown)" in legend


def test_recovery_panels_one_per_group_with_shared_axes(relief, tmp_path):
    curve = regen.turnbull(relief, by="nerve", n_bootstrap=20, seed=1, cluster="patient_id")
    model = regen.fit_recovery("~ nerve", relief, dist="loglogistic")
    figure = plot.recovery_panels(curve, model, ylabel="Still relieved", weeks=True)
    drawn = [ax for ax in figure.axes if ax.get_title(loc="left")]
    assert len(drawn) == len(curve.groups)
    titles = [ax.get_title(loc="left") for ax in drawn]
    assert titles[0] == f"anterior femoral cutaneous (n={int(curve.n.iloc[0])})"
    assert len({ax.get_xlim() for ax in drawn}) == 1 and len({ax.get_ylim() for ax in drawn}) == 1
    own = drawn[1].lines[len(curve.groups) - 1]            # after the other groups in grey
    assert own.get_color() == plot.colours(curve.groups)[curve.groups[1]]
    legend = [t.get_text() for ax in figure.axes if ax.get_legend()
              for t in ax.get_legend().get_texts()]
    assert legend == ["NPMLE, 95% band", "the other groups", "log-logistic model"]
    assert all(p.stat().st_size > 5000 for p in plot.save(figure, tmp_path / "panels"))
