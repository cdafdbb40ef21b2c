"""The design layer: one Design per fitted formula, built, checked, saved and rebuilt."""

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import regen
from regen.design import Design, formula_columns, formula_frame
from regen.exceptions import ModelError


@pytest.fixture
def table():
    rng = np.random.default_rng(3)
    n = 40
    return pd.DataFrame({
        "nerve": pd.array(rng.choice(["greater", "lesser", "third"], n), dtype="string"),
        "age": rng.uniform(30, 80, n),
        "diabetes": pd.array(rng.random(n) < 0.3, dtype="boolean"),
    })


def test_fit_records_columns_levels_and_yes_no(table):
    table.loc[3, "age"] = np.nan
    design, matrix = Design.fit("~ nerve + bs(age, df=3) + diabetes", formula_frame(table), table)
    assert len(matrix) == len(table) - 1                      # the row without an age is left out
    assert design.names == list(matrix.columns)
    assert design.variables == ["age", "diabetes", "nerve"]
    assert design.levels == {"nerve": ["greater", "lesser", "third"]}
    assert design.yes_no == ("diabetes",)


def test_a_saved_design_rebuilds_the_same_covariates(table):
    design, matrix = Design.fit("~ nerve + bs(age, df=3) + diabetes", formula_frame(table), table)
    stored = json.loads(json.dumps(design.to_dict()))        # through a model file's JSON
    again = Design.from_dict(design.formula, stored)
    assert again.names == design.names and again.yes_no == design.yes_no
    profiles = table.iloc[[0, 5, 9]].reset_index(drop=True)
    np.testing.assert_allclose(again.matrix(profiles), design.matrix(profiles), atol=0)
    np.testing.assert_allclose(design.matrix(profiles), matrix.iloc[[0, 5, 9]].to_numpy(), atol=0)


def test_matrix_refuses_an_unseen_level_and_a_missing_covariate(table):
    design, _ = Design.fit("~ nerve + age", formula_frame(table), table)
    with pytest.raises(ValueError, match="'fourth' was not in the data.*known: greater"):
        design.matrix(pd.DataFrame({"nerve": ["fourth"], "age": [50.0]}))
    with pytest.raises(ValueError, match="give every covariate a value"):
        design.matrix(pd.DataFrame({"nerve": ["greater"]}))


def test_check_names_a_single_level_and_a_repeated_column(table):
    frame = formula_frame(table.assign(site=pd.array(["a"] * len(table), dtype="string"),
                                       age2=table["age"] * 2))
    design, matrix = Design.fit("~ nerve + age + age2", frame)
    with pytest.raises(ModelError, match="rank deficient: age2? repeat"):
        design.check(np.asarray(matrix, dtype="float64"), frame)
    single, matrix = Design.fit("~ nerve + site", frame)
    with pytest.raises(ModelError, match="site has a single value"):
        single.check(np.asarray(matrix, dtype="float64"), frame)


def test_typical_profiles_per_group(table):
    design, _ = Design.fit("~ nerve + age + diabetes", formula_frame(table), table)
    profiles = design.typical_profiles(table, "nerve", ["greater", "lesser"])
    assert list(profiles["nerve"]) == ["greater", "lesser"]
    assert profiles["age"].tolist() == [table["age"].median()] * 2
    assert set(profiles.columns) == {"nerve", "age", "diabetes"}


def test_a_model_holds_its_design():
    data = pd.read_csv(Path(__file__).parent / "reference" / "aft_input_a.csv")
    fit = regen.fit_recovery("~ nerve + age", data)
    assert isinstance(fit.design, Design) and fit.model_spec is fit.design.spec
    assert fit.design.names == list(fit.params.index[:-1])


def test_a_misspelt_column_is_named_with_the_closest_names(table):
    with pytest.raises(ValueError, match=r"no column 'agee' in the data for the formula "
                                         r"'~ nerve \+ agee'; did you mean 'age'\?"):
        Design.fit("~ nerve + agee", formula_frame(table))
    with pytest.raises(ValueError, match="no column 'zzz' .*; the data have age, diabetes, nerve"):
        Design.fit("~ zzz", formula_frame(table))


def test_every_model_names_a_misspelt_column():
    data = pd.read_csv(Path(__file__).parent / "reference" / "aft_input_a.csv")
    with pytest.raises(ValueError, match="did you mean 'age'"):
        regen.fit_recovery("~ agee", data)
    pain = regen.read_cohort("data/example").measurements("pain").query("day >= 1")
    with pytest.raises(ValueError, match="did you mean 'baseline_pain'"):
        regen.fit_trajectory("pain ~ day + baseline_pian", pain)


def test_formula_columns_keep_what_the_formula_may_read_and_the_columns_named():
    frame = pd.DataFrame({"age": [50.0], "stage": ["a"], "nerve": ["x"], "lower": [1.0],
                          "upper": [2.0], "note": ["free text"]})
    narrowed = formula_columns(frame, "~ bs(age, df=3) + C(nerve)", "lower", "upper", None)
    assert list(narrowed.columns) == ["age", "nerve", "lower", "upper"]
    # a superset is harmless: "age" occurs in "stage", so a formula on stage keeps both
    assert list(formula_columns(frame, "~ stage").columns) == ["age", "stage"]
    assert formula_columns(frame, "upper ~ .") is frame


def test_a_misspelt_covariate_is_named_with_the_close_columns_of_the_whole_table():
    episodes = pd.DataFrame({"lower": [1.0, 2.0], "upper": [3.0, np.inf],
                             "diabetes": [True, False]})
    with pytest.raises(ValueError, match="no column 'diabets'.*did you mean 'diabetes'"):
        regen.fit_recovery("~ diabets", episodes)
