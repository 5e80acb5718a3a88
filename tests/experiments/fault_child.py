"""``rwrl`` in a child process that stops dead at a chosen moment, for the kill -9 tests.

Usage: ``python -m tests.experiments.fault_child FAULT MARKER ARGS...`` runs
``rwrl ARGS...``; with FAULT ``<moment>:<k>``, at the k-th such moment the
child writes its pid into the file MARKER and sleeps until it is killed
(FAULT ``none``: no stop):

* ``checkpoint``: inside the k-th checkpoint write: its ``state.npz`` is in
  the temporary folder, the manifest is not, nothing is renamed yet;
* ``chunk``: inside the k-th replay chunk write: its temporary file is
  written, not yet renamed to its name;
* ``metrics``: inside the k-th append to ``metrics.jsonl``: half of its bytes
  are on disk (a torn last line);
* ``final``: at the run's last checkpoint, before any of it is written.

The patches wrap the real functions; nothing else of the command changes.
"""

from __future__ import annotations

import itertools
import os
import runpy
import sys
import time
from pathlib import Path


def _stop(marker: Path) -> None:
    marker.write_text(str(os.getpid()))
    time.sleep(3600)  # until the parent's SIGKILL


def _stop_in_npz_writes(moment: str, k: int, marker: Path) -> None:
    from rwrl.storage import checkpoint
    from rwrl.storage.atomic_files import TMP_PREFIX
    write, count = checkpoint._write_npz, itertools.count(1)

    def write_then_stop(path, arrays):
        entry = write(path, arrays)
        ours = (path.name == "state.npz" if moment == "checkpoint"
                else path.name.startswith(f"{TMP_PREFIX}replay_"))
        if ours and next(count) == k:
            _stop(marker)
        return entry
    checkpoint._write_npz = write_then_stop


def _stop_in_metrics_append(k: int, marker: Path) -> None:
    from rwrl.metrics.episode_file import EpisodeFile, encode_rows
    write, count = EpisodeFile.write, itertools.count(1)

    def half_then_stop(self, rows):
        rows = list(rows)
        if self.path.name == "metrics.jsonl" and rows and next(count) == k:
            data = encode_rows(rows)
            self._file.write(data[:len(data) // 2])
            os.fsync(self._file.fileno())
            _stop(marker)
        return write(self, rows)
    EpisodeFile.write = half_then_stop


def _stop_at_final_checkpoint(marker: Path) -> None:
    from rwrl.experiments.loop_base import Loop
    checkpoint = Loop.checkpoint

    def stop_then_checkpoint(self):
        if self._clock() >= self.config.steps:
            _stop(marker)
        return checkpoint(self)
    Loop.checkpoint = stop_then_checkpoint


def install(fault: str, marker: Path) -> None:
    """Patch in the stop that ``fault`` names (see the module docstring)."""
    moment, _, k = fault.partition(":")
    if moment in ("checkpoint", "chunk"):
        _stop_in_npz_writes(moment, int(k), marker)
    elif moment == "metrics":
        _stop_in_metrics_append(int(k), marker)
    elif moment == "final":
        _stop_at_final_checkpoint(marker)
    elif moment != "none":
        raise SystemExit(f"unknown fault {fault!r}")


def main() -> None:
    fault, marker, *args = sys.argv[1:]
    install(fault, Path(marker))
    sys.argv = ["rwrl", *args]
    runpy.run_module("rwrl.cli", run_name="__main__")


if __name__ == "__main__":
    main()
