"""Atomic files: readers see the old or the new file, never a part of one.

Used for everything a user may load or a resume depends on (checkpoints,
metrics, summaries, reports, rollout results). No dependency beyond the
standard library, so that light commands need not import JAX to use it.
"""

from __future__ import annotations

import os
from pathlib import Path

#: prefix of the temporary files a killed writer may leave behind.
TMP_PREFIX = ".tmp-"


def fsync_dir(path: Path) -> None:
    """Flush a directory's entries (a rename is durable only after this)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` so that readers see the old or the new file, never a part."""
    path = Path(path)
    tmp = path.with_name(f"{TMP_PREFIX}{path.name}.{os.getpid()}")
    try:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)
