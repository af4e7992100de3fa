# Two commands for a new user: `make demo` and `make test`. See README.md.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
PIP    := $(BIN)/python -m pip
# The optional C extensions (setup.py): a change to one rebuilds the install.
EXTENSIONS := gateway/_json_rows.c ingest/_line_protocol.c mqtt/_publishes.c alerts/_windows.c \
              alerts/_episodes.c alerts/_rows.h

.PHONY: demo test lint typecheck pytest services clean

# Settings given to make as variables (`make demo FACILITY_HTTP_PORT=8080`) reach the commands
# too, not only those already in the environment.
$(foreach v,$(filter FACILITY_%,$(.VARIABLES)),$(eval export $(v)))

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip

$(VENV)/.installed: pyproject.toml setup.py $(EXTENSIONS) | $(BIN)/python
	$(PIP) install -q -e .
	touch $@

$(VENV)/.installed-dev: pyproject.toml setup.py $(EXTENSIONS) | $(BIN)/python
	$(PIP) install -q -e '.[dev]'
	touch $@ $(VENV)/.installed

# The demo injects three faults so work orders appear within the first minute:
# a gate forced open (20 s), a passenger trapped (30 s, fires 5 s later), a pump running dry
# (10 s, fires after the rule's 30 s). `make demo DEMO_FAULTS=` runs a fault-free complex.
DEMO_FAULTS ?= --inject pump-dry-run:pump-1@10 \
               --inject gate-forced-open:b05-u2-door@20+30 \
               --inject elevator-entrapment:b03-u1-el2@30+300

demo: $(VENV)/.installed
	$(BIN)/facility up $(DEMO_FAULTS)

services:
	@scripts/ensure-services.sh

lint: $(VENV)/.installed-dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(VENV)/.installed-dev
	$(BIN)/mypy

# Two workers (pytest-xdist), a test file each at a time: most of a test's wall time is spent
# waiting on the services it started, so two files side by side on two cores take 10 minutes
# where one after the other took 17. `make test PYTEST_WORKERS=0` runs in one process.
PYTEST_WORKERS ?= 2

pytest: $(VENV)/.installed-dev services
	$(BIN)/python -m pytest -n $(PYTEST_WORKERS) --dist loadfile $(PYTEST_ARGS)

test: lint typecheck pytest

clean:
	rm -rf $(VENV) var .mypy_cache .ruff_cache .pytest_cache test-artifacts
