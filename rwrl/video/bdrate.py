"""Bjontegaard delta rate and delta quality: the average gap between two rate-quality curves.

Bjontegaard (2001), "Calculation of average PSNR differences between RD-curves",
ITU-T SG16/Q6 VCEG-M33: fit each curve with a cubic polynomial, of log10(rate)
as a function of quality for the delta rate (BD-rate), of quality as a function
of log10(rate) for the delta quality (BD-PSNR); integrate the difference of the
two fits over the interval where both curves have points (the overlap of their
ranges); divide by the interval's length. BD-rate turns the mean log10 gap into
a percentage, ``100 * (10 ** gap - 1)``: the bitrate change of curve b relative
to curve a at equal quality, negative when b saves bits. Mao et al. (2020,
arXiv 2012.05339) report their rate controller's gain this way ("8.5 % median
bitrate reduction"); which quality (PSNR or SSIM) and which set of target
rates they used is not known, so the quality here is whatever the caller passes.

Choices (the memo gives a cubic and four points per curve):

* A curve of 3 points is accepted and fitted with a quadratic, which passes
  through all three points (a cubic through 3 points is not determined); a
  curve of 4 or more points gets Bjontegaard's cubic, by least squares when
  there are more than 4. Fewer than 3 points is an error: a line through 2
  points says nothing about the curve's bend.
* The fit is a global polynomial (``numpy.polyfit``), as in VCEG-M33, not the
  piecewise cubic (PCHIP) of the later JCT-VC and JVET spreadsheets: on badly
  shaped curves the two disagree, on smooth ones they agree closely.
* The gap is converted with base 10 throughout (log10 fit, ``10 ** gap``).
  Some public ports fit log10 but convert with ``exp``; a curve with every
  rate times 0.9 then reports -4.47 % instead of -10 % (``tests/video/test_bdrate.py``).
* Quality values on one curve must be distinct (the fit of rate against
  quality needs them), rates positive, everything finite, and the two quality
  ranges (rate ranges, for BD-quality) must overlap on an interval of positive
  length: each is a one-line error naming the value.

Example (the curve b costs 10 % fewer bits at every quality):
  >>> rates = [100.0, 200.0, 400.0, 800.0]
  >>> psnr = [30.0, 33.0, 36.0, 38.5]
  >>> round(bd_rate(rates, psnr, [0.9 * r for r in rates], psnr), 9)
  -10.0
  >>> round(bd_quality(rates, psnr, rates, [p + 0.5 for p in psnr]), 9)
  0.5
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

#: fewest points per curve: 3 are fitted with a quadratic, 4 or more with Bjontegaard's cubic.
MIN_POINTS = 3
#: the degree of Bjontegaard's polynomial (VCEG-M33).
BJONTEGAARD_DEGREE = 3


def bd_rate(rates_a: Sequence[float], quality_a: Sequence[float],
            rates_b: Sequence[float], quality_b: Sequence[float]) -> float:
    """Return the average bitrate change (%) of curve b against curve a at equal quality.

    Args:
      rates_a, quality_a: the anchor curve, one (rate, quality) point per index;
        rates positive in any unit (kbit/s, bits per video), quality e.g. PSNR in dB.
      rates_b, quality_b: the tested curve, in the same units.

    Returns:
      ``100 * (10 ** mean_gap - 1)`` where mean_gap is the mean over the common
      quality interval of fit_b(q) - fit_a(q), each fit the polynomial of
      log10(rate) in quality. Negative: b needs fewer bits for the same quality.
    """
    r_a, q_a = _curve(rates_a, quality_a, "a")
    r_b, q_b = _curve(rates_b, quality_b, "b")
    _distinct(q_a, "quality_a")
    _distinct(q_b, "quality_b")
    gap = _mean_gap(q_a, np.log10(r_a), q_b, np.log10(r_b), "quality")
    return float(100.0 * (10.0 ** gap - 1.0))


def bd_quality(rates_a: Sequence[float], quality_a: Sequence[float],
               rates_b: Sequence[float], quality_b: Sequence[float]) -> float:
    """Return the average quality change of curve b against curve a at equal rate (BD-PSNR).

    Same arguments as ``bd_rate``. Returns the mean over the common log10-rate
    interval of fit_b(r) - fit_a(r), each fit the polynomial of quality in
    log10(rate), in the quality's unit (dB for PSNR). Positive: b is better.
    """
    r_a, q_a = _curve(rates_a, quality_a, "a")
    r_b, q_b = _curve(rates_b, quality_b, "b")
    _distinct(r_a, "rates_a")
    _distinct(r_b, "rates_b")
    return float(_mean_gap(np.log10(r_a), q_a, np.log10(r_b), q_b, "log10 rate"))


def _curve(rates: Sequence[float], quality: Sequence[float], name: str
           ) -> tuple[np.ndarray, np.ndarray]:
    """Check one curve's points; return (rates, qualities) as float arrays."""
    r = np.asarray(rates, dtype=np.float64).reshape(-1)
    q = np.asarray(quality, dtype=np.float64).reshape(-1)
    if r.size != q.size:
        raise ValueError(f"rates_{name} has {r.size} points and quality_{name} {q.size}: "
                         "one quality per rate")
    if r.size < MIN_POINTS:
        raise ValueError(f"curve {name} has {r.size} points: at least {MIN_POINTS} are needed "
                         f"(3 get a quadratic fit, 4 or more Bjontegaard's cubic)")
    for values, what in ((r, "rates"), (q, "quality")):
        bad = values[~np.isfinite(values)]
        if bad.size:
            raise ValueError(f"{what}_{name} value {float(bad[0])!r} is not allowed: "
                             "finite numbers")
    if np.any(r <= 0):
        raise ValueError(f"rates_{name} value {float(r[r <= 0][0])!r} is not allowed: "
                         "positive rates")
    return r, q


def _distinct(x: np.ndarray, what: str) -> None:
    """Raise unless the abscissae of a fit are distinct."""
    values, counts = np.unique(x, return_counts=True)
    if np.any(counts > 1):
        shown = float(values[counts > 1][0])
        raise ValueError(f"{what} value {shown!r} appears twice: the fit needs distinct values")


def _mean_gap(x_a: np.ndarray, y_a: np.ndarray, x_b: np.ndarray, y_b: np.ndarray,
              axis: str) -> float:
    """Return the mean of fit_b - fit_a over the overlap of the x ranges (VCEG-M33)."""
    low, high = max(x_a.min(), x_b.min()), min(x_a.max(), x_b.max())
    if not high > low:
        raise ValueError(f"the {axis} ranges [{x_a.min():g}, {x_a.max():g}] and "
                         f"[{x_b.min():g}, {x_b.max():g}] do not overlap: no common interval")
    integral = []
    for x, y in ((x_a, y_a), (x_b, y_b)):
        degree = min(BJONTEGAARD_DEGREE, x.size - 1)
        # centred abscissae: a cubic in PSNR around 40 dB is badly conditioned otherwise
        centre = 0.5 * (low + high)
        antiderivative = np.polyint(np.polyfit(x - centre, y, degree))
        integral.append(np.polyval(antiderivative, high - centre)
                        - np.polyval(antiderivative, low - centre))
    return (integral[1] - integral[0]) / (high - low)
