# Two commands for a newcomer: `make demo` (the main job) and `make test` (everything CI runs).
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin

.PHONY: quote demo test test-quick lint bench bench-purchase bench-http bench-expiry bench-discounts bench-console clean

$(BIN)/kopilka: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@

quote: $(BIN)/kopilka  ## price the API.md worked example with the example program
	$(BIN)/kopilka quote examples/api/program.yaml examples/api/receipt.json --balance 500

demo: $(BIN)/kopilka  ## the seed-002 café chain with members and receipts, served on :8000
	$(BIN)/kopilka demo

lint: $(BIN)/kopilka
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports

# The suite runs in TEST_WORKERS pytest-xdist processes (a Dask cluster's tests in one of
# them); the tests marked `serial` (one stops PostgreSQL) run alone first.
TEST_WORKERS ?= 2
XDIST        := -n $(TEST_WORKERS) --dist loadgroup

test: lint  ## lint, types, layer contracts, then the whole test suite
	$(BIN)/pytest -m serial
	$(BIN)/pytest $(XDIST) -m "not serial"

test-quick: $(BIN)/kopilka  ## a developer's loop: the suite without the tests marked slow (CI runs all)
	$(BIN)/pytest $(XDIST) -m "not slow and not serial"

bench: $(BIN)/kopilka
	taskset -c 0 $(BIN)/python bench/quote_bench.py

bench-purchase: $(BIN)/kopilka  ## purchases/s through the service vs pgbench (needs PostgreSQL)
	$(BIN)/python bench/purchase_bench.py

bench-http: $(BIN)/kopilka  ## HTTP purchases/s and latency with wrk (needs PostgreSQL and wrk)
	$(BIN)/python bench/http_bench.py

bench-expiry: $(BIN)/kopilka  ## expire 1,000,000 lots on PostgreSQL
	$(BIN)/python bench/expiry_bench.py

bench-discounts: $(BIN)/kopilka  ## what 20 discounts cost a quote; a million coupon codes on PostgreSQL
	$(BIN)/python bench/discount_bench.py

bench-console: $(BIN)/kopilka  ## how long each console page takes on the demo's 20,000 receipts
	$(BIN)/python bench/console_bench.py

clean:
	rm -rf $(VENV) .mypy_cache .pytest_cache .ruff_cache .hypothesis
