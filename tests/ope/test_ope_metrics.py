"""The DOPE metrics on hand-computed policy sets."""

import numpy as np
import pytest

from rwrl.ope.metrics import dope_metrics, normalize, rank_correlation, regret_at_1


def test_three_policies_by_hand():
    # truths 0, 5, 10 normalize to 0, 0.5, 1; estimates 2, 10, 4 to 0.2, 1.0, 0.4.
    # |errors| = 0.2, 0.5, 0.6 -> mean 1.3 / 3.
    # estimate ranks 1, 3, 2 vs truth ranks 1, 2, 3: d^2 = 0 + 1 + 1 = 2,
    # rho = 1 - 6 * 2 / (3 * (9 - 1)) = 0.5.
    # the estimates rank policy 1 first (normalized truth 0.5); the best is 1 -> regret 0.5.
    m = dope_metrics([2.0, 10.0, 4.0], [0.0, 5.0, 10.0], resamples=500)
    assert m["absolute_error"].value == pytest.approx(1.3 / 3, abs=1e-12)
    assert m["rank_correlation"].value == pytest.approx(0.5, abs=1e-12)
    assert m["regret_at_1"].value == pytest.approx(0.5, abs=1e-12)
    for interval in m.values():
        assert interval.low <= interval.high


def test_normalization_uses_true_values_only():
    # truths 10..20: an estimate of 25 is 1.5 in normalized units, of 5 is -0.5.
    np.testing.assert_allclose(normalize(np.array([25.0, 5.0, 15.0]), np.array([10.0, 20.0, 12.0])),
                               [1.5, -0.5, 0.5])


def test_metrics_are_invariant_to_an_affine_rescaling_of_both_sides():
    rng = np.random.default_rng(1)
    truths, estimates = rng.normal(size=8), rng.normal(size=8)
    a = dope_metrics(estimates, truths, resamples=100)
    b = dope_metrics(3.0 * estimates + 7.0, 3.0 * truths + 7.0, resamples=100)
    for name in a:
        assert a[name].value == pytest.approx(b[name].value, abs=1e-12)


def test_ties_share_their_mean_rank_and_an_all_tied_side_has_no_correlation():
    # estimates 1, 1, 2 -> ranks 1.5, 1.5, 3; truths ranks 1, 2, 3.
    # centred: (-0.5, -0.5, 1) and (-1, 0, 1): sum of products 1.5,
    # norms sqrt(1.5) and sqrt(2) -> rho = 1.5 / sqrt(3) = sqrt(3) / 2.
    assert rank_correlation(np.array([1.0, 1.0, 2.0]), np.array([0.0, 1.0, 2.0])) == \
        pytest.approx(np.sqrt(3) / 2, abs=1e-12)
    assert np.isnan(rank_correlation(np.ones(3), np.arange(3.0)))
    # the first of tied estimates is the one ranked first: policy 0, normalized truth 0.
    assert regret_at_1(np.array([1.0, 1.0, 0.0]), np.array([0.0, 1.0, 0.5])) == 1.0


def test_a_perfect_estimator_has_zero_error_and_regret_in_every_resample():
    truths = np.arange(6.0)
    m = dope_metrics(truths * 2 - 1, truths * 2 - 1, resamples=300)
    assert (m["absolute_error"].low, m["absolute_error"].high) == (0.0, 0.0)
    assert (m["regret_at_1"].low, m["regret_at_1"].high) == (0.0, 0.0)
    assert m["rank_correlation"].low == pytest.approx(1.0)


def test_the_interval_is_seeded_and_widens_with_confidence():
    truths, estimates = np.arange(10.0), np.array([0, 2, 1, 4, 3, 6, 5, 9, 8, 7.0])
    a = dope_metrics(estimates, truths, seed=3, resamples=500)["rank_correlation"]
    assert a == dope_metrics(estimates, truths, seed=3, resamples=500)["rank_correlation"]
    wide = dope_metrics(estimates, truths, seed=3, confidence=0.99, resamples=500)["rank_correlation"]
    narrow = dope_metrics(estimates, truths, seed=3, confidence=0.5, resamples=500)["rank_correlation"]
    assert wide.low <= narrow.low <= narrow.high <= wide.high
    assert narrow.low < narrow.high


@pytest.mark.parametrize("estimates, truths, match", [
    ([1.0], [1.0], "at least 2 policies"),
    ([1.0, 2.0], [3.0, 3.0], "all equal"),
    ([1.0, 2.0, 3.0], [1.0, 2.0], "1-D of one length"),
    ([np.nan, 2.0], [1.0, 2.0], "finite"),
])
def test_invalid_sets_are_rejected(estimates, truths, match):
    with pytest.raises(ValueError, match=match):
        dope_metrics(estimates, truths)


def test_invalid_bootstrap_settings_are_rejected():
    with pytest.raises(ValueError, match="resamples"):
        dope_metrics([1.0, 2.0], [1.0, 2.0], resamples=0)
    with pytest.raises(ValueError, match="confidence"):
        dope_metrics([1.0, 2.0], [1.0, 2.0], confidence=1.0)
