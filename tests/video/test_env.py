"""RateControlEnv: the real encoder's bits and quality, the budget, seeding, snapshots."""

import math

import numpy as np
import pytest

from rwrl.core.seeding import spawn_seeds
from rwrl.video.clip import Clip
from rwrl.video.corpus import procedural_corpus
from rwrl.video.env import RateControlEnv
from rwrl.video.features import clip_features
from rwrl.video.x264 import X264Encoder, encode_frames

H, W, T = 48, 64, 8


@pytest.fixture(scope="module")
def clips():
    return procedural_corpus(0, count=8, frames=T, width=W, height=H)


@pytest.fixture(scope="module")
def shapes(clips):
    return clips[5]  # discs and boxes crossing a background: every frame differs


def frames_of(clip):
    return [clip.frame(t) for t in range(clip.num_frames)]


def play(env, qps):
    """Step a batch-of-one env through ``qps``; return the rewards, truncations and infos."""
    rewards, truncated, infos = [], [], []
    for qp in qps:
        _, reward, trunc, info = env.step(np.array([[float(qp)]]))
        rewards.append(reward[0])
        truncated.append(bool(trunc[0]))
        infos.append(info)
    return rewards, truncated, infos


def test_a_fixed_qp_episode_is_the_encoders_stream_frame_by_frame(shapes):
    env = RateControlEnv([shapes], 1)
    env.reset(np.array([0]), [0])
    rewards, truncated, infos = play(env, [30] * T)
    with X264Encoder(W, H) as encoder:
        direct = [encoder.encode(*frame, 30) for frame in frames_of(shapes)]
        stream = encoder.close()
    spent = [info["budget"]["bits"][0] for info in infos]
    assert np.diff([0.0] + spent).tolist() == [r.bits for r in direct]
    assert rewards == [r.psnr for r in direct]  # the reward is the frame's PSNR (dB)
    assert spent[-1] == 8 * len(stream)
    assert [info["budget"]["qp"][0] for info in infos] == [30.0] * T
    assert truncated == [False] * (T - 1) + [True]  # the batched env's episode ends
    assert [bool(info["terminated"][0]) for info in infos] == [False] * (T - 1) + [True]


@pytest.mark.parametrize("last_qp, violated", [(30, False), (20, True), (40, False)])
def test_the_budget_constraint_is_judged_on_the_last_frame_exactly(shapes, last_qp, violated):
    # target_qps=(30,): the budget is the clip's bits at constant QP 30
    budget = sum(r.bits for r in encode_frames(frames_of(shapes), [30] * T))
    qps = [30] * (T - 1) + [last_qp]
    spent = sum(r.bits for r in encode_frames(frames_of(shapes), qps))
    assert (spent > budget) == violated  # QP 20 costs more than 30, 40 less; 30 is the edge
    env = RateControlEnv([shapes], 1, target_qps=(30,))
    _, info = env.reset(np.array([0]), [0])
    assert info["budget"]["budget"][0] == budget
    _, _, infos = play(env, qps)
    flags = [bool(info["constraints"][0, 0]) for info in infos]
    costs = [info["cost"][0] for info in infos]
    assert flags == [True] * (T - 1) + [not violated]
    assert costs == [0.0] * (T - 1) + [float(violated)]
    assert [info["budget"]["overshoot"][0] for info in infos] == \
        [0.0] * (T - 1) + [float(max(0, spent - budget))]
    assert infos[-1]["budget"]["bits"][0] == spent
    left = infos[-1]["safety_vars"]["budget_left"][0]
    assert left == (budget - spent) / budget


