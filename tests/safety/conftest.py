"""Cohorts and helpers for the safety catalogue: every case asserts exact behaviour."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

import regen
from regen.cli import main

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "data" / "example"


def digests(folder: Path) -> dict[str, str]:
    """Every file under ``folder`` (hidden ones included) with its SHA-256."""
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture
def cohort_copy(tmp_path) -> Path:
    """A copy of the example cohort that a test may try to harm."""
    folder = tmp_path / "cohort"
    shutil.copytree(EXAMPLE, folder, ignore=shutil.ignore_patterns("README*"))
    return folder


@pytest.fixture(scope="session")
def small_cohort(tmp_path_factory) -> Path:
    """A small simulated cohort (fast commands), never changed by a test."""
    folder = tmp_path_factory.mktemp("small") / "cohort"
    regen.simulate.cohort(40, seed=11).write(folder)
    return folder


@pytest.fixture
def cli():
    def invoke(*args, **options):
        return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False, **options)
    return invoke
