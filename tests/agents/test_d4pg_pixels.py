"""D4PG from pixels: DrQ's random shift and encoder, the learner's gradients, and a real pixel run."""

from __future__ import annotations

import json

import gymnasium
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from typer.testing import CliRunner

from rwrl.agents import make_agent
from rwrl.agents.d4pg_pixels import ConvEncoder, FeatureHead, PixelCritic, random_shift, shift_image
from rwrl.agents.types import Transition
from rwrl.cli.app import app
from rwrl.experiments.config import ConfigError, RunConfig, check_buildable, read_config
from rwrl.experiments.run import RunHooks, observation_size, resume_run, start_run
from rwrl.metrics.episode_file import read_rows
from rwrl.storage.checkpoint import load_latest
from tests.experiments.fakes import Killed, kill_after
from tests.experiments.run_compare import assert_same_run

SHAPE = (32, 32, 9)  # small frames: 32 x 32, three stacked RGB frames
SMALL = dict(batch_size=8, policy_hidden_sizes=(16,), critic_hidden_sizes=(16,), feature_size=8,
             target_update_period=3)


def pixel_batch(seed: int, batch_size: int = 8) -> Transition:
    """Random uint8 images, flattened as the replay hands them."""
    rng = np.random.default_rng(seed)
    size = int(np.prod(SHAPE))
    return Transition(
        obs_tm1=rng.integers(0, 256, (batch_size, size), dtype=np.uint8),
        action_tm1=rng.uniform(-1, 1, (batch_size, 1)).astype(np.float32),
        reward_t=rng.uniform(0, 3, batch_size).astype(np.float32),
        discount_t=rng.choice([0.0, 0.99**5], batch_size).astype(np.float32),
        obs_t=rng.integers(0, 256, (batch_size, size), dtype=np.uint8),
        cost_t=np.zeros(batch_size, np.float32),
    )


@pytest.fixture(scope="module")
def agent():
    return make_agent("d4pg-pixels", SHAPE, 1, **SMALL)


def leaves_equal(a, b) -> bool:
    return all(np.array_equal(x, y) for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)))


# --- the random shift -------------------------------------------------------------

IMAGE = np.arange(1, 10, dtype=np.uint8).reshape(3, 3, 1)  # rows 1 2 3 / 4 5 6 / 7 8 9


# out[i, j] = image[i - dy, j - dx], indices clipped to the image (the replicated border).
@pytest.mark.parametrize("dy, dx, expected", [
    (0, 0, [[1, 2, 3], [4, 5, 6], [7, 8, 9]]),   # no shift: the image itself
    (1, 0, [[1, 2, 3], [1, 2, 3], [4, 5, 6]]),   # down one: the top row repeated
    (0, -1, [[2, 3, 3], [5, 6, 6], [8, 9, 9]]),  # left one: the right column repeated
    (-1, 1, [[4, 4, 5], [7, 7, 8], [7, 7, 8]]),  # up one, right one
])
def test_shift_moves_the_image_and_replicates_its_border(dy, dx, expected):
    out = shift_image(jnp.asarray(IMAGE), dy, dx, pad=1)
    np.testing.assert_array_equal(np.asarray(out)[..., 0], expected)


def test_random_shift_keeps_the_shape_and_draws_one_offset_per_image_in_range():
    pad = 2
    image = np.random.default_rng(0).integers(0, 256, (12, 12, 6), dtype=np.uint8)
    images = np.repeat(image[None], 32, axis=0)
    out = np.asarray(random_shift(jnp.asarray(images), jax.random.PRNGKey(0), pad))
    assert out.shape == images.shape and out.dtype == np.uint8
    candidates = {(dy, dx): np.asarray(shift_image(jnp.asarray(image), dy, dx, pad))
                  for dy in range(-pad, pad + 1) for dx in range(-pad, pad + 1)}
    # each output is the whole image (all 6 channels: the stacked frames move together) at one
    # offset in [-pad, pad]^2; the 32 images do not all get the same one
    found = [[k for k, c in candidates.items() if np.array_equal(o, c)] for o in out]
    assert all(found)
    assert len({f[0] for f in found}) > 1
    # pad 0: no augmentation
    np.testing.assert_array_equal(random_shift(jnp.asarray(images), jax.random.PRNGKey(0), 0), images)


