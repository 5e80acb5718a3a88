"""RLlib PPO on rwrl ids in Ray's env runners, with cost in its results (docs/integrations.md)."""

import pytest

pytest.importorskip("ray.rllib")

import ray  # noqa: E402


@pytest.fixture(scope="module")
def ray_local():
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


# 50-step episodes: a 200-step batch per iteration holds 4 finished episodes whose cost and
# violations the callback reports (1000-step episodes would finish none).
ENV_CONFIG = {"combined_challenge": "easy", "time_limit": 50,
              "safety_spec": {"enable": True, "observations": False}}


def _ppo(env, vectorize_mode="sync"):
    from ray.rllib.algorithms.ppo import PPOConfig

    from rwrl.integrations.rllib import RwrlMetricsCallback
    return (PPOConfig()
            .environment(env, env_config=ENV_CONFIG)
            .env_runners(num_env_runners=1, num_envs_per_env_runner=2,
                         gym_env_vectorize_mode=vectorize_mode)
            .training(train_batch_size_per_learner=200, minibatch_size=100, num_epochs=1)
            .callbacks(RwrlMetricsCallback))


# the registered id in both of RLlib's vectorize modes, and Gymnasium's module-qualified id,
# which needs no registration (gymnasium.make_vec imports rwrl in the runner)
@pytest.mark.parametrize("env, vectorize_mode", [("rwrl/cartpole-balance-v0", "sync"),
                                                 ("rwrl/cartpole-balance-v0", "vector_entry_point"),
                                                 ("rwrl:rwrl/cartpole-balance-v0", "vector_entry_point")])
def test_ppo_trains_one_iteration_with_cost_in_its_results(ray_local, env, vectorize_mode):
    from rwrl.integrations.rllib import register_rllib_envs
    assert "rwrl/cartpole-balance-v0" in register_rllib_envs()
    algo = _ppo(env, vectorize_mode).build_algo()
    try:
        results = algo.train()
    finally:
        algo.stop()
    runners = results["env_runners"]
    assert runners["num_episodes"] >= 1
    # cartpole's three constraints, by name, each counted at most once per step of a 50-step episode
    violations = {key: runners[key] for key in runners if key.startswith("violations/")}
    assert sorted(violations) == ["violations/balance_velocity", "violations/slider_accel",
                                  "violations/slider_pos"]
    assert all(0 <= n <= 50 for n in violations.values())
    # a step's cost is its number of violated constraints (tasks/task.py), so an episode's cost
    # is its violations summed over the constraints; both are means over the same episodes
    assert runners["episode_cost"] == pytest.approx(sum(violations.values()))
