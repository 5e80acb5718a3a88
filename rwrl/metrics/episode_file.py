"""Episode files: append-only JSON lines, one row per finished episode.

The one writer and reader of the project's JSON-lines rows: the episode
recorders write through :class:`EpisodeFile`, so does the run loop
(``metrics.jsonl``), and the report reads them back with :func:`read_rows`.

Durability: a recorder's file is fsync'ed on every ``write`` (``sync=True``),
so killing the process at any moment loses at most the episodes still
running. The run loop writes with ``sync=False`` and calls :meth:`EpisodeFile.sync`
before a checkpoint counts the rows. A kill in the middle of a write can leave
a partial last line; opening the file drops it, and :func:`read_rows` ignores
it, so the file stays readable by ``pd.read_json(path, lines=True)``.

Resume: :func:`truncate_rows` keeps exactly the first ``count`` complete rows
(those a checkpoint counted), so every row appears once.

No pandas at import time: only :func:`read_episodes` and
:func:`export_parquet` need it, and ``import rwrl`` stays light.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable, Mapping, Sequence

import numpy as np

from rwrl.storage.atomic_files import WriteError, atomic_write_bytes

if TYPE_CHECKING:
    import pandas as pd

PathLike = str | os.PathLike


class EpisodeFileError(ValueError):
    """An episode file holds fewer complete rows than asked for."""


def _jsonable(value: Any) -> Any:
    """Return ``value`` as a JSON scalar; non-finite floats become null (JSON has no NaN)."""
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return float(value) if math.isfinite(value) else None
    return value


def encode_rows(rows: Iterable[Mapping[str, Any]]) -> bytes:
    """Return ``rows`` as strict JSON lines (UTF-8), each ending in a newline."""
    lines = [json.dumps({k: _jsonable(v) for k, v in row.items()}, allow_nan=False) + "\n"
             for row in rows]
    return "".join(lines).encode("utf-8")


def _complete_part(data: bytes) -> bytes:
    """The bytes up to and including the last newline (a torn last line dropped)."""
    return data[:data.rfind(b"\n") + 1]


def count_rows(path: PathLike) -> int:
    """Return the number of complete rows (newline-terminated lines) of ``path``; 0 if absent."""
    path = Path(path)
    if not path.exists():
        return 0
    count = 0
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            count += block.count(b"\n")
    return count


def read_rows(path: PathLike) -> list[dict[str, Any]]:
    """Return the complete rows of a JSON-lines file as dicts (a torn last line is ignored)."""
    path = Path(path)
    if not path.exists():
        return []
    return [json.loads(line) for line in _complete_part(path.read_bytes()).splitlines() if line]


def truncate_rows(path: PathLike, count: int) -> None:
    """Keep the first ``count`` complete rows of ``path`` (atomically; created empty if absent).

    Raises:
      EpisodeFileError: the file holds fewer than ``count`` complete rows.
    """
    path = Path(path)
    data = path.read_bytes() if path.exists() else b""
    lines = _complete_part(data).splitlines(keepends=True)
    if len(lines) < count:
        raise EpisodeFileError(f"{path} holds {len(lines)} complete rows, fewer than the "
                               f"{count} asked for")
    kept = b"".join(lines[:count])
    if kept != data or not path.exists():
        atomic_write_bytes(path, kept)


class EpisodeFile:
    """Appends rows to a JSON-lines file and counts them.

    Opening drops a torn last line (a writer killed mid-line).

    Args:
      path: the ``.jsonl`` file; created with its parent folders if missing.
      sync: fsync after every ``write`` (recorders); False leaves it to :meth:`sync`
        (the run loop, which syncs before each checkpoint).

    Attributes:
      rows: complete rows in the file, counting those written since opening.
      next_episode: the ``episode`` index after the last row already in the
        file (0 for a new file), so a reopened recorder continues the numbering.
    """

    def __init__(self, path: PathLike, sync: bool = True):
        self.path = Path(path)
        self._sync_each_write = sync
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            data = self.path.read_bytes() if self.path.exists() else b""
            complete = _complete_part(data)
            # Unbuffered: a failed write leaves nothing queued for close() to retry.
            self._file = open(self.path, "ab", buffering=0)
            if len(complete) < len(data):
                self._file.truncate(len(complete))
        except OSError as err:
            raise WriteError(self.path, err) from err
        lines = complete.splitlines()
        self.rows = len(lines)
        last = json.loads(lines[-1]) if lines else {}
        self.next_episode = int(last.get("episode", -1)) + 1 if isinstance(last, dict) else 0

    def write(self, rows: Iterable[Mapping[str, Any]]) -> None:
        """Append ``rows`` in one write call (fsync'ed when the file was opened with sync=True).

        Raises:
          WriteError: the disk is full or the file not writable (names the file and the cause).
        """
        rows = list(rows)
        if not rows:
            return
        data = encode_rows(rows)
        try:
            view = memoryview(data)
            while view:  # a raw write may be partial
                view = view[self._file.write(view):]
            if self._sync_each_write:
                os.fsync(self._file.fileno())
        except OSError as err:
            raise WriteError(self.path, err) from err
        self.rows += len(rows)

    def sync(self) -> None:
        """Make the rows written so far durable (before a checkpoint counts them)."""
        try:
            os.fsync(self._file.fileno())
        except OSError as err:
            raise WriteError(self.path, err) from err

    def close(self) -> None:
        if not self._file.closed:
            self._file.close()


def _paths(path_or_paths: PathLike | Sequence[PathLike]) -> list[Path]:
    if isinstance(path_or_paths, (str, os.PathLike)):
        return [Path(path_or_paths)]
    return [Path(p) for p in path_or_paths]


def _read_one(path: Path) -> "pd.DataFrame":
    import pandas as pd
    if not path.exists():
        raise ValueError(f"path: no episode file at {str(path)!r}")
    if path.suffix == ".parquet":
        return pd.read_parquet(path)
    return pd.DataFrame(read_rows(path))


def read_episodes(path_or_paths: PathLike | Sequence[PathLike]) -> "pd.DataFrame":
    """Read episode rows from JSON-lines (or ``.parquet``) files, concatenated in the order given.

    Returns:
      one row per episode; columns missing from some files are NaN there.
    """
    import pandas as pd
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
