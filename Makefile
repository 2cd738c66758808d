# Every target sets itself up: a fresh clone needs only Python >= 3.10 (3.11 tested).
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-dev
# The model the demo serves; trained on first use when missing.
DEMO_MODEL ?= models/demo

.PHONY: install test test-fast lint demo bench clean

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

install: $(STAMP)

lint: $(STAMP)
	$(BIN)/ruff check .

test: $(STAMP) lint
	$(BIN)/pytest

# The quick loop while coding: everything but the tests marked slow.
test-fast: $(STAMP)
	$(BIN)/pytest -m "not slow" -x -q

demo: $(STAMP)
	$(BIN)/defectscope demo --model $(DEMO_MODEL)

bench: $(STAMP)
	$(BIN)/python -m pip install --quiet -e '.[dev,bench]'
	$(BIN)/python benchmarks/inference_latency.py

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache *.egg-info
