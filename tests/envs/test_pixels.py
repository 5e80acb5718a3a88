"""Pixel observations: spaces of every id, seeding, challenges on frames, stacking, bad input, dm_env.

Small images (16 to 32 pixels a side) and few renders: llvmpipe draws dm_control's
2048-texel shadow map at any image size.
"""

import os
import subprocess
import sys

import gymnasium
import numpy as np
import pytest

import rwrl
from rwrl.core.seeding import spawn_seeds
from rwrl.domains import available_tasks
from rwrl.envs.gym_env import RwrlEnv
from rwrl.envs.registration import env_id
from rwrl.tasks.task import BatchedTask

TASKS = available_tasks()
CARTPOLE = "rwrl/cartpole-swingup-v0"
SMALL = {"pixels_width": 24, "pixels_height": 24}


def _frames(env, seed, actions):
    """Return the observations of a reset with ``seed`` and then of ``actions``."""
    obs, _ = env.reset(seed=seed)
    return [obs] + [env.step(a)[0] for a in actions]


def _actions(space, steps, seed=0):
    rng = np.random.default_rng(seed)
    return [rng.uniform(space.low, space.high).astype(np.float32) for _ in range(steps)]


@pytest.mark.parametrize("domain,task", TASKS, ids=[f"{d}-{t}" for d, t in TASKS])
def test_every_id_gives_images_its_spaces_contain_single_and_vector(domain, task):
    env = gymnasium.make(env_id(domain, task), observation_mode="pixels", pixels_width=32,
                         pixels_height=24)
    assert env.observation_space == gymnasium.spaces.Box(0, 255, (24, 32, 3), np.uint8)
    obs, _ = env.reset(seed=0)
    stepped = env.step(env.action_space.sample())[0]
    for image in (obs, stepped):
        assert image.shape == (24, 32, 3) and image.dtype == np.uint8
        assert env.observation_space.contains(image)
    assert obs.std() > 5  # a scene, not a blank frame
    env.close()

    vec = gymnasium.make_vec(env_id(domain, task), num_envs=2, observation_mode="pixels_state",
                             pixels_width=16, pixels_height=16, frame_stack=2)
    state_size = vec.unwrapped.batched.layout.size
    for obs in (vec.reset(seed=0)[0], vec.step(vec.action_space.sample())[0]):
        assert obs["pixels"].shape == (2, 16, 16, 6) and obs["pixels"].dtype == np.uint8
        assert obs["state"].shape == (2, state_size) and obs["state"].dtype == np.float64
        assert vec.observation_space.contains(obs)
    vec.close()


def _first_frame(name, **kwargs):
    env = gymnasium.make(name, observation_mode="pixels", **kwargs)
    frame = env.reset(seed=0)[0]
    env.close()
    return frame


def test_the_default_image_is_84_square_from_the_benchmarks_camera():
    default = _first_frame("rwrl/quadruped-walk-v0")
    assert default.shape == (84, 84, 3)
    # DrQ's quadruped camera is 2; the other domains' is 0
    np.testing.assert_array_equal(default, _first_frame("rwrl/quadruped-walk-v0", pixels_camera=2))
    assert not np.array_equal(default, _first_frame("rwrl/quadruped-walk-v0", pixels_camera=0))
    np.testing.assert_array_equal(_first_frame(CARTPOLE, **SMALL),
                                  _first_frame(CARTPOLE, pixels_camera=0, **SMALL))
    np.testing.assert_array_equal(_first_frame(CARTPOLE, pixels_camera="lookatcart", **SMALL),
                                  _first_frame(CARTPOLE, pixels_camera=1, **SMALL))


# pixel challenges whose draws and runs must follow each env's seed
NOISY = {"noise_spec": {"gaussian": {"pixels": 20.0}, "dropped": {"observations_prob": 0.3},
                        "stuck": {"observations_prob": 0.3, "observations_steps": 2}},
         "delay_spec": {"observations": 1}}


