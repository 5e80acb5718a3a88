"""The mean of a few values (seeds, instances) with its Student-t confidence interval.

One function for every summary that reports "mean [low, high] over N seeds": the
MinAtar and bandit runs' summaries and the benchmarks' pages (``results_page``).
The interval is mean +- t(0.5 + confidence / 2, n - 1) * s / sqrt(n), with s the
sample standard deviation (ddof 1); it needs two values, so with one the bounds
are None, and with none the mean is None too.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np


def mean_interval(values: Any, confidence: float = 0.95) -> dict[str, Any]:
    """Return ``{"mean", "std", "ci_low", "ci_high", "n"}`` of ``values`` (any 1-D sequence).

    >>> round(mean_interval([1.0, 3.0])["ci_high"], 6)  # 2 + t(0.975, 1) * sqrt(2) / sqrt(2)
    14.706205
    >>> mean_interval([5.0])
    {'mean': 5.0, 'std': None, 'ci_low': None, 'ci_high': None, 'n': 1}
    """
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0, 1), got {confidence!r}")
    x = np.asarray(values, np.float64).reshape(-1)
    if x.size == 0:
        return {"mean": None, "std": None, "ci_low": None, "ci_high": None, "n": 0}
    mean = float(x.mean())
    if x.size < 2:
        return {"mean": mean, "std": None, "ci_low": None, "ci_high": None, "n": 1}
    import scipy.stats
    std = float(x.std(ddof=1))
    half = float(scipy.stats.t.ppf(0.5 + confidence / 2, x.size - 1)) * std / math.sqrt(x.size)
    return {"mean": mean, "std": std, "ci_low": mean - half, "ci_high": mean + half,
            "n": int(x.size)}
