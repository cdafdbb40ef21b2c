"""Model files: JSON with a schema version; tampered, truncated, old or foreign files give a
clear ModelFileError; loading never runs code, even when the file's formula asks it to."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import regen
from regen._write import MANIFEST

KINDS = ["recovery", "regeneration", "trajectory", "probability"]


@pytest.fixture(scope="module")
def fits() -> dict:
    cohort = regen.read_cohort("data/example")
    numbness = cohort.episodes("numbness")
    pain = cohort.measurements("pain").query("day >= 1")
    numb = cohort.measurements("numb").query("day >= 1")
    return {
        "recovery": regen.fit_recovery("~ nerve + bs(age, df=3) + diabetes", numbness),
        "regeneration": regen.fit_regeneration(numbness, formula="~ I(age - 50)", lag=10),
        "trajectory": regen.fit_trajectory(
            "pain ~ cr(day, df=4, constraints='center') + baseline_pain", pain, re_formula="~ 1"),
        "probability": regen.fit_probability("numb ~ np.log(day)", numb),
    }


@pytest.fixture(scope="module")
def saved(fits, tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("models")
    return {name: fit.save(folder / f"{name}.json") for name, fit in fits.items()}


def test_files_are_json_with_a_schema_version(saved):
    for path in saved.values():
        document = json.loads(path.read_text(encoding="utf-8"))
        assert document["format"] == "regen-model" and document["schema_version"] == 1
        assert type(regen.load_model(path)).__name__ == document["kind"]


def _variants(document: dict):
    """Every top-level field removed, or replaced by a value of the wrong kind."""
    for key in document:
        yield f"drop {key}", {k: v for k, v in document.items() if k != key}
        for wrong in ("x", -1, None, [], {"a": 1}, [[1, 2], [3]]):
            yield f"{key}={wrong!r}", {**document, key: wrong}


@pytest.mark.parametrize("name", KINDS)
def test_tampered_files_fail_clearly(saved, name, tmp_path):
    document = json.loads(saved[name].read_text(encoding="utf-8"))
    target = tmp_path / "tampered.json"
    for label, variant in _variants(document):
        target.write_text(json.dumps(variant), encoding="utf-8")
        try:
            regen.load_model(target)
        except regen.ModelFileError as error:
            assert str(target) in str(error), label
        except Exception as error:
            pytest.fail(f"{label}: {type(error).__name__}: {error}")


@pytest.mark.parametrize("name", ["recovery", "trajectory"])
def test_truncated_files_fail_clearly(saved, name, tmp_path):
    text = saved[name].read_text(encoding="utf-8")
    target = tmp_path / "cut.json"
    for cut in (0, 1, len(text) // 3, len(text) - 2):
        target.write_text(text[:cut], encoding="utf-8")
        with pytest.raises(regen.ModelFileError, match="not valid JSON|not a regen model"):
            regen.load_model(target)
    target.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00binary")
    with pytest.raises(regen.ModelFileError, match="not valid JSON"):
        regen.load_model(target)


def test_old_and_foreign_files(saved, tmp_path):
    document = json.loads(saved["recovery"].read_text(encoding="utf-8"))
    target = tmp_path / "m.json"
    target.write_text(json.dumps({**document, "schema_version": 0}), encoding="utf-8")
    with pytest.raises(regen.ModelFileError, match="schema version 0.*Refit"):
        regen.load_model(target)
    target.write_text(json.dumps({"cells": [], "nbformat": 4}), encoding="utf-8")
    with pytest.raises(regen.ModelFileError, match="not a regen model file"):
        regen.load_model(target)
    target.write_text(json.dumps([1, 2, 3]), encoding="utf-8")
    with pytest.raises(regen.ModelFileError, match="not a regen model file"):
        regen.load_model(target)


EVIL = [
    "~ nerve + I(__import__('os').system('touch {canary}'))",
    "~ nerve + I(open('{canary}', 'w').write('x'))",
    "~ nerve + I(eval(\"open('{canary}', 'w')\"))",
    "~ nerve + I([c for c in ().__class__.__base__.__subclasses__()])",
    "~ nerve + np.__dict__",
    "~ nerve + `__import__('os').system('touch {canary}')`",
    "~ nerve + {{__import__('os').system('touch {canary}')}}",
]


@pytest.mark.parametrize("formula", EVIL)
def test_loading_never_runs_code_from_the_file(saved, tmp_path, formula):
    canary = tmp_path / "canary"
    document = json.loads(saved["recovery"].read_text(encoding="utf-8"))
    target = tmp_path / "evil.json"
    target.write_text(json.dumps({**document, "formula": formula.format(canary=canary)}),
                      encoding="utf-8")
    with pytest.raises(regen.ModelFileError):
        regen.load_model(target)
    assert not canary.exists()


def test_safe_transforms_still_load(saved):
    model = regen.load_model(saved["probability"])
    curve = model.predict(pd.DataFrame({"day": [7.0, 60.0]}))
    assert np.all(np.diff(curve["estimate"]) < 0)
    recovery = regen.load_model(saved["recovery"])
    assert "bs(age, df=3)" in recovery.formula


# ------------------------------------------------------- the one writer ---

@pytest.mark.parametrize("name", KINDS)
def test_saving_goes_through_the_one_writer(fits, name, tmp_path):
    fit = fits[name]
    users = tmp_path / "model.json"
    users.write_text("the user's own notes", encoding="utf-8")
    with pytest.raises(regen.OutputError, match="was not written by regen.*--force"):
        fit.save(users)
    assert users.read_text(encoding="utf-8") == "the user's own notes"
    assert fit.save(users, force=True) == users
    assert type(regen.load_model(users)) is type(fit)
    manifest = json.loads((tmp_path / MANIFEST).read_text(encoding="utf-8"))
    assert manifest["files"]["model.json"] == hashlib.sha256(users.read_bytes()).hexdigest()
    # Saving again over regen's own, unchanged file needs no force; nothing is left behind.
    again = tmp_path / "again.json"
    fit.save(again)
    fit.save(again)
    assert again.read_bytes() == users.read_bytes()
    assert sorted(p.name for p in tmp_path.iterdir()) == [MANIFEST, "again.json", "model.json"]
    # Once edited by hand, it is no longer regen's to replace silently.
    again.write_text(again.read_text(encoding="utf-8") + " ", encoding="utf-8")
    with pytest.raises(regen.OutputError, match="changed"):
        fit.save(again)


def test_the_saved_content_keeps_its_conventions(fits, saved):
    """Non-finite numbers as text, the yes/no covariates in the design, old files still load."""
    document = json.loads(saved["regeneration"].read_text(encoding="utf-8"))
    assert document["lag"]["fixed"] is True and document["design"]["yes_no"] == []
    recovery = json.loads(saved["recovery"].read_text(encoding="utf-8"))
    assert recovery["design"]["yes_no"] == ["diabetes"]
    assert regen.load_model(saved["recovery"]).yes_no == ("diabetes",)
    assert regen.load_model(saved["probability"]).yes_no == ()
    assert regen.load_model(saved["trajectory"]).yes_no == ()
    old = {**recovery, "design": {k: v for k, v in recovery["design"].items() if k != "yes_no"}}
    path = saved["recovery"].parent / "old.json"
    path.write_text(json.dumps(old), encoding="utf-8")
    loaded = regen.load_model(path)
    assert loaded.yes_no is None
    assert "yes_no" not in loaded.save(path.parent / "old_again.json", force=True).read_text(
        encoding="utf-8")


def test_categorical_factors_and_polynomials_load(tmp_path):
    """C(nerve) and poly(age, 2) models predict the same after loading as before."""
    episodes = regen.read_cohort("data/example").episodes("numbness")
    profiles = pd.DataFrame({"nerve": ["intercostal", "greater_occipital"], "age": [33.0, 71.0],
                             "bmi": [22.0, 31.0], "diabetes": [0.0, 1.0]})
    for formula in ("~ C(nerve) + age + diabetes", "~ nerve + poly(age, 2) + np.log(bmi)"):
        fit = regen.fit_recovery(formula, episodes)
        loaded = regen.load_model(fit.save(tmp_path / "m.json", force=True))
        pd.testing.assert_frame_equal(loaded.predict_quantile(profiles),
                                      fit.predict_quantile(profiles))


def test_every_kind_records_its_yes_no_covariates(tmp_path):
    cohort = regen.read_cohort("data/example")
    pain = cohort.measurements("pain").query("day >= 1")
    numb = cohort.measurements("numb").query("day >= 1")
    models = [regen.fit_trajectory("pain ~ day + diabetes + age", pain, re_formula="~ 1"),
              regen.fit_probability("numb ~ np.log(day) + smoker + diabetes", numb)]
    for number, fit in enumerate(models):
        loaded = regen.load_model(fit.save(tmp_path / f"{number}.json"))
        assert fit.yes_no == loaded.yes_no == tuple(sorted({"diabetes", "smoker"} & set(
            fit.model_spec.required_variables)))
