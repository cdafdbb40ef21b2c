"""The declarations are the one source: the data dictionary and the example follow them."""

from __future__ import annotations

from pathlib import Path

import pytest

import regen
from regen.tables import TABLES, Column, data_dictionary

ROOT = Path(__file__).resolve().parents[1]


def test_data_readme_embeds_the_generated_dictionary():
    readme = (ROOT / "data" / "README.md").read_text(encoding="utf-8")
    assert data_dictionary() in readme, "run: python -m regen.dictionary data/README.md"


def test_every_declared_column_is_in_the_dictionary():
    text = data_dictionary()
    for table in TABLES.values():
        for column in table.columns:
            assert f"| {column.name} | {column.kind} |" in text


def test_rules_read_as_words():
    assert TABLES["visits"]["pain"].rule == "between 0 and 10"
    assert TABLES["treatments"]["distance_mm"].rule == "> 0"
    assert TABLES["patients"]["sex"].rule == "one of F, M, other, unknown"


def test_unknown_kind_is_refused():
    with pytest.raises(ValueError, match="unknown kind"):
        Column("x", "colour")


def test_example_is_the_documented_simulation(tmp_path):
    regen.simulate.cohort(300, seed=2026).write(tmp_path)
    for name in ("patients", "treatments", "visits"):
        assert (tmp_path / f"{name}.csv").read_bytes() == \
            (ROOT / "data" / "example" / f"{name}.csv").read_bytes(), name
