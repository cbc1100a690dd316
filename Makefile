# genfair: every target bootstraps the virtual environment it needs, so each works on a fresh clone.
PYTHON ?= python3.11
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install experiment test test-slow benchmark docs clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e ".[test]"
	touch $(STAMP)

install: $(STAMP)  ## create .venv and install genfair with its test dependencies

experiment: $(STAMP)  ## run the default experiment (extra Hydra overrides: make experiment ARGS="seed=1")
	OMP_NUM_THREADS=1 $(BIN)/genfair $(ARGS)

test: $(STAMP)  ## the default test suite (a few minutes on 2 CPU cores)
	$(BIN)/python -m pytest -q $(ARGS)

test-slow: $(STAMP)  ## the slow tests only
	$(BIN)/python -m pytest -q -m slow $(ARGS)

benchmark: $(STAMP)  ## the benchmarks whose results the README reports
	OMP_NUM_THREADS=1 $(BIN)/python benchmarks/loop_speed.py
	OMP_NUM_THREADS=1 $(BIN)/python benchmarks/hypernet_size.py
	OMP_NUM_THREADS=1 $(BIN)/python benchmarks/hypernet_speed.py

docs: $(STAMP)  ## build the documentation site into site/ (offline; any broken link fails the build)
	OMP_NUM_THREADS=1 $(BIN)/mkdocs build --strict

clean:
	rm -rf $(VENV) outputs multirun
