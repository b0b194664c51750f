# byoc — the two commands of the README, and a few more for developers.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo test lint install clean checkov checkov-venv compliance-venv bench

# Install byoc with its test and sandbox dependencies into a virtualenv (once per change of pyproject).
$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test,sandbox]'
	touch $(STAMP)

install: $(STAMP)

## checkov in a virtualenv of its own (.venv-checkov): its pinned dependencies never touch byoc's.
## Tolerant: without network it says so, and tests/test_checkov.py skips.
CHECKOV := .venv-checkov/bin/checkov
$(CHECKOV):
	$(PYTHON) -m venv .venv-checkov && .venv-checkov/bin/python -m pip install --quiet checkov \
	  || echo "checkov could not be installed: tests/test_checkov.py will be skipped"

checkov-venv: $(CHECKOV)

## terraform-compliance (BDD policies in tests/policy/*.feature) in a virtualenv of its own too: its
## pins clash with checkov's. Tolerant like checkov's: without it, tests/test_policy.py skips its half.
COMPLIANCE := .venv-compliance/bin/terraform-compliance
$(COMPLIANCE):
	$(PYTHON) -m venv .venv-compliance && .venv-compliance/bin/python -m pip install --quiet terraform-compliance \
	  || echo "terraform-compliance could not be installed: its tests in tests/test_policy.py will be skipped"

compliance-venv: $(COMPLIANCE)

## checkov on the plan JSON of specs/prod.yaml, made against the local sandbox; skips in .checkov.yaml;
## and checkov and terraform-compliance on the shipped specs and insecure variants (tests/test_policy.py).
checkov: $(STAMP) $(CHECKOV) $(COMPLIANCE)
	$(BIN)/python -m pytest -q tests/test_checkov.py tests/test_policy.py

## The main job: validate → plan → apply → plan shows no changes → health → drift → backup → backups
## list → restore → plan shows no changes → backups prune → scale 2 → scale 1 → destroy → destroy
## --include-data, on specs/dev.yaml, against the local AWS sandbox (moto's server on 127.0.0.1, TLS).
demo: $(STAMP)
	bash scripts/demo.sh

## Lint, type-check and the whole test suite (two pytest workers: the suite halves its time on 2 cores).
test: $(STAMP) checkov-venv compliance-venv
	$(BIN)/ruff check byoc tests bench
	$(BIN)/mypy byoc
	$(BIN)/python -m pytest -q -n 2

## The benchmark: validate → plan → apply → no-op plan → destroy at 1, 3, 10 and 30 nodes, 0 and
## 50 ms per AWS call, against moto behind bench/awsproxy.py (several minutes; not part of `test`).
## A subset: make bench BENCH_ARGS="--nodes 3 --delays 50 --no-serial"
bench: $(STAMP)
	$(BIN)/python bench/run.py $(BENCH_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check byoc tests bench
	$(BIN)/mypy byoc

clean:
	rm -rf $(VENV) .venv-checkov .venv-compliance .pytest_cache .ruff_cache .mypy_cache
