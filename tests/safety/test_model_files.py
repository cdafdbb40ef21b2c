"""Reading a model file is bounded: one case per rule.

A model file may come from anywhere. Whatever it holds, ``regen.load_model`` raises a
``ModelFileError`` naming the file (never another error, never a hang), and
``regen predict --model FILE`` exits 1 with ``error: ...`` naming it (never 3, "internal
error"). The formulas that would explode in time or memory are checked in a subprocess
with a timeout, so that a regression fails instead of hanging the suite.
"""

from __future__ import annotations

import copy
import json
import math
import os
import re
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

import regen
from regen.cli import main
from regen.design import check_formula
from regen.serialize import MAX_DEPTH, MAX_FILE_BYTES, MAX_PARAMETERS, ModelFileError

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def documents(tmp_path_factory) -> dict[str, dict]:
    """One saved document of each kind, as regen writes them."""
    folder = tmp_path_factory.mktemp("models")
    cohort = regen.read_cohort(ROOT / "data" / "example")
    numbness = cohort.episodes("numbness")
    pain = cohort.measurements("pain").query("day >= 1")
    numb = cohort.measurements("numb").query("day >= 1")
    fits = {
        "recovery": regen.fit_recovery("~ nerve + bs(age, df=3) + diabetes", numbness),
        "regeneration": regen.fit_regeneration(numbness, formula="~ I(age - 50) + diabetes"),
        "trajectory": regen.fit_trajectory("pain ~ day + baseline_pain", pain, re_formula="~ 1"),
        "probability": regen.fit_probability("numb ~ np.log(day)", numb),
    }
    return {name: json.loads(fit.save(folder / f"{name}.json").read_text(encoding="utf-8"))
            for name, fit in fits.items()}


def _write(folder: Path, content, name: str = "model.json") -> Path:
    path = folder / name
    text = content if isinstance(content, str) else json.dumps(content)
    path.write_text(text, encoding="utf-8")
    return path


def _command_line_refuses(path: Path) -> None:
    result = CliRunner().invoke(main, ["predict", "--model", str(path), "--age", "50"])
    assert result.exit_code == 1, (result.exit_code, result.output)
    assert result.stderr.startswith("error: ") and str(path) in result.stderr, result.stderr
    assert "internal error" not in result.output and "Traceback" not in result.output


def _refused(path: Path, message: str) -> None:
    """load_model raises ModelFileError naming the file, quickly; so does `regen predict`."""
    start = time.perf_counter()
    with pytest.raises(ModelFileError) as caught:
        regen.load_model(path)
    assert time.perf_counter() - start < 10
    assert str(path) in str(caught.value)
    assert re.search(message, str(caught.value)), str(caught.value)
    _command_line_refuses(path)


# ------------------------------------------------------------- the file ---

def test_a_file_over_the_size_cap_is_refused_before_it_is_read(tmp_path):
    path = tmp_path / "model.json"
    with path.open("wb") as handle:     # sparse: the size is checked, the bytes never read
        handle.truncate(MAX_FILE_BYTES + 1)
    _refused(path, rf"{MAX_FILE_BYTES + 1:,} bytes; a regen model file is at most")


def test_a_folder_is_not_a_model_file(tmp_path):
    _refused(tmp_path, "is not a regular file")


@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity"])
def test_nan_and_infinity_literals_are_refused(documents, tmp_path, literal):
    text = json.dumps(documents["recovery"]).replace('"params": [', f'"params": [{literal}, ', 1)
    _refused(_write(tmp_path, text), f"JSON literal {re.escape(literal)}, which strict JSON")


def test_deep_nesting_is_refused_without_recursion(documents, tmp_path):
    nested = '{"format": "regen-model", "x": ' + "[" * 100_000 + "]" * 100_000 + "}"
    _refused(_write(tmp_path, nested), f"nests deeper than {MAX_DEPTH} levels")
    document = {**documents["recovery"], "extra": json.loads("[" * 40 + "]" * 40)}
    _refused(_write(tmp_path, document, "deep.json"), f"nests deeper than {MAX_DEPTH} levels")


def test_an_integer_too_long_to_convert_is_refused(documents, tmp_path):
    text = json.dumps(documents["recovery"]).replace('"n": ', '"n": 1' + "0" * 5000 + ", "
                                                     '"m": ', 1)
    _refused(_write(tmp_path, text), "not valid JSON")


# ----------------------------------------------------------- the numbers ---

def _set(document: dict, dotted: str, value) -> dict:
    """A copy of ``document`` with the field at ``dotted`` (``lag.interval.1``) set."""
    out = copy.deepcopy(document)
    *path, last = dotted.split(".")
    target = out
    for key in path:
        target = target[int(key)] if isinstance(target, list) else target[key]
    target[int(last) if isinstance(target, list) else last] = value
    return out


