"""Episode files: append-only JSON lines, one row per finished episode.

A row, once ``write`` returns, is flushed and fsync'ed, so killing the
process at any moment loses at most the episodes still running. A kill in
the middle of a write can leave a partial last line; reopening the file for
appending drops it, so the file stays readable by
``pd.read_json(path, lines=True)``.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

import numpy as np
import pandas as pd

from rwrl.metrics import schema

PathLike = str | os.PathLike


def _jsonable(value: Any) -> Any:
    """Return ``value`` as a JSON scalar; non-finite floats become null (JSON has no NaN)."""
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return float(value) if math.isfinite(value) else None
    return value


def _last_complete_line(path: Path) -> bytes | None:
    """Drop a partial last line (a write killed midway); return the last complete line."""
    if not path.exists():
        return None
    with open(path, "rb+") as f:
        data = f.read()
        end = data.rfind(b"\n") + 1  # 0 when no newline at all
        if end < len(data):
            f.truncate(end)
    lines = data[:end].splitlines()
    return lines[-1] if lines else None


class EpisodeFile:
    """Appends rows to a JSON-lines file, durable row by row.

    Args:
      path: the ``.jsonl`` file; created with its parent folders if missing.

    Attributes:
      next_episode: the episode index after the last row already in the file
        (0 for a new file), so a resumed run continues the numbering.
    """

    def __init__(self, path: PathLike):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        last = _last_complete_line(self.path)
        self.next_episode = int(json.loads(last).get(schema.EPISODE, -1)) + 1 if last else 0
        self._file = open(self.path, "a", encoding="utf-8")

    def write(self, rows: Iterable[Mapping[str, Any]]) -> None:
        """Append ``rows`` and make them durable (one fsync for the batch)."""
        lines = [json.dumps({k: _jsonable(v) for k, v in row.items()}) + "\n" for row in rows]
        if not lines:
            return
        self._file.write("".join(lines))
        self._file.flush()
        os.fsync(self._file.fileno())

    def close(self) -> None:
        if not self._file.closed:
            self._file.close()


def _paths(path_or_paths: PathLike | Sequence[PathLike]) -> list[Path]:
    if isinstance(path_or_paths, (str, os.PathLike)):
        return [Path(path_or_paths)]
    return [Path(p) for p in path_or_paths]


def _read_one(path: Path) -> pd.DataFrame:
    if not path.exists():
        raise ValueError(f"path: no episode file at {str(path)!r}")
    if path.suffix == ".parquet":
        return pd.read_parquet(path)
    if path.stat().st_size == 0:
        return pd.DataFrame()
    return pd.read_json(path, lines=True, convert_dates=False)


def read_episodes(path_or_paths: PathLike | Sequence[PathLike]) -> pd.DataFrame:
    """Read episode rows from JSON-lines (or ``.parquet``) files, concatenated in the order given.

    Returns:
      one row per episode; columns missing from some files are NaN there.
    """
    paths = _paths(path_or_paths)
    if not paths:
        raise ValueError("path_or_paths: no file given")
    frames = [frame for frame in map(_read_one, paths) if len(frame)]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def export_parquet(path: PathLike, parquet_path: PathLike | None = None) -> Path:
    """Write a whole episode file as Parquet; returns its path (default: same name, ``.parquet``)."""
    source = Path(path)
    target = Path(parquet_path) if parquet_path is not None else source.with_suffix(".parquet")
    read_episodes(source).to_parquet(target, index=False)
    return target
