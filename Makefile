# Two commands matter: `make demo` (a demo batch on Azurite through the local
# dev host) and `make test` (the whole test suite, as CI runs it).
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
# pytest-xdist workers for the fast tier (they share one Azurite). Most tests wait on a host or
# on storage, so more workers than cores pay off; TEST_WORKERS=auto: one per core.
TEST_WORKERS ?= 4
STAMP := $(VENV)/.installed

.PHONY: install demo test test-fast test-random lint typecheck lock bench clean

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

# Everything: the fast tier on pytest-xdist workers, then the slow tier in one process as
# before (its crash, fault, memory and size tests are timing-sensitive: not run side by side),
# on a fresh private Azurite of its own (AZURITE_BLOB_ENDPOINT emptied), so that Azurite's
# ten-minute garbage collection does not land in it (tests/azurite.py says why that matters).
test: $(STAMP)
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	$(PY) -m mypy
	$(PY) -m pytest -q -m "not slow" -n $(TEST_WORKERS)
	AZURITE_BLOB_ENDPOINT= $(PY) -m pytest -q -m slow

# The edit loop: everything but the tests marked slow (tests/conftest.py lists them), on
# pytest-xdist workers. PYTHONDONTWRITEBYTECODE is cleared so pytest may cache its rewritten
# test modules (seconds of start-up per worker).
test-fast: $(STAMP)
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	$(PY) -m mypy
	PYTHONDONTWRITEBYTECODE= $(PY) -m pytest -q -m "not slow" -n $(TEST_WORKERS)

# The fast tier in a shuffled order (the seed is printed; ARGS=--random-order-seed=N replays
# one): no test may depend on the order tests run in.
test-random: $(STAMP)
	PYTHONDONTWRITEBYTECODE= $(PY) -m pytest -q -m "not slow" --random-order-bucket=global $(ARGS)

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
