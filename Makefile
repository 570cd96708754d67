# Two commands on a fresh machine: `make run` and `make test`.
PY := .venv/bin/python
PORT ?= 8501
export RAGTUNE_HOME ?= $(CURDIR)/workspace

.PHONY: run test bench clean

.venv/ready: requirements.txt
	python3 -m venv .venv
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	touch $@

run: .venv/ready
	$(PY) -m core demo >/dev/null
	$(PY) -m streamlit run app.py --server.port $(PORT)

test: .venv/ready
	$(PY) -m pytest -q tests

bench: .venv/ready
	$(PY) benchmarks/run.py

clean:
	rm -rf .venv workspace
