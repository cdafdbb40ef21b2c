"""The report's section on how much patients differ (the shared-frailty model of relief)."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pandas as pd
import pytest

import regen
from regen.report import relief_report
from regen.simulate import cohort


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    folder = tmp_path_factory.mktemp("differ")
    cohort(200, seed=9, retreat="on_relief_end", patient_sd_log=0.5,
           max_treatments=4).write(folder / "input")
    data = regen.read_cohort(folder / "input")
    content = relief_report(data, out=folder / "out" / "report.html", n_bootstrap=20)
    return data, content, (folder / "out" / "report.html").read_text(encoding="utf-8")


def test_a_clear_patient_effect_gets_its_section_with_the_models_numbers(report):
    data, content, html = report
    differ = content["patients_differ"]
    assert differ["shown"] and differ["p_value"] < 0.05 and differ["frailty_ci"][0] > 0
    relief = data.episodes("relief")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit = regen.fit_recovery("~ nerve", relief, dist="lognormal", frailty="patient_id")
    assert differ["frailty_sd"] == pytest.approx(fit.frailty_sd, rel=1e-6)
    profile = fit.design.matrix(pd.DataFrame({"nerve": [differ["nerve"]]}))[0]
    centre = profile @ fit.params.iloc[:len(profile)]
    assert differ["short_days"] == pytest.approx(np.exp(centre - 0.6745 * fit.frailty_sd), rel=1e-3)
    assert differ["short_ci"][0] < differ["short_days"] < differ["short_ci"][1]
    assert differ["short_days"] < differ["long_days"]
    assert "How much patients differ" in html
    assert f"less than {differ['short_days'] / 7:.0f} weeks" in html
    assert json.loads(json.dumps(content["patients_differ"])) == differ


def test_no_clear_patient_effect_no_section_but_the_reason(tmp_path):
    data = regen.read_cohort("data/example")
    content = relief_report(data, out=tmp_path / "report.html", n_bootstrap=10)
    differ = content["patients_differ"]
    assert not differ["shown"] and differ["reason"]
    assert "How much patients differ" not in (tmp_path / "report.html").read_text(encoding="utf-8")
