"""Run a sweep: claim its directory, record the plan, run what is left, write the results.

``run_sweep(plan, DIR)``:

1. locks ``DIR`` (``DIR/.lock``: one sweep process per directory);
2. writes the plan to ``DIR/sweep.json`` (atomically), or, when ``DIR``
   already holds one, refuses a different plan, naming the differences;
3. runs every run that has not finished: pending ones start, partial ones
   (killed, Ctrl-C) resume from their checkpoints, failed ones run again
   (resuming) unless ``retry_failed=False``; broken ones (files that do not
   read, ``rwrl.experiments.sweeps.status``) are left for the user, counted
   and named;
4. rewrites ``DIR/results/`` as runs end (at most every ``RESULTS_EVERY_S``
   seconds, and once at the end, also after Ctrl-C or a lost Ray cluster).

It returns the runs' verified status counts (``status.count``): the sweep is
done when ``status.not_done`` of them is 0, as ``rwrl sweep status`` says.

Progress: one line or bar for the whole sweep: env steps of all runs (read
from each run's last metrics row), runs done and failed, steps/s summed over
the workers and the ETA.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any, Iterator, Mapping

from rwrl.storage.atomic_files import WriteError, atomic_write_bytes
from rwrl.storage.progress_reporter import ProgressReporter
from rwrl.storage.run_lock import RunLock
from rwrl.experiments.sweeps.plan import SweepPlan, config_differences
from rwrl.experiments.sweeps.status import BROKEN, check_run, check_runs, count
from rwrl.metrics import sweep_results as results
from rwrl.metrics.bandit_results import is_bandit_config

BACKENDS = ("local", "ray")
#: least seconds between two rewrites of DIR/results while runs end.
RESULTS_EVERY_S = 10.0
_PROGRESS_EVERY_S = 2.0


class SweepPlanError(ValueError):
    """``DIR`` holds a sweep with another plan; the message names the differences."""


def _normalized(data: Any) -> Any:
    return json.loads(json.dumps(data))


def _plan_differences(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[str]:
    """Return what differs between two recorded plans, other than runs the new one adds."""
    old_runs = {r["run_id"]: r for r in old["runs"]}
    new_runs = {r["run_id"]: r for r in new["runs"]}
    removed = sorted(set(old_runs) - set(new_runs))
    out = []
    if old.get("name") != new.get("name"):
        out.append(f"name {old.get('name')!r} -> {new.get('name')!r}")
    if removed:
        out.append(f"{len(removed)} runs removed ({', '.join(removed[:3])}"
                   f"{', ...' if len(removed) > 3 else ''})")
    for run_id in sorted(set(old_runs) & set(new_runs)):
        a, b = old_runs[run_id]["config"], new_runs[run_id]["config"]
        changed = config_differences(a, b)
        if changed:
            shown = ", ".join(f"{k} {a.get(k)!r} -> {b.get(k)!r}" for k in changed[:3])
            out.append(f"run {run_id}: {shown}")
            break  # one example is enough to see why
    return out


def record_plan(sweep_dir: Path, plan: SweepPlan) -> dict[str, Any]:
    """Write ``DIR/sweep.json``, or check that the one there is this plan; return it.

    A plan that only adds runs to the recorded one (more seeds, another
    level) grows it: the recorded runs keep their results and the new ones
    are pending. Any other difference is refused.

    Raises:
      SweepPlanError: ``DIR`` holds another plan (the message names the differences).
    """
    new = _normalized(plan.to_dict())
    path = Path(sweep_dir) / results.PLAN_FILE
    if path.exists():
        old = results.read_plan(sweep_dir)
        differences = _plan_differences(old, new)
        if differences:
            raise SweepPlanError(
                f"{sweep_dir} holds the sweep {old.get('name')!r} with another plan: "
                f"{'; '.join(differences)}. Re-run it with its own settings, or pick another --out")
        if len(new["runs"]) == len(old["runs"]):
            return old
    text = json.dumps(new, indent=1)  # file order kept: the tables list columns in it
    atomic_write_bytes(path, (text + "\n").encode())
    return new


# ---------------------------------------------------------------- progress
def _last_env_steps(metrics: Path) -> int:
    """Return ``env_steps`` of the last complete row of a metrics file (0 if none)."""
    try:
        with open(metrics, "rb") as f:
            f.seek(0, os.SEEK_END)
            size = f.tell()
            f.seek(max(0, size - 65536))
            tail = f.read()
    except OSError:
        return 0
    lines = tail[:tail.rfind(b"\n") + 1].splitlines()
    for line in reversed(lines):
        try:
            return int(json.loads(line).get("env_steps", 0))
        except (ValueError, AttributeError):
            continue  # the first line of the tail may be cut
    return 0


def _steps(config: Mapping[str, Any]) -> int:
    """Steps of one run: a bandit run counts its rounds (moving when the run ends)."""
    return config["horizon"] if is_bandit_config(config) else config["steps"]


class SweepProgress:
    """The sweep's one progress line or bar (see the module docstring)."""

    def __init__(self, sweep_dir: Path, plan: Mapping[str, Any], enabled: bool = True,
                 file: Any = None, terminal: bool | None = None):
        self.sweep_dir, self.plan = Path(sweep_dir), plan
        self.done, self.failed = set(), set()
        for run in plan["runs"]:
            if check_run(self._dir(run)).status == "done":
                self.done.add(run["run_id"])
        total = sum(_steps(r["config"]) for r in plan["runs"])
        self._reporter = ProgressReporter(total, self._position(), desc="sweep", unit="step",
                                          file=file, enabled=enabled, terminal=terminal)
        self._last = 0.0
        self._postfix()

    def _dir(self, run: Mapping[str, Any]) -> Path:
        return results.run_dir(self.sweep_dir, run["run_id"])

    def _position(self) -> int:
        total = 0
        for run in self.plan["runs"]:
            steps = _steps(run["config"])
            done = run["run_id"] in self.done
            total += steps if done else min(steps, _last_env_steps(self._dir(run) / results.RUN_METRICS))
        return total

    def _postfix(self) -> None:
        self._reporter.set_postfix({"runs": f"{len(self.done)}/{len(self.plan['runs'])}",
                                    "failed": len(self.failed)})

    def ended(self, result: Mapping[str, Any]) -> None:
        """Count a run that ended (done or failed)."""
        (self.done if result["status"] == "done" else self.failed).add(result["run_id"])
        self._postfix()
        self.tick(force=True)

    def tick(self, force: bool = False) -> None:
        """Re-read the runs' positions (at most every couple of seconds)."""
        now = time.monotonic()
        if force or now - self._last >= _PROGRESS_EVERY_S:
            self._last = now
            self._reporter.update(self._position())

    def close(self) -> None:
        self._reporter.close()


