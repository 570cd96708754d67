# Two commands on a fresh machine: `make run` and `make test`.
PY := .venv/bin/python
PORT ?= 8501
export RAGTUNE_HOME ?= $(CURDIR)/workspace

.PHONY: run lint test test-fast readme bench clean

# The pinned stack first, then ragtune itself (editable, so `ragtune` runs this checkout).
.venv/ready: requirements.txt pyproject.toml
	python3 -m venv .venv
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	$(PY) -m pip install --quiet --no-deps -e .
	touch $@

run: .venv/ready
	$(PY) -m core demo >/dev/null
	$(PY) -m streamlit run app.py --server.port $(PORT)

lint: .venv/ready
	$(PY) -m ruff check .

# Everything (CI runs this): lint, the fast tier on both cores, then the browser and slow tiers
# one test at a time, since those time themselves or load the machine on purpose.
test: lint
	$(PY) -m pytest -q -n 2
	$(PY) -m pytest -q -m "browser or slow" --durations=15

# The fast tier (plain `pytest`: every module and docstring example, minus Chromium and the tests
# that train or encode corpora), on two processes.
test-fast: .venv/ready
	$(PY) -m pytest -q -n 2

# README's command reference, rewritten from the parser (tests/test_cli_reference.py checks it).
readme: .venv/ready
	$(PY) -m scripts.cli_reference

bench: .venv/ready
	$(PY) benchmarks/run.py

clean:
	rm -rf .venv workspace
