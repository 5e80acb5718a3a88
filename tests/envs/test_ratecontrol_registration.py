"""rwrl/ratecontrol-v0: registered, listed, served by the Gymnasium, vector and dm_env adapters."""

import dm_env
import gymnasium
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env
from typer.testing import CliRunner

import rwrl
from rwrl.cli import app
from rwrl.core.seeding import spawn_seeds
from rwrl.envs.gym_env import RwrlEnv
from rwrl.envs.ratecontrol import RATECONTROL_ID, corpus_clips, load_dm_env
from rwrl.envs.vector_env import RwrlVectorEnv

TINY = {"frames": 8, "width": 64, "height": 48, "clip_count": 8}


def test_the_id_is_registered_with_single_and_vector_entry_points():
    assert RATECONTROL_ID == "rwrl/ratecontrol-v0" and RATECONTROL_ID in rwrl.register_envs()
    spec = gymnasium.spec(RATECONTROL_ID)
    assert spec.entry_point == "rwrl.envs.ratecontrol:make_ratecontrol_env"
    assert spec.vector_entry_point == "rwrl.envs.ratecontrol:make_ratecontrol_vector_env"


# QP's own range, [0, 51], not [-1, 1]: the checker's advice, not a failure
@pytest.mark.filterwarnings("ignore:.*symmetric and normalized.*:UserWarning")
def test_gymnasiums_env_checker_passes():
    env = gymnasium.make(RATECONTROL_ID, **TINY)
    assert isinstance(env.unwrapped, RwrlEnv)
    check_env(env.unwrapped)  # the render check too: no render mode is listed


def test_an_episode_through_gymnasium_make_reports_the_constraint():
    env = gymnasium.make(RATECONTROL_ID, target_qps=[40], **TINY)
    _, info = env.reset(seed=0)
    assert env.unwrapped.constraint_names == ("bitrate",) and info["constraints"].tolist() == [True]
    assert env.unwrapped.time_limit == 8 and env.metadata["render_fps"] == 30
    steps = [env.step(np.array([10.0], np.float32)) for _ in range(8)]  # QP 10: far over
    # the clip's last frame terminates the episode (nothing follows it); nothing truncates
    assert [s[2] for s in steps] == [False] * 7 + [True] and not any(s[3] for s in steps)
    assert "terminated" not in steps[-1][4]
    assert [float(s[4]["cost"]) for s in steps] == [0.0] * 7 + [1.0]
    last = steps[-1][4]
    assert last["budget"]["overshoot"] == last["budget"]["bits"] - last["budget"]["budget"] > 0
    env.reset(seed=0)
    with pytest.raises(ValueError, match=r"action has shape \(2,\)"):
        env.step(np.array([30.0, 30.0]))


def test_make_vec_env_i_equals_make_seeded_with_the_ith_spawned_seed():
    n, seed = 3, 5
    vector = gymnasium.make_vec(RATECONTROL_ID, num_envs=n, lookahead=2, **TINY)
    assert isinstance(vector, RwrlVectorEnv) and vector.num_envs == n
    actions = np.random.default_rng(0).uniform(0, 51, (10, n, 1)).astype(np.float32)
    obs, _ = vector.reset(seed=seed)
    trajectory = [vector.step(a) for a in actions]  # past the clip's end: NEXT_STEP autoreset
    for i, env_seed in enumerate(spawn_seeds(seed, n)):
        single = gymnasium.make(RATECONTROL_ID, lookahead=2, **TINY)
        first, _ = single.reset(seed=env_seed)
        np.testing.assert_array_equal(first, obs[i])
        for t in range(8):
            o, r, term, trunc, info = single.step(actions[t, i])
            v_obs, v_reward, v_term, v_trunc, v_info = trajectory[t]
            np.testing.assert_array_equal(o, v_obs[i])
            assert (r, term, trunc) == (v_reward[i], v_term[i], v_trunc[i])
            assert term == (t == 7)
            assert info["budget"]["bits"] == v_info["budget"]["bits"][i]
        # the autoreset step starts the next episode from the env's own generator
        np.testing.assert_array_equal(single.reset()[0], trajectory[8][0][i])


