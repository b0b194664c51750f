# byoc — the two commands of the README, and a few more for developers.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo test lint install clean bench

# Install byoc with its test and sandbox dependencies into a virtualenv (once per change of pyproject).
$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test,sandbox]'
	touch $(STAMP)

install: $(STAMP)

## The main job: validate → plan → apply → plan shows no changes → destroy, on specs/dev.yaml,
## against the local AWS sandbox (moto's server on 127.0.0.1).
demo: $(STAMP)
	bash scripts/demo.sh

## Lint, type-check and the whole test suite.
test: $(STAMP)
	$(BIN)/ruff check byoc tests bench
	$(BIN)/mypy byoc
	$(BIN)/python -m pytest -q

## The benchmark: validate → plan → apply → no-op plan → destroy at 1, 3, 10 and 30 nodes, 0 and
## 50 ms per AWS call, against moto behind bench/awsproxy.py (several minutes; not part of `test`).
## A subset: make bench BENCH_ARGS="--nodes 3 --delays 50 --no-serial"
bench: $(STAMP)
	$(BIN)/python bench/run.py $(BENCH_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check byoc tests bench
	$(BIN)/mypy byoc

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .mypy_cache