# --- the encoder ------------------------------------------------------------------


def test_encoder_output_shapes_as_drq():
    images = jnp.zeros((2, 84, 84, 9), jnp.uint8)
    conv = jax.eval_shape(lambda x: ConvEncoder().init_with_output(jax.random.PRNGKey(0), x)[0], images)
    assert conv.shape == (2, 35 * 35 * 32)  # drq.py: 84 -> 41 -> 39 -> 37 -> 35, 32 filters
    small = np.random.default_rng(0).integers(0, 256, (2, *SHAPE), dtype=np.uint8)
    conv, _ = ConvEncoder().init_with_output(jax.random.PRNGKey(0), small)
    assert conv.shape == (2, 9 * 9 * 32)  # 32 -> 15 -> 13 -> 11 -> 9
    features, _ = FeatureHead(50).init_with_output(jax.random.PRNGKey(1), conv)
    assert features.shape == (2, 50) and np.all(np.abs(features) < 1)  # tanh


def test_an_image_shape_is_required():
    with pytest.raises(ValueError, match=r"obs_size must be the image shape \(H, W, C\), got 5"):
        make_agent("d4pg-pixels", 5, 1)
    with pytest.raises(ValueError, match="H and W >= 15"):
        make_agent("d4pg-pixels", (8, 8, 3), 1)


# --- learning ---------------------------------------------------------------------


def test_an_update_trains_critic_and_encoder(agent):
    state = agent.init(jax.random.PRNGKey(0))
    new, metrics = agent.update(state, pixel_batch(0), jax.random.PRNGKey(1))
    before, after = state.critic_params["params"], new.critic_params["params"]
    for part in ("encoder", "head", "critic"):  # the convolutions, the critic's head, its C51 torso
        assert not leaves_equal(before[part], after[part]), part
    assert not leaves_equal(state.policy_params, new.policy_params)
    assert all(np.isfinite(float(v)) for v in metrics.values())


def test_the_actor_loss_does_not_reach_the_encoder(agent):
    state = agent.init(jax.random.PRNGKey(0))
    batch = pixel_batch(0)._replace(obs_tm1=pixel_batch(0).obs_tm1.reshape(-1, *SHAPE))
    grads = jax.grad(agent.losses.policy_loss, argnums=1)(state.policy_params, state.critic_params, batch)
    # the stop gradient: nothing of the actor's loss reaches the convolutions ...
    assert all(np.all(g == 0) for g in jax.tree.leaves(grads["params"]["encoder"]))
    # ... though it does reach the critic's layers above them
    assert any(np.any(g != 0) for g in jax.tree.leaves(grads["params"]["critic"]))
    # without it, it would: the same loss through the critic's own call
    def unstopped(critic_params):
        conv = agent.networks.critic.apply(critic_params, batch.obs_tm1, method=PixelCritic.encode)
        action = agent.networks.policy.apply(state.policy_params, conv)
        return -jnp.mean(agent.networks.critic.apply(critic_params, batch.obs_tm1, action))
    assert any(np.any(g != 0) for g in jax.tree.leaves(jax.grad(unstopped)(state.critic_params)["params"]["encoder"]))
    # and a step whose critic does not learn (learning rate 0) leaves the encoder where it was
    frozen = make_agent("d4pg-pixels", SHAPE, 1, **{**SMALL, "critic_learning_rate": 0.0})
    start = frozen.init(jax.random.PRNGKey(0))
    new, _ = frozen.update(start, pixel_batch(0), jax.random.PRNGKey(1))
    assert leaves_equal(start.critic_params, new.critic_params)
    assert not leaves_equal(start.policy_params, new.policy_params)


