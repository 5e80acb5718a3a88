# Two commands for a fresh machine: `make run` and `make test`.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export MUJOCO_GL ?= egl

.PHONY: run test test-all bench venv clean

$(STAMP): pyproject.toml
	@command -v $(PYTHON) >/dev/null || { echo "needs $(PYTHON)"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[test]'
	touch $(STAMP)

venv: $(STAMP)

## make run: trains D4PG on cartpole-swingup under the easy combined challenge
## (about ten minutes on 2 cores; re-running continues the run); prints the report path.
run: $(STAMP)
	$(BIN)/rwrl run --agent d4pg --env cartpole-swingup --combined-challenge easy --steps 400000 --seed 0 --out runs/make-run

## make test: the default test suite (slow checks excluded; `make test-all` runs them too).
## pytest exits 5 when it collects no test; make fails on that as on any non-zero status.
test: $(STAMP)
	$(BIN)/python -m pytest -q

test-all: $(STAMP)
	$(BIN)/python -m pytest -q -m ''

bench: $(STAMP)
	$(BIN)/python benchmarks/throughput.py

clean:
	rm -rf $(VENV) build *.egg-info
