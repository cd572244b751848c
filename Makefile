# The two set-up commands of the README: `make demo` and `make test`.
# Each creates (or reuses) the virtual environment $(VENV) and installs what it needs.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.zoorank-installed
PYTEST_ARGS ?=

.PHONY: install demo test lint bench-metrics clean

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[torch,dev]'
	@touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/zoorank demo

test: $(STAMP)
	$(BIN)/python -m ruff check src tests
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/python -m ruff check src tests

bench-metrics: $(STAMP)
	$(BIN)/zoorank bench metrics --write docs/BENCHMARKS.md

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache build src/*.egg-info