@pytest.mark.parametrize("challenges", [{}, NOISY], ids=["plain", "noisy"])
def test_env_i_of_a_vector_env_renders_as_the_single_env_of_its_seed(challenges):
    vec = gymnasium.make_vec(CARTPOLE, num_envs=2, observation_mode="pixels", frame_stack=2,
                             **SMALL, **challenges)
    actions = _actions(vec.action_space, 4)
    batch = _frames(vec, 5, actions)
    vec.close()
    for i, seed in enumerate(spawn_seeds(5, 2)):
        env = gymnasium.make(CARTPOLE, observation_mode="pixels", frame_stack=2, **SMALL,
                             **challenges)
        single = _frames(env, seed, [a[i] for a in actions])
        env.close()
        for t, (mine, theirs) in enumerate(zip(single, batch)):
            np.testing.assert_array_equal(mine, theirs[i], err_msg=f"env {i} step {t}")
    again = gymnasium.make(CARTPOLE, observation_mode="pixels", frame_stack=2, **SMALL,
                           **challenges)
    first = _frames(again, spawn_seeds(5, 2)[0], [a[0] for a in actions])
    np.testing.assert_array_equal(first[-1], batch[-1][0])  # and again, bit for bit
    again.close()


@pytest.mark.parametrize("k", [1, 3])
def test_a_delay_of_k_returns_exactly_the_frame_of_k_steps_before(k):
    plain = gymnasium.make(CARTPOLE, observation_mode="pixels", **SMALL)
    actions = _actions(plain.action_space, 6)
    truth = _frames(plain, 3, actions)
    plain.close()
    delayed = gymnasium.make(CARTPOLE, observation_mode="pixels", **SMALL,
                             delay_spec={"observations": k})
    seen = _frames(delayed, 3, actions)
    delayed.close()
    assert not np.array_equal(truth[0], truth[-1])  # the frames change
    for t, frame in enumerate(seen):
        np.testing.assert_array_equal(frame, truth[max(0, t - k)], err_msg=f"step {t}")


def test_frame_stack_holds_the_last_k_frames_oldest_first_filled_at_reset():
    plain = gymnasium.make(CARTPOLE, observation_mode="pixels", **SMALL)
    actions = _actions(plain.action_space, 4)
    truth = _frames(plain, 1, actions)
    plain.close()
    stacked = gymnasium.make(CARTPOLE, observation_mode="pixels", frame_stack=3, **SMALL)
    assert stacked.observation_space.shape == (24, 24, 9)
    for t, obs in enumerate(_frames(stacked, 1, actions)):
        # slot j holds the frame of step t - 2 + j, the reset frame before the episode began
        for j in range(3):
            np.testing.assert_array_equal(obs[..., 3 * j:3 * j + 3], truth[max(0, t - 2 + j)])
    stacked.close()


def test_dropped_frames_are_black_and_stuck_frames_hold_the_previous_one():
    plain = gymnasium.make(CARTPOLE, observation_mode="pixels", **SMALL)
    actions = _actions(plain.action_space, 4)
    truth = _frames(plain, 2, actions)
    plain.close()
    # probability 1: a run starts on the first frame and a new one as each ends
    dropped = gymnasium.make(CARTPOLE, observation_mode="pixels", **SMALL,
                             noise_spec={"dropped": {"observations_prob": 1.0}})
    assert all((frame == 0).all() for frame in _frames(dropped, 2, actions))
    dropped.close()
    stuck = gymnasium.make(CARTPOLE, observation_mode="pixels", **SMALL,
                           noise_spec={"stuck": {"observations_prob": 1.0,
                                                 "observations_steps": 2}})
    for frame in _frames(stuck, 2, actions):
        np.testing.assert_array_equal(frame, truth[0])  # held since the reset
    stuck.close()


def test_gaussian_pixel_noise_is_in_intensity_levels_rounded_and_clipped():
    plain = gymnasium.make(CARTPOLE, observation_mode="pixels_state", **SMALL)
    actions = _actions(plain.action_space, 2)
    truth = _frames(plain, 4, actions)
    plain.close()
    sigma = 10.0
    noisy = gymnasium.make(CARTPOLE, observation_mode="pixels_state", **SMALL,
                           noise_spec={"gaussian": {"pixels": sigma}})
    for clean, obs in zip(truth, _frames(noisy, 4, actions)):
        # the state's gaussian ('observations') is 0: the state is untouched
        np.testing.assert_array_equal(obs["state"], clean["state"])
        diff = obs["pixels"].astype(int) - clean["pixels"]
        unclipped = (clean["pixels"] > 4 * sigma) & (clean["pixels"] < 255 - 4 * sigma)
        # E|N(0, sigma)| = sigma sqrt(2 / pi) = 7.98 for sigma = 10 (rounding adds ~0.04)
        assert 7.0 < np.abs(diff[unclipped]).mean() < 9.0
        assert abs(diff[unclipped].mean()) < 1.0
    noisy.close()


