"""Turnbull NPMLE against reference values computed in R (tests/reference/turnbull.R).

The reference curve is R's converged NPMLE (EM polished by Newton steps, KKT gradients
below 1e-12, confirmed by npsurv to 3e-10); R's own survfit stops early (change in S
below 5e-5) and is compared at its own tolerance.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import regen

REFERENCE = Path(__file__).resolve().parents[1] / "reference"


def summary(dataset: str) -> dict:
    table = pd.read_csv(REFERENCE / "turnbull_summary.csv")
    rows = table[table["dataset"] == dataset]
    return dict(zip(rows["quantity"], rows["value"], strict=True))


@pytest.mark.parametrize("prefix", ["turnbull", "turnbull_tiny"])
def test_matches_r(prefix):
    data = pd.read_csv(REFERENCE / f"{prefix}_input.csv")
    values = pd.read_csv(REFERENCE / f"{prefix}_values.csv")
    support = pd.read_csv(REFERENCE / f"{prefix}_support.csv")
    fit = regen.turnbull(data)

    reference = support[support["mass"] > 1e-9].reset_index(drop=True)
    ours = fit.intervals
    assert ours[["lower", "upper"]].to_numpy().tolist() == \
        reference[["left", "right"]].to_numpy().tolist()
    assert ours["mass"].to_numpy() == pytest.approx(reference["mass"].to_numpy(), abs=1e-6)

    at = fit.survival_at(values["time"].to_numpy())["survival"].to_numpy()
    assert at == pytest.approx(values["survival"].to_numpy(), abs=1e-6)
    assert at == pytest.approx(values["survival_survfit"].to_numpy(), abs=1e-4)

    expected = float(summary("visit" if prefix == "turnbull" else "tiny")["loglik"])
    assert fit.loglik == pytest.approx(expected, rel=1e-8)
    assert fit.loglik >= float(summary("visit" if prefix == "turnbull" else "tiny")
                               ["loglik_survfit"]) - 1e-12


def test_tiny_case_is_the_analytic_answer():
    fit = regen.turnbull(pd.read_csv(REFERENCE / "turnbull_tiny_input.csv"))
    assert fit.intervals["mass"].to_numpy() == pytest.approx(np.full(4, 0.25), abs=1e-9)
    assert fit.loglik == pytest.approx(-10 * np.log(2), rel=1e-10)
