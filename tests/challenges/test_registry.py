"""The challenge registry: a challenge registered there alone is reachable from every entry point.

The fake challenge ``fake_spec`` adds constants to the reward and the
observation. Registered by the fixture (one dict entry, removed after the
test), it works through ``gymnasium.make``, ``rwrl.load`` and a sweep file,
with no other change to the code.
"""

from __future__ import annotations

import dataclasses
import pickle

import gymnasium
import numpy as np
import pytest

import rwrl
from rwrl.challenges import registry
from rwrl.challenges.challenge import ACTIONS, OBSERVATIONS, REWARDS, Challenge
from rwrl.challenges.spec_checks import check_keys, is_on, number
from rwrl.challenges.specs import parse_specs
from rwrl.domains import make_domain
from rwrl.tasks.facts import domain_facts

ENV_ID = "rwrl/cartpole-swingup-v0"
FAKE = {"reward": 0.5, "observation": 2.0}


@dataclasses.dataclass(frozen=True)
class FakeSpec:
    """Constants added to the reward, to every observation and action component."""

    reward: float = 0.0
    observation: float = 0.0
    action: float = 0.0


def parse_fake(spec, facts) -> FakeSpec | None:
    """Parse ``fake_spec`` (keys enable, reward, observation, action, each in [-10, 10])."""
    keys = ("reward", "observation", "action")
    spec = check_keys("fake_spec", spec, ("enable",) + keys)
    if not is_on("fake_spec", spec):
        return None
    return FakeSpec(*(number(f"fake_spec[{k!r}]", spec.get(k, 0.0), -10.0, 10.0) for k in keys))


class AddConstant:
    """A stage that adds a constant to its stream."""

    name = "fake"
    uniforms = normals = 0

    def __init__(self, value: float):
        self.value = value

    def reset(self, ids) -> None:
        """Nothing to clear."""

    def __call__(self, x, frame):
        return x + self.value


def fake_stages(spec: FakeSpec, task):
    stages = {REWARDS: {"fake": lambda shape: AddConstant(spec.reward)},
              OBSERVATIONS: {"fake": lambda shape: AddConstant(spec.observation)}}
    if spec.action:
        stages[ACTIONS] = {"fake": lambda shape: AddConstant(spec.action)}
    return stages


@pytest.fixture
def fake_challenge(monkeypatch):
    """Register ``fake_spec`` for one test (monkeypatch removes the entry after it)."""
    monkeypatch.setitem(registry.CHALLENGES, "fake_spec",
                        Challenge("fake", parse_fake, fake_stages))


def _rollout(env, steps=3):
    """Return the observations and rewards of a seeded episode start with zero actions."""
    obs, _ = env.reset(seed=7)
    observations, rewards = [obs], []
    for _ in range(steps):
        obs, reward, *_ = env.step(np.zeros(env.action_space.shape))
        observations.append(obs)
        rewards.append(reward)
    return np.array(observations), np.array(rewards)


def test_gymnasium_make_reaches_a_registered_challenge_and_its_stages_act(fake_challenge):
    plain_obs, plain_rewards = _rollout(gymnasium.make(ENV_ID))
    env = gymnasium.make(ENV_ID, fake_spec=FAKE)
    obs, rewards = _rollout(env)
    # the same seeded physics; the stages add exactly their constants
    np.testing.assert_array_equal(obs, plain_obs + 2.0)
    np.testing.assert_array_equal(rewards, plain_rewards + 0.5)
    assert env.unwrapped.batched.specs.fake == FakeSpec(0.5, 2.0)


def test_rwrl_load_reaches_a_registered_challenge(fake_challenge):
    plain = rwrl.load("cartpole", "swingup", seed=3)
    env = rwrl.load("cartpole", "swingup", seed=3, fake_spec=FAKE)
    first_plain, first = plain.reset(), env.reset()
    np.testing.assert_array_equal(first.observation["position"],
                                  first_plain.observation["position"] + 2.0)
    step_plain, step = plain.step([0.0]), env.step([0.0])
    assert step.reward == step_plain.reward + 0.5
    np.testing.assert_array_equal(step.observation["velocity"],
                                  step_plain.observation["velocity"] + 2.0)


