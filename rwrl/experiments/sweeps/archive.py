"""Keep a sweep's finished runs beyond its directory: archive them small, restore them later.

A sweep directory holds each run's checkpoints (megabytes) beside its
config, metrics and summary (kilobytes). A long sweep outlives a sitting,
and the machine it ran on may not keep the directory (a fresh checkout
holds only what was committed). ``archive_run`` copies one *finished*
run's ``config.json`` and ``summary.json`` and its ``metrics.jsonl``
(every row, gzip-compressed) to ``ARCHIVE/runs/<run_id>/``, and the plan
to ``ARCHIVE/sweep.json``: no checkpoints, small enough to commit.
``restore`` writes the archived runs back into a sweep directory whose
recorded plan has them with the same config; there they are done
(``summary.json``), so ``run_sweep`` skips them and every table and report
reads them as before. A bandit run's ``regret.parquet`` (already
compressed) is archived as it is, in place of the metrics.

Unfinished runs are archived only when asked (``archive(...,
unfinished=True)``, ``rwrl sweep archive --unfinished``), to carry a long
run from one machine or sitting to the next: ``ARCHIVE/unfinished/<run_id>/``
holds its config, its compressed metrics and its newest checkpoint that
verifies, with the replay chunks that checkpoint lists (megabytes, not
kilobytes: commit it only to carry the run on). A run must not be running
while it is archived (stop the sweep first; its checkpoint is its state).
``restore`` puts such a run back where its sweep directory has it pending,
or partial at an older checkpoint, and the sweep resumes it from that
checkpoint (``rwrl.experiments.run``'s resume: rows after the checkpoint are
dropped and run again). When the run finishes, archiving it removes its
unfinished copy. A resume on another machine continues the same seeded run,
but the same seeded run can end differently on another machine, so a carried
run is reproducible only where it ran.

``run_sweep(..., archive=DIR)`` (``rwrl sweep run --archive DIR``, the
benchmarks' ``--archive``) restores before it runs and archives each run
as it finishes.
"""

from __future__ import annotations

import gzip
import json
import shutil
from pathlib import Path
from typing import Any, Mapping

from rwrl.storage.atomic_files import atomic_write_bytes
from rwrl.experiments.sweeps.plan import config_differences
from rwrl.experiments.sweeps.status import check_run
from rwrl.metrics import sweep_results as results
from rwrl.metrics.bandit_results import REGRET_FILE

METRICS_GZ = results.RUN_METRICS + ".gz"
#: the archive's folder of unfinished runs, each with its newest checkpoint.
UNFINISHED_DIR = "unfinished"
CHECKPOINTS = "checkpoints"  # a run directory's, as ``rwrl.experiments.run`` names it


class ArchiveMismatchError(ValueError):
    """The archive holds a run of the same id with another config."""


def _archived(archive_dir: Path, run_id: str) -> Path:
    return Path(archive_dir) / results.RUNS_DIR / run_id


def _unfinished(archive_dir: Path, run_id: str) -> Path:
    return Path(archive_dir) / UNFINISHED_DIR / run_id


def _write_plan(archive_dir: Path, plan: Mapping[str, Any]) -> None:
    """Record ``plan`` in the archive, keeping archived runs the new plan does not list."""
    path = Path(archive_dir) / results.PLAN_FILE
    runs = {r["run_id"]: r for r in plan["runs"]}
    if path.exists():
        old = results.read_plan(archive_dir)
        for run in old["runs"]:
            runs.setdefault(run["run_id"], run)
        plan = {**old, **plan}
    text = json.dumps({**plan, "runs": list(runs.values())}, indent=1)
    atomic_write_bytes(path, (text + "\n").encode())


