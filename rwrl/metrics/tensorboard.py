"""TensorBoard event files beside ``metrics.jsonl``: where users of every framework look first.

A mirror, never a source: ``metrics.jsonl`` stays the record that reports,
resumes and tests read. Each batch of rows the run writes (the episodes that
ended on one vector step, or one evaluation) becomes one point per column,
the mean over those rows, tagged ``<phase>/<column>`` (``train/return``,
``eval/violation_rate/slider_pos``, ``train/learner/critic_loss``) at the
run's clock (the rows' ``env_steps``: env steps online, learner updates
offline). Identifier and clock columns (episode, env_index, evaluation,
env_steps, updates, wall_time) are not plotted; every other numeric column is.

Each session of a run (a start, each resume) writes its own event file in
``RUN/tensorboard/``; TensorBoard shows a run's files as one run. A resumed
run writes again the rows after its checkpoint, with the same values, so
those points appear twice, on top of each other.

Written with tensorboardX (protobuf, no TensorFlow), imported only when a
mirror is made.

Example:
  >>> import tempfile
  >>> with tempfile.TemporaryDirectory() as tmp:
  ...     mirror = TensorBoardMirror(tmp)
  ...     mirror.write([{"phase": "eval", "env_steps": 0, "return": 1.0, "episode": 0},
  ...                   {"phase": "eval", "env_steps": 0, "return": 3.0, "episode": 1}])
  ...     mirror.close()
  ...     read_scalars(tmp)
  {'eval/return': [(0, 2.0)]}
"""

from __future__ import annotations

import struct
from collections import defaultdict
from pathlib import Path
from typing import Any, Iterable, Mapping

#: row columns that identify a row or give its clock: never plotted.
NOT_PLOTTED = ("phase", "episode", "env_index", "evaluation", "env_steps", "updates", "wall_time")


def scalar_points(rows: Iterable[Mapping[str, Any]]) -> dict[str, tuple[int, float]]:
    """Return ``<phase>/<column>`` -> (step, mean over the rows) for one batch of rows.

    Rows of one batch share their phase and clock; a column missing from some
    rows is averaged over the rows that have it. Bools and non-numbers are skipped.
    """
    sums: dict[str, list[float]] = defaultdict(list)
    step = None
    for row in rows:
        step = int(row["env_steps"])
        for column, value in row.items():
            if column in NOT_PLOTTED or isinstance(value, bool) or not isinstance(value, (int, float)):
                continue
            sums[f"{row['phase']}/{column}"].append(float(value))
    return {tag: (step, sum(values) / len(values)) for tag, values in sums.items()}


class TensorBoardMirror:
    """Write each batch of metrics rows as TensorBoard scalars under ``logdir``."""

    def __init__(self, logdir: str | Path):
        from tensorboardX import SummaryWriter
        self._writer = SummaryWriter(str(logdir), flush_secs=60)

    def write(self, rows: Iterable[Mapping[str, Any]]) -> None:
        """Add one point per column of ``rows`` (one batch: one phase, one clock value)."""
        for tag, (step, value) in scalar_points(list(rows)).items():
            self._writer.add_scalar(tag, value, step)

    def flush(self) -> None:
        """Write what is buffered to the event file (at checkpoints)."""
        self._writer.flush()

    def close(self) -> None:
        self._writer.close()


def read_scalars(logdir: str | Path) -> dict[str, list[tuple[int, float]]]:
    """Return tag -> [(step, value), ...] of every event file under ``logdir``, in file order.

    Reads the TFRecord framing directly (length, its crc, the record, its crc;
    the crcs are not checked) and parses each record as a TensorBoard ``Event``.
    """
    from tensorboardX.proto import event_pb2
    scalars: dict[str, list[tuple[int, float]]] = defaultdict(list)
    for path in sorted(Path(logdir).glob("events.out.tfevents.*")):
        data, offset = path.read_bytes(), 0
        while offset + 12 <= len(data):
            (length,) = struct.unpack_from("<Q", data, offset)
            record = data[offset + 12: offset + 12 + length]
            offset += 12 + length + 4
            event = event_pb2.Event.FromString(record)
            for value in event.summary.value:
                scalars[value.tag].append((int(event.step), float(value.simple_value)))
    return dict(scalars)


__all__ = ["NOT_PLOTTED", "TensorBoardMirror", "read_scalars", "scalar_points"]
