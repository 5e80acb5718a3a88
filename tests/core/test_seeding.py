import numpy as np
import pytest

from rwrl.core.seeding import CounterRandom, env_rng, spawn_seeds, stream_key


def test_spawn_seeds_are_reproducible_and_distinct():
    assert spawn_seeds(7, 4) == spawn_seeds(7, 4)
    assert len(set(spawn_seeds(7, 64))) == 64
    assert spawn_seeds(7, 4) != spawn_seeds(8, 4)
    # the i-th seed does not depend on how many are spawned
    assert spawn_seeds(7, 8)[:4] == spawn_seeds(7, 4)


def test_env_rng_streams_differ_by_name():
    a = env_rng(3, "task").standard_normal(4)
    assert np.array_equal(a, env_rng(3, "task").standard_normal(4))
    assert not np.array_equal(a, env_rng(3, "perturb").standard_normal(4))


def _draws(keys, steps=3, shape=(5,)):
    rng = CounterRandom(len(keys))
    rng.reset(np.arange(len(keys)), keys)
    out = []
    for _ in range(steps):
        out.append(rng.uniform(shape))
        rng.next_step()
    return np.stack(out, axis=1)


def test_counter_random_env_i_of_a_batch_equals_a_batch_of_one():
    keys = [stream_key(s, "noise") for s in (11, 12, 13)]
    batch = _draws(keys)
    for i, key in enumerate(keys):
        np.testing.assert_array_equal(batch[i], _draws([key])[0])


def test_counter_random_draws_change_with_step_and_call():
    rng = CounterRandom(1)
    rng.reset(np.array([0]), [stream_key(0, "x")])
    a, b = rng.uniform((4,)), rng.uniform((4,))
    rng.next_step()
    c = rng.uniform((4,))
    assert not np.array_equal(a, b) and not np.array_equal(a, c)


def test_counter_random_reset_restarts_the_stream():
    rng = CounterRandom(2)
    rng.reset(np.arange(2), [stream_key(1, "x"), stream_key(2, "x")])
    first = rng.uniform((3,))
    rng.next_step()
    rng.reset(np.array([0, 1]), [stream_key(1, "x"), stream_key(2, "x")])
    np.testing.assert_array_equal(rng.uniform((3,)), first)


@pytest.mark.parametrize("kind", ["uniform", "normal"])
def test_counter_random_moments(kind):
    rng = CounterRandom(256)
    rng.reset(np.arange(256), [stream_key(s, "m") for s in range(256)])
    x = np.concatenate([getattr(rng, kind)((64,)).ravel() for _ in range(4)])
    n = x.size  # 65,536 draws: standard errors of about 0.004
    if kind == "uniform":
        assert x.min() >= 0 and x.max() < 1
        assert abs(x.mean() - 0.5) < 5 * np.sqrt(1 / 12 / n)
        assert abs(x.var() - 1 / 12) < 0.002
    else:
        assert abs(x.mean()) < 5 / np.sqrt(n)
        assert abs(x.std() - 1) < 0.01
        assert abs(np.mean(np.abs(x) > 1.96) - 0.05) < 0.005
