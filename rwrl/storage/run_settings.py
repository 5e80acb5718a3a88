"""A run directory's recorded settings: written once as JSON, compared on every restart.

The small run kinds that keep their settings in one JSON file beside their rows
(``rwrl bandits run``'s and ``rwrl minatar run``'s ``config.json``) continue a
directory only when it holds the same run: a restart with other settings is
refused with one line naming the settings that differ, before anything is
written, so a finished run's rows are never mixed with another's.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Mapping


def json_bytes(data: Any) -> bytes:
    """Return ``data`` as the indented JSON text, newline-ended, the run files are written in."""
    return (json.dumps(data, indent=1) + "\n").encode()


def recorded_settings(path: Path) -> dict[str, Any] | None:
    """Return the settings JSON at ``path``, or None when there is none.

    Raises:
      ValueError: the file does not read as JSON (the message names it).
    """
    path = Path(path)
    if not path.exists():
        return None
    try:
        return json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, ValueError) as err:
        raise ValueError(f"{path}: unreadable ({err})") from err


def check_same_settings(run_dir: Path, name: str, settings: Mapping[str, Any]) -> None:
    """Raise a ValueError when ``run_dir``'s file ``name`` records settings other than ``settings``.

    Keys are compared as JSON (a tuple equals the list it is written as); the
    message names every key that differs, missing on either side included.
    """
    old = recorded_settings(Path(run_dir) / name)
    if old is None:
        return
    new = json.loads(json.dumps(dict(settings)))
    changed = [k for k in sorted(set(old) | set(new))
               if json.dumps(old.get(k), sort_keys=True) != json.dumps(new.get(k), sort_keys=True)]
    if changed:
        raise ValueError(f"{run_dir} holds a run with other settings ({', '.join(changed)}): "
                         "pick another --out")
