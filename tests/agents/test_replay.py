"""The n-step replay buffer on hand-written trajectories."""

import io

import numpy as np
import pytest

from rwrl.agents.replay import NStepReplay

GAMMA = 0.5  # a power of two, so every expected number is exact in float32


def stored(replay: NStepReplay) -> dict[float, tuple]:
    """Return obs_tm1 -> (action, reward, discount, obs_t) of every stored transition."""
    d = replay.state_dict()
    return {
        float(o[0]): (float(a[0]), float(r), float(g), float(o_t[0]))
        for o, a, r, g, o_t in zip(d["obs_tm1"], d["action_tm1"], d["reward_t"], d["discount_t"], d["obs_t"])
    }


def step(replay, obs, reward, next_obs, terminated=(False, False), truncated=(False, False), mask=None):
    """Add one step of two envs whose observation is one number; the action is obs / 1000."""
    obs = np.array(obs, float)[:, None]
    replay.add(obs, obs / 1000.0, np.array(reward, float), np.array(next_obs, float)[:, None],
               np.array(terminated), np.array(truncated), mask=None if mask is None else np.array(mask))


def test_n_step_returns_across_truncation_termination_and_autoreset():
    replay = NStepReplay(capacity=100, obs_size=1, action_size=1, num_envs=2, n_step=3, gamma=GAMMA)
    # Env 0: episode A, obs 0..4 with rewards 1..5, truncated on its 5th step
    # (true final obs 5); then Gymnasium's autoreset row (masked out); then
    # episode B, obs 10, 11 with rewards 1, 1, terminated at obs 12.
    # Env 1: terminates on its first step (obs 100, reward 7); its autoreset
    # row is masked out; then obs 200..205 with reward 1 each, never ending.
    step(replay, [0, 100], [1, 7], [1, 101], terminated=(False, True))
    step(replay, [1, 101], [2, 0], [2, 200], mask=(True, False))
    step(replay, [2, 200], [3, 1], [3, 201])
    step(replay, [3, 201], [4, 1], [4, 202])
    step(replay, [4, 202], [5, 1], [5, 203], truncated=(True, False))
    step(replay, [5, 203], [0, 1], [10, 204], mask=(False, True))
    step(replay, [10, 204], [1, 1], [11, 205])
    step(replay, [11, 205], [1, 1], [12, 206], terminated=(True, False))

    expected = {
        # Full 3-step windows of episode A: 1 + 0.5*2 + 0.25*3 = 2.75 and
        # 2 + 0.5*3 + 0.25*4 = 4.5, bootstrapping gamma**3 = 0.125 from obs 3, 4.
        0.0: (0.0, 2.75, 0.125, 3.0),
        1.0: (0.001, 4.5, 0.125, 4.0),
        # Truncation at obs 5: the window [2, 3, 4] is flushed, each step
        # bootstrapping from the true final obs 5 after the steps it has left:
        # 3 + 0.5*4 + 0.25*5 = 6.25 (3 steps, 0.125); 4 + 0.5*5 = 6.5 (2 steps,
        # 0.25); 5 (1 step, 0.5).
        2.0: (0.002, 6.25, 0.125, 5.0),
        3.0: (0.003, 6.5, 0.25, 5.0),
        4.0: (0.004, 5.0, 0.5, 5.0),
        # Episode B terminates: 1 + 0.5*1 = 1.5 and 1, no bootstrap (discount 0).
        # Nothing links obs 5 to obs 10 (the masked autoreset row).
        10.0: (0.01, 1.5, 0.0, 12.0),
        11.0: (0.011, 1.0, 0.0, 12.0),
        # Env 1's one-step episode: reward 7, terminal.
        100.0: (0.1, 7.0, 0.0, 101.0),
        # Env 1's second episode: full windows 1 + 0.5 + 0.25 = 1.75, gamma**3,
        # bootstrapping three observations later. Obs 204 and 205 still wait
        # for their third reward and are not stored yet.
        200.0: (0.2, 1.75, 0.125, 203.0),
        201.0: (0.201, 1.75, 0.125, 204.0),
        202.0: (0.202, 1.75, 0.125, 205.0),
        203.0: (0.203, 1.75, 0.125, 206.0),
    }
    got = stored(replay)
    assert len(replay) == len(expected)
    assert got.keys() == expected.keys()
    for obs, values in expected.items():
        np.testing.assert_allclose(got[obs], values, rtol=1e-6, err_msg=f"transition from obs {obs}")


