"""What runs in a sweep worker: one run, started or resumed, its failure recorded.

A bandit sweep's run (its config's ``kind`` is "bandit") is ``rwrl bandits run``'s:
no checkpoint, so an unfinished one runs again from round 1 (seconds, usually).

The same function runs in a local pool process and as a Ray task, so both
backends give the same run directories. It resumes whenever the run directory
already holds a config, which is what makes a retried Ray task (its worker or
node lost) continue from the run's own checkpoint instead of step 0.

Threads: a worker gets ``threads`` cores. The learner runs single-threaded in
every backend (``XLA_FLAGS``, set before JAX loads), so results do not depend
on the worker's share of cores; the engine steps the envs on ``threads``
threads. ``OMP_NUM_THREADS`` and friends keep the numeric libraries in their
share.
"""

from __future__ import annotations

import functools
import os
import time
import traceback
from pathlib import Path
from typing import Any

from rwrl.storage.atomic_files import atomic_write_bytes
from rwrl.metrics.sweep_results import ERROR_FILE

#: seconds a worker waits for a run's lock (the workers of a killed sweep take
#: about a second to notice and exit).
LOCK_WAIT_S = 20.0


def worker_environment(threads: int) -> dict[str, str]:
    """Return the env variables that keep one worker's libraries in ``threads`` cores."""
    count = str(max(1, int(threads)))
    return {
        "XLA_FLAGS": "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1",
        "OMP_NUM_THREADS": count, "MKL_NUM_THREADS": count, "OPENBLAS_NUM_THREADS": count,
        "MUJOCO_GL": os.environ.get("MUJOCO_GL", "egl"),
    }


def run_one(task: dict[str, Any]) -> dict[str, Any]:
    """Train (or resume) one run of a sweep; return {run_id, status, error, steps}.

    Args:
      task: ``run_id``, ``run_dir``, ``config`` (a RunConfig dict) and ``threads``.

    An exception of the run is written to ``RUN/error.txt`` (atomically) and
    returned as status "failed", so that one run's failure does not stop the
    sweep. KeyboardInterrupt (Ctrl-C, or the pool stopping it) propagates:
    the run stays resumable from its last checkpoint.
    """
    run_dir = Path(task["run_dir"])
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / ERROR_FILE).unlink(missing_ok=True)  # running again
    try:
        summary = _train(task, run_dir)
    except Exception as err:  # any failure of one run is recorded; the sweep goes on
        first = f"{type(err).__name__}: {err}".splitlines()[0]
        text = first + "\n\n" + "".join(traceback.format_exception(err))
        atomic_write_bytes(run_dir / ERROR_FILE, text.encode())
        return {"run_id": task["run_id"], "status": "failed", "error": first}
    counters = summary["counters"]  # an offline run (a dataset) counts learner updates,
    steps = (counters["env_steps"] if "env_steps" in counters  # a bandit run rounds
             else counters["updates"] if "updates" in counters else counters["rounds"])
    return {"run_id": task["run_id"], "status": "done", "error": None, "steps": steps}


def _run_bandit(task: dict[str, Any], run_dir: Path) -> dict[str, Any]:
    """One bandit run (``rwrl bandits run``'s): it starts over unless it finished."""
    from rwrl.experiments.bandit_run import BanditRunConfig, run_bandit
    from rwrl.storage.run_lock import RunLockedError
    config = BanditRunConfig.from_dict(task["config"])
    deadline = time.monotonic() + LOCK_WAIT_S
    while True:
        try:
            return run_bandit(config, run_dir, progress=False)
        except RunLockedError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)


def _train(task: dict[str, Any], run_dir: Path) -> dict[str, Any]:
    import json
    from rwrl.metrics.bandit_results import is_bandit_config
    if is_bandit_config(task["config"]):
        return _run_bandit(task, run_dir)
    from rwrl.experiments.config import RunConfig
    from rwrl.experiments.run import (CONFIG_FILE, SUMMARY_FILE, RunHooks, RunLockedError,
                                      is_finished, make_env_for, resume_run, start_run)
    if is_finished(run_dir):  # a retried task whose run had finished before its worker died
        return json.loads((run_dir / SUMMARY_FILE).read_text())
    # the engine's threads follow the worker's cores (not recorded in the config)
    hooks = RunHooks(env_factory=functools.partial(make_env_for, num_threads=int(task["threads"])),
                     progress=False)
    config = RunConfig.from_dict(task["config"])
    deadline = time.monotonic() + LOCK_WAIT_S
    while True:
        try:
            if (run_dir / CONFIG_FILE).exists():
                return resume_run(run_dir, hooks=hooks)
            return start_run(config, run_dir, hooks=hooks)
        except RunLockedError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)


__all__ = ["run_one", "worker_environment"]
