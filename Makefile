# The README's two commands are `make quickstart` and `make test`; both set up .venv first (idempotent).
PY := .venv/bin/python
PYTEST_ARGS ?=

.PHONY: setup quickstart test test-slow lint format

# The suite never reaches the network: models and datasets come from local files or the local cache.
test test-slow: export HF_HUB_OFFLINE = 1

setup:
	@bash scripts/setup.sh

quickstart: setup
	$(PY) -m rlvr.cli train recipes/quickstart.yaml

test: setup
	.venv/bin/ruff check .
	.venv/bin/ruff format --check .
	$(PY) -m pytest -m "not slow and not gpu" --timeout=900 $(PYTEST_ARGS)

test-slow: setup
	$(PY) -m pytest -m "slow and not gpu" --timeout=1800 $(PYTEST_ARGS)

lint: setup
	.venv/bin/ruff check . && .venv/bin/ruff format --check .

format: setup
	.venv/bin/ruff format . && .venv/bin/ruff check --fix .