def test_one_step_returns():
    # n = 1: every step is stored at once with discount gamma, or 0 when terminal;
    # a truncated step still bootstraps with gamma from its final obs.
    replay = NStepReplay(capacity=10, obs_size=1, action_size=1, num_envs=2, n_step=1, gamma=GAMMA)
    step(replay, [0, 10], [1, 2], [1, 11], terminated=(True, False), truncated=(False, True))
    got = stored(replay)
    assert got.keys() == {0.0, 10.0}
    assert got[0.0] == pytest.approx((0.0, 1.0, 0.0, 1.0))
    assert got[10.0] == pytest.approx((0.01, 2.0, 0.5, 11.0))


def test_ring_overwrites_oldest_and_sample_draws_stored_rows():
    replay = NStepReplay(capacity=4, obs_size=1, action_size=1, num_envs=2, n_step=1, gamma=GAMMA)
    for t in range(3):  # 6 transitions into 4 slots: those of t = 0 are overwritten
        step(replay, [t, 10 + t], [t, t], [t + 1, 11 + t])
    assert len(replay) == 4
    assert sorted(stored(replay)) == [1.0, 2.0, 11.0, 12.0]
    batch = replay.sample(np.random.default_rng(0), 64)
    assert batch.obs_tm1.shape == (64, 1) and batch.obs_tm1.dtype == np.float32
    assert set(batch.obs_tm1[:, 0]) <= {1.0, 2.0, 11.0, 12.0}
    np.testing.assert_allclose(batch.obs_t, batch.obs_tm1 + 1.0)


def test_state_dict_round_trip_through_npz():
    rng = np.random.default_rng(0)
    kwargs = dict(capacity=50, obs_size=3, action_size=2, num_envs=4, n_step=3, gamma=0.9)
    original = NStepReplay(**kwargs)

    def random_step(r):
        return (r.normal(size=(4, 3)), r.uniform(-1, 1, (4, 2)), r.uniform(size=4), r.normal(size=(4, 3)),
                r.uniform(size=4) < 0.1, r.uniform(size=4) < 0.1)

    for _ in range(20):  # wraps the ring and leaves steps pending
        original.add(*random_step(rng))
    buffer = io.BytesIO()
    np.savez(buffer, **original.state_dict())
    buffer.seek(0)
    restored = NStepReplay(**kwargs)
    with np.load(buffer, allow_pickle=False) as data:
        restored.load_state_dict(dict(data))

    # Both continue identically: same pending windows, same ring position.
    r1, r2 = np.random.default_rng(1), np.random.default_rng(1)
    for _ in range(5):
        original.add(*random_step(r1))
        restored.add(*random_step(r2))
    assert len(restored) == len(original)
    a, b = original.sample(np.random.default_rng(2), 32), restored.sample(np.random.default_rng(2), 32)
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x, y)
    for key, value in original.state_dict().items():
        np.testing.assert_array_equal(value, restored.state_dict()[key], err_msg=key)


def _random_step(r):
    return (r.normal(size=(4, 3)), r.uniform(-1, 1, (4, 2)), r.uniform(size=4), r.normal(size=(4, 3)),
            r.uniform(size=4) < 0.1, r.uniform(size=4) < 0.1)


def _assert_same_buffer(a, b):
    for key, value in a.state_dict().items():
        np.testing.assert_array_equal(value, b.state_dict()[key], err_msg=key)


