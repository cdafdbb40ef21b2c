"""Each fast path of reading a cohort gives what its general path gives.

A plain CSV file is parsed by Arrow (``regen.io.text``), and pandas parses the others; the
line scan skips blocks it can tell hold nothing to find (``regen._scan``); a long text
column is parsed once per distinct value (``regen.validation``); visits in file order are
checked for copies by their neighbours, and looked up once per run of a treatment
(``regen.linking``, ``regen.episodes``). Each test reads the same files both ways and
compares everything the user gets: tables, dtypes, exclusions, episodes, warnings, and
the problems with their messages.
"""

from __future__ import annotations

import warnings
from dataclasses import asdict

import numpy as np
import pandas as pd
import pytest

import regen
import regen._scan as scan_module
import regen.episodes as episodes_module
import regen.io.text as text_module
import regen.linking as linking_module
import regen.validation as validation_module
from regen.io import read_tables
from regen.ledger import Notes, Problems

TODAY = pd.Timestamp("2026-01-01").date()


def _tables(folder):
    """The simulated cohort's three tables as the text a user's files hold."""
    return {name: pd.read_csv(folder / f"{name}.csv", dtype=str, keep_default_na=False)
            for name in ("patients", "treatments", "visits")}


def _write(folder, tables, **options):
    folder.mkdir(parents=True)
    for name, frame in tables.items():
        frame.to_csv(folder / f"{name}.csv", index=False, **options)
    return folder


@pytest.fixture(scope="module")
def simulated(tmp_path_factory):
    """About 1,400 dated visit rows: more than the rows from which a column is parsed once
    per distinct value."""
    folder = tmp_path_factory.mktemp("simulated") / "cohort"
    regen.simulate.cohort(120, seed=7, time_columns=("visit_date",)).write(folder)
    return _tables(folder)


def _warned(tables):
    """Usable data that warns: copies of visits, an Excel serial among ISO dates, spaces
    around an id, an unknown nerve, a bmi out of range, spellings to normalise."""
    p, t, v = (tables[name].copy() for name in ("patients", "treatments", "visits"))
    v.loc[5, "treatment_id"] = f" {v.loc[5, 'treatment_id']} "
    serial = pd.Timestamp(v.loc[20, "visit_date"]) - pd.Timestamp("1899-12-30")
    v.loc[20, "visit_date"] = str(serial.days)
    v.loc[30, "numb"], v.loc[31, "pain"], v.loc[32, "headache_days"] = " YES ", "n/a", "-"
    v.loc[40, "visit_date"] = "2023-3-5"
    v = pd.concat([v, v.iloc[[10, 11]]]).reset_index(drop=True)
    t.loc[3, "nerve"] = "Ulnar Nerve"
    p.loc[2, "bmi"], p.loc[4, "sex"] = "95", "female"
    return {"patients": p, "treatments": t, "visits": v}


def _broken(tables):
    """A problem of each kind a column or a link can have."""
    p, t, v = (tables[name].copy() for name in ("patients", "treatments", "visits"))
    v.loc[1, "pain"], v.loc[2, "pain"], v.loc[3, "numb"] = "abc", "11", "maybe"
    v.loc[4, "visit_date"], v.loc[7, "visit_date"] = "2023-02-30", "3024-01-10"
    v.loc[6, "treatment_id"], v.loc[8, "visit_date"] = "T999999", ""
    v.loc[12, "headache_days"] = "40"
    v = pd.concat([v, v.iloc[[50]].assign(pain="1"), v.iloc[[60]]]).reset_index(drop=True)
    t.loc[5, "treated_on"], t.loc[6, "distance_mm"], t.loc[7, "side"] = "2023-13-01", "0", "top"
    t.loc[8, "patient_id"] = "P99999"
    t = pd.concat([t, t.iloc[[9]]]).reset_index(drop=True)
    p.loc[3, "birth_year"], p.loc[5, "diabetes"], p.loc[6, "patient_id"] = "19.5", "x", ""
    return {"patients": p, "treatments": t, "visits": v}


