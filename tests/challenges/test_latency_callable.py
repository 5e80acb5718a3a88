"""A latency callable that returns a bad value fails the step before anything moves."""

import gymnasium
import numpy as np
import pytest

import rwrl  # noqa: F401  (registers the ids)

ID = "rwrl/cartpole-swingup-v0"


_NONE = object()  # no bad value (None is one of the bad values)


class _Latency:
    """Return 0 to 15 ms a step, and ``bad`` the first time step ``at`` is asked for."""

    def __init__(self, bad=_NONE, at: int = 2):
        self.bad, self.at = bad, at

    def __call__(self, step: int) -> float:
        if step == self.at and self.bad is not _NONE:
            bad, self.bad = self.bad, _NONE
            return bad
        return 0.005 * (step % 4)


def _env(latency):
    # 'hard' carries delay buffers and noise counters: state a half-done step would move.
    return gymnasium.make(ID, combined_challenge="hard",
                          realtime_spec={"budget": 0.004, "latency": latency})


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -1.0, None, "0.1", 1e9], ids=repr)
def test_bad_latency_value_raises_naming_the_call_and_leaves_the_env_unchanged(bad):
    seen, fresh = _env(_Latency(bad)), _env(_Latency())
    for env in (seen, fresh):
        env.reset(seed=4)
        for _ in range(2):
            env.step(np.full(1, 0.2))
    with pytest.raises(ValueError, match=r"realtime_spec\['latency'\]\(2\) = .* allowed "
                                         r"\[0.0, 3600.0\]"):
        seen.step(np.full(1, 0.2))
    for _ in range(4):  # the retried step asks latency(2) again, now a good value
        a, b = (env.step(np.full(1, 0.2)) for env in (seen, fresh))
        np.testing.assert_array_equal(a[0], b[0])
        assert a[1] == b[1]
