"""Actions: only arrays of real numbers of the right shape reach the env.

A bad action raises a ValueError naming the expected shape and dtype before
anything moves, so the env steps on exactly as one that never saw it.
"""

from decimal import Decimal
from fractions import Fraction

import gymnasium
import numpy as np
import pytest

import rwrl  # noqa: F401  (registers the ids)
from rwrl.envs.validation import check_actions

ID = "rwrl/cartpole-swingup-v0"
LOW, HIGH = -np.ones(2), np.ones(2)

NON_REAL = [
    ("0.5", r"dtype <U3"),
    (["0.5", "0.1"], r"dtype <U3"),
    (b"ab", r"dtype \|S2"),
    ([1 + 2j, 0.0], r"dtype complex128"),
    (np.array([0.1, 0.2], np.complex64), r"dtype complex64"),
    ([0.1, None], r"dtype object"),
    (None, r"dtype object"),
    ([Decimal("0.1"), Decimal("0.2")], r"dtype object"),
    ([Fraction(1, 2), 0.1], r"dtype object"),
    ({"a": 1}, r"dtype object"),
    ([True, False], r"dtype bool"),
    (np.array([True, False]), r"dtype bool"),
    (np.array(["2020-01-01", "2020-01-02"], "datetime64[D]"), r"dtype datetime64"),
    ([[0.1], [0.1, 0.2]], r"inhomogeneous"),
    ([10**30, 0], r"dtype object"),  # beyond every integer dtype
]


@pytest.mark.parametrize("action, detail", NON_REAL, ids=lambda v: repr(v)[:40])
def test_non_real_actions_raise_naming_shape_and_dtype(action, detail):
    with pytest.raises(ValueError, match=r"action must be numeric \(a float or int dtype, "
                                         r"not bool\) with shape \(2,\): .*" + detail):
        check_actions(action, 1, LOW, HIGH, batched=False)


@pytest.mark.parametrize("action", [
    np.array([0.5, -2.0]), np.array([0.5, -2.0], np.float32), np.array([0.5, -2.0], np.float16),
    [0.5, -2.0], (0.5, -2), np.array([1, -2], np.int8), np.array([1, 2], np.uint64),
    [np.float64(0.5), -2],
], ids=repr)
def test_real_actions_of_any_width_are_accepted_and_clipped(action):
    out = check_actions(action, 1, LOW, HIGH, batched=False)
    assert out.dtype == np.float64 and out.shape == (1, 2)
    np.testing.assert_array_equal(out, np.clip(np.asarray(action, np.float64), -1, 1)[None])


def test_float64_fast_path_does_not_copy_the_callers_array():
    action = np.array([0.5, 0.25])
    check_actions(action, 1, LOW, HIGH, batched=False)
    np.testing.assert_array_equal(action, [0.5, 0.25])


def _steps(env, n=5):
    return [env.step(np.full(1, 0.3))[0] for _ in range(n)]


@pytest.mark.parametrize("action", [["0.5"], [1j], [True], None, [[0.1, 0.2]], [np.nan]],
                         ids=repr)
def test_bad_action_leaves_the_env_as_one_that_never_saw_it(action):
    # 'hard' carries delays, noise counters and random features: state that an
    # action accepted half-way would move.
    seen, fresh = (gymnasium.make(ID, combined_challenge="hard") for _ in range(2))
    first_seen, _ = seen.reset(seed=3)
    first_fresh, _ = fresh.reset(seed=3)
    with pytest.raises(ValueError, match="action"):
        seen.step(action)
    for a, b in zip(_steps(seen), _steps(fresh)):
        np.testing.assert_array_equal(a, b)


def test_vector_env_rejects_non_real_actions_before_stepping():
    vec = gymnasium.make_vec(ID, num_envs=2)
    vec.reset(seed=0)
    with pytest.raises(ValueError, match=r"with shape \(2, 1\): got dtype complex128"):
        vec.step(np.zeros((2, 1), complex))
    vec.step(np.zeros((2, 1)))  # still usable
