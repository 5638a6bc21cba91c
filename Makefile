# Two commands matter: `make demo` (a demo batch on Azurite through the local
# dev host) and `make test` (the whole test suite, as CI runs it).
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: install demo test test-fast lint typecheck lock bench clean

$(STAMP): requirements.txt requirements-dev.txt pyproject.toml package.json package-lock.json
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements-dev.txt
	$(PY) -m pip install --quiet --no-deps -e .
	npm ci --no-audit --no-fund --loglevel=error
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(PY) -m scripts.demo $(ARGS)

test: $(STAMP)
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	$(PY) -m mypy
	$(PY) -m pytest -q

# The edit loop: everything but the tests marked slow (tests/conftest.py lists them).
test-fast: $(STAMP)
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	$(PY) -m mypy
	$(PY) -m pytest -q -m "not slow"

lint: $(STAMP)
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	$(PY) -m mypy
	bash infra/checkov.sh

# The type checker alone (files and settings: [tool.mypy] in pyproject.toml).
typecheck: $(STAMP)
	$(PY) -m mypy

# Regenerate requirements.txt (the deployed lock) from requirements.in; see scripts/lock.sh.
lock: $(STAMP)
	bash scripts/lock.sh $(ARGS)

bench: $(STAMP)
	$(PY) -m bench.run --quick

clean:
	rm -rf .devhost demo-output .pytest_cache .ruff_cache .mypy_cache