def archive_run(sweep_dir: Path, archive_dir: Path, run_id: str) -> bool:
    """Archive one finished run (config, summary, compressed metrics); return whether it wrote.

    A run already archived with the same summary is left as it is; a run that
    is not done (or is broken: its files do not read) is not archived (False).
    """
    source = results.run_dir(sweep_dir, run_id)
    if check_run(source).status != "done":
        return False
    summary = (source / results.RUN_SUMMARY).read_bytes()
    target = _archived(archive_dir, run_id)
    if (target / results.RUN_SUMMARY).exists() and (target / results.RUN_SUMMARY).read_bytes() == summary:
        return False
    target.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(target / results.RUN_CONFIG, (source / results.RUN_CONFIG).read_bytes())
    if (source / REGRET_FILE).exists():  # a bandit run: its table instead of episode rows
        atomic_write_bytes(target / REGRET_FILE, (source / REGRET_FILE).read_bytes())
    else:
        atomic_write_bytes(target / METRICS_GZ,
                           gzip.compress((source / results.RUN_METRICS).read_bytes(), mtime=0))
    atomic_write_bytes(target / results.RUN_SUMMARY, summary)  # last: it marks the run archived
    shutil.rmtree(_unfinished(archive_dir, run_id), ignore_errors=True)  # carried, now done
    return True


def archive_unfinished(sweep_dir: Path, archive_dir: Path, run_id: str) -> int | None:
    """Archive one partial run with its newest checkpoint; return that checkpoint's step.

    None: not archived (the run is not partial, e.g. done, running or pending, or
    no checkpoint of it verifies). An archived copy at the same step is kept as it is.
    """
    from rwrl.storage.checkpoint import copy_latest, list_checkpoints, read_manifest

    source = results.run_dir(sweep_dir, run_id)
    if check_run(source).status != "partial":
        return None
    target = _unfinished(archive_dir, run_id)
    newest = list_checkpoints(source / CHECKPOINTS)
    kept = list_checkpoints(target / CHECKPOINTS)
    if newest and kept and kept[0].name == newest[0].name:
        return read_manifest(kept[0])["step"]
    target.mkdir(parents=True, exist_ok=True)
    checkpoint = copy_latest(source / CHECKPOINTS, target / CHECKPOINTS)
    if checkpoint is None:
        shutil.rmtree(target, ignore_errors=True)
        return None
    atomic_write_bytes(target / METRICS_GZ, gzip.compress((source / results.RUN_METRICS).read_bytes(), mtime=0))
    atomic_write_bytes(target / results.RUN_CONFIG, (source / results.RUN_CONFIG).read_bytes())
    return checkpoint.step


def archive(sweep_dir: Path, archive_dir: Path, unfinished: bool = False) -> int:
    """Archive every finished run of ``sweep_dir`` and its plan; return how many were written.

    Args:
      unfinished: also archive every partial run with its newest checkpoint
        (:func:`archive_unfinished`; not counted in the return value).
    """
    plan = results.read_plan(sweep_dir)
    Path(archive_dir).mkdir(parents=True, exist_ok=True)
    _write_plan(archive_dir, plan)
    written = sum(archive_run(sweep_dir, archive_dir, r["run_id"]) for r in plan["runs"])
    if unfinished:
        for r in plan["runs"]:
            archive_unfinished(sweep_dir, archive_dir, r["run_id"])
    return written


def unfinished_runs(archive_dir: Path) -> dict[str, int]:
    """Return run id -> step of the newest checkpoint, for the unfinished runs ``archive_dir`` carries."""
    from rwrl.storage.checkpoint import CheckpointError, list_checkpoints, read_manifest

    found = {}
    folder = Path(archive_dir) / UNFINISHED_DIR
    for run in sorted(folder.iterdir()) if folder.is_dir() else []:
        checkpoints = list_checkpoints(run / CHECKPOINTS)
        try:
            found[run.name] = read_manifest(checkpoints[0])["step"] if checkpoints else None
        except CheckpointError:
            found[run.name] = None
    return {k: v for k, v in found.items() if v is not None}