def test_turning_pixels_on_changes_no_state_observation():
    # state noises and pixel noises together: the pixel stages draw after the state's
    challenges = {"noise_spec": {"gaussian": {"observations": 0.1, "pixels": 5.0},
                                 "dropped": {"observations_prob": 0.2}},
                  "delay_spec": {"observations": 2}}
    flat = gymnasium.make(CARTPOLE, **challenges)
    actions = _actions(flat.action_space, 4)
    states = _frames(flat, 6, actions)
    flat.close()
    both = gymnasium.make(CARTPOLE, observation_mode="pixels_state", **SMALL, **challenges)
    for state, obs in zip(states, _frames(both, 6, actions)):
        np.testing.assert_array_equal(obs["state"], state)
    both.close()


def test_snapshots_of_pixel_envs_restore_the_frames_stacks_and_delays():
    kwargs = dict(num_envs=2, observation_mode="pixels_state", frame_stack=2, **SMALL, **NOISY)
    vec = gymnasium.make_vec(CARTPOLE, **kwargs)
    actions = _actions(vec.action_space, 5)
    _frames(vec, 0, actions[:2])
    state = vec.unwrapped.env_state()
    assert {"vector/last/obs/pixels", "challenge/pixels/delay/buffer",
            "challenge/pixels/stack/frames"} <= set(state)
    later = [vec.step(a)[0] for a in actions[2:]]
    fresh = gymnasium.make_vec(CARTPOLE, **kwargs)
    fresh.unwrapped.restore_env_state(state)
    for obs, want in zip([fresh.step(a)[0] for a in actions[2:]], later):
        np.testing.assert_array_equal(obs["pixels"], want["pixels"])
        np.testing.assert_array_equal(obs["state"], want["state"])
    vec.close()
    fresh.close()


def test_autoreset_in_pixel_mode_returns_the_single_envs_new_episode():
    vec = gymnasium.make_vec(CARTPOLE, num_envs=2, observation_mode="pixels", time_limit=2,
                             pixels_width=16, pixels_height=16)
    actions = _actions(vec.action_space, 4)
    batch = _frames(vec, 9, actions)
    vec.close()
    env = gymnasium.make(CARTPOLE, observation_mode="pixels", time_limit=2, pixels_width=16,
                         pixels_height=16)
    obs, _ = env.reset(seed=spawn_seeds(9, 2)[1])
    single = [obs]
    for a in actions:
        if len(single) == 3:  # the episode ended on step 2: NEXT_STEP resets on step 3
            single.append(env.reset()[0])
            continue
        single.append(env.step(a[1])[0])
    for mine, theirs in zip(single, batch):
        np.testing.assert_array_equal(mine, theirs[1])
    env.close()


@pytest.mark.parametrize("kwargs, match", [
    ({"pixels_width": 0}, r"pixels_width = 0 is not allowed: give an integer in \[1, 640\]"),
    ({"pixels_height": 481}, r"pixels_height = 481 is not allowed: give an integer in \[1, 480\]"),
    ({"pixels_width": 2.5}, r"pixels_width = 2.5 is not allowed"),
    ({"pixels_camera": "nope"}, r"pixels_camera 'nope' is not a camera of the model: give an "
                                r"id in \[-1, 2\) .* \['fixed', 'lookatcart'\]"),
    ({"pixels_camera": 5}, r"pixels_camera = 5 is not allowed: give an id in \[-1, 2\)"),
    ({"pixels_camera": 1.0}, r"pixels_camera = 1.0 is not allowed"),
    ({"frame_stack": 0}, r"frame_stack = 0 is not allowed: give an integer in \[1, 64\]"),
    ({"observation_mode": "pixel"}, r"observation_mode 'pixel' is not allowed: use one of "
                                    r"\['flat', 'dict', 'pixels', 'pixels_state'\]"),
    ({"observation_mode": "flat", "pixels_width": 64},
     r"pixels_width = 64 is for the pixel observation modes"),
    ({"observation_mode": "dict", "frame_stack": 3}, r"frame_stack = 3 is for the pixel"),
    ({"dimensionality_spec": {"num_random_state_observations": 3}},
     r"dimensionality_spec acts on the state observation only, which observation_mode='pixels' "
     r"does not return: use observation_mode='pixels_state'"),
    ({"noise_spec": {"gaussian": {"pixels": -1}}},
     r"noise_spec\['gaussian'\]\['pixels'\] = -1 is out of range: allowed \[0.0, 255.0\]"),
])
def test_bad_pixel_options_raise_one_line_naming_the_value(kwargs, match):
    kwargs = {"observation_mode": "pixels", **kwargs}
    for make in (lambda: gymnasium.make(CARTPOLE, **kwargs),
                 lambda: gymnasium.make_vec(CARTPOLE, num_envs=2, **kwargs)):
        with pytest.raises(ValueError, match=match) as err:
            make()
        assert "\n" not in str(err.value)