def test_chunks_of_new_rows_and_the_position_restore_the_buffer_exactly():
    # A ring of 50 filled in bursts: each "checkpoint" exports only the rows
    # written since the previous one; the restore imports them all, oldest
    # first, and the ring keeps the last 50 (older rows are skipped).
    kwargs = dict(capacity=50, obs_size=3, action_size=2, num_envs=4, n_step=3, gamma=0.9)
    original, rng = NStepReplay(**kwargs), np.random.default_rng(0)
    chunks, saved = [], 0
    for burst in (3, 9, 2, 7):  # 4 envs x ~1 row per step: the ring wraps twice
        for _ in range(burst):
            original.add(*_random_step(rng))
        first = max(saved, original.written - len(original))
        chunks.append((first, original.export_rows(first)))
        saved = original.written
    restored = NStepReplay(**kwargs)
    restored.load_position_state(original.position_state())
    held = sum(restored.import_rows(first, rows) for first, rows in chunks)
    assert held == len(original) == 50 and original.written > 50
    _assert_same_buffer(original, restored)
    r1, r2 = np.random.default_rng(1), np.random.default_rng(1)
    for _ in range(5):  # the pending windows go on alike
        original.add(*_random_step(r1))
        restored.add(*_random_step(r2))
    _assert_same_buffer(original, restored)


def test_export_refuses_rows_the_ring_no_longer_holds_and_import_checks_shapes():
    replay, rng = NStepReplay(10, 3, 2, 4, 3, 0.9), np.random.default_rng(0)
    for _ in range(8):
        replay.add(*_random_step(rng))
    with pytest.raises(ValueError, match=r"first=0: the buffer holds transitions"):
        replay.export_rows(0)
    rows = replay.export_rows(replay.written - 3)
    rows["obs_t"] = rows["obs_t"][:, :2]
    with pytest.raises(ValueError, match=r"replay rows obs_t: expected shape \(3, 3\)"):
        replay.import_rows(replay.written - 3, rows)
    state = replay.position_state()
    state["next_index"] = np.array(3)
    with pytest.raises(ValueError, match="do not fit"):
        NStepReplay(10, 3, 2, 4, 3, 0.9).load_position_state(state)


def test_a_state_dict_from_before_the_written_count_still_loads():
    replay, rng = NStepReplay(10, 3, 2, 4, 3, 0.9), np.random.default_rng(0)
    for _ in range(8):  # a full ring
        replay.add(*_random_step(rng))
    old = {k: v for k, v in replay.state_dict().items() if k != "written"}
    restored = NStepReplay(10, 3, 2, 4, 3, 0.9)
    restored.load_state_dict(old)
    assert restored.written % 10 == replay.written % 10 and len(restored) == 10
    np.testing.assert_array_equal(restored.export_rows(restored.written - 10)["obs_tm1"],
                                  replay.export_rows(replay.written - 10)["obs_tm1"])


def test_load_rejects_other_layout():
    state = NStepReplay(10, 3, 2, 4, 3, 0.9).state_dict()
    with pytest.raises(ValueError, match="n_step"):
        NStepReplay(10, 3, 2, 4, 5, 0.9).load_state_dict(state)
    with pytest.raises(ValueError, match="missing"):
        NStepReplay(10, 3, 2, 4, 3, 0.9).load_state_dict({})


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(capacity=0), "capacity"),
        (dict(n_step=0), "n_step"),
        (dict(gamma=1.5), "gamma"),
        (dict(num_envs=2.5), "num_envs"),
    ],
)
def test_invalid_arguments(kwargs, match):
    args = dict(capacity=10, obs_size=3, action_size=2, num_envs=4, n_step=3, gamma=0.9) | kwargs
    with pytest.raises(ValueError, match=match):
        NStepReplay(**args)


def test_add_checks_shapes_and_sample_checks_empty():
    replay = NStepReplay(10, 3, 2, 4, 3, 0.9)
    with pytest.raises(ValueError, match="empty"):
        replay.sample(np.random.default_rng(0), 4)
    with pytest.raises(ValueError, match="obs has shape"):
        replay.add(np.zeros((3, 3)), np.zeros((4, 2)), np.zeros(4), np.zeros((4, 3)), np.zeros(4), np.zeros(4))


