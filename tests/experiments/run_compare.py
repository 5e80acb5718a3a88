"""What two executions of one run must agree on: everything but the wall-clock.

``rwrl.experiments.loop`` defines it: the rows of ``metrics.jsonl`` bit for
bit (key order too) except ``wall_time``; the summary's counters except the
process counters ``session`` and ``compiles``, and its last evaluation
return. Floats come back from JSON exactly (Python writes the shortest text
that reads back as the same double), so equal parsed rows are equal bits.
"""

from __future__ import annotations

import json
from pathlib import Path

from rwrl.metrics.episode_file import read_rows

#: row columns that measure wall-clock.
WALL_CLOCK_COLUMNS = ("wall_time",)
#: summary counters that count processes, not the run.
PROCESS_COUNTERS = ("session", "compiles")


def comparable_rows(run_dir: Path) -> list[list[tuple]]:
    """The rows of ``run_dir/metrics.jsonl`` as (key, value) lists, wall-clock columns left out."""
    return [[(k, v) for k, v in row.items() if k not in WALL_CLOCK_COLUMNS]
            for row in read_rows(Path(run_dir) / "metrics.jsonl")]


def comparable_summary(run_dir: Path) -> dict:
    """The run's counters (process counters left out), steps and last evaluation return."""
    summary = json.loads((Path(run_dir) / "summary.json").read_text())
    counters = {k: v for k, v in summary["counters"].items() if k not in PROCESS_COUNTERS}
    return {"counters": counters, "steps": summary["steps"],
            "final_eval_return": summary["final_eval_return"]}


def assert_same_run(run_dir: Path, reference_dir: Path) -> None:
    """Assert that ``run_dir`` holds the very run of ``reference_dir`` (wall-clock aside)."""
    rows, expected = comparable_rows(run_dir), comparable_rows(reference_dir)
    assert len(rows) == len(expected), (len(rows), len(expected))
    for i, (row, want) in enumerate(zip(rows, expected)):
        assert row == want, f"row {i} differs: {sorted(set(row) ^ set(want))[:6]}"
    assert comparable_summary(run_dir) == comparable_summary(reference_dir)
