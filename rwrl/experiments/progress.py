"""The run's progress bar and its wall-clock accounting."""

from __future__ import annotations

import time
from contextlib import contextmanager
from typing import Any, Iterator

from tqdm.auto import tqdm

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
    """A tqdm bar over env steps: steps/s (tqdm's rate), updates/s, ETA, last eval return.

    Args:
      total: env steps of the whole run.
      initial: env steps already done (a resume).
      enabled: False draws nothing (tests, non-interactive use).
      file: where to draw (default stderr).
    """

    def __init__(self, total: int, initial: int, enabled: bool = True, file: Any = None):
        self._bar = tqdm(total=total, initial=initial, unit="step", unit_scale=True, file=file,
                         dynamic_ncols=True, disable=not enabled, smoothing=0.05)
        self._steps = initial
        self._updates_start: int | None = None
        self._time_start = time.perf_counter()
        self._eval_return = float("nan")
        self._last_draw = 0.0

    def set_eval_return(self, value: float) -> None:
        self._eval_return = value

    def update(self, env_steps: int, updates: int) -> None:
        """Advance the bar; the postfix is refreshed at most twice a second (it costs ~50 us)."""
        self._bar.update(env_steps - self._steps)
        self._steps = env_steps
        if self._updates_start is None:
            self._updates_start = updates
        now = time.perf_counter()
        if now - self._last_draw < 0.5:
            return
        self._last_draw = now
        rate = (updates - self._updates_start) / max(now - self._time_start, 1e-9)
        self._bar.set_postfix({"upd/s": f"{rate:.0f}", "eval": f"{self._eval_return:.1f}"},
                              refresh=False)

    def close(self) -> None:
        self._bar.close()
