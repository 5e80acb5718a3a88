"""SB3 and sbx SAC on an rwrl id with episode cost in their logger (docs/integrations.md)."""

import gymnasium
import pytest

pytest.importorskip("stable_baselines3")

import rwrl  # noqa: E402,F401  (registers the ids)
from stable_baselines3.common.logger import KVWriter, Logger  # noqa: E402

ENV_KWARGS = {"time_limit": 200, "combined_challenge": "easy",
              "safety_spec": {"enable": True, "observations": False}}


class Dumps(KVWriter):
    """Keep every dump of the logger in memory."""

    def __init__(self):
        self.rows = []

    def write(self, key_values, key_excluded, step=0):
        self.rows.append(dict(key_values))


def _learn(sac_class):
    from rwrl.integrations.sb3 import CostLoggerCallback
    env = gymnasium.make("rwrl/cartpole-balance-v0", **ENV_KWARGS)
    # small and every 4th step: the point is the logging, not the learning
    model = sac_class("MlpPolicy", env, learning_starts=100, batch_size=64, train_freq=4,
                      policy_kwargs={"net_arch": [32, 32]}, seed=0)
    dumps = Dumps()
    model.set_logger(Logger(folder=None, output_formats=[dumps]))
    # log_interval=1: one dump per finished episode, so each row holds one episode's sums
    model.learn(1_000, callback=CostLoggerCallback(), log_interval=1)
    return [row for row in dumps.rows if "rwrl/episode_cost" in row]


@pytest.mark.parametrize("module", ["stable_baselines3", "sbx"])
def test_sac_runs_1000_steps_with_each_episode_cost_logged(module):
    sac_class = pytest.importorskip(module).SAC
    rows = _learn(sac_class)
    assert len(rows) == 1_000 // ENV_KWARGS["time_limit"]
    names = ["slider_pos", "slider_accel", "balance_velocity"]
    for row in rows:
        violations = [row[f"rwrl/violations/{name}"] for name in names]
        assert all(0 <= n <= ENV_KWARGS["time_limit"] for n in violations)
        # a step's cost is its number of violated constraints (tasks/task.py)
        assert row["rwrl/episode_cost"] == pytest.approx(sum(violations))
