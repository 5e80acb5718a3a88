"""The mean and its Student-t interval: exact values on a tiny case, its edges, its one-line error."""

import pytest

from rwrl.metrics.mean_interval import mean_interval


def test_mean_interval_exact_values_and_its_edges():
    entry = mean_interval([1.0, 2.0, 3.0])  # s = 1, t(0.975, 2) = 4.30265273 (scipy versions differ in the 11th digit)
    assert entry["mean"] == 2.0 and entry["std"] == 1.0 and entry["n"] == 3
    assert entry["ci_high"] == pytest.approx(2.0 + 4.302652729749464 / 3 ** 0.5, abs=1e-9)
    assert mean_interval([])["mean"] is None and mean_interval([])["n"] == 0
    with pytest.raises(ValueError, match=r"confidence must be in \(0, 1\), got 1.5"):
        mean_interval([1.0, 2.0], confidence=1.5)
