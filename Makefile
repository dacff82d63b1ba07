# One entry point. `make demo` and `make test` install what they need first (idempotent).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

export FIFTYONE_DO_NOT_TRACK := true
export HF_HUB_OFFLINE := 1
export NUMBA_CACHE_DIR ?= $(HOME)/.cache/synthcurate/numba

.PHONY: install demo test lint clean

install: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[all,dev]'
	$(BIN)/python -m curation.checks
	touch $(STAMP)

demo: install
	$(BIN)/curate demo

test: install
	bash tests/setup.sh
	$(BIN)/python -m pytest

lint: install
	$(BIN)/python -m ruff check . && $(BIN)/python -m ruff format --check .

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