def test_a_running_cost_flags_every_frame_coded_past_the_budget(shapes):
    # budget: the clip at constant QP 30; QP 30, then QP 10 overshoots it part-way through
    qps = [30] * (T // 2) + [10] * (T - T // 2)
    budget = sum(r.bits for r in encode_frames(frames_of(shapes), [30] * T))
    spent = np.cumsum([r.bits for r in encode_frames(frames_of(shapes), qps)])
    over = (spent > budget).tolist()
    assert 0 < sum(over) < T  # over only from some frame on
    env = RateControlEnv([shapes], 1, target_qps=(30,), cost="running", reward_scale=0.01)
    env.reset(np.array([0]), [0])
    rewards, _, infos = play(env, qps)
    assert [bool(info["constraints"][0, 0]) for info in infos] == [not o for o in over]
    assert [info["cost"][0] for info in infos] == [float(o) for o in over]
    assert infos[-1]["budget"]["overshoot"][0] == spent[-1] - budget
    # the reward is scaled; the quality in info is not
    assert rewards == [info["budget"]["psnr"][0] * 0.01 for info in infos]


@pytest.mark.parametrize("kwargs, message", [
    ({"cost": "sometimes"}, r"cost 'sometimes' is not allowed: one of final, running"),
    ({"reward_scale": 0}, r"reward_scale 0 is not allowed: a number > 0"),
    ({"reward_scale": "1"}, r"reward_scale '1' is not allowed: a number > 0")])
def test_bad_cost_and_reward_scale_are_one_line_errors(shapes, kwargs, message):
    with pytest.raises(ValueError, match=message):
        RateControlEnv([shapes], 1, **kwargs)


def test_a_bitrate_target_gives_kbps_x_duration_bits(clips):
    # 3 kbit/s over 8 frames at 30 fps: 3000 x 8 / 30 = 800 bits; 6 kbit/s: 1600
    env = RateControlEnv(clips, 1, target_kbps=[3.0, 6.0])
    budgets = {env.reset(np.array([0]), [seed])[1]["budget"]["budget"][0] for seed in range(20)}
    assert budgets == {800.0, 1600.0}
    single = RateControlEnv(clips, 1, target_kbps=3.0)
    assert single.reset(np.array([0]), [0])[1]["budget"]["budget"][0] == 800.0


def test_the_observation_entries_follow_the_episode(shapes):
    env = RateControlEnv([shapes], 1, target_qps=(30,), lookahead=3)
    table = clip_features(shapes).table
    reference = clip_features(shapes).reference.bits.astype(float)
    budget = float(sum(r.bits for r in encode_frames(frames_of(shapes), [30] * T)))
    obs, _ = env.reset(np.array([0]), [0])
    o = {k: v[0] for k, v in env.layout.unflatten(obs).items()}
    np.testing.assert_array_equal(o["frame"], table[0])
    np.testing.assert_array_equal(o["next_frames"], table[1:4])
    assert o["next_present"].tolist() == [True] * 3
    assert (o["budget_left"][0], o["frames_left"][0]) == (1.0, 1.0)
    assert o["budget_vs_reference"][0] == budget / reference.sum()
    assert o["budget_log_bpp"][0] == (math.log2(budget / (T * W * H)) + 4) / 4
    assert o["previous_qp"][0] == o["previous_bits"][0] == o["previous_psnr"][0] == 0.0
    direct = encode_frames(frames_of(shapes), [30] * T)
    spent = 0.0
    for t in range(T):
        obs, _, _, _ = env.step(np.array([[30.0]]))
        spent += direct[t].bits
        o = {k: v[0] for k, v in env.layout.unflatten(obs).items()}
        assert o["previous_qp"][0] == 30 / 51
        assert o["previous_bits"][0] == direct[t].bits / (budget / T)
        assert o["previous_psnr"][0] == (direct[t].psnr - 40) / 10
        assert o["budget_left"][0] == (budget - spent) / budget
        assert o["frames_left"][0] == (T - t - 1) / T
        if t == T - 3:  # frame 6 next: one next frame left, then padding
            np.testing.assert_array_equal(o["frame"], table[6])
            np.testing.assert_array_equal(o["next_frames"][0], table[7])
            assert not o["next_frames"][1:].any()
            assert o["next_present"].tolist() == [True, False, False]
            assert o["budget_vs_reference"][0] == (budget - spent) / reference[6:].sum()
    assert not o["frame"].any() and o["budget_vs_reference"][0] == 0.0  # the clip is done


def test_actions_round_half_up_to_an_integer_qp(shapes):
    env = RateControlEnv([shapes], 1)
    env.reset(np.array([0]), [0])
    _, _, infos = play(env, [29.5, 30.49, 29.4999, 51.0, 0.0, 0.5])
    assert [info["budget"]["qp"][0] for info in infos] == [30, 30, 29, 51, 0, 1]


def test_the_ssim_reward_is_the_encoders_ssim_and_psnr_envs_do_not_measure_it(shapes):
    env = RateControlEnv([shapes], 1, reward="ssim")
    env.reset(np.array([0]), [0])
    rewards, _, infos = play(env, [34] * T)
    with X264Encoder(W, H) as encoder:
        direct = [encoder.encode(*frame, 34, with_ssim=True) for frame in frames_of(shapes)]
    assert rewards == [r.ssim for r in direct]
    assert [info["budget"]["ssim"][0] for info in infos] == rewards
    assert [info["budget"]["psnr"][0] for info in infos] == [r.psnr for r in direct]
    psnr_env = RateControlEnv([shapes], 1)
    _, info = psnr_env.reset(np.array([0]), [0])
    assert "ssim" not in info["budget"]


def test_info_has_the_same_keys_and_shapes_on_reset_and_step(clips):
    env = RateControlEnv(clips, 3)
    _, first = env.reset(np.arange(3), [0, 1, 2])
    _, _, _, later = env.step(np.full((3, 1), 30.0))

    def layout(info):
        return {k: layout(v) if isinstance(v, dict) else (v.shape, v.dtype)
                for k, v in info.items()}

    assert layout(first) == layout(later)
    assert layout(later) == {
        "constraints": ((3, 1), np.dtype(bool)), "cost": ((3,), np.dtype(float)),
        "budget": {k: ((3,), np.dtype(float))
                   for k in ("bits", "budget", "overshoot", "qp", "psnr")}
        | {"clip": ((3,), np.dtype(np.int64))},
        "safety_vars": {"budget_left": ((3,), np.dtype(float))},
        "diverged": ((3,), np.dtype(bool)), "terminated": ((3,), np.dtype(bool))}
    assert np.isnan(first["budget"]["qp"]).all() and not later["diverged"].any()
    _, part = env.reset(np.array([1]), [5])  # a partial reset: the info of env 1 only
    assert part["cost"].shape == (1,) and env.elapsed_steps.tolist() == [1, 0, 1]


def test_a_step_after_the_clips_end_codes_nothing(shapes):
    env = RateControlEnv([shapes], 1, target_qps=(40,))
    env.reset(np.array([0]), [0])
    _, _, infos = play(env, [10] * T)  # far over the budget
    assert infos[-1]["cost"][0] == 1.0
    _, reward, truncated, info = env.step(np.array([[10.0]]))
    assert (reward[0], bool(truncated[0]), info["cost"][0]) == (0.0, True, 0.0)
    assert info["constraints"][0, 0] and np.isnan(info["budget"]["qp"][0])
    assert info["budget"]["bits"][0] == infos[-1]["budget"]["bits"][0]


def test_the_seed_draws_the_clip_and_the_budget(clips):
    env = RateControlEnv(clips, 1)
    draws = [(info["budget"]["clip"][0], info["budget"]["budget"][0])
             for info in (env.reset(np.array([0]), [s])[1] for s in range(12))]
    again = [(info["budget"]["clip"][0], info["budget"]["budget"][0])
             for info in (env.reset(np.array([0]), [s])[1] for s in range(12))]
    assert draws == again
    assert len({c for c, _ in draws}) > 2 and len(set(draws)) > 4


def random_episode(env, rng, steps):
    """Step ``steps`` times with random QPs; return the trajectory's arrays, flattened."""
    out = []
    for _ in range(steps):
        obs, reward, truncated, info = env.step(rng.uniform(0, 51, (env.num_envs, 1)))
        out.append((obs, reward, truncated, info))
    return out


def assert_same(a, b):
    if isinstance(a, dict):
        assert a.keys() == b.keys()
        for key in a:
            assert_same(a[key], b[key])
    elif isinstance(a, (tuple, list)):
        assert len(a) == len(b)
        for x, y in zip(a, b):
            assert_same(x, y)
    else:
        np.testing.assert_array_equal(a, b)


def row(x, i):
    if isinstance(x, dict):
        return {k: row(v, i) for k, v in x.items()}
    if isinstance(x, (tuple, list)):
        return [row(v, i) for v in x]
    return x[i:i + 1]


def test_vector_env_i_is_a_single_env_seeded_with_the_ith_spawned_seed(clips):
    n, seed = 3, 11
    vector = RateControlEnv(clips, n, lookahead=2)
    actions = np.random.default_rng(0).uniform(0, 51, (2 * T, n, 1))
    start = vector.reset(np.arange(n), spawn_seeds(seed, n))
    steps = [vector.step(a) for a in actions[:T]]
    second = vector.reset(np.arange(n), [None] * n)  # continues each env's own generator
    steps += [vector.step(a) for a in actions[T:]]
    for i, env_seed in enumerate(spawn_seeds(seed, n)):
        single = RateControlEnv(clips, 1, lookahead=2)
        assert_same(single.reset(np.array([0]), [env_seed]), row(start, i))
        for t, a in enumerate(actions):
            if t == T:
                assert_same(single.reset(np.array([0]), [None]), row(second, i))
            assert_same(single.step(a[i:i + 1]), row(steps[t], i))


def test_restore_continues_bit_for_bit_in_a_fresh_env(clips, tmp_path):
    env = RateControlEnv(clips, 2, lookahead=2)
    env.reset(np.arange(2), [3, 4])
    random_episode(env, np.random.default_rng(1), 3)
    snapshot = env.env_state()
    np.savez(tmp_path / "state.npz", **snapshot)
    with np.load(tmp_path / "state.npz", allow_pickle=False) as data:
        loaded = {k: np.array(data[k]) for k in data.files}

    def rest(e):
        out = random_episode(e, np.random.default_rng(2), T - 3)
        out.append(e.reset(np.arange(2), [None, None]))  # the generators continue too
        return out + random_episode(e, np.random.default_rng(3), 2)

    expected = rest(env)
    fresh = RateControlEnv(clips, 2, lookahead=2)
    fresh.restore_env_state(loaded)
    assert_same(rest(fresh), expected)
    env.restore_env_state(snapshot)  # back in time in the env that went on
    assert_same(rest(env), expected)


def test_a_mismatched_snapshot_raises_naming_the_key_and_changes_nothing(clips):
    env = RateControlEnv(clips, 2)
    env.reset(np.arange(2), [0, 1])
    random_episode(env, np.random.default_rng(0), 2)
    good = env.env_state()
    cases = {
        r"'video/clip': shape \(3,\)": RateControlEnv(clips, 3).env_state(),
        r"'video/clips' = \['p00-pan'\]": RateControlEnv(clips[:1], 2).env_state(),
        r"'video/settings'": RateControlEnv(clips, 2, reward="ssim").env_state(),
        r"key 'video/qps' is missing": {k: v for k, v in good.items() if k != "video/qps"},
        r"'video/elapsed_steps' \(env 1\) = 9: allowed \[0, 8\]":
            {**good, "video/elapsed_steps": np.array([2, 9])},
        r"'video/bits' \(env 0\)": {**good, "video/bits": good["video/bits"] + [8, 0]},
    }
    for message, state in cases.items():
        with pytest.raises(ValueError, match=message) as err:
            env.restore_env_state(state)
        assert "\n" not in str(err.value)
        assert_same(env.env_state(), good)
    clone = RateControlEnv(clips, 2)
    clone.restore_env_state(good)
    action = np.array([[25.0], [35.0]])
    assert_same(env.step(action), clone.step(action))


def test_clips_of_different_lengths_end_at_their_own_last_frame(clips):
    short = Clip("short", 30, clips[0].y[:5], clips[0].u[:5], clips[0].v[:5],
                 source="procedural", kind="pan")
    env = RateControlEnv([short, clips[1]], 1)
    assert env.time_limit == T
    seed = next(s for s in range(50) if env.reset(np.array([0]), [s])[1]["budget"]["clip"][0] == 0)
    env.reset(np.array([0]), [seed])
    _, truncated, infos = play(env, [30] * 5)
    assert truncated == [False] * 4 + [True] and "constraints" in infos[-1]


@pytest.mark.parametrize("kwargs, message", [
    ({"target_kbps": 0}, r"target_kbps 0 is not allowed: a positive finite bitrate"),
    ({"target_kbps": -5.0}, r"target_kbps -5.0 is not allowed"),
    ({"target_kbps": [1.0, float("nan")]}, r"target_kbps nan is not allowed"),
    ({"target_kbps": []}, r"target_kbps \[\] is not allowed"),
    ({"target_qps": (30, 52)}, r"target_qps 52 is not allowed: integers in \[0, 51\]"),
    ({"target_kbps": 100.0, "target_qps": (30,)}, r"both given: allowed one of them"),
    ({"reward": "mse"}, r"reward 'mse' is not allowed: one of psnr, ssim"),
    ({"preset": "turbo"}, r"preset 'turbo' is not allowed: one of ultrafast, "),
    ({"lookahead": -1}, r"lookahead = -1 is not allowed: an integer in \[0, 250\]"),
    ({"num_envs": 0}, r"num_envs = 0 is not allowed"),
    ({"clips": []}, r"clips = \[\] is not allowed: give a non-empty list"),
    ({"clips": ["p00-pan"]}, r"clips\[0\] is a str: allowed rwrl.video.clip.Clip only"),
])
def test_bad_arguments_are_one_line_errors_naming_the_value(clips, kwargs, message):
    kwargs = {"clips": clips, **kwargs}
    with pytest.raises(ValueError, match=message) as err:
        RateControlEnv(**kwargs)
    assert "\n" not in str(err.value)


def test_clips_of_different_frame_rates_are_refused(clips):
    other = Clip("fast", 60, clips[0].y, clips[0].u, clips[0].v, source="procedural", kind="pan")
    with pytest.raises(ValueError, match=r"frame rates \[30, 60\]: allowed one frame rate"):
        RateControlEnv([clips[0], other])


@pytest.mark.parametrize("encoder", ["libvpx-vp9", "vp9"])
def test_an_encoder_without_per_frame_qp_control_is_refused_naming_it(encoder):
    from rwrl.video.corpus import procedural_clip
    clip = procedural_clip(0, frames=2, width=32, height=32)
    with pytest.raises(ValueError, match=f"encoder '{encoder}' is not allowed: it has no per-frame QP"):
        RateControlEnv([clip], encoder=encoder)
    with pytest.raises(ValueError, match="encoder 'h263' is not allowed: one of x264"):
        RateControlEnv([clip], encoder="h263")