def test_discard_forgets_the_stored_rows_and_a_restore_keeps_the_forgetting():
    # A ring of 4: t = 0, 1 write 4 rows, then a discard (a regime switch), then t = 2 writes 2.
    replay = NStepReplay(capacity=4, obs_size=1, action_size=1, num_envs=2, n_step=1, gamma=GAMMA)
    for t in range(2):
        step(replay, [t, 10 + t], [t, t], [t + 1, 11 + t])
    replay.discard()
    assert len(replay) == 0 and replay.written == 4
    with pytest.raises(ValueError, match="empty replay"):
        replay.sample(np.random.default_rng(0), 1)
    step(replay, [2, 12], [2, 2], [3, 13])
    assert len(replay) == 2 and replay.written == 6
    batch = replay.sample(np.random.default_rng(0), 256)
    assert set(batch.obs_tm1[:, 0]) == {2.0, 12.0}  # only the rows written after the discard
    assert list(replay.latest(8).obs_tm1[:, 0]) == [2.0, 12.0]
    assert list(replay.export_rows(4)["obs_tm1"][:, 0]) == [2.0, 12.0]
    with pytest.raises(ValueError, match="holds transitions 4 to 5"):
        replay.export_rows(3)  # discarded rows are not exported
    restored = NStepReplay(capacity=4, obs_size=1, action_size=1, num_envs=2, n_step=1, gamma=GAMMA)
    restored.load_position_state(replay.position_state())
    assert restored.import_rows(4, replay.export_rows(4)) == 2
    r1, r2 = np.random.default_rng(3), np.random.default_rng(3)
    np.testing.assert_array_equal(replay.sample(r1, 32).obs_tm1, restored.sample(r2, 32).obs_tm1)
    for t in range(3, 5):  # the ring fills and wraps after the discard: every slot live again
        step(replay, [t, 10 + t], [t, t], [t + 1, 11 + t])
    assert set(replay.sample(np.random.default_rng(0), 256).obs_tm1[:, 0]) == {3.0, 4.0, 13.0, 14.0}
    with pytest.raises(ValueError, match="discarded count"):
        replay.state_dict()


def test_latest_returns_the_newest_rows_oldest_first():
    replay = NStepReplay(capacity=4, obs_size=1, action_size=1, num_envs=2, n_step=1, gamma=GAMMA)
    for t in range(3):
        step(replay, [t, 10 + t], [t, t], [t + 1, 11 + t])
    assert list(replay.latest(3).obs_tm1[:, 0]) == [11.0, 2.0, 12.0]
    with pytest.raises(ValueError, match="count=0: must be an integer >= 1"):
        replay.latest(0)


def test_images_are_kept_as_uint8_through_the_n_step_window_and_a_save():
    # a 2-step window over 4-pixel "images": the first transition's obs_t is the third image
    replay = NStepReplay(10, 4, 1, 1, 2, GAMMA, obs_dtype=np.uint8)
    images = [np.array([[k, 1, 254 - k, 255]], np.uint8) for k in range(3)]
    for k in range(2):
        replay.add(images[k], np.zeros((1, 1)), np.ones(1), images[k + 1], np.array([False]), np.array([False]))
    batch = replay.sample(np.random.default_rng(0), 3)
    assert batch.obs_tm1.dtype == batch.obs_t.dtype == np.uint8
    np.testing.assert_array_equal(batch.obs_tm1, np.repeat(images[0], 3, axis=0))
    np.testing.assert_array_equal(batch.obs_t, np.repeat(images[2], 3, axis=0))
    assert batch.reward_t[0] == 1.0 + GAMMA  # the 2-step sum of rewards 1 and 1
    copy = NStepReplay(10, 4, 1, 1, 2, GAMMA, obs_dtype=np.uint8)
    copy.load_position_state(replay.position_state())
    copy.import_rows(0, replay.export_rows(0))
    np.testing.assert_array_equal(copy.latest(1).obs_t, images[2])
    with pytest.raises(ValueError, match="obs_dtype=.*must be float32 or uint8"):
        NStepReplay(10, 4, 1, 1, 1, GAMMA, obs_dtype=np.float64)
