"""Each run's status in a sweep, verified by reading its files the way ``rwrl run --resume`` does.

``sweep_results.run_status`` tells a status from which files exist (a
``summary.json``: done). That counts a finished run whose ``config.json`` was
truncated as done, although ``--resume`` cannot open it. ``check_run`` reads
the files too:

* ``config.json`` (every started run) must parse into a ``RunConfig``
  (``rwrl.experiments.config.read_config``, the reader ``--resume`` uses);
* ``summary.json`` (a done run) must be a JSON summary
  (``sweep_results.read_summary``, the reader of the results tables).

A bandit run (``rwrl bandits run``'s directory, its config's ``kind`` "bandit") has
its config read by ``BanditRunConfig`` and no checkpoints.

A run whose files do not read is ``broken``, with the file and the reason;
``rwrl sweep run`` leaves it alone (re-running would overwrite what is left
of it) and both commands name it. A partial run is also checked for its
newest checkpoint's manifest: one that does not read is named in the run's
note, but the run stays partial, since ``--resume`` passes over it to the
previous checkpoint (or starts over).
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any, Mapping

from rwrl.experiments.config import ConfigError, read_config
from rwrl.metrics import bandit_results
from rwrl.metrics import sweep_results as results

BROKEN = "broken"
#: every status of a verified run, in the order the counts are printed.
STATUSES = ("done", "failed", "running", "partial", "pending", BROKEN)


@dataclasses.dataclass(frozen=True)
class RunCheck:
    """A run's verified status and, where there is one, a one-line note."""

    #: one of ``STATUSES``.
    status: str
    #: broken: "FILE: reason"; failed: the error's first line; partial: a newest
    #: checkpoint that does not read. None otherwise.
    note: str | None = None


def _bandit_config(file: Path) -> dict[str, Any] | None:
    """Return ``file``'s JSON when it is a bandit run's config, else None (also unreadable)."""
    try:
        data = json.loads(file.read_text())
    except (OSError, UnicodeDecodeError, ValueError):
        return None
    return data if bandit_results.is_bandit_config(data) else None


def _config_problem(path: Path, bandit: dict[str, Any] | None) -> str | None:
    """Return why ``path/config.json`` does not read as ``--resume`` reads it, or None.

    ``bandit``: the file's JSON when it is a bandit run's config (``_bandit_config``),
    read as ``rwrl bandits run`` reads it (``BanditRunConfig``).
    """
    file = path / results.RUN_CONFIG
    if not file.exists():
        return f"{file}: missing"
    if bandit is not None:
        from rwrl.experiments.bandit_run import BanditRunConfig
        try:
            BanditRunConfig.from_dict(bandit)
        except (ValueError, TypeError) as err:
            return f"{file}: not a bandit run config ({err})"
        return None
    try:
        read_config(file)
    except ConfigError as err:
        if err.__cause__ is not None:  # read_config could not read it as JSON
            return f"{file}: unreadable ({err.__cause__})"
        return f"{file}: {err}"  # JSON, but not a valid RunConfig (the message names the field)
    except (KeyError, TypeError, AttributeError) as err:  # JSON, but not a run config's shape
        return f"{file}: not a run config ({type(err).__name__}: {err})"
    return None


def _checkpoint_note(path: Path) -> str | None:
    """Return a note when the newest checkpoint's manifest does not read (None: it reads)."""
    from rwrl.storage.checkpoint import CheckpointError, list_checkpoints
    from rwrl.storage.checkpoint import read_manifest  # no array hashed
    checkpoints = list_checkpoints(path / "checkpoints")
    if not checkpoints:
        return "no checkpoint yet: --resume starts it over"
    try:
        read_manifest(checkpoints[0])
    except CheckpointError as err:
        older = "to the previous checkpoint" if len(checkpoints) > 1 else "and starts the run over"
        return f"{err}; --resume passes over it {older}"
    return None


def check_run(path: Path) -> RunCheck:
    """Return the verified status of one run directory (see the module docstring)."""
    path = Path(path)
    status = results.run_status(path)
    if status in ("pending", "running"):  # nothing to read yet, or its writer is at work
        return RunCheck(status)
    if status == "failed" and not (path / results.RUN_CONFIG).exists():
        return RunCheck(status, results.first_error_line(path))  # failed before it started
    bandit = _bandit_config(path / results.RUN_CONFIG)  # read once: None for an RL run
    problem = _config_problem(path, bandit)
    if problem is None and status == "done":
        try:
            results.read_summary(path)
        except ValueError as err:
            problem = str(err)
        regret = path / bandit_results.REGRET_FILE
        if problem is None and not regret.exists() and bandit is not None:
            problem = f"{regret}: missing"
    if problem is not None:
        return RunCheck(BROKEN, problem)
    if status == "failed":
        return RunCheck(status, results.first_error_line(path))
    if status == "partial" and bandit is not None:
        return RunCheck(status, "a bandit run has no checkpoint: it runs again from round 1")
    return RunCheck(status, _checkpoint_note(path) if status == "partial" else None)


def check_runs(sweep_dir: Path, plan: Mapping[str, Any] | None = None) -> dict[str, RunCheck]:
    """Return run id -> ``RunCheck`` for every run of the plan."""
    plan = plan or results.read_plan(sweep_dir)
    return {r["run_id"]: check_run(results.run_dir(sweep_dir, r["run_id"])) for r in plan["runs"]}


def count(checks: Mapping[str, RunCheck]) -> dict[str, int]:
    """Return the number of runs per status (every status of ``STATUSES``)."""
    counts = {s: 0 for s in STATUSES}
    for check in checks.values():
        counts[check.status] += 1
    return counts


def not_done(counts: Mapping[str, int]) -> int:
    """Return how many of the counted runs are not done (every status but "done" counts).

    ``rwrl sweep status`` and ``rwrl sweep run`` exit 1 while this is not 0.
    """
    return sum(counts.values()) - counts["done"]


__all__ = ["BROKEN", "STATUSES", "RunCheck", "check_run", "check_runs", "count", "not_done"]
