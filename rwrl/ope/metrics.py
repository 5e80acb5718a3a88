"""The metrics of the DOPE benchmark for off-policy evaluation, with bootstrap intervals.

Defined in Fu et al. 2021, "Benchmarks for Deep Off-Policy Evaluation" (ICLR),
section 5 ("Metrics"): for one task and a set of P policies with true values
``v`` and estimates ``v_hat``,

* both are normalized by the set's worst and best TRUE value,
  ``n(x) = (x - min v) / (max v - min v)``, so 0 is the worst policy and 1 the best;
* absolute error: ``mean_p |n(v_hat_p) - n(v_p)|``;
* rank correlation: Spearman's rho between ``v_hat`` and ``v`` (ties share their mean rank);
* regret@1: ``max_p n(v_p) - n(v_q)``, q the policy the estimator ranks first
  (the first of tied estimates, numpy's ``argmax``).

Choices left open by the paper:

* Interval: a seeded percentile bootstrap over policies: ``resamples`` draws of P
  policies with replacement (numpy ``default_rng(seed)``), the metric computed on
  each, the interval the ``(1 - confidence) / 2`` and ``(1 + confidence) / 2``
  quantiles. The normalizer is fixed by the full set (it is part of the task's
  definition, not of the sample); regret@1 in a resample is measured against the
  best policy of that resample. A resample whose truths or estimates are all tied has
  no rank correlation; it is left out of that metric's interval (numpy's percentile
  bootstrap rather than ``scipy.stats.bootstrap``, whose BCa default fails on such
  degenerate resamples).
* Fewer than 2 policies, or truths all equal, have no normalizer: ValueError.

Shape convention: 1-D arrays of P values, one per policy, in the same order.

Example:
  >>> m = dope_metrics([2.0, 10.0, 4.0], [0.0, 5.0, 10.0], resamples=200)
  >>> round(m["absolute_error"].value, 4), m["rank_correlation"].value, m["regret_at_1"].value
  (0.4333, 0.5, 0.5)
"""

from __future__ import annotations

import dataclasses
from typing import Callable, Sequence

import numpy as np

DEFAULT_RESAMPLES = 2000  # bootstrap draws of the policy set
DEFAULT_CONFIDENCE = 0.95  # two-sided coverage of the interval


@dataclasses.dataclass(frozen=True)
class Interval:
    """A metric's value on the full policy set and its bootstrap interval [low, high]."""

    value: float
    low: float
    high: float

    def as_dict(self) -> dict[str, float]:
        return dataclasses.asdict(self)


def _check(estimates: Sequence[float] | np.ndarray, truths: Sequence[float] | np.ndarray
           ) -> tuple[np.ndarray, np.ndarray]:
    est = np.asarray(estimates, dtype=np.float64)
    true = np.asarray(truths, dtype=np.float64)
    if est.ndim != 1 or est.shape != true.shape:
        raise ValueError(f"estimates and truths must be 1-D of one length, got shapes "
                         f"{est.shape} and {true.shape}")
    if true.size < 2:
        raise ValueError(f"truths: need at least 2 policies, got {true.size}")
    if not (np.all(np.isfinite(est)) and np.all(np.isfinite(true))):
        raise ValueError("estimates and truths must be finite")
    if true.max() == true.min():
        raise ValueError(f"truths: all equal ({true[0]!r}), so there is no worst-to-best range "
                         "to normalize by")
    return est, true


def normalize(values: np.ndarray, truths: np.ndarray) -> np.ndarray:
    """Return ``(values - min truths) / (max truths - min truths)``: 0 worst, 1 best policy."""
    low, high = float(np.min(truths)), float(np.max(truths))
    return (np.asarray(values, dtype=np.float64) - low) / (high - low)


# The metrics below take (..., P) arrays and reduce the last axis, so that the
# bootstrap computes all its resamples in one call.


def absolute_error(norm_estimates: np.ndarray, norm_truths: np.ndarray) -> np.ndarray:
    """Return the mean over policies of |normalized estimate - normalized truth|."""
    return np.mean(np.abs(norm_estimates - norm_truths), axis=-1)


def rank_correlation(estimates: np.ndarray, truths: np.ndarray) -> np.ndarray:
    """Return Spearman's rho (Pearson correlation of the ranks); NaN if either side is all tied.

    Ties share their mean rank (scipy's ``rankdata`` 'average').
    """
    from scipy.stats import rankdata

    a, b = rankdata(estimates, axis=-1), rankdata(truths, axis=-1)
    a, b = a - a.mean(axis=-1, keepdims=True), b - b.mean(axis=-1, keepdims=True)
    denominator = np.sqrt(np.sum(a * a, axis=-1) * np.sum(b * b, axis=-1))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(denominator > 0, np.sum(a * b, axis=-1) / denominator, np.nan)


def regret_at_1(norm_estimates: np.ndarray, norm_truths: np.ndarray) -> np.ndarray:
    """Return the best normalized truth minus that of the policy the estimates rank first."""
    first = np.argmax(norm_estimates, axis=-1)[..., None]
    return np.max(norm_truths, axis=-1) - np.take_along_axis(norm_truths, first, axis=-1)[..., 0]


METRICS: dict[str, Callable[[np.ndarray, np.ndarray], np.ndarray]] = {
    "absolute_error": absolute_error,
    "rank_correlation": rank_correlation,
    "regret_at_1": regret_at_1,
}


def dope_metrics(estimates: Sequence[float] | np.ndarray, truths: Sequence[float] | np.ndarray, *,
                 resamples: int = DEFAULT_RESAMPLES, confidence: float = DEFAULT_CONFIDENCE,
                 seed: int = 0) -> dict[str, Interval]:
    """Return absolute error, rank correlation and regret@1 with bootstrap intervals.

    Args:
      estimates: (P,) estimated values, on the scale of ``truths``.
      truths: (P,) true values of the same policies.
      resamples: bootstrap draws, >= 1.
      confidence: two-sided coverage of the interval, in (0, 1).
      seed: seed of the bootstrap's generator.

    Returns:
      metric name -> Interval (value on the full set, percentile interval).
    """
    est, true = _check(estimates, truths)
    if resamples < 1:
        raise ValueError(f"resamples must be >= 1, got {resamples!r}")
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0, 1), got {confidence!r}")
    n_est, n_true = normalize(est, true), normalize(true, true)
    draws = np.random.default_rng(seed).integers(0, len(true), size=(resamples, len(true)))
    out = {}
    tails = ((1.0 - confidence) / 2.0, (1.0 + confidence) / 2.0)
    for name, metric in METRICS.items():
        samples = metric(n_est[draws], n_true[draws])
        samples = samples[np.isfinite(samples)]
        low, high = np.quantile(samples, tails) if samples.size else (np.nan, np.nan)
        out[name] = Interval(float(metric(n_est, n_true)), float(low), float(high))
    return out
