"""A sweep directory's results: its layout, each run's status, and the Parquet tables.

Written by ``rwrl sweep`` (``rwrl.experiments``), read by the report layer,
which imports only this module (no JAX, no experiments)::

    DIR/sweep.json                 the expanded plan: name, axes, levels, and per run
                                   its id, level, settings and resolved RunConfig
    DIR/runs/<run id>/             an ordinary run directory (what `rwrl run` writes),
                     error.txt     a failed run's exception on its first line, then the
                                   traceback (removed when the run succeeds)
    DIR/results/episodes.parquet   every row of every run's metrics.jsonl, plus
                                   run_id, level, level_index and config.<path> columns
    DIR/results/runs.parquet       one row per planned run: run_id, status, level,
    DIR/results/runs.csv           level_index, config.<path> columns, the run's
                                   evaluators on its eval rows (``summary.evaluate_episodes``,
                                   window = its eval_episodes: one evaluation) under
                                   their own names, and env_steps, wall_time,
                                   env_steps_per_s when it finished (a bandit
                                   sweep's runs: final_regret and its interval;
                                   their rows are in each run's regret.parquet,
                                   ``bandit_results``)

``config.<path>`` columns: the run's RunConfig flattened with the sweep file's
paths: ``config.agent``, ``config.env``, ``config.seed``, ``config.steps``,
``config.delay_spec.actions``, ``config.noise_spec.gaussian.observations``,
``config.agent_config.batch_size``, ``config.env_kwargs.time_limit``; list
values are JSON text.

Status of a run: ``done`` (it has summary.json), ``failed`` (error.txt),
``running`` (its lock file names a live process of this machine), ``partial``
(started, not running: the next ``rwrl sweep`` resumes it) or ``pending``.
These are told from which files exist; ``rwrl.experiments.sweeps.status``
also reads them as ``rwrl run --resume`` does, and calls a run whose files do
not read ``broken`` (``rwrl sweep status``, ``rwrl sweep run``).
"""

from __future__ import annotations

import io
import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable, Mapping

from rwrl.challenges.registry import CHALLENGES
from rwrl.storage.atomic_files import atomic_write_bytes
from rwrl.metrics.episode_file import read_rows

if TYPE_CHECKING:
    import pandas as pd

PLAN_FILE = "sweep.json"
RUNS_DIR = "runs"
RESULTS_DIR = "results"
ERROR_FILE = "error.txt"
EPISODES_FILE = "episodes.parquet"
RUNS_FILE = "runs.parquet"
RUNS_CSV = "runs.csv"
#: the run directory's files (``rwrl.experiments.run`` and ``.lock``; a test checks they match).
RUN_CONFIG, RUN_METRICS, RUN_SUMMARY, RUN_LOCK = "config.json", "metrics.jsonl", "summary.json", ".lock"
STATUSES = ("done", "failed", "running", "partial", "pending")


def read_plan(sweep_dir: Path) -> dict[str, Any]:
    """Return the plan recorded in ``DIR/sweep.json`` (a dict; see the module docstring)."""
    path = Path(sweep_dir) / PLAN_FILE
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise FileNotFoundError(f"{sweep_dir} holds no sweep ({PLAN_FILE} is missing)") from None
    except (OSError, json.JSONDecodeError) as err:
        raise ValueError(f"cannot read {path}: {err}") from err


def run_dir(sweep_dir: Path, run_id: str) -> Path:
    return Path(sweep_dir) / RUNS_DIR / run_id


def _pid_alive(pid_text: str) -> bool:
    try:
        os.kill(int(pid_text), 0)
    except (ValueError, ProcessLookupError):
        return False
    except PermissionError:  # someone else's live process
        return True
    return True


def run_status(path: Path) -> str:
    """Return the status of one run directory (one of ``STATUSES``)."""
    path = Path(path)
    if (path / RUN_SUMMARY).exists():
        return "done"
    if (path / ERROR_FILE).exists():
        return "failed"
    lock = path / RUN_LOCK
    try:
        if _pid_alive(lock.read_text().strip()):
            return "running"
    except OSError:
        pass  # no lock file: not running
    return "partial" if (path / RUN_CONFIG).exists() else "pending"


