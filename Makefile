# Two commands matter: `make demo` (a demo batch on Azurite through the local
# dev host) and `make test` (the whole test suite, as CI runs it).
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: install demo test test-fast test-random lint bench clean

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
	$(PY) -m pytest -q

# The edit loop: everything but the tests marked slow (tests/conftest.py lists them), on
# pytest-xdist workers sharing one Azurite. Most tests wait on a host or on storage, so more
# workers than cores pay off (TEST_WORKERS=auto: one per core). PYTHONDONTWRITEBYTECODE is
# cleared so pytest may cache its rewritten test modules (seconds of start-up per worker).
TEST_WORKERS ?= 4
test-fast: $(STAMP)
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	PYTHONDONTWRITEBYTECODE= $(PY) -m pytest -q -m "not slow" -n $(TEST_WORKERS)

# The fast tier in a shuffled order (the seed is printed; ARGS=--random-order-seed=N replays
# one): no test may depend on the order tests run in.
test-random: $(STAMP)
	PYTHONDONTWRITEBYTECODE= $(PY) -m pytest -q -m "not slow" --random-order-bucket=global $(ARGS)

lint: $(STAMP)
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	bash infra/checkov.sh

bench: $(STAMP)
	$(PY) -m bench.run --quick

clean:
	rm -rf .devhost demo-output .pytest_cache .ruff_cache