def test_a_state_only_challenge_stays_in_the_state_part():
    # pixels_state keeps the extra dimensions; combined_challenge's stay in the (unreturned) state
    env = gymnasium.make(CARTPOLE, observation_mode="pixels_state", **SMALL,
                         dimensionality_spec={"num_random_state_observations": 3})
    assert env.reset(seed=0)[0]["state"].shape == (5 + 3,)
    env.close()
    hard = gymnasium.make(CARTPOLE, observation_mode="pixels", **SMALL, combined_challenge="hard")
    assert hard.unwrapped.batched.pixel_stage_names == ("dropped", "stuck", "delay")
    assert hard.observation_space.contains(hard.reset(seed=0)[0])
    hard.close()


def test_pixel_modes_need_an_env_made_to_render():
    with pytest.raises(ValueError, match=r"observation_mode 'pixels' needs an env made to render"):
        RwrlEnv.from_batched(BatchedTask("cartpole", "swingup", 1), observation_mode="pixels")


def test_rendering_unavailable_names_mujoco_gl_and_the_fix():
    code = ("import gymnasium, rwrl\n"
            "gymnasium.make('rwrl/cartpole-swingup-v0', observation_mode='pixels')")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=300, env={**os.environ, "MUJOCO_GL": "disable"})
    assert done.returncode != 0
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("ValueError: offscreen rendering is unavailable with "
                           "MUJOCO_GL='disable'")
    assert "set MUJOCO_GL=egl (GPU or Mesa) or osmesa (software)" in last


def test_dm_env_adds_the_pixels_key_as_dm_controls_wrapper():
    only = rwrl.load("cartpole", "swingup", seed=3, pixels=True, pixels_width=24,
                     pixels_height=24)
    assert list(only.observation_spec()) == ["pixels"]
    first = only.reset().observation
    assert list(first) == ["pixels"] and first["pixels"].shape == (24, 24, 3)
    assert first["pixels"].dtype == only.observation_spec()["pixels"].dtype == np.uint8
    gym_env = gymnasium.make(CARTPOLE, observation_mode="pixels", **SMALL)
    np.testing.assert_array_equal(first["pixels"], gym_env.reset(seed=3)[0])  # the same frame
    gym_env.close()
    only.close()

    both = rwrl.load("cartpole", "swingup", pixels=True, pixels_only=False,
                     render_kwargs={"height": 16, "width": 20, "camera_id": 1})
    step = both.step(np.zeros(1))
    assert list(step.observation) == ["position", "velocity", "pixels"]
    assert list(both.observation_spec()) == ["position", "velocity", "pixels"]
    assert step.observation["pixels"].shape == both.observation_spec()["pixels"].shape == (16, 20, 3)
    both.close()


@pytest.mark.parametrize("kwargs, match", [
    ({"pixels_width": 32}, r"pixels_width = 32 is for the pixel observation modes"),
    ({"pixels": True, "render_kwargs": {"camera": 1}},
     r"render_kwargs key\(s\) \['camera'\] are not allowed: allowed 'height', 'width', 'camera_id'"),
    ({"pixels": True, "dimensionality_spec": {"num_random_state_observations": 2}},
     r"dimensionality_spec acts on the state observation only"),
    ({"pixels": "yes"}, r"pixels = 'yes', pixels_only = True: give True or False"),
])
def test_dm_env_bad_pixel_options_raise(kwargs, match):
    with pytest.raises(ValueError, match=match):
        rwrl.load("cartpole", "swingup", **kwargs)
