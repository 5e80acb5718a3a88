"""One process per run directory: an OS file lock on ``RUN/.lock``.

Why an OS lock (``fcntl.flock``) rather than "test for the file, then write
it": two processes arriving at the same instant both pass the test. The
kernel grants an exclusive flock to one of them only, and releases it when
its holder dies, so the lock of a killed process (SIGKILL, power loss of a
node whose disk is shared) is stale by construction and is taken over
without guessing from process ids. The file also holds the holder's pid, for
the error message.

Release removes the file only while it is still the one this process
locked (same inode): a lock that someone deleted and another process
re-created is left alone. An acquirer checks the same after locking, so a
file unlinked by a releasing holder between our ``open`` and ``flock`` is
never taken for the lock.

Stdlib only (Linux and macOS: ``fcntl``).
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path
from typing import Any

from rwrl.storage.atomic_files import WriteError

LOCK_FILE = ".lock"


class RunLockedError(RuntimeError):
    """Another live process holds the run directory."""


class RunLock:
    """Context manager holding ``run_dir/.lock`` exclusively.

    Args:
      run_dir: the run directory (must exist).

    Raises (on enter):
      RunLockedError: another live process holds it (the message names its pid).
      WriteError: the lock file cannot be created (read-only or full disk).
    """

    def __init__(self, run_dir: Path):
        self.path = Path(run_dir) / LOCK_FILE
        self._fd: int | None = None

    def __enter__(self) -> "RunLock":
        while True:
            fd = self._open()
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = _read_pid(fd)
                os.close(fd)
                raise RunLockedError(
                    f"{self.path.parent} is being trained by process {holder}; "
                    f"wait for it to finish or stop it") from None
            if self._still_the_file(fd):
                break
            os.close(fd)  # its holder released and unlinked it meanwhile: lock the new one
        try:
            os.ftruncate(fd, 0)
            os.write(fd, str(os.getpid()).encode())
        except OSError as err:
            os.close(fd)
            raise WriteError(self.path, err) from err
        self._fd = fd
        return self

    def _open(self) -> int:
        try:
            return os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as err:
            raise WriteError(self.path, err) from err

    def _still_the_file(self, fd: int) -> bool:
        try:
            current = os.stat(self.path)
        except FileNotFoundError:
            return False
        mine = os.fstat(fd)
        return (current.st_ino, current.st_dev) == (mine.st_ino, mine.st_dev)

    def __exit__(self, *exc: Any) -> None:
        self.release()

    def release(self) -> None:
        """Remove the lock file if it is still ours, then unlock."""
        if self._fd is None:
            return
        try:
            if self._still_the_file(self._fd):
                self.path.unlink()  # while still locked: no one can hold this inode
        finally:
            os.close(self._fd)  # closing releases the flock
            self._fd = None


def _read_pid(fd: int) -> str:
    try:
        text = os.pread(fd, 32, 0).decode(errors="replace").strip()
    except OSError:
        text = ""
    return text or "unknown"
