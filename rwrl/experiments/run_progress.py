"""The run's progress report and its wall-clock accounting."""

from __future__ import annotations

import time
from contextlib import contextmanager
from typing import Any, Iterator

from rwrl.storage.progress_reporter import ProgressReporter

#: wall-clock categories of the loop; "learner" is time inside agent.update, except
#: each session's first update, which compiles it ("compile").
TIMING_KEYS = ("env", "act", "replay", "learner", "compile", "eval", "checkpoint", "total")


class Stopwatch:
    """Accumulated seconds per category, carried across resumes via ``totals``."""

    def __init__(self, totals: dict[str, float] | None = None):
        self.totals = {k: 0.0 for k in TIMING_KEYS}
        self.totals.update(totals or {})

    @contextmanager
    def time(self, key: str) -> Iterator[None]:
        start = time.perf_counter()
        try:
            yield
        finally:
            self.totals[key] += time.perf_counter() - start

    def outside_learner_share(self) -> float:
        """Fraction of the loop's wall-clock spent outside the learner's updates."""
        total = self.totals["total"]
        learner = self.totals["learner"] + self.totals["compile"]
        return 1.0 - learner / total if total > 0 else float("nan")


class Progress:
    """The run's progress over env steps: rate, ETA, updates/s and the last eval return.

    A tqdm bar on a terminal, a plain line every 5 % otherwise (see
    :class:`rwrl.storage.progress_reporter.ProgressReporter`).

    Args:
      total: env steps of the whole run.
      initial: env steps already done (a resume).
      enabled: False reports nothing (tests, ``--no-progress``).
      file: where to report (default stderr).
      terminal: force the bar (True) or plain lines (False); None: ask ``file``.
    """

    def __init__(self, total: int, initial: int, enabled: bool = True, file: Any = None,
                 terminal: bool | None = None):
        self._reporter = ProgressReporter(total, initial, desc="train", file=file,
                                          enabled=enabled, terminal=terminal)
        self._updates_start: int | None = None
        self._time_start = time.perf_counter()
        self._eval_return = float("nan")
        self._last_postfix = 0.0

    def set_eval_return(self, value: float) -> None:
        self._eval_return = value

    def update(self, env_steps: int, updates: int) -> None:
        """Advance; the postfix is refreshed at most twice a second (it costs ~50 us)."""
        if self._updates_start is None:
            self._updates_start = updates
        now = time.perf_counter()
        if now - self._last_postfix >= 0.5:
            self._last_postfix = now
            rate = (updates - self._updates_start) / max(now - self._time_start, 1e-9)
            self._reporter.set_postfix({"upd/s": f"{rate:.0f}", "eval": f"{self._eval_return:.1f}"})
        self._reporter.update(env_steps)

    def close(self) -> None:
        self._reporter.close()