# ---------------------------------------------------------------- running
def _tasks(sweep_dir: Path, plan: Mapping[str, Any], threads: int, retry_failed: bool
           ) -> list[dict[str, Any]]:
    tasks = []
    for run in plan["runs"]:
        path = results.run_dir(sweep_dir, run["run_id"])
        status = check_run(path).status
        if status in ("done", BROKEN) or (status == "failed" and not retry_failed):
            continue
        tasks.append({"run_id": run["run_id"], "run_dir": str(path.resolve()),
                      "config": run["config"], "threads": threads})
    return tasks


def _results_stream(backend: str, tasks: list, workers: int, threads: int,
                    address: str | None) -> Iterator[dict | None]:
    from rwrl.experiments.sweeps import backends as sweep_backends
    if backend == "local":  # no idle processes when fewer runs are left than workers
        return sweep_backends.local_results(tasks, min(workers, len(tasks)), threads)
    return sweep_backends.ray_results(tasks, workers, threads, address)


def run_sweep(plan: SweepPlan, sweep_dir: Path, *, backend: str = "local", workers: int = 1,
              address: str | None = None, progress: bool = True, retry_failed: bool = True,
              progress_file: Any = None, archive: Path | None = None) -> dict[str, int]:
    """Run every unfinished run of ``plan`` under ``sweep_dir``; return the status counts.

    Args:
      backend: "local" (a process pool) or "ray".
      workers: runs at once (local pool size; Ray: local ``num_cpus`` / threads).
      address: Ray cluster address (backend "ray" only).
      retry_failed: run failed runs again (they resume from their checkpoints).
      archive: a ``sweep_archive`` directory: its runs of this plan are restored before
        anything runs (the unfinished ones it carries resume from their checkpoints), and
        each run is archived there as it finishes.

    Raises:
      ValueError: an unknown backend or workers < 1.
      SweepPlanError: ``sweep_dir`` holds another plan.
      RunLockedError: another process is running this sweep.
      ArchiveMismatchError: ``archive`` holds a run of this plan with another config.
      ClusterLostError: Ray stopped under the sweep (backend "ray"); the results are written.
    """
    from rwrl.experiments.sweeps import archive as sweep_archive
    from rwrl.experiments.sweeps.backends import threads_per_worker
    if backend not in BACKENDS:
        raise ValueError(f"backend = {backend!r}: allowed {list(BACKENDS)}")
    if workers < 1:
        raise ValueError(f"workers = {workers!r}: give an integer >= 1")
    sweep_dir = Path(sweep_dir)
    try:
        (sweep_dir / results.RUNS_DIR).mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise WriteError(sweep_dir, err) from err
    with RunLock(sweep_dir):
        recorded = record_plan(sweep_dir, plan)
        if archive is not None:
            restored = sweep_archive.restore(archive, sweep_dir)
            carried = sweep_archive.restore_unfinished(archive, sweep_dir)
            sweep_archive.archive(sweep_dir, archive)  # its plan, and runs done before it was used
            if restored:
                print(f"restored {restored} finished runs from {archive}", flush=True)
            if carried:
                print(f"continuing {len(carried)} unfinished runs from their checkpoints in {archive}: "
                      f"{', '.join(carried)}", flush=True)
        threads = threads_per_worker(workers) if backend == "local" or address is None else 1
        tasks = _tasks(sweep_dir, recorded, threads, retry_failed)
        bar = SweepProgress(sweep_dir, recorded, enabled=progress, file=progress_file)
        last_write = time.monotonic()
        try:
            if tasks:
                for result in _results_stream(backend, tasks, workers, threads, address):
                    if result is None:
                        bar.tick()
                        continue
                    bar.ended(result)
                    if archive is not None:
                        sweep_archive.archive_run(sweep_dir, archive, result["run_id"])
                    if time.monotonic() - last_write >= RESULTS_EVERY_S:
                        results.write_results(sweep_dir, recorded)
                        last_write = time.monotonic()
        finally:
            bar.close()
            results.write_results(sweep_dir, recorded)
    return count_statuses(sweep_dir, recorded)


def count_statuses(sweep_dir: Path, plan: Mapping[str, Any] | None = None) -> dict[str, int]:
    """Return the number of runs per verified status (every status of ``status.STATUSES``)."""
    return count(check_runs(sweep_dir, plan))


__all__ = ["BACKENDS", "SweepPlanError", "SweepProgress", "count_statuses", "record_plan",
           "run_sweep"]