def test_a_dm_env_of_the_rate_control_env():
    env = load_dm_env(seed=0, target_qps=[30], **TINY)
    step = env.reset()
    assert step.first() and sorted(step.observation) == sorted(env.batched.layout.spec)
    spec = env.action_spec()
    assert (spec.minimum.tolist(), spec.maximum.tolist()) == ([0.0], [51.0])
    steps = [env.step([30.0]) for _ in range(8)]
    # the clip's end is a termination: nothing follows its last frame
    assert steps[-1].step_type == dm_env.StepType.LAST and steps[-1].discount == 0.0
    assert all(s.discount == 1.0 for s in steps[:-1]) and "terminated" not in env.info
    assert all(s.reward > 20 for s in steps)  # PSNR (dB) of QP 30
    assert env.info["constraints"].tolist() == [[True]] and env.info["cost"].tolist() == [0.0]
    again = load_dm_env(seed=0, target_qps=[30], **TINY).reset()
    for key, value in again.observation.items():
        np.testing.assert_array_equal(value, step.observation[key])


def test_rwrl_envs_lists_the_rate_control_family():
    result = CliRunner().invoke(app, ["envs"])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    at = lines.index(RATECONTROL_ID)
    assert lines[at - 1].startswith("rate-control family")
    assert "bitrate" in "\n".join(lines[at:])


def test_a_corpus_on_disk_is_read_by_split(tmp_path):
    from rwrl.video.corpus import build_corpus

    manifest = build_corpus(tmp_path, num_procedural=4, frames=4, width=32, height=32)
    test_names = [c["name"] for c in manifest["clips"] if c["split"] == "test"]
    assert 0 < len(test_names) < 4
    assert [c.name for c in corpus_clips(tmp_path, "test")] == test_names
    env = gymnasium.make(RATECONTROL_ID, corpus=str(tmp_path), split="test")
    assert [c.name for c in env.unwrapped.batched.clips] == test_names
    _, info = env.reset(seed=0)
    assert 0 <= int(info["budget"]["clip"]) < len(test_names) and env.unwrapped.time_limit == 4


@pytest.mark.parametrize("kwargs, message", [
    ({"split": "valid"}, r"split 'valid' is not allowed: one of train, test"),
    ({"corpus": 3}, r"corpus 3 is not allowed: 'procedural' or the folder"),
    ({"render_mode": "rgb_array"}, r"render_mode 'rgb_array' is not allowed"),
    ({"target_kbps": -1.0}, r"target_kbps -1.0 is not allowed"),
    ({"reward": "vmaf"}, r"reward 'vmaf' is not allowed: one of psnr, ssim"),
])
def test_bad_arguments_to_make_are_one_line_errors(kwargs, message):
    with pytest.raises(ValueError, match=message) as err:
        gymnasium.make(RATECONTROL_ID, **{**TINY, **kwargs})
    assert "\n" not in str(err.value)


def test_procedural_sizes_with_a_corpus_folder_are_refused(tmp_path):
    with pytest.raises(ValueError, match=r"frames is not allowed with corpus="):
        corpus_clips(tmp_path, "train", frames=8)


def test_the_vector_envs_snapshot_continues_bit_for_bit_in_a_fresh_vector_env():
    vector = gymnasium.make_vec(RATECONTROL_ID, num_envs=2, **TINY)
    vector.reset(seed=0)
    for _ in range(3):
        vector.step(np.full((2, 1), 30.0, np.float32))
    snapshot = vector.env_state()
    qps = np.array([20, 25, 30, 35, 40, 45, 30], np.float32)  # past the clip's end: autoreset
    expected = [vector.step(np.full((2, 1), q, np.float32)) for q in qps]
    fresh = gymnasium.make_vec(RATECONTROL_ID, num_envs=2, **TINY)
    fresh.restore_env_state(snapshot)
    for step, q in zip(expected, qps):
        got = fresh.step(np.full((2, 1), q, np.float32))
        for a, b in zip(got[:4], step[:4]):
            np.testing.assert_array_equal(a, b)
        np.testing.assert_array_equal(got[4]["budget"]["bits"], step[4]["budget"]["bits"])