def test_updates_are_reproducible_given_the_seed_and_depend_on_the_shift_key(agent):
    def three_updates(key_offset):
        state = agent.init(jax.random.PRNGKey(0))
        for i in range(3):
            state, metrics = agent.update(state, pixel_batch(i), jax.random.PRNGKey(i + key_offset))
        return state, metrics
    (s1, m1), (s2, m2), (s3, _) = three_updates(0), three_updates(0), three_updates(10)
    jax.tree.map(np.testing.assert_array_equal, s1, s2)
    assert {k: float(v) for k, v in m1.items()} == {k: float(v) for k, v in m2.items()}
    assert int(s1.steps) == 3
    assert not leaves_equal(s1.critic_params, s3.critic_params)  # other shifts, another step


def test_update_many_is_the_same_steps_as_separate_updates(agent):
    state = agent.init(jax.random.PRNGKey(0))
    batches = [pixel_batch(i) for i in range(3)]
    keys = np.asarray(jax.random.split(jax.random.PRNGKey(5), 3))
    separate = state
    for batch, key in zip(batches, keys):
        separate, metrics = agent.update(separate, batch, key)
    stacked = Transition(*(np.stack(x) for x in zip(*batches)))
    fused, fused_metrics = agent.update_many(state, stacked, keys)
    jax.tree.map(np.testing.assert_array_equal, fused, separate)
    assert float(fused_metrics["critic_loss"]) == float(metrics["critic_loss"])


def test_act_takes_flat_or_image_shaped_uint8_frames(agent):
    state = agent.init(jax.random.PRNGKey(0))
    flat = pixel_batch(0).obs_tm1
    greedy = agent.act(state, flat, jax.random.PRNGKey(1), explore=False)
    assert greedy.shape == (8, 1) and greedy.dtype == np.float32
    np.testing.assert_array_equal(agent.act(state, flat.reshape(-1, *SHAPE), jax.random.PRNGKey(2),
                                            explore=False), greedy)
    explored = agent.act(state, flat, jax.random.PRNGKey(1), explore=True)
    assert np.all(np.abs(explored) <= 1) and np.std(explored - greedy) > 0.1


# --- runs ---------------------------------------------------------------------------


def pixel_run_args(out, steps: int = 240) -> list[str]:
    """A pixel run small enough for a test: 32 x 32 frames, 40-step episodes, 2 envs, 1 update a vector step."""
    return ["run", "--agent", "d4pg-pixels", "--env", "cartpole-swingup", "--steps", str(steps),
            "--num-envs", "2", "--eval-every", "240", "--eval-episodes", "1", "--checkpoint-every", "80",
            "--env-kwarg", "pixels_width=32", "--env-kwarg", "pixels_height=32", "--env-kwarg", "time_limit=40",
            "--agent-config", "batch_size=8", "--agent-config", "min_replay_size=40",
            "--agent-config", "samples_per_insert=4.0", "--agent-config", "policy_hidden_sizes=[8]",
            "--agent-config", "critic_hidden_sizes=[8]", "--agent-config", "feature_size=8",
            "--no-progress", "--out", str(out)]


@pytest.fixture(scope="module")
def pixel_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("pixels") / "run"
    result = CliRunner().invoke(app, pixel_run_args(out))
    assert result.exit_code == 0, result.output
    return out


def test_a_pixel_run_renders_its_envs_and_stores_uint8_frames(pixel_run):
    rows = read_rows(pixel_run / "metrics.jsonl")
    train = [r for r in rows if r["phase"] == "train"]
    # 240 env steps of 2 envs in 40-step episodes: 3 episodes each; evaluations at 0 and 240
    assert [r["length"] for r in train] == [40] * 6
    assert sum(r["phase"] == "eval" for r in rows) == 2
    assert np.isfinite(train[-1]["learner/critic_loss"])  # learning began at 40 transitions
    config = json.loads((pixel_run / "config.json").read_text())
    assert config["run"]["env_kwargs"] == {"pixels_width": 32, "pixels_height": 32, "time_limit": 40}
    assert config["agent"]["replay_capacity"] == 100_000 and config["agent"]["shift_pad"] == 4
    checkpoint = load_latest(pixel_run / "checkpoints")
    chunks = [checkpoint.read_chunk(entry) for entry in checkpoint.chunks]
    obs = np.concatenate([chunk["obs_tm1"] for chunk in chunks])
    assert obs.dtype == np.uint8 and obs.shape == (240, 32 * 32 * 9)  # 3 stacked frames of 32 x 32
    assert checkpoint.groups["session"]["obs"].dtype == np.uint8


