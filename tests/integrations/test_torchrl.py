"""TorchRL on rwrl ids and on rwrl's batched engine, with cost and constraints read (docs/integrations.md)."""

import gymnasium
import numpy as np
import pytest

pytest.importorskip("torchrl")

import rwrl  # noqa: E402,F401  (registers the ids)
import torch  # noqa: E402
from gymnasium.vector import AutoresetMode  # noqa: E402
from torchrl.envs import GymEnv, GymWrapper  # noqa: E402
from torchrl.envs.utils import check_env_specs  # noqa: E402

from rwrl.integrations.torchrl import cost_info_reader  # noqa: E402

KWARGS = {"time_limit": 100, "safety_spec": {"enable": True, "observations": False}}


# TorchRL's GymEnv passes frameskip= and drops it only when the TypeError's message holds
# Python's own wording, "unexpected keyword argument 'frameskip'" (torchrl/envs/libs/gym.py,
# ACCEPTED_TYPE_ERRORS), which rwrl's factory uses.
def test_gym_env_on_an_id_passes_check_env_specs_and_reads_cost():
    env = GymEnv("rwrl/cartpole-balance-v0", **KWARGS)
    env.set_info_dict_reader(cost_info_reader(env._env))
    check_env_specs(env, seed=0)
    rollout = env.rollout(150)
    # one env truncated at its 100th step (TorchRL's rollout stops at the first done)
    assert rollout.batch_size == (100,)
    assert rollout["next", "truncated"][-1].item() and not rollout["next", "terminated"].any()
    # a step's cost is its number of violated constraints (tasks/task.py)
    violated = (~rollout["next", "constraints"]).sum(-1).to(torch.float64)
    torch.testing.assert_close(rollout["next", "cost"], violated)


@pytest.mark.parametrize("mode", [AutoresetMode.SAME_STEP, AutoresetMode.DISABLED])
def test_gym_wrapper_over_the_batched_engine_rolls_out_2000_steps_with_truncations(mode):
    # info_layout="flat": TorchRL's SAME_STEP reader takes every info key and cannot spec a
    # nested dict (info['safety_vars']); DISABLED reads only what it is told, so either works
    vec = gymnasium.make_vec("rwrl/cartpole-balance-v0", num_envs=4, autoreset_mode=mode,
                             info_layout="flat", **KWARGS)
    assert type(vec.unwrapped).__name__ == "RwrlVectorEnv"  # the batched engine, not SyncVectorEnv
    env = GymWrapper(vec).set_info_dict_reader(cost_info_reader(vec))
    check_env_specs(env, seed=0)
    env.set_seed(0)
    rollout = env.rollout(2_000, break_when_any_done=False)
    assert rollout.batch_size == (4, 2_000)
    # every env truncates at each 100th step and nowhere else; the tasks never terminate
    expected = np.zeros(2_000, bool)
    expected[99::100] = True
    truncated = rollout["next", "truncated"].squeeze(-1).numpy()
    np.testing.assert_array_equal(truncated, np.broadcast_to(expected, (4, 2_000)))
    assert not rollout["next", "terminated"].any()
    violated = (~rollout["next", "constraints"]).sum(-1).to(torch.float64)
    torch.testing.assert_close(rollout["next", "cost"], violated)
