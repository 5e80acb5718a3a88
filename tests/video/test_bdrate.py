"""Bjontegaard delta rate and delta quality (VCEG-M33) on curves whose answer is known."""

import math

import numpy as np
import pytest

from rwrl.video.bdrate import bd_quality, bd_rate

RATES = [100.0, 200.0, 400.0, 800.0]
PSNR = [30.0, 33.0, 36.0, 38.5]

# "Sample 1" of the public Bjontegaard-metric demo (github.com/Anserw/Bjontegaard_metric,
# demo.py): rates in kbit/s, PSNR in dB. The demo prints no result; the expected value is
# the one another project's test hand-entered from an independent numpy evaluation of the
# VCEG-M33 formula (ln-rate cubic, natural exp), which must equal this log10 / 10** version.
SAMPLE_R1 = [686.76, 309.58, 157.11, 85.95]
SAMPLE_P1 = [40.28, 37.18, 34.24, 31.42]
SAMPLE_R2 = [893.34, 407.8, 204.93, 112.75]
SAMPLE_P2 = [40.39, 37.21, 34.17, 31.24]
# "Test 1" of the FAU-LMS bjontegaard package README (libx265 presets), same provenance.
FAU_RA = [9487.76, 4593.60, 2486.44, 1358.24]
FAU_PA = [40.037, 38.615, 36.845, 34.851]
FAU_RB = [9787.80, 4469.00, 2451.52, 1356.24]
FAU_PB = [40.121, 38.651, 36.970, 34.987]


def test_identical_curves_give_zero():
    assert bd_rate(RATES, PSNR, RATES, PSNR) == pytest.approx(0.0, abs=1e-12)
    assert bd_quality(RATES, PSNR, RATES, PSNR) == pytest.approx(0.0, abs=1e-12)


@pytest.mark.parametrize("scale, expected", [(0.9, -10.0), (1.25, 25.0), (0.5, -50.0)])
def test_scaling_every_rate_is_that_percentage_exactly(scale, expected):
    # log10(scale * r) = log10(r) + log10(scale): the fits differ by that constant at every
    # quality, so the mean gap is log10(scale) and 100 * (10 ** gap - 1) = 100 * (scale - 1).
    # A port that converts a log10 gap with exp() reports -4.47 % for 0.9 instead.
    scaled = [scale * r for r in RATES]
    assert bd_rate(RATES, PSNR, scaled, PSNR) == pytest.approx(expected, abs=1e-9)


def test_swapping_the_curves_inverts_the_rate_ratio():
    # the mean gap changes sign: (1 + a/100) * (1 + b/100) = 1
    forward = bd_rate(SAMPLE_R1, SAMPLE_P1, SAMPLE_R2, SAMPLE_P2)
    backward = bd_rate(SAMPLE_R2, SAMPLE_P2, SAMPLE_R1, SAMPLE_P1)
    assert (1 + forward / 100) * (1 + backward / 100) == pytest.approx(1.0, abs=1e-12)


def test_a_gap_linear_in_quality_is_averaged_over_the_overlap_only():
    # Curve a: log10 r = 2 + 0.1 (q - 30) on q in [30, 40]; curve b adds 0.02 (q - 30)
    # and is measured on [34, 44]. Both are exact polynomials, so the fits are exact; the
    # overlap is [34, 40], where the gap's mean is 0.02 * (37 - 30) = 0.14 (a line's mean
    # is its value at the midpoint), so BD-rate = 100 (10 ** 0.14 - 1) = 38.0384... %.
    q_a = np.linspace(30.0, 40.0, 5)
    q_b = np.linspace(34.0, 44.0, 5)
    r_a = 10 ** (2 + 0.1 * (q_a - 30))
    r_b = 10 ** (2 + 0.1 * (q_b - 30) + 0.02 * (q_b - 30))
    assert bd_rate(r_a, q_a, r_b, q_b) == pytest.approx(100 * (10 ** 0.14 - 1), rel=1e-10)


def test_quality_shift_is_bd_psnr_exactly():
    # every quality + 0.5 dB at the same rates: the fits of quality in log-rate differ by 0.5
    assert bd_quality(RATES, PSNR, RATES, [p + 0.5 for p in PSNR]) == pytest.approx(0.5, abs=1e-10)


@pytest.mark.parametrize("curves, expected", [
    ((SAMPLE_R1, SAMPLE_P1, SAMPLE_R2, SAMPLE_P2), 31.397374054908013),
    ((FAU_RA, FAU_PA, FAU_RB, FAU_PB), -4.420462706090111),
])
def test_published_curve_pairs(curves, expected):
    assert bd_rate(*curves) == pytest.approx(expected, abs=1e-6)


def test_three_points_get_the_quadratic_through_them():
    # log10 r = 2 + 0.1 q + 0.01 q^2 is a quadratic: 3 points fit it exactly, so a curve
    # with every rate times 0.8 is -20 % and the same curve at 5 points agrees.
    q3, q5 = np.array([30.0, 35.0, 40.0]), np.linspace(30.0, 40.0, 5)
    r3, r5 = (10 ** (2 + 0.1 * q + 0.01 * q ** 2) for q in (q3, q5))
    assert bd_rate(r3, q3, 0.8 * r3, q3) == pytest.approx(-20.0, abs=1e-9)
    assert bd_rate(r5, q5, r3, q3) == pytest.approx(0.0, abs=1e-8)


@pytest.mark.parametrize("args, message", [
    ((RATES[:2], PSNR[:2], RATES, PSNR), "curve a has 2 points: at least 3"),
    ((RATES, PSNR, RATES[:2], PSNR[:2]), "curve b has 2 points: at least 3"),
    ((RATES, PSNR[:3], RATES, PSNR), "rates_a has 4 points and quality_a 3"),
    ((RATES, PSNR, [100.0, 0.0, 400.0, 800.0], PSNR), r"rates_b value 0.0 is not allowed"),
    ((RATES, PSNR, [100.0, -5.0, 400.0, 800.0], PSNR), r"rates_b value -5.0 is not allowed"),
    ((RATES, [30.0, math.nan, 36.0, 38.5], RATES, PSNR), "quality_a value nan is not allowed"),
    ((RATES, [30.0, 30.0, 36.0, 38.5], RATES, PSNR), "quality_a value 30.0 appears twice"),
    ((RATES, PSNR, RATES, [p + 40 for p in PSNR]), "quality ranges .* do not overlap"),
])
def test_bad_curves_give_one_line_errors_naming_the_value(args, message):
    with pytest.raises(ValueError, match=message) as error:
        bd_rate(*args)
    assert "\n" not in str(error.value)


def test_bd_quality_needs_distinct_rates_and_overlapping_rate_ranges():
    with pytest.raises(ValueError, match="rates_b value 200.0 appears twice"):
        bd_quality(RATES, PSNR, [100.0, 200.0, 200.0, 800.0], PSNR)
    with pytest.raises(ValueError, match="log10 rate ranges .* do not overlap"):
        bd_quality(RATES, PSNR, [1e6 * r for r in RATES], PSNR)