def restore(archive_dir: Path, sweep_dir: Path) -> int:
    """Write the archived runs that ``sweep_dir``'s plan lists back into it; return how many.

    A ``sweep_dir`` without a plan gets the archive's (to read the results
    without running anything). Runs the plan does not list are left in the
    archive; runs already done (or running) in ``sweep_dir`` are kept as they are (a
    broken one, whose files do not read, is replaced by its archived copy).

    Raises:
      ArchiveMismatchError: an archived run has the id of a planned run but another config
        (another scale or setting): pick another archive for the other experiment.
    """
    archive_dir = Path(archive_dir)
    if not (archive_dir / results.PLAN_FILE).exists():
        return 0
    if not (Path(sweep_dir) / results.PLAN_FILE).exists():
        (Path(sweep_dir) / results.RUNS_DIR).mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(Path(sweep_dir) / results.PLAN_FILE, (archive_dir / results.PLAN_FILE).read_bytes())
    planned = {r["run_id"]: r["config"] for r in results.read_plan(sweep_dir)["runs"]}
    restored = 0
    for run in results.read_plan(archive_dir)["runs"]:
        run_id = run["run_id"]
        source = _archived(archive_dir, run_id)
        if run_id not in planned or not (source / results.RUN_SUMMARY).exists():
            continue
        changed = config_differences(run["config"], planned[run_id])
        if changed:
            raise ArchiveMismatchError(
                f"{archive_dir} holds run {run_id} with another config ({', '.join(changed[:3])} "
                f"differ): it archives another experiment; pick another archive directory")
        target = results.run_dir(sweep_dir, run_id)
        if check_run(target).status in ("done", "running"):
            continue
        target.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(target / results.RUN_CONFIG, (source / results.RUN_CONFIG).read_bytes())
        if (source / REGRET_FILE).exists():  # a bandit run
            atomic_write_bytes(target / REGRET_FILE, (source / REGRET_FILE).read_bytes())
        else:
            atomic_write_bytes(target / results.RUN_METRICS,
                               gzip.decompress((source / METRICS_GZ).read_bytes()))
        atomic_write_bytes(target / results.RUN_SUMMARY, (source / results.RUN_SUMMARY).read_bytes())
        restored += 1
    return restored


def restore_unfinished(archive_dir: Path, sweep_dir: Path) -> list[str]:
    """Put back the unfinished runs ``archive_dir`` carries where ``sweep_dir`` has them pending,
    or partial at an older checkpoint; return their ids (the sweep then resumes them).

    Call it after :func:`restore` (which gives ``sweep_dir`` its plan).

    Raises:
      ArchiveMismatchError: a carried run has the id of a planned run but another config.
    """
    from rwrl.storage.checkpoint import CheckpointError, list_checkpoints, read_manifest

    archive_dir = Path(archive_dir)
    if not (archive_dir / results.PLAN_FILE).exists() or not (Path(sweep_dir) / results.PLAN_FILE).exists():
        return []
    planned = {r["run_id"]: r["config"] for r in results.read_plan(sweep_dir)["runs"]}
    recorded = {r["run_id"]: r["config"] for r in results.read_plan(archive_dir)["runs"]}
    put_back = []
    for run_id, step in unfinished_runs(archive_dir).items():
        source = _unfinished(archive_dir, run_id)
        if run_id not in planned or run_id not in recorded:
            continue
        changed = config_differences(recorded[run_id], planned[run_id])
        if changed:
            raise ArchiveMismatchError(
                f"{archive_dir} carries unfinished run {run_id} with another config "
                f"({', '.join(changed[:3])} differ): it archives another experiment; "
                f"pick another archive directory")
        target = results.run_dir(sweep_dir, run_id)
        status = check_run(target).status
        if status in ("done", "running", "failed"):
            continue
        here = list_checkpoints(target / CHECKPOINTS)
        try:
            if here and read_manifest(here[0])["step"] >= step:
                continue  # the sweep directory is as far or further
        except CheckpointError:
            pass  # its own newest checkpoint is damaged: the carried one is better
        shutil.rmtree(target / CHECKPOINTS, ignore_errors=True)
        target.mkdir(parents=True, exist_ok=True)
        shutil.copytree(source / CHECKPOINTS, target / CHECKPOINTS)
        atomic_write_bytes(target / results.RUN_METRICS, gzip.decompress((source / METRICS_GZ).read_bytes()))
        atomic_write_bytes(target / results.RUN_CONFIG, (source / results.RUN_CONFIG).read_bytes())
        put_back.append(run_id)
    return put_back
