"""K learner steps in one compiled call (``update_many``) against K calls of ``update``, and the replay ratio."""

from __future__ import annotations

import jax
import numpy as np
import pytest

from rwrl.agents import AGENTS, make_agent, make_config
from rwrl.agents.replay import NStepReplay
from rwrl.agents.types import Transition

OBS, ACT, K, B = 5, 1, 3, 16  # cartpole-swingup's sizes: the model-set agents' default task
IMAGE = (15, 15, 3)  # the pixel agents' smallest images, (H, W, C)
SMALL = {"batch_size": B, "policy_hidden_sizes": (16, 16), "critic_hidden_sizes": (16, 16)}
ONLINE = sorted(name for name, entry in AGENTS.items() if not entry.capabilities.offline)
#: the agents whose update is its own (D4PG, DMPO, R-MPO's model-set target, TD3) run in the
#: default suite; the others reuse one of those updates with a loss term or a network of their
#: own, 10-25 s each: `-m slow`.
OWN_UPDATES = ("d4pg", "dmpo", "rmpo", "td3")


def _stacked_batches(seed: int, state_size: int = 0, image: tuple | None = None) -> Transition:
    """K batches of B random transitions; with ``state_size``, cartpole's physics states too.

    With ``image``, the observations are uint8 images of that shape, flattened as the replay gives them.
    """
    rng = np.random.default_rng(seed)
    shape = (K, B)

    def observations():
        if image is None:
            return rng.normal(size=shape + (OBS,)).astype(np.float32)
        return rng.integers(0, 256, shape + (int(np.prod(image)),), dtype=np.uint8)
    state = None
    if state_size:  # qpos (cart, pole angle), qvel, warm start: a cartpole near upright
        state = np.zeros(shape + (state_size,))
        state[..., :4] = rng.normal(0.0, 0.1, shape + (4,))
    return Transition(
        obs_tm1=observations(),
        action_tm1=rng.uniform(-1, 1, shape + (ACT,)).astype(np.float32),
        reward_t=rng.uniform(0, 1, shape).astype(np.float32),
        discount_t=np.where(rng.uniform(size=shape) < 0.1, 0.0, 0.95).astype(np.float32),
        obs_t=observations(),
        cost_t=rng.integers(0, 2, shape).astype(np.float32),
        state_tm1=state)


@pytest.mark.parametrize("name", [name if name in OWN_UPDATES else pytest.param(name, marks=pytest.mark.slow)
                                  for name in ONLINE])
def test_k_fused_updates_equal_k_sequential_updates_bit_for_bit(name):
    image = IMAGE if AGENTS[name].capabilities.pixels else None
    agent = make_agent(name, image or OBS, ACT, **SMALL, **({"num_samples": 4} if "mpo" in name else {}))
    state_size = agent._nq + 2 * agent._nv if AGENTS[name].capabilities.model_set else 0  # qpos, qvel, warm start
    batches = _stacked_batches(0, state_size, image)
    keys = np.asarray(jax.random.split(jax.random.PRNGKey(1), K))
    sequential = agent.init(jax.random.PRNGKey(0))
    if AGENTS[name].capabilities.cost_constrained:  # a cost estimate, so the multiplier moves
        sequential = agent.observe_episodes(sequential, np.array([0.3, 0.6], np.float32))
    fused = jax.tree.map(np.array, sequential)  # a copy: update_many donates its input
    for k in range(K):
        sequential, last = agent.update(sequential, batches.at(k), keys[k])
    fused, fused_last = agent.update_many(fused, batches, keys)
    # Bit for bit on this machine's XLA: the scan's body is the same program as one update.
    jax.tree.map(np.testing.assert_array_equal, jax.device_get(fused), jax.device_get(sequential))
    jax.tree.map(np.testing.assert_array_equal, jax.device_get(fused_last), jax.device_get(last))
    assert int(fused.steps) == K


def test_sample_many_draws_count_batches_in_one_draw():
    replay = NStepReplay(100, OBS, ACT, 1, 1, 0.9)
    for i in range(10):
        obs = np.full((1, OBS), i, np.float32)
        replay.add(obs, np.zeros((1, ACT)), np.array([float(i)]), obs + 1, np.array([False]),
                   np.array([False]))
    batches = replay.sample_many(np.random.default_rng(3), 4, 6)
    index = np.random.default_rng(3).integers(0, 10, size=(4, 6))
    assert batches.obs_tm1.shape == (4, 6, OBS) and batches.reward_t.shape == (4, 6)
    np.testing.assert_array_equal(batches.reward_t, index.astype(np.float32))
    np.testing.assert_array_equal(batches.obs_tm1[..., 0], index.astype(np.float32))
    with pytest.raises(ValueError, match="empty replay"):
        NStepReplay(10, OBS, ACT, 1, 1, 0.9).sample_many(np.random.default_rng(0), 2, 3)


def test_replay_ratio_is_one_setting_with_samples_per_insert():
    assert make_config("d4pg").replay_ratio == 64.0 / 256  # the paper preset: 0.25 per env step
    config = make_config("d4pg", replay_ratio=1.5, batch_size=64)
    assert config.samples_per_insert == 96.0 and config.replay_ratio == 1.5
    assert make_config("dmpo", preset="paper", replay_ratio=0.5).samples_per_insert == 128.0
    with pytest.raises(ValueError, match=r"^replay_ratio=-1: must be a number > 0"):
        make_config("d4pg", replay_ratio=-1)
    with pytest.raises(ValueError, match="replay_ratio and samples_per_insert both given"):
        make_config("d4pg", replay_ratio=1, samples_per_insert=8.0)
    with pytest.raises(ValueError, match="agent iql learns offline and has no replay ratio"):
        make_config("iql", replay_ratio=1)


def test_presets_override_the_defaults_and_the_user_overrides_the_preset():
    fast = make_config("d4pg", preset="fast")
    assert fast.policy_hidden_sizes == (128, 128) and fast.critic_learning_rate == 3e-4
    assert (fast.batch_size, fast.samples_per_insert, fast.replay_ratio) == (128, 64.0, 0.5)
    assert make_config("d4pg", preset="fast", replay_ratio=0.25).samples_per_insert == 32.0
    assert make_config("d4pg", preset="fast", critic_learning_rate=1e-3).critic_learning_rate == 1e-3
    assert make_config("d4pg", preset="paper") == make_config("d4pg")
    with pytest.raises(ValueError, match=r"^preset='fast': agent dmpo has the presets \['paper'\]"):
        make_config("dmpo", preset="fast")
