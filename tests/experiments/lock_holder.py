"""A separate process that holds a run's lock until killed (for the lock tests)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

_HOLDER = """
import sys, time
from pathlib import Path
from rwrl.storage.run_lock import RunLock
with RunLock(Path(sys.argv[1])):
    print("held", flush=True)
    time.sleep(60)
"""


def start_lock_holder(run_dir: Path) -> subprocess.Popen:
    """Start a process holding ``run_dir``'s RunLock; return once it holds it."""
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    holder = subprocess.Popen([sys.executable, "-c", _HOLDER, str(run_dir)], env=env,
                              stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "held"
    return holder
