"""Progress of long jobs: a tqdm bar on a terminal, plain lines in a log.

A carriage-return bar written to a file or a pipe (a batch job's log, CI)
becomes one line of hundreds of kilobytes. So when the stream is not a
terminal, :class:`ProgressReporter` prints one ordinary line each time the
job crosses another ``every`` of its total (5 % by default), with the rate
and the estimated time left, and a last line at ``close``: at most
``1 / every + 2`` lines, no ``\\r``. On a terminal it draws tqdm's bar
(imported only then).

Standard library only, apart from tqdm on a terminal.

Example:
  >>> import io
  >>> out = io.StringIO()
  >>> progress = ProgressReporter(total=100, desc="train", file=out, every=0.5)
  >>> for done in range(0, 101, 10):
  ...     progress.update(done)
  >>> progress.close()
  >>> [line.split(" |")[0] for line in out.getvalue().splitlines()]
  ['train:  50% 50/100 step', 'train: 100% 100/100 step']
"""

from __future__ import annotations

import math
import sys
import time
from typing import Any, Mapping, TextIO


def _is_terminal(stream: Any) -> bool:
    isatty = getattr(stream, "isatty", None)
    try:
        return bool(isatty and isatty())
    except ValueError:  # a closed stream
        return False


def _duration(seconds: float) -> str:
    """Format seconds as H:MM:SS (or ? when unknown)."""
    if not math.isfinite(seconds):
        return "?"
    minutes, secs = divmod(int(round(seconds)), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}"


class ProgressReporter:
    """Reports the position of a job of ``total`` units.

    Args:
      total: units of the whole job (e.g. env steps), > 0.
      initial: units already done (a resumed job).
      desc: label at the start of each line.
      unit: the unit's name ("step", "task").
      file: the stream (default: stderr).
      enabled: False reports nothing.
      every: fraction of ``total`` between two plain lines, in (0, 1].
      terminal: force the bar (True) or plain lines (False); None: ask the stream.
    """

    def __init__(self, total: int, initial: int = 0, *, desc: str = "", unit: str = "step",
                 file: TextIO | None = None, enabled: bool = True, every: float = 0.05,
                 terminal: bool | None = None):
        if not 0.0 < every <= 1.0:
            raise ValueError(f"every must be in (0, 1], got {every!r}")
        self.total, self.position, self.desc, self.unit = max(int(total), 1), int(initial), desc, unit
        self.file = file if file is not None else sys.stderr
        self.enabled = enabled
        self._initial = self.position
        self._start = time.perf_counter()
        self._postfix: dict[str, str] = {}
        self._interval = every * self.total
        self._next_line = self._threshold_after(self.position)
        self._printed_at: int | None = None
        self._bar = None
        if enabled and (terminal if terminal is not None else _is_terminal(self.file)):
            from tqdm.auto import tqdm
            self._bar = tqdm(total=self.total, initial=self.position, unit=unit, unit_scale=True,
                             desc=desc or None, file=self.file, dynamic_ncols=True, smoothing=0.05)

    def _threshold_after(self, position: int) -> float:
        return (math.floor(position / self._interval) + 1) * self._interval

    def set_postfix(self, values: Mapping[str, Any]) -> None:
        """Show ``values`` (name -> text) after the rate, from the next line or redraw on."""
        self._postfix = {k: str(v) for k, v in values.items()}
        if self._bar is not None:
            self._bar.set_postfix(self._postfix, refresh=False)

    def update(self, position: int) -> None:
        """Move to ``position`` units done (absolute, not an increment)."""
        if not self.enabled:
            return
        if self._bar is not None:
            self._bar.update(position - self.position)
        self.position = position
        if self._bar is None and position >= self._next_line:
            self._print_line()
            self._next_line = self._threshold_after(position)

    def write(self, text: str, file: TextIO | None = None) -> None:
        """Print ``text`` (results, not progress) to ``file`` (default stdout), above any bar."""
        file = file if file is not None else sys.stdout
        if self._bar is not None:
            self._bar.write(text, file=file)
        else:
            print(text, file=file, flush=True)

    def line(self) -> str:
        """Return the plain progress line for the current position."""
        elapsed = time.perf_counter() - self._start
        rate = (self.position - self._initial) / elapsed if elapsed > 0 else float("nan")
        left = (self.total - self.position) / rate if rate > 0 else float("nan")
        percent = 100.0 * self.position / self.total
        head = f"{self.desc}: " if self.desc else ""
        parts = [f"{head}{percent:3.0f}% {self.position}/{self.total} {self.unit}",
                 f"{rate:.4g} {self.unit}/s", f"elapsed {_duration(elapsed)}",
                 f"ETA {_duration(left)}"]
        if self._postfix:
            parts.append(" ".join(f"{k}={v}" for k, v in self._postfix.items()))
        return " | ".join(parts)

    def _print_line(self) -> None:
        print(self.line(), file=self.file, flush=True)
        self._printed_at = self.position

    def close(self) -> None:
        """Finish: close the bar, or print the last line if the position moved since."""
        if not self.enabled:
            return
        if self._bar is not None:
            self._bar.close()
            self._bar = None
        elif self._printed_at != self.position and self.position > self._initial:
            self._print_line()
        self.enabled = False
