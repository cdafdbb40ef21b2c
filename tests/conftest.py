"""Shared fixtures: tiny cohorts written as the user would write them."""

from __future__ import annotations

import textwrap
from pathlib import Path

import numpy as np
import pytest

PATIENTS = """\
patient_id,sex,birth_year,diabetes
P1,F,1970,no
P2,M,1960,yes
"""

TREATMENTS = """\
treatment_id,patient_id,nerve,side,treated_on,distance_mm
T1,P1,greater_occipital,left,2024-01-10,80
T2,P2,lesser_occipital,right,2024-02-01,60
"""

VISITS = """\
treatment_id,day,numb,pain
T1,0,no,8
T1,7,yes,2
T1,30,yes,3
T1,60,no,7
T2,0,no,6
T2,7,yes,2
T2,30,no,5
"""


def write_cohort(folder: Path, patients: str = PATIENTS, treatments: str = TREATMENTS,
                 visits: str = VISITS, *, suffix: str = ".csv", encoding: str = "utf-8") -> Path:
    """Write the three tables (CSV text; ``None`` leaves a table out) into ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in (("patients", patients), ("treatments", treatments), ("visits", visits)):
        if text is not None:
            (folder / f"{name}{suffix}").write_text(textwrap.dedent(text), encoding=encoding)
    return folder


@pytest.fixture
def tiny(tmp_path: Path) -> Path:
    """A valid two-patient cohort."""
    return write_cohort(tmp_path / "tiny")


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(20261124)