def _outcome(folder):
    """Everything read_cohort gives for ``folder``: the cohort's tables, episodes and
    warnings, or the problems and the message."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            cohort = regen.read_cohort(folder, today=TODAY)
        except regen.CohortValidationError as error:
            return {"message": str(error), "problems": error.problems,
                    "warnings": [str(w.message) for w in caught]}
        result = {name: getattr(cohort, name)
                  for name in ("patients", "treatments", "visits", "exclusions")}
        for outcome in ("numbness", "relief"):
            result[outcome], result[f"{outcome}_excluded"] = cohort.episodes(
                outcome, with_exclusions=True)
        result["pain"] = cohort.measurements("pain")
    result["warnings"] = [str(w.message) for w in caught]
    return result


def _assert_same(fast, general):
    assert fast.keys() == general.keys()
    for key, value in fast.items():
        if isinstance(value, pd.DataFrame):
            assert list(value.dtypes.astype(str)) == list(general[key].dtypes.astype(str)), key
            pd.testing.assert_frame_equal(value, general[key], check_exact=True)
        else:
            assert value == general[key], key


@pytest.fixture
def general_paths(monkeypatch):
    """Switch every fast path off: pandas parses, the scan looks at every block, each row
    is parsed on its own, and visits are looked up one by one."""
    def use():
        monkeypatch.setattr(text_module, "_read_plain", lambda *args: None)
        monkeypatch.setattr(scan_module, "_plain_block", lambda *args: None)
        monkeypatch.setattr(validation_module, "_PER_VALUE_ROWS", 10**12)
        monkeypatch.setattr(episodes_module, "_positions",
                            lambda index, values: index.get_indexer(values))
    return use


@pytest.mark.parametrize("make", [_warned, _broken], ids=["warnings", "problems"])
def test_fast_and_general_paths_read_the_same(simulated, tmp_path, monkeypatch, general_paths,
                                              make):
    folder = _write(tmp_path / "cohort", make(simulated))
    # Every text column once per distinct value, however few rows and however distinct.
    monkeypatch.setattr(validation_module, "_PER_VALUE_ROWS", 1)
    monkeypatch.setattr(validation_module, "_PER_VALUE_SHARE", 1.0)
    fast = _outcome(folder)
    general_paths()
    general = _outcome(folder)
    _assert_same(fast, general)
    if make is _broken:   # the file's problems, one by one, with their messages
        rules = set(fast["problems"]["rule"])
        assert {"not a number", "not a yes/no value", "not a date", "required value missing",
                "unknown treatment_id: not in treatments.csv",
                "contradicts an earlier visit of the same treatment on the same day"} <= rules
    else:
        assert any("Excel date serials among ISO dates" in w for w in fast["warnings"])
        assert any("repeat an earlier row exactly" in w for w in fast["warnings"])


def test_the_fast_paths_are_taken(simulated, tmp_path, monkeypatch):
    """A plain file is read by Arrow, and its long columns parsed once per value."""
    taken = {"arrow": 0, "per_value": 0}
    read_plain, factorize = text_module._read_plain, pd.factorize

    def counted_read(*args):
        frame = read_plain(*args)
        taken["arrow"] += frame is not None
        return frame

    def counted_factorize(*args, **kwargs):
        taken["per_value"] += 1
        return factorize(*args, **kwargs)

    monkeypatch.setattr(text_module, "_read_plain", counted_read)
    monkeypatch.setattr(validation_module.pd, "factorize", counted_factorize)
    regen.read_cohort(_write(tmp_path / "cohort", simulated), today=TODAY)
    assert taken["arrow"] == 3 and taken["per_value"] >= 5


def test_visits_in_any_order_have_the_same_copies_and_contradictions(simulated, tmp_path):
    """Copies and contradictions are found by neighbours in a sorted file, by hashing in a
    shuffled one (which of two rows is the earlier one depends on the order)."""
    tables = _warned(simulated)
    visits = tables["visits"]
    tables["visits"] = pd.concat([visits, visits.iloc[[70, 80]].assign(pain="0")])
    in_order = _outcome(_write(tmp_path / "sorted", tables))
    tables["visits"] = tables["visits"].sample(frac=1, random_state=3)
    shuffled = _outcome(_write(tmp_path / "shuffled", tables))
    rules = in_order["problems"]["rule"].value_counts()
    assert rules["contradicts an earlier visit of the same treatment on the same day"] == 2
    pd.testing.assert_series_equal(rules, shuffled["problems"]["rule"].value_counts())
    copies = [w for w in in_order["warnings"] if "repeat an earlier row exactly" in w]
    assert copies and copies == [w for w in shuffled["warnings"]
                                 if "repeat an earlier row exactly" in w]


def test_visits_in_any_order_give_the_same_episodes(simulated, tmp_path):
    tables = _warned(simulated)
    in_order = _outcome(_write(tmp_path / "sorted", tables))
    tables["visits"] = tables["visits"].sample(frac=1, random_state=5)
    shuffled = _outcome(_write(tmp_path / "shuffled", tables))
    for outcome in ("numbness", "relief"):
        pd.testing.assert_frame_equal(in_order[outcome], shuffled[outcome])
    columns = ["treatment_id", "day", "numb", "pain", "patient_id"]
    pd.testing.assert_frame_equal(in_order["visits"][columns], shuffled["visits"][columns])


DIALECTS = {
    "crlf": lambda text: text.replace("\n", "\r\n"),
    "cr": lambda text: text.replace("\n", "\r"),
    "bom": lambda text: "\ufeff" + text,
    "semicolon": lambda text: text.replace(",", ";"),
    "tab": lambda text: text.replace(",", "\t"),
    "trailing_separator": lambda text: text.replace("\n", ",\n"),
    "title_lines": lambda text: "Export of the follow-up\n\n" + text,
    "declared_separator": lambda text: "sep=,\n" + text,
    "no_last_line_break": lambda text: text.rstrip("\n"),
    "blank_lines": lambda text: text.replace("\n", "\n\n", 3) + "\n",
    "short_row": lambda text: text.replace("\n", "\nT1,3\n", 1),
    "wide_row": lambda text: text.replace("\n", "\nT1,3,no,5,extra\n", 1),
    "quoted": lambda text: text.replace("T1,7,", '"T1",7,'),
    "nul_byte": lambda text: text + "T2,9,no,5\x00\n",
    "spaces": lambda text: text.replace(",yes,", ", yes ,").replace("T2,", " T2,"),
}
PLAIN_VISITS = "treatment_id,day,numb,pain\n" + "".join(
    f"T{1 + i % 2},{i},{'yes' if i % 3 else 'no'},{i % 11}\n" for i in range(60))


@pytest.mark.parametrize("dialect", sorted(DIALECTS))
def test_arrow_and_pandas_read_a_text_table_alike(tmp_path, monkeypatch, dialect):
    (tmp_path / "visits.csv").write_bytes(DIALECTS[dialect](PLAIN_VISITS).encode("utf-8"))
    for name in ("patients", "treatments"):
        (tmp_path / f"{name}.csv").write_text(f"{name[:-1]}_id\nX\n", encoding="utf-8")

    def read():
        problems, notes = Problems(), Notes()
        tables, _ = read_tables(tmp_path, problems, notes)
        return tables.get("visits"), problems.frame(), notes.messages

    arrow, arrow_problems, arrow_notes = read()
    monkeypatch.setattr(text_module, "_read_plain", lambda *args: None)
    pandas, pandas_problems, pandas_notes = read()
    pd.testing.assert_frame_equal(arrow_problems, pandas_problems)
    assert arrow_notes == pandas_notes
    assert (arrow is None) == (pandas is None)
    if arrow is not None:
        pd.testing.assert_frame_equal(arrow.frame, pandas.frame, check_exact=True)
        np.testing.assert_array_equal(arrow.rows, pandas.rows)
        assert arrow.headers == pandas.headers and arrow.decimal_comma == pandas.decimal_comma


def _scan_texts(rng, count):
    """Texts of delimiters, quotes, line ends of each kind, NUL bytes, accents and long
    stretches, each a few hundred bytes."""
    pieces = [b"a", b"1", b",", b";", b"\n", b'"', b"\r", b"\r\n", b"\x00", b"\xc3\xa9", b" "]
    texts = []
    for _ in range(count):
        weights = rng.random(len(pieces)) * (rng.random(len(pieces)) < 0.7)
        weights[[0, 2, 4]] += 1
        chosen = rng.choice(len(pieces), size=int(rng.integers(0, 600)), p=weights / weights.sum())
        long = rng.random(len(chosen)) < 0.02
        texts.append(b"".join(pieces[i] * (int(rng.integers(5, 120)) if far else 1)
                              for i, far in zip(chosen, long, strict=True)))
    return texts


def test_the_line_scan_finds_the_same_with_and_without_skipping_blocks(tmp_path, monkeypatch, rng):
    file = tmp_path / "table.csv"
    full_scan = scan_module._plain_block
    for text in _scan_texts(rng, 300):
        file.write_bytes(text)
        block = int(rng.choice([7, 16, 64, 1 << 21]))
        limit, cell = int(rng.choice([2, 5, 1000])), rng.choice([None, 3, 40, 100_000])
        monkeypatch.setattr(scan_module, "_BLOCK_BYTES", block)
        monkeypatch.setattr(scan_module, "_plain_block", full_scan)
        fast = scan_module.scan_lines(file, 0, "u1", ",", limit, True, cell)
        monkeypatch.setattr(scan_module, "_plain_block", lambda *args: None)
        general = scan_module.scan_lines(file, 0, "u1", ",", limit, True, cell)
        assert asdict(fast) == asdict(general), (text, block, limit, cell)
        if fast.long is None and not any(line[4] == 0 for line in fast.wide):
            assert fast.nul == (b"\x00" in text)   # scanned to the end


def test_a_plain_block_is_skipped(tmp_path, monkeypatch):
    file = tmp_path / "table.csv"
    file.write_bytes(PLAIN_VISITS.encode())
    calls = []
    plain = scan_module._plain_block

    def counted(*args):
        found = plain(*args)
        calls.append(found is not None)
        return found

    monkeypatch.setattr(scan_module, "_plain_block", counted)
    scan = scan_module.scan_lines(file, 0, "u1", ",", 1000, True, 100_000)
    assert calls[0] and scan.lines == 61 and scan.quotes == 0 and not scan.nul


def test_date_ranks_number_the_distinct_dates_of_each_group(rng):
    group = rng.integers(0, 30, 500)
    on = rng.integers(-5, 5, 500) * 86_400 * 10**9
    ranked = rng.random(500) < 0.8
    number, following = linking_module._date_ranks(group, on, ranked)
    frame = pd.DataFrame({"group": group, "on": on})[ranked]
    dates = frame.drop_duplicates().sort_values(["group", "on"])
    dates["number"] = dates.groupby("group").cumcount() + 1
    dates["next"] = dates.groupby("group")["on"].shift(-1)
    expected = frame.merge(dates, on=["group", "on"], how="left")
    np.testing.assert_array_equal(number[ranked], expected["number"])
    nat = np.iinfo(np.int64).min
    np.testing.assert_array_equal(following[ranked], expected["next"].fillna(nat).astype(np.int64))
    assert (number[~ranked] == -1).all() and (following[~ranked] == nat).all()


@pytest.mark.parametrize("order", ["sorted", "shuffled", "wide"])
def test_repeated_pairs_are_found_in_any_order(rng, order):
    first, second = rng.integers(0, 50, 2000), rng.integers(-60, 400, 2000)
    if order == "sorted":
        at = np.lexsort((second, first))
        first, second = first[at], second[at]
    elif order == "wide":   # pairs that do not fit in one number
        second = second * 2**52
    expected = pd.DataFrame({"a": first, "b": second}).duplicated(keep=False).to_numpy()
    np.testing.assert_array_equal(linking_module._repeated(first, second), expected)
    assert expected.any()


def test_a_treatment_without_a_patient_takes_the_birth_year_of_one_without_an_id():
    ids = pd.Series(pd.array(["P1", None, "P2", "P1"], dtype="string[pyarrow]"))
    references = pd.Series(pd.array(["P2", None, "P3", "P1"], dtype="string[pyarrow]"))
    assert episodes_module.row_of(ids, references).tolist() == [2, -1, -1, 0]
    assert episodes_module.row_of(ids, references, missing_too=True).tolist() == [2, 1, -1, 0]


def test_row_of_looks_each_run_up_once_and_finds_what_a_lookup_finds(rng):
    ids = pd.Series(pd.array(["T3", "T1", None, "T2", "T1"], dtype="string[pyarrow]"))
    drawn = rng.choice(np.array(["T1", "T2", "T3", "T4", None], dtype=object), 300)
    references = pd.Series(pd.array(np.repeat(drawn, rng.integers(1, 6, 300)),
                                    dtype="string[pyarrow]"))
    first = {"T3": 0, "T1": 1, "T2": 3}
    expected = np.array([first.get(r, -1) if r is not pd.NA else -1 for r in references])
    np.testing.assert_array_equal(episodes_module.row_of(ids, references), expected)
    expected[references.isna().to_numpy()] = 2
    np.testing.assert_array_equal(episodes_module.row_of(ids, references, missing_too=True),
                                  expected)


@pytest.mark.parametrize("dtype", ["string", "string[pyarrow]"])
def test_visits_find_their_treatment_as_an_index_lookup_does(dtype):
    visits = pd.Series(pd.array(["T2", "T2", None, "T1", "T9", "T1"], dtype=dtype))
    for ids in (["T1", "T2", None], ["T1", "T2", "T3"]):
        ids = pd.Series(pd.array(ids, dtype=dtype))
        np.testing.assert_array_equal(episodes_module._treatment_rows(ids, visits),
                                      pd.Index(ids).get_indexer(visits))
    with pytest.raises(pd.errors.InvalidIndexError):   # as pandas refuses repeated ids
        episodes_module._treatment_rows(pd.Series(pd.array(["T1", "T1"], dtype=dtype)), visits)


def test_in_order_is_exact():
    assert linking_module._in_order(np.array([0, 0, 1]), np.array([3.0, 3.0, 0.0]),
                                    np.array([5, 6, 2]))
    assert not linking_module._in_order(np.array([0, 0, 1]), np.array([3.0, 3.0, 0.0]),
                                        np.array([6, 5, 2]))
    assert not linking_module._in_order(np.array([1, 0]), np.array([0.0, 1.0]), np.array([1, 2]))


def test_groups_find_the_first_and_last_masked_row(rng):
    treatment = np.sort(rng.integers(0, 40, 400))
    groups = episodes_module._Groups(treatment)
    for mask in (rng.random(400) < 0.3, np.zeros(400, dtype=bool), np.ones(400, dtype=bool)):
        rows = np.flatnonzero(mask)
        first, last = np.full(len(groups), -1), np.full(len(groups), -1)
        for row in rows[::-1]:
            first[groups.of_row[row]] = row
        for row in rows:
            last[groups.of_row[row]] = row
        np.testing.assert_array_equal(groups.first(mask), first)
        np.testing.assert_array_equal(groups.last(mask), last)


@pytest.mark.parametrize("values", [
    ["T2", "T2", "T1", "T3", "T3", "T1"],
    ["T2", None, None, "T1", "T9"],
    ["T1"],
    [],
])
def test_positions_by_runs_are_the_index_lookup(values):
    index = pd.Index(pd.array(["T1", "T2", "T3"], dtype="string"))
    for dtype in ("string", "string[pyarrow]", object):
        series = pd.Series(pd.array(values, dtype=dtype) if dtype is not object
                           else np.array(values, dtype=object))
        np.testing.assert_array_equal(episodes_module._positions(index, series),
                                      index.get_indexer(series))


def test_python_text_gives_one_string_per_distinct_text():
    frame = pd.DataFrame({"nerve": pd.array(["a", "b", None, "a"], dtype="string[pyarrow]"),
                          "n": [1, 2, 3, 4]})
    converted = linking_module.python_text(frame.copy())
    assert converted["nerve"].dtype == pd.Series(dtype="string").dtype
    assert converted["nerve"].tolist() == ["a", "b", pd.NA, "a"]
    if converted["nerve"].dtype.storage == "python":
        texts = np.asarray(converted["nerve"].array)
        assert texts[0] is texts[3]
