# supportbot tasks. `make demo` sets up and runs the product; `make test` runs the whole suite.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# The τ²-bench retail store beside the project; a small slice shipped with the tests otherwise.
DEMO_STORE ?= $(firstword $(wildcard ../shared/data/retail/db.json) tests/fixtures/retail_slice.json)
# Help pages written for the demo store, plus the store's policy when it is beside the project.
DEMO_DOCS ?= demo/docs $(wildcard ../shared/data/retail/policy.md)

.PHONY: install demo chat test lint format clean

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	# The CPU build of PyTorch from local disk first: an unpinned torch pulls a multi-GB CUDA build.
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -e '.[dev]'
	touch $@

install: $(BIN)/.installed

demo: install
	$(BIN)/supportbot orders import $(DEMO_STORE)
	$(BIN)/supportbot ingest $(DEMO_DOCS)
	@echo "Web chat: http://127.0.0.1:8000   staff desk: /staff (first: .venv/bin/supportbot staff add YOU --name 'Your Name')"
	$(BIN)/supportbot serve --host 127.0.0.1 --port 8000

chat: install
	$(BIN)/supportbot chat

test: install
	$(BIN)/ruff check agent tools kb ingest examples tests bench
	$(BIN)/python -m pytest

lint: install
	$(BIN)/ruff check agent tools kb ingest examples tests bench
	$(BIN)/ruff format --check agent tools kb ingest examples tests bench
	$(BIN)/mypy agent tools kb ingest examples

format: install
	$(BIN)/ruff format agent tools kb ingest examples tests bench
	$(BIN)/ruff check --fix agent tools kb ingest examples tests bench

clean:
	rm -rf $(VENV) data .pytest_cache .mypy_cache .ruff_cache
