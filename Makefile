# The two commands a new user needs: `make demo` and `make test`.
# Python 3.11 or newer; `make demo PYTHON=python3.12` picks another.
PYTHON ?= $(shell command -v python3.11 2>/dev/null || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
DATA ?= data/example
OUT ?= demo_output

.PHONY: demo test test-slow test-newest-pandas lint bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# Reinstall whenever the package metadata changes.
$(VENV)/.installed-base: setup.cfg pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e .
	touch $@

$(VENV)/.installed-test: setup.cfg pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	touch $@ $(VENV)/.installed-base

demo: $(VENV)/.installed-base
	$(BIN)/regen demo --data $(DATA) --out $(OUT)

# The tests run on every core (pytest-xdist), each worker's BLAS on one thread: small dense
# algebra is slower when the workers' BLAS threads compete for the same cores.
SERIAL_BLAS := OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 MKL_NUM_THREADS=1

test: $(VENV)/.installed-test
	$(SERIAL_BLAS) $(BIN)/python -m pytest -n auto

test-slow: $(VENV)/.installed-test
	$(BIN)/python -m pytest -m slow

# lifelines (a test peer) pins pandas < 3, so `make test` runs on pandas 2; a plain install
# gets pandas 3. This runs the suite on what users get (the lifelines comparisons skip).
NEWEST := .venv-newest
$(NEWEST)/.installed: setup.cfg pyproject.toml
	$(PYTHON) -m venv $(NEWEST)
	$(NEWEST)/bin/python -m pip install --quiet --upgrade pip
	$(NEWEST)/bin/python -m pip install --quiet -e . "pytest>=8.0" "pytest-xdist>=3.5" \
		"hypothesis>=6.100"
	touch $@

# Every unit and integration test again under the newest pandas; the end-to-end runs (the
# docs' commands and Python blocks, the demo, the report in a browser) run once, in `make
# test`, so that CI stays under 20 minutes.
test-newest-pandas: $(NEWEST)/.installed
	$(SERIAL_BLAS) $(NEWEST)/bin/python -m pytest -n auto -p no:cacheprovider \
		--ignore=tests/test_docs.py --ignore=tests/test_report_browser.py -k "not test_demo"

lint: $(VENV)/.installed-test
	$(BIN)/ruff check regen tests analyses benchmarks docs
	$(BIN)/lint-imports --no-cache

bench: $(VENV)/.installed-test
	$(BIN)/python benchmarks/bench_core.py
	$(BIN)/python benchmarks/bench_episodes.py
	$(BIN)/python benchmarks/bench_survival.py
	$(BIN)/python benchmarks/bench_mixed.py
	$(BIN)/python benchmarks/bench_large.py
	$(BIN)/python benchmarks/bench_plan.py

clean:
	rm -rf $(VENV) $(NEWEST) $(OUT) build *.egg-info
