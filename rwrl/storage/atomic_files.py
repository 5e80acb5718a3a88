"""Atomic files: readers see the old or the new file, never a part of one.

Used for everything a user may load or a resume depends on (checkpoints,
metrics, summaries, reports, rollout results). No dependency beyond the
standard library, so that light commands need not import JAX to use it.

A write that fails (disk full, read-only file system, file size limit)
raises :class:`WriteError`, which names the path and the cause in one line,
and leaves no temporary file behind.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

#: prefix of the temporary files a killed writer may leave behind.
TMP_PREFIX = ".tmp-"


class WriteError(OSError):
    """Writing ``path`` failed; ``str()`` is one line: "cannot write PATH: CAUSE".

    Args:
      path: the file or directory being written.
      cause: the OSError the system raised (its errno and message are kept).
    """

    def __init__(self, path: os.PathLike | str, cause: OSError):
        super().__init__(cause.errno, cause.strerror or str(cause), str(path))
        self.cause = cause

    def __str__(self) -> str:
        return f"cannot write {self.filename}: {self.strerror}"


def file_sha256(path: Path) -> str:
    """Return the sha256 hex digest of a file's bytes (read in 1 MiB blocks)."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def fsync_dir(path: Path) -> None:
    """Flush a directory's entries (a rename is durable only after this)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` so that readers see the old or the new file, never a part.

    Raises:
      WriteError: the write failed (the old file, if any, is untouched).
    """
    path = Path(path)
    tmp = path.with_name(f"{TMP_PREFIX}{path.name}.{os.getpid()}")
    try:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
        fsync_dir(path.parent)
    except OSError as err:
        _discard(tmp)
        raise WriteError(path, err) from err
    except BaseException:
        _discard(tmp)
        raise


def _discard(path: Path) -> None:
    """Remove a temporary file if it can be; the write's own error is the one to report."""
    try:
        path.unlink(missing_ok=True)
    except OSError:
        pass  # e.g. the file system went read-only: nothing was left there anyway
