"""Model files saved before the model core (regen at commit 287b79d) load and predict
exactly as they did then (tests/fixtures/model_files, made by its make.py)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

import regen

FILES = Path(__file__).resolve().parent / "fixtures" / "model_files"
PROFILES = pd.read_csv(FILES / "profiles.csv")


def _predict(name: str, model) -> pd.DataFrame:
    if name == "recovery":
        return model.predict_quantile(PROFILES[["nerve", "age", "diabetes"]], q=[0.25, 0.5])
    if name == "regeneration":
        return model.predict_quantile(PROFILES[["age", "diabetes", "distance_mm"]], q=[0.5])
    if name == "trajectory":
        return model.predict(PROFILES[["day", "baseline_pain"]])
    return model.predict(PROFILES[["day", "diabetes"]])


@pytest.mark.parametrize("name", ["recovery", "regeneration", "trajectory", "probability"])
def test_an_older_model_file_predicts_as_before(name):
    model = regen.load_model(FILES / f"{name}.json")
    expected = pd.read_csv(FILES / f"{name}_predictions.csv")
    got = _predict(name, model)
    numbers = [c for c in expected.columns if pd.api.types.is_float_dtype(expected[c])]
    pd.testing.assert_frame_equal(got[numbers].reset_index(drop=True), expected[numbers],
                                  check_exact=False, rtol=1e-12, atol=0)


@pytest.mark.parametrize("name", ["recovery", "regeneration", "trajectory", "probability"])
def test_an_older_model_file_saves_again_unchanged(name, tmp_path):
    """Loading and saving keeps every number and setting (the file's version aside)."""
    import json

    before = json.loads((FILES / f"{name}.json").read_text(encoding="utf-8"))
    after = json.loads(regen.load_model(FILES / f"{name}.json")
                       .save(tmp_path / "again.json").read_text(encoding="utf-8"))
    before.pop("regen_version"), after.pop("regen_version")
    assert after == before