SWEEP = """
[sweep]
name = "fake"
agents = ["d4pg"]
envs = ["cartpole-swingup"]
seeds = 1
steps = 100
[axes]
"fake_spec.reward" = [0.25, {reward}]
"""


def test_a_sweep_file_reaches_a_registered_challenge_and_validates_it(fake_challenge, tmp_path):
    from rwrl.experiments.sweeps.plan import SweepSpecError, load_plan
    from rwrl.metrics.sweep_results import config_columns
    path = tmp_path / "sweep.toml"
    path.write_text(SWEEP.format(reward=0.5))
    plan = load_plan(path)
    assert [run.config.env_kwargs for run in plan.runs] == [{"fake_spec": {"reward": 0.25}},
                                                            {"fake_spec": {"reward": 0.5}}]
    columns = config_columns(dataclasses.asdict(plan.runs[1].config))
    assert columns["config.fake_spec.reward"] == 0.5
    path.write_text(SWEEP.format(reward=11.0))
    with pytest.raises(SweepSpecError, match=r"fake_spec\['reward'\] = 11.0 is out of range: "
                                             r"allowed \[-10.0, 10.0\]"):
        load_plan(path)


def test_an_unlisted_stage_runs_after_the_documented_ones(fake_challenge):
    env = gymnasium.make(ENV_ID, fake_spec=FAKE, delay_spec={"rewards": 1},
                         dimensionality_spec={"num_random_state_observations": 2})
    batched = env.unwrapped.batched
    assert batched.observation_stage_names == ("dummy", "fake")
    _, rewards = _rollout(env, steps=2)
    # the delayed reward of step 2 is step 1's, then the fake stage adds 0.5
    _, plain_rewards = _rollout(gymnasium.make(ENV_ID), steps=2)
    np.testing.assert_array_equal(rewards, [plain_rewards[0] + 0.5, plain_rewards[0] + 0.5])


def test_an_unlisted_action_stage_runs_before_the_clip_to_bounds(fake_challenge):
    env = gymnasium.make(ENV_ID, fake_spec={"action": 5.0})
    assert env.unwrapped.batched.action_stage_names == ("fake", "clip")
    env.reset(seed=0)
    env.step(np.array([-0.5]))  # -0.5 + 5 = 4.5, clipped to the bound 1
    np.testing.assert_array_equal(env.unwrapped.physics.ctrl, [[1.0]])


def test_an_unregistered_challenge_is_refused_naming_the_allowed_ones():
    with pytest.raises(TypeError, match=r"unexpected keyword argument 'fake_spec': "
                                         r"allowed \['combined_challenge', 'delay_spec'"):
        gymnasium.make(ENV_ID, fake_spec=FAKE)


FACTS = domain_facts(make_domain("cartpole", "swingup"))


def test_parsed_specs_pickle_as_the_dataclass_of_the_registry(fake_challenge):
    specs = parse_specs(FACTS, fake_spec=FAKE, combined_challenge="easy")
    again = pickle.loads(pickle.dumps(specs))
    assert again == specs and type(again) is type(specs)
    assert again.fake == FakeSpec(0.5, 2.0) and again.combined_challenge == "easy"


@pytest.mark.parametrize("keyword", sorted(registry.CHALLENGES))
def test_every_registered_challenge_is_off_when_not_given_or_empty(keyword):
    challenge = registry.CHALLENGES[keyword]
    assert challenge.keyword == keyword
    assert challenge.parse({}, FACTS) is None
    for value in (None, {}):
        assert getattr(parse_specs(FACTS, **{keyword: value}), challenge.name) is None