NUMBERS = [  # kind, field, value, message
    ("recovery", "params.0", "inf", "params holds a number that is not finite"),
    ("recovery", "params.1", "nan", "params holds a number that is not finite"),
    ("recovery", "params.1", "-inf", "params holds a number that is not finite"),
    ("recovery", "covariance.0.1", "inf", "covariance holds a number that is not finite"),
    ("recovery", "covariance.0.1", 1.5, "covariance is not symmetric"),
    ("recovery", "covariance.2.2", -0.01, r"gives \S+ the variance -0.01; a variance must be > 0"),
    ("recovery", "covariance.2.2", 0.0, r"the variance 0; a variance must be > 0"),
    ("recovery", "params.-1", 1000.0, r"log_scale 1000 gives the scale inf"),
    ("recovery", "params.-1", -1000.0, r"log_scale -1000 gives the scale 0"),
    ("regeneration", "lag.estimate", "inf", "estimate is inf; it must be a finite number"),
    ("regeneration", "lag.interval.1", "nan", "interval holds a number that is not finite"),
    ("regeneration", "lag_profile.profile_loglik.0", "nan", "log-likelihood holds NaN"),
    ("regeneration", "lag_profile.lag.0", "inf", "lag holds a number that is not finite"),
    ("trajectory", "random_cov.0.0", -0.5,
     r"gives Intercept the variance -0.5; a variance must be >= 0"),
    ("trajectory", "random_cov.0.0", "inf", "random_cov holds a number that is not finite"),
    ("trajectory", "residual_sd", 0.0, "residual_sd is 0; it must be > 0"),
    ("trajectory", "residual_sd", "inf", "residual_sd is inf; it must be a finite number"),
    ("trajectory", "theta.0", "nan", "theta holds a number that is not finite"),
    ("trajectory", "spans.day.1", "inf", "day holds a number that is not finite"),
    ("probability", "covariance.1.1", "nan", "covariance holds a number that is not finite"),
    ("recovery", "design.transform_state.bs(age, df=3).knots.0", "inf",
     "a transform's state holds 'inf'"),
    ("recovery", "design.transform_state.bs(age, df=3).lower_bound", "nan",
     "a transform's state holds 'nan'"),
]


@pytest.mark.parametrize(("kind", "field", "value", "message"), NUMBERS,
                         ids=[f"{k}-{f}={v}" for k, f, v, _ in NUMBERS])
def test_every_number_the_model_computes_with_is_finite(documents, tmp_path, kind, field, value,
                                                        message):
    _refused(_write(tmp_path, _set(documents[kind], field, value)), message)


def test_a_number_too_large_for_a_float_is_not_finite(documents, tmp_path):
    """1e999 is valid JSON for infinity: it is caught after conversion like the text "inf"."""
    text = json.dumps(_set(documents["recovery"], "params.0", 12345.0))
    assert text.count("12345.0") == 1
    _refused(_write(tmp_path, text.replace("12345.0", "1e999")),
             "params holds a number that is not finite")


def test_what_may_legitimately_be_non_finite_still_loads(documents, tmp_path):
    """A lag profile point that cannot be fitted (-inf), GEE's QIC and working correlation
    (reported, never computed with), and a random-effect variance estimated at 0."""
    regeneration = _set(documents["regeneration"], "lag_profile.profile_loglik.0", "-inf")
    assert math.isinf(regen.load_model(_write(tmp_path, regeneration, "k.json"))
                      .lag_profile["profile_loglik"].iloc[0])
    probability = _set(_set(documents["probability"], "qic", "nan"), "working_correlation", "nan")
    assert math.isnan(regen.load_model(_write(tmp_path, probability, "p.json")).qic)
    trajectory = _set(documents["trajectory"], "random_cov.0.0", 0.0)
    assert regen.load_model(_write(tmp_path, trajectory, "t.json")).random_sd["Intercept"] == 0


# ------------------------------------------------------ parameters, design --

def test_the_parameter_count_is_checked_against_the_covariance_first(documents, tmp_path):
    document = copy.deepcopy(documents["recovery"])
    document["covariance"] = document["covariance"][:-1]
    _refused(_write(tmp_path, document), r"covariance has shape \(\d+, \d+\); expected")
    many = MAX_PARAMETERS + 1
    huge = {**documents["recovery"], "parameters": [f"b{i}" for i in range(many)],
            "params": [0.0] * many, "covariance": [[1.0] * many] * many}
    _refused(_write(tmp_path, huge, "huge.json"), f"{many} parameters; a model has 1 to")
    twice = _set(documents["recovery"], "parameters.1", documents["recovery"]["parameters"][0])
    _refused(_write(tmp_path, twice, "twice.json"), "names one coefficient twice")
    renamed = _set(documents["recovery"], "parameters.1", "nerve[T.somewhere_else]")
    _refused(_write(tmp_path, renamed, "renamed.json"), "do not match the formula's design")


