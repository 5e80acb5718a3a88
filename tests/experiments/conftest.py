"""Fixtures shared by the sweep tests."""

from __future__ import annotations

import time

import pytest

from rwrl.experiments.sweeps.run import record_plan, run_sweep
from tests.experiments.sweep_fixtures import finished_run, tiny_plan


@pytest.fixture(scope="session")
def local_sweep(tmp_path_factory):
    """The tiny sweep (2 settings x 2 seeds), run once on the local backend with 2 workers."""
    tmp = tmp_path_factory.mktemp("local")
    spec, plan = tiny_plan(tmp)
    started = time.perf_counter()
    counts = run_sweep(plan, tmp / "out", workers=2, progress=False)
    return {"spec": spec, "plan": plan, "dir": tmp / "out", "counts": counts,
            "seconds": time.perf_counter() - started}


@pytest.fixture
def sweep(tmp_path):
    """A sweep directory of the tiny plan (4 runs) whose runs all finished (fabricated, not trained)."""
    spec, plan = tiny_plan(tmp_path)
    out = tmp_path / "out"
    (out / "runs").mkdir(parents=True)
    record_plan(out, plan)
    for run in plan.runs:
        finished_run(out / "runs" / run.run_id, run.config.to_dict())
    return {"spec": spec, "out": out, "ids": [r.run_id for r in plan.runs],
            "configs": [r.config.to_dict() for r in plan.runs]}