def read_summary(path: Path) -> dict[str, Any]:
    """Return a run directory's ``summary.json``.

    Raises:
      ValueError: it is missing, unreadable, not JSON or not an object with its counters
        (the message names the file and the reason).
    """
    file = Path(path) / RUN_SUMMARY
    try:
        summary = json.loads(file.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ValueError(f"{file}: unreadable ({err})") from err
    if not isinstance(summary, dict) or not isinstance(summary.get("counters"), dict):
        raise ValueError(f"{file}: not a run summary (no counters object)")
    return summary


def first_error_line(path: Path) -> str:
    """Return the first line of a failed run's ``error.txt`` (its exception), or ''."""
    try:
        text = (Path(path) / ERROR_FILE).read_text()
    except OSError:
        return ""
    return text.strip().splitlines()[0] if text.strip() else ""


def statuses(sweep_dir: Path, plan: Mapping[str, Any] | None = None) -> dict[str, str]:
    """Return run id -> status for every run of the plan."""
    plan = plan or read_plan(sweep_dir)
    return {r["run_id"]: run_status(run_dir(sweep_dir, r["run_id"])) for r in plan["runs"]}


# ---------------------------------------------------------------- columns
def _leaves(prefix: str, value: Any) -> Iterable[tuple[str, Any]]:
    if isinstance(value, Mapping):
        for key, inner in value.items():
            yield from _leaves(f"{prefix}.{key}", inner)
    elif isinstance(value, (list, tuple)):
        yield prefix, json.dumps(value)
    else:
        yield prefix, value


def config_columns(config: Mapping[str, Any]) -> dict[str, Any]:
    """Return a RunConfig dict as ``config.<path>`` columns (see the module docstring)."""
    out: dict[str, Any] = {}
    for key, value in config.items():
        if key == "env_kwargs":
            for name, inner in value.items():
                # a challenge spec's fields flatten to ``config.<spec>.<field>``
                prefix = f"config.{name}" if name in CHALLENGES else f"config.env_kwargs.{name}"
                out.update(_leaves(prefix, inner))
        else:
            out.update(_leaves(f"config.{key}", value))
    return out


def _run_columns(run: Mapping[str, Any]) -> dict[str, Any]:
    return {"run_id": run["run_id"], "level": run.get("level"),
            "level_index": run.get("level_index"), **config_columns(run["config"])}


def _consistent(frame: "pd.DataFrame") -> "pd.DataFrame":
    """Make object columns that mix types (a number here, text there) text, for Parquet."""
    for name in frame.columns:
        if frame[name].dtype == object:
            kinds = {type(v) for v in frame[name] if v is not None and v == v}
            if len(kinds) > 1:
                frame[name] = frame[name].map(lambda v: v if v is None else str(v))
    return frame


# ---------------------------------------------------------------- tables
def episode_table(sweep_dir: Path, plan: Mapping[str, Any]) -> "pd.DataFrame":
    """Return every episode row of every run, with the run's columns in front."""
    import pandas as pd
    frames = []
    for run in plan["runs"]:
        rows = read_rows(run_dir(sweep_dir, run["run_id"]) / RUN_METRICS)
        if rows:
            frame = pd.DataFrame(rows)
            front = pd.DataFrame([_run_columns(run)] * len(frame))
            frames.append(pd.concat([front, frame.drop(columns=front.columns, errors="ignore")],
                                    axis=1))
    return _consistent(pd.concat(frames, ignore_index=True)) if frames else pd.DataFrame()


def _summary(path: Path, eval_episodes: int) -> dict[str, Any]:
    """The evaluators of a run's eval rows, and its counters when it finished."""
    import pandas as pd
    from rwrl.metrics.summary import evaluate_episodes
    out: dict[str, Any] = {}
    rows = [r for r in read_rows(path / RUN_METRICS) if r.get("phase") == "eval"]
    if rows:
        out.update(evaluate_episodes(pd.DataFrame(rows), window=max(1, eval_episodes)))
    try:
        summary = read_summary(path)
    except ValueError:
        return out
    out["env_steps"] = summary["counters"].get("env_steps")  # None offline
    out["updates"] = summary["counters"].get("updates")
    if "final_normalized_score" in summary:  # an offline run: the dataset's reference scores
        out["final_normalized_score"] = summary["final_normalized_score"]
    out["wall_time"] = summary.get("timing", {}).get("total")
    out["env_steps_per_s"] = summary.get("env_steps_per_s")
    final = summary.get("final_regret")
    if isinstance(final, dict):  # a bandit run (``bandit_results``): its final regret over seeds
        out.update({f"final_regret{suffix}": final.get(key) for suffix, key in
                    (("", "mean"), ("_ci_low", "ci_low"), ("_ci_high", "ci_high"))})
    return out


def run_table(sweep_dir: Path, plan: Mapping[str, Any]) -> "pd.DataFrame":
    """Return one row per planned run: id, status, config columns and its summary."""
    import pandas as pd
    rows = []
    for run in plan["runs"]:
        path = run_dir(sweep_dir, run["run_id"])
        status = run_status(path)
        row = {**_run_columns(run), "status": status,
               "error": first_error_line(path) if status == "failed" else None}
        row.update(_summary(path, int(run["config"].get("eval_episodes", 1))))
        rows.append(row)
    return _consistent(pd.DataFrame(rows))


def _parquet_bytes(frame: "pd.DataFrame") -> bytes:
    buffer = io.BytesIO()
    frame.to_parquet(buffer, index=False)
    return buffer.getvalue()


def write_results(sweep_dir: Path, plan: Mapping[str, Any] | None = None) -> Path:
    """Rewrite ``DIR/results/`` (episodes.parquet, runs.parquet, runs.csv) atomically.

    Returns:
      the results folder.
    """
    plan = plan or read_plan(sweep_dir)
    folder = Path(sweep_dir) / RESULTS_DIR
    folder.mkdir(parents=True, exist_ok=True)
    runs = run_table(sweep_dir, plan)
    atomic_write_bytes(folder / EPISODES_FILE, _parquet_bytes(episode_table(sweep_dir, plan)))
    atomic_write_bytes(folder / RUNS_FILE, _parquet_bytes(runs))
    atomic_write_bytes(folder / RUNS_CSV, runs.to_csv(index=False).encode())
    return folder


def read_sweep(sweep_dir: Path) -> tuple[dict[str, Any], "pd.DataFrame", "pd.DataFrame"]:
    """Return (plan, runs, episodes) of a sweep directory, finished or not.

    The tables are read from ``DIR/results/`` when present, else built from
    the run directories (a sweep killed before its first result).
    """
    import pandas as pd
    plan = read_plan(sweep_dir)
    folder = Path(sweep_dir) / RESULTS_DIR
    if (folder / RUNS_FILE).exists() and (folder / EPISODES_FILE).exists():
        return plan, pd.read_parquet(folder / RUNS_FILE), pd.read_parquet(folder / EPISODES_FILE)
    return plan, run_table(sweep_dir, plan), episode_table(sweep_dir, plan)


__all__ = ["ERROR_FILE", "PLAN_FILE", "RESULTS_DIR", "RUNS_DIR", "STATUSES", "config_columns",
           "episode_table", "first_error_line", "read_plan", "read_summary", "read_sweep", "run_dir",
           "run_status", "run_table", "statuses", "write_results"]