def _with_levels(document: dict, formula: str, levels: dict[str, int]) -> dict:
    design = {**document["design"], "variables": sorted(levels),
              "categories": {name: [f"level{i}" for i in range(n)] for name, n in levels.items()},
              "transform_state": {}, "yes_no": []}
    return {**document, "formula": formula, "design": design}


def test_half_a_million_levels_are_refused_before_any_matrix(documents, tmp_path):
    document = _with_levels(documents["recovery"], "~ nerve", {"nerve": 500_000})
    _refused(_write(tmp_path, document), "'nerve' has 500,000 levels; a model file may have at "
                                         "most 500 per covariate")


def test_the_levels_of_all_covariates_are_capped_together(documents, tmp_path):
    names = {name: 450 for name in "abcde"}
    document = _with_levels(documents["recovery"], "~ a + b + c + d + e", names)
    _refused(_write(tmp_path, document), "2,250 categorical levels; a model file may have at most")


def test_too_many_variables_are_refused(documents, tmp_path):
    design = {**documents["recovery"]["design"], "variables": [f"x{i}" for i in range(101)]}
    _refused(_write(tmp_path, {**documents["recovery"], "design": design}),
             "101 variables; a model file may have at most 100")


def test_an_interaction_of_many_levels_is_refused_before_it_is_built(documents, tmp_path):
    document = _with_levels(documents["recovery"], "~ a:b", {"a": 100, "b": 100})
    _refused(_write(tmp_path, document), "could have 10,001 columns")


def test_yes_no_must_name_the_design_variables(documents, tmp_path):
    document = _set(documents["recovery"], "design.yes_no", ["not_a_variable"])
    _refused(_write(tmp_path, document), "yes_no is not a list of its variables")


def test_a_formula_that_runs_code_is_refused(documents, tmp_path):
    document = {**documents["recovery"], "formula": "~ nerve + I(__import__('os').getcwd())"}
    _refused(_write(tmp_path, document), "it calls .__import__")


# -------------------------------------------- formulas that would explode ---

EXPLOSIVE = {  # formula, message
    "power tower": ("~ I(9**9**9)", "an exponent must be a number from -10 to 10"),
    "power of a power": ("~ I(2**10**10)", "an exponent must be"),
    "nested powers": ("~ I(((9**16)**16)**16)", "an exponent must be"),
    "nested small powers": ("~ I(((9**9)**9)**9)", "a power of a power"),
    "nested squares": ("~ np.square(np.square(np.square(np.square(age))))", "a power of a power"),
    "nested exp10": ("~ exp10(exp10(exp10(age)))", "a power of a power"),
    "np.power": ("~ np.power(10**20, 10**20)", "np.power's exponent must be"),
    "text times a billion": ("~ I('a' * 10**9)", "arithmetic on text or lists"),
    "list times a billion": ("~ I([0] * 10**9)", "arithmetic on text or lists"),
    "text column times a billion": ("~ nerve + I(nerve * 10**9)", "arithmetic on text"),
    "shift": ("~ I(1 << 10**9)", "shifts and bitwise operators"),
    "polynomial degree": ("~ poly(age, degree=10**6)", "degree must be a whole number from 0 to 50"),
    "spline df": ("~ bs(age, df=10**7)", "degree must be a whole number from 0 to 50"),
    "spline df written out": ("~ bs(age, df=10000000)", "degree must be a whole number"),
    "100 KB formula": ("~ " + " + ".join(["age"] * 20_000), "characters long; a model file's "
                                                              "formula has at most 1,000"),
    "formula power": ("~ (age + nerve)**30", r"formula power \*\* 30 is not allowed"),
    "formula product": ("~ " + " * ".join("abcdefghij"), "expands to more than 200 terms"),
}