@pytest.mark.slow  # 10-25 s; every run resumes through the same loop (tests/experiments)
def test_a_killed_pixel_run_resumes_to_the_very_same_run(pixel_run, tmp_path):
    config, _ = read_config(pixel_run / "config.json")
    with pytest.raises(Killed):  # mid-episode, 60 vector steps after the checkpoint at env step 80
        start_run(config, tmp_path / "run", RunHooks(on_step=kill_after(100), progress=False))
    summary = resume_run(tmp_path / "run", hooks=RunHooks(progress=False))
    assert summary["counters"]["session"] == 1
    assert_same_run(tmp_path / "run", pixel_run)


def test_the_pixel_env_options_are_for_the_pixel_agents_alone():
    assert RunConfig(agent="d4pg-pixels").env_make_kwargs() == {"observation_mode": "pixels", "frame_stack": 3}
    assert RunConfig(agent="d4pg-pixels", env_kwargs={"frame_stack": 1}).env_make_kwargs()["frame_stack"] == 1
    assert "observation_mode" not in RunConfig(agent="d4pg").env_make_kwargs()
    with pytest.raises(ConfigError, match=r"pixel options \['pixels_width'\]: agent 'd4pg' learns from the state"):
        RunConfig(agent="d4pg", env_kwargs={"pixels_width": 32})
    with pytest.raises(ConfigError, match="eval_env_kwargs.*pixel options"):
        RunConfig(agent="td3", eval_env_kwargs={"frame_stack": 3})
    with pytest.raises(ConfigError, match="without observation_mode: the agent sets it"):
        RunConfig(agent="d4pg-pixels", env_kwargs={"observation_mode": "pixels"})
    with pytest.raises(ConfigError, match="observation_history.*stacked frames"):
        RunConfig(agent="d4pg-pixels", observation_history=2)
    with pytest.raises(ConfigError, match="renders no images"):
        RunConfig(agent="d4pg-pixels", env="ratecontrol")
    with pytest.raises(ConfigError, match=r"frame_stack = 0 is not allowed"):
        check_buildable(RunConfig(agent="d4pg-pixels", env_kwargs={"frame_stack": 0}))
    spec = {"enable": True, "num_random_state_observations": 2}
    with pytest.raises(ConfigError, match="dimensionality_spec acts on the state observation only"):
        check_buildable(RunConfig(agent="d4pg-pixels", env_kwargs={"dimensionality_spec": spec}))


def test_an_agent_is_handed_the_observations_it_learns_from():
    images, vectors = gymnasium.spaces.Box(0, 255, SHAPE, np.uint8), gymnasium.spaces.Box(-1, 1, (5,))
    assert observation_size(RunConfig(agent="d4pg-pixels"), images) == SHAPE
    assert observation_size(RunConfig(agent="d4pg"), vectors) == 5
    with pytest.raises(ConfigError, match=r"'d4pg' learns from flat state vectors.*\(32, 32, 9\)"):
        observation_size(RunConfig(agent="d4pg"), images)
    with pytest.raises(ConfigError, match="'d4pg-pixels' learns from uint8 images"):
        observation_size(RunConfig(agent="d4pg-pixels"), vectors)


def test_the_command_refuses_pixels_for_a_state_agent_and_a_bad_image_size(tmp_path):
    result = CliRunner().invoke(app, ["run", "--agent", "d4pg", "--env-kwarg", "pixels_width=32",
                                      "--no-progress", "--out", str(tmp_path / "state")])
    assert result.exit_code == 2 and "learns from the state" in result.output
    assert not (tmp_path / "state").exists()
    result = CliRunner().invoke(app, ["run", "--agent", "d4pg-pixels", "--env-kwarg", "pixels_width=1000",
                                      "--no-progress", "--out", str(tmp_path / "wide")])
    assert result.exit_code == 2 and "pixels_width = 1000 is not allowed" in result.output, result.output
    assert not (tmp_path / "wide").exists()
