"""Fixtures shared by the sweep tests."""

from __future__ import annotations

import time

import pytest

from rwrl.experiments.sweeps.run import run_sweep
from tests.experiments.sweep_fixtures import tiny_plan


@pytest.fixture(scope="session")
def local_sweep(tmp_path_factory):
    """The tiny sweep (2 settings x 2 seeds), run once on the local backend with 2 workers."""
    tmp = tmp_path_factory.mktemp("local")
    spec, plan = tiny_plan(tmp)
    started = time.perf_counter()
    counts = run_sweep(plan, tmp / "out", workers=2, progress=False)
    return {"spec": spec, "plan": plan, "dir": tmp / "out", "counts": counts,
            "seconds": time.perf_counter() - started}