def test_formulas_that_would_explode_are_refused_quickly_in_a_subprocess(documents, tmp_path):
    cases = []
    for label, (formula, message) in EXPLOSIVE.items():
        document = {**documents["recovery"], "formula": formula}
        path = _write(tmp_path, document, re.sub(r"\W+", "_", label) + ".json")
        cases.append({"label": label, "path": str(path), "message": message})
    # Interactions whose every factor is small but whose product is not, however spelt.
    recovery = documents["recovery"]
    listed = "[" + ",".join(map(str, range(50))) + "]"
    for label, document, message in [
        ("C() of 500 levels, three ways", _with_levels(recovery, "~ C(a):C(b):C(c)",
                                                       dict.fromkeys("abc", 500)),
         "could have 125,000,001 columns"),
        ("C() of numbers, eight ways", _with_levels(
            recovery, "~ " + ":".join(f"C({v})" for v in "abcdefgh"), {}) | {
            "design": {**recovery["design"], "variables": list("abcdefgh"), "categories": {},
                       "transform_state": {}, "yes_no": []}}, "could have 429,981,697 columns"),
        ("C() with levels lists, five ways", {**recovery, "formula": "~ " + ":".join(
            f"C({v}, levels={listed})" for v in "abcde"), "design": {
            **recovery["design"], "variables": list("abcde"), "categories": {},
            "transform_state": {}, "yes_no": []}}, "could have 312,500,001 columns"),
    ]:
        path = _write(tmp_path, document, re.sub(r"\W+", "_", label) + ".json")
        cases.append({"label": label, "path": str(path), "message": message})
    pipe = tmp_path / "pipe.json"
    os.mkfifo(pipe)  # opening a named pipe for reading must not wait for a writer
    cases.append({"label": "named pipe", "path": str(pipe), "message": "not a regular file"})
    plan = tmp_path / "cases.json"
    plan.write_text(json.dumps(cases), encoding="utf-8")
    script = textwrap.dedent("""
        import json, sys, time
        from click.testing import CliRunner
        import regen
        from regen.cli import main
        for case in json.load(open(sys.argv[1])):
            print("START", case["label"], flush=True)
            start = time.perf_counter()
            try:
                regen.load_model(case["path"])
                error = None
            except Exception as caught:
                error = caught
            seconds = time.perf_counter() - start
            result = CliRunner().invoke(main, ["predict", "--model", case["path"], "--age", "50"])
            print(json.dumps({**case, "seconds": seconds, "type": type(error).__name__,
                              "error": str(error), "exit_code": result.exit_code,
                              "stderr": result.stderr}), flush=True)
    """)
    try:
        run = subprocess.run([sys.executable, "-c", script, str(plan)], capture_output=True,
                             text=True, timeout=60, cwd=ROOT)
    except subprocess.TimeoutExpired as hung:
        output = hung.stdout.decode() if isinstance(hung.stdout, bytes) else hung.stdout or ""
        started = [line for line in output.splitlines() if line.startswith("START")]
        pytest.fail(f"loading did not finish: {started[-1] if started else 'before any case'}")
    assert run.returncode == 0, run.stderr
    results = [json.loads(line) for line in run.stdout.splitlines() if line.startswith("{")]
    assert [r["label"] for r in results] == [c["label"] for c in cases]
    for result in results:
        label = result["label"]
        assert result["type"] == "ModelFileError", (label, result["type"], result["error"])
        assert result["path"] in result["error"] and re.search(result["message"],
                                                               result["error"]), result
        assert result["seconds"] < 10, (label, result["seconds"])
        assert result["exit_code"] == 1, (label, result["exit_code"], result["stderr"])
        assert result["stderr"].startswith("error: ") and result["path"] in result["stderr"]


# ------------------------------------------- what regen's own fits use ---

ALLOWED = ["~ I(age - 50)", "~ I((age - 50) / 10) + diabetes + smoker", "~ I(age**2)",
           "~ I(age ** -1) + I(age ** 0.5)", "~ bs(age, df=3)", "pain ~ cr(day, df=4, "
           "constraints='center') * nerve", "numb ~ np.log(day)", "~ I(age > 50)",
           "~ I(nerve == 'intercostal') + I((nerve == 'intercostal') * 2)", "~ nerve * diabetes",
           "~ (nerve + age + diabetes)**2", "~ C(nerve) + poly(age, 2) + scale(bmi)",
           "~ bs(age, knots=[40, 60], lower_bound=18, upper_bound=365)",
           "~ np.clip(age, 18, 90) + np.where(age > 50, 1, 0) + np.power(age, 2)",
           "~ nerve + diabetes - 1", "weight ~ Time * Diet", "~ I(Time ** 2) + Diet"]


@pytest.mark.parametrize("formula", ALLOWED)
def test_what_regen_fits_use_is_allowed(formula):
    assert check_formula(formula, text_variables={"nerve", "Diet"}) is None


def test_a_model_with_allowed_transforms_loads_and_predicts_the_same(tmp_path):
    import pandas as pd

    episodes = regen.read_cohort(ROOT / "data" / "example").episodes("numbness")
    fit = regen.fit_recovery("~ C(nerve) + I((age - 50) / 10) + I(bmi ** 2) + diabetes",
                             episodes)
    loaded = regen.load_model(fit.save(tmp_path / "m.json"))
    profile = pd.DataFrame({"nerve": ["intercostal"], "age": [61.0], "bmi": [27.0],
                            "diabetes": [1.0]})
    pd.testing.assert_frame_equal(loaded.predict_quantile(profile), fit.predict_quantile(profile))
