# Every target creates .venv and installs the project into it when needed.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export TF_CPP_MIN_LOG_LEVEL ?= 2

.PHONY: demo test test-all test-large bench lint format install clean

install: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/deepfield tour

# Tests run in parallel processes (pytest-xdist), one per core up to 4, a test file per
# process: most tests train tiny models that keep one core busy, so on 2 cores the suite
# takes about 9 minutes instead of 15. `pytest tests` alone runs them in one process.
PARALLEL := -n auto --maxprocesses 4 --dist loadfile

test: $(STAMP)
	$(BIN)/python -m pytest tests $(PARALLEL)

# Everything, the `large` tests included (paper-size builds, long end-to-end runs).
test-all: $(STAMP)
	$(BIN)/python -m pytest tests -m "large or not large" $(PARALLEL)

# Only the `large` tests: what `make test` leaves out.
test-large: $(STAMP)
	$(BIN)/python -m pytest tests -m large

bench: $(STAMP)
	$(BIN)/python -m benchmarks.run_all

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

clean:
	rm -rf runs .pytest_cache
