# Two commands for a fresh machine: `make run` and `make test`.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# the lowest versions pyproject.toml admits (constraints/lowest.txt), in a venv of their own
LOWEST := build/venv-lowest
export MUJOCO_GL ?= egl
# the default suites run test files in parallel (pytest-xdist): one worker per core, at most 4
# (each holds JAX and MuJoCo), each test file on one worker so its module fixtures are built
# once. `make test PARALLEL=` runs them in one process.
PARALLEL ?= -n auto --maxprocesses 4 --dist loadfile

.PHONY: run test test-all test-lowest test-integrations bench venv clean

$(STAMP): pyproject.toml
	@command -v $(PYTHON) >/dev/null || { echo "needs $(PYTHON)"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[test]'
	touch $(STAMP)

venv: $(STAMP)

## make run: the suite's point in one page: D4PG on cartpole-swingup without challenges and
## under the easy combined challenge, as a two-run sweep (sweeps/main.toml, two workers), then
## the sweep report; prints its path and the final returns (its measured time:
## benchmarks/results/make-run.md); re-running continues the sweep where it stopped.
run: $(STAMP)
	$(BIN)/rwrl sweep run sweeps/main.toml --out runs/make-run --workers 2
	$(BIN)/rwrl report runs/make-run

## make test: the default test suite (slow checks excluded; `make test-all` runs them too).
## pytest exits 5 when it collects no test; make fails on that as on any non-zero status.
test: $(STAMP)
	$(BIN)/python -m pytest -q $(PARALLEL)

test-all: $(STAMP)
	$(BIN)/python -m pytest -q -m '' $(PARALLEL)

## make test-lowest: the default suite against the lowest versions pyproject.toml admits.
$(LOWEST)/.installed: pyproject.toml constraints/lowest.txt
	@command -v $(PYTHON) >/dev/null || { echo "needs $(PYTHON)"; exit 1; }
	rm -rf $(LOWEST)
	$(PYTHON) -m venv $(LOWEST)
	$(LOWEST)/bin/pip install -q --upgrade pip
	$(LOWEST)/bin/pip install -q -c constraints/lowest.txt -e '.[test]'
	$(LOWEST)/bin/pip check
	touch $@

test-lowest: $(LOWEST)/.installed
	$(LOWEST)/bin/python -m pytest -q $(PARALLEL)

## make test-integrations: the RLlib, TorchRL, SB3 and sbx recipes (docs/integrations.md) with
## the integrations extra installed into .venv (ray[rllib] brings gymnasium 1.2.2 there).
$(VENV)/.integrations: $(STAMP)
	$(BIN)/pip install -q -e '.[test,integrations]'
	$(BIN)/pip check
	touch $@

test-integrations: $(VENV)/.integrations
	$(BIN)/python -m pytest -q -m integrations

bench: $(STAMP)
	$(BIN)/python benchmarks/throughput.py

clean:
	rm -rf $(VENV) build *.egg-info
