"""TorchRL: the info-reader spec that puts ``cost`` and ``constraints`` into TorchRL's tensordicts.

TorchRL's own calls work on rwrl ids: ``GymEnv("rwrl/...")`` after ``import rwrl``, and
``GymWrapper(gymnasium.make_vec(id, num_envs=N, autoreset_mode=...))`` over rwrl's batched
engine (TorchRL needs the ``SAME_STEP`` or ``DISABLED`` autoreset mode). TorchRL reads no info
key unless told, and guesses specs from a rollout when not given them; this gives them.

Example::

    import gymnasium, rwrl
    from gymnasium.vector import AutoresetMode
    from torchrl.envs import GymWrapper
    from rwrl.integrations.torchrl import cost_info_reader

    vec = gymnasium.make_vec("rwrl/walker-walk-v0", num_envs=8, autoreset_mode=AutoresetMode.SAME_STEP)
    env = GymWrapper(vec).set_info_dict_reader(cost_info_reader(vec))
    env.rollout(100)["next", "cost"].shape  # (8, 100)
"""

from __future__ import annotations

import gymnasium
import torch
from torchrl.data import Binary, Composite, Unbounded
from torchrl.envs import default_info_dict_reader

from rwrl.integrations.episode import constraint_names


def cost_info_reader(env) -> default_info_dict_reader:
    """Return a reader of ``info['cost']`` (float64) and ``info['constraints']`` (K bools, True = held).

    Args:
      env: the Gymnasium env or vector env that TorchRL wraps (an rwrl id's, or a wrapper of
        one); a vector env of N envs gives specs with a leading batch axis of N.
    """
    batch = (env.num_envs,) if isinstance(env.unwrapped, gymnasium.vector.VectorEnv) else ()
    k = len(constraint_names(env))
    spec = Composite(
        cost=Unbounded(shape=batch, dtype=torch.float64),
        constraints=Binary(n=k, shape=(*batch, k), dtype=torch.bool),
        shape=batch,
    )
    return default_info_dict_reader(["cost", "constraints"], spec=spec)
