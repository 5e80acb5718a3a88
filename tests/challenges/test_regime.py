"""Regimes: the schedule's exact switch episodes, the physics they set, every entry point, snapshots."""

from __future__ import annotations

import gymnasium
import mujoco
import numpy as np
import pytest

import rwrl
from rwrl.challenges.regime import MAX_EPISODES, RegimeSpec, parse_regime
from rwrl.challenges.specs import parse_specs
from rwrl.metrics.episode_file import read_rows
from rwrl.metrics.recorder import VectorEpisodeRecorder
from tests.challenges.challenge_probe import ProbeTask, challenge_env
from tests.challenges.test_specs import FACTS

ENV_ID = "rwrl/cartpole-swingup-v0"
LENGTHS = [{"pole_length": 1.0}, {"pole_length": 2.0}, {"pole_length": 0.5}]
SPEC = {"regimes": LENGTHS, "durations": [2, 3, 2]}
LIMIT = 3  # control steps per episode: the tests cross many episodes


# -- the schedule ------------------------------------------------------------------
@pytest.mark.parametrize("durations, cycle, expected", [
    # cumulative ends 2, 5, 7: episodes 0-1 regime 0, 2-4 regime 1, 5-6 regime 2, then
    ((2, 3, 2), False, [0, 0, 1, 1, 1, 2, 2, 2, 2, 2]),  # the last regime stays
    ((2, 3, 2), True, [0, 0, 1, 1, 1, 2, 2, 0, 0, 1]),   # episode e runs e mod 7's regime
    ((1, 1, 1), True, [0, 1, 2, 0, 1, 2, 0, 1, 2, 0]),
    ((4, 1, 1), False, [0, 0, 0, 0, 1, 2, 2, 2, 2, 2]),
])
def test_the_schedule_switches_at_the_cumulative_durations(durations, cycle, expected):
    spec = RegimeSpec(("pole_length",), ((1.0,), (2.0,), (0.5,)), durations, cycle)
    assert [spec.regime_of(e) for e in range(10)] == expected


def test_eval_regime_pins_every_episode():
    spec = RegimeSpec(("pole_length",), ((1.0,), (2.0,)), (1, 1), cycle=True, eval_regime=1)
    assert [spec.regime_of(e) for e in range(5)] == [1] * 5


def test_the_parsed_spec_holds_a_full_table_unnamed_parameters_nominal():
    spec = parse_regime({"regimes": [{"pole_mass": 0.5}, {"pole_length": 2.0}, {}],
                         "episodes_per_regime": 4}, FACTS)
    # the parameters in the domain's order; pole_length nominal 1.0, pole_mass nominal 0.1
    assert spec == RegimeSpec(("pole_length", "pole_mass"),
                              ((1.0, 0.5), (2.0, 0.1), (1.0, 0.1)), (4, 4, 4))
    assert parse_regime({"regimes": LENGTHS, "durations": [1, 2, 3], "enable": False}, FACTS) is None


# -- the stage, on the probe task --------------------------------------------------
def test_each_env_follows_its_own_schedule_and_sets_only_changes():
    task = ProbeTask(2, nu=1)
    env = challenge_env(task, regime_spec=SPEC)
    regimes = []
    _, info = env.reset(np.arange(2), [0, 1])
    regimes.append(info["regime"].tolist())
    for episode in range(1, 6):  # env 1 resets every episode, env 0 every other one
        ids = np.array([0, 1]) if episode % 2 == 0 else np.array([1])
        _, info = env.reset(ids, [None] * len(ids))
        regimes.append(info["regime"].tolist())
        assert info["regime"].dtype == np.int64
    # env 0 begins its episodes 0, 1, 2 in rounds 0, 2, 4; env 1 its episodes 0..5 in rounds 0..5
    assert regimes == [[0, 0], [0], [0, 1], [1], [1, 1], [2]]
    np.testing.assert_array_equal(task.values["pole_length"], [2.0, 0.5])
    # set only when a regime changes the value: env 1 at its episodes 2 and 5, env 0 at its 2
    assert task.set_calls == [(1, "pole_length", 2.0), (0, "pole_length", 2.0),
                              (1, "pole_length", 0.5)]
    *_, info = env.step(np.zeros((2, 1)))
    np.testing.assert_array_equal(info["regime"], [1, 2])  # on every step too


def test_a_seeded_reset_restarts_the_schedule():
    env = challenge_env(ProbeTask(1, nu=1), regime_spec=SPEC)
    seen = [env.reset(np.array([0]), [s])[1]["regime"][0] for s in (3, None, None, 4, None)]
    assert seen == [0, 0, 1, 0, 0]


def test_the_observation_does_not_carry_the_regime():
    plain, regimes = ProbeTask(1, nu=1), ProbeTask(1, nu=1)
    with_spec = challenge_env(regimes, regime_spec=SPEC)
    assert with_spec.observation_spec == challenge_env(plain).observation_spec


# -- the MuJoCo task through every entry point -------------------------------------
def _pole_length_in_model(model: mujoco.MjModel) -> float:
    """The pole's length as MuJoCo compiled it: twice the capsule's half-length."""
    return 2.0 * float(model.geom_size[mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_GEOM, "pole_1"),
                                         1])


def _episodes(env, count: int, seed: int = 0):
    """Run ``count`` episodes of zero actions; return each one's info['regime'] and pole length."""
    regimes, lengths = [], []
    for episode in range(count):
        _, info = env.reset(seed=seed if episode == 0 else None)
        regimes.append(int(info["regime"]))
        lengths.append(_pole_length_in_model(env.unwrapped.physics.env_model(0)))
        truncated = False
        while not truncated:
            *_, truncated, step_info = env.step(np.zeros(1))
            assert int(step_info["regime"]) == regimes[-1]
    return regimes, lengths


@pytest.mark.parametrize("cycle, expected", [(False, [0, 0, 1, 1, 1, 2, 2, 2, 2]),
                                             (True, [0, 0, 1, 1, 1, 2, 2, 0, 0])])
def test_gymnasium_make_switches_the_compiled_pole_at_the_exact_episodes(cycle, expected):
    env = gymnasium.make(ENV_ID, time_limit=LIMIT, regime_spec={**SPEC, "cycle": cycle})
    regimes, lengths = _episodes(env, 9)
    assert regimes == expected
    assert lengths == [LENGTHS[r]["pole_length"] for r in expected]  # MuJoCo's own value
    model = env.unwrapped.physics.env_model(0)
    body = model.geom_bodyid[mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_GEOM, "pole_1")]
    assert model.body_mass[body] == pytest.approx(0.1 * lengths[-1])  # the mass follows (L / 10)


def test_make_vec_runs_one_schedule_per_env():
    vec = gymnasium.make_vec(ENV_ID, num_envs=2, time_limit=LIMIT, regime_spec=SPEC)
    _, info = vec.reset(seed=0)
    seen = [info["regime"].tolist()]
    for _ in range(5):  # env 1 alone begins its episodes 1..5
        _, info = vec.reset(options={"reset_mask": np.array([False, True])})
        seen.append(info["regime"].tolist())
    assert seen == [[0, 0], [0, 0], [0, 1], [0, 1], [0, 1], [0, 2]]
    lengths = [_pole_length_in_model(vec.unwrapped.physics.env_model(i)) for i in range(2)]
    assert lengths == [1.0, 0.5]
    for _ in range(LIMIT + 1):  # the episodes end; the NEXT_STEP autoreset begins env 0's 1, env 1's 6
        *_, info = vec.step(np.zeros((2, 1)))
    assert info["regime"].tolist() == [0, 2]


def test_rwrl_load_reports_the_regime_in_env_info():
    env = rwrl.load("cartpole", "swingup", seed=0, time_limit=LIMIT, regime_spec=SPEC)
    regimes = []
    for _ in range(6):
        timestep = env.reset()
        regimes.append(int(env.info["regime"][0]))
        while not timestep.last():
            timestep = env.step([0.0])
            assert int(env.info["regime"][0]) == regimes[-1]
    assert regimes == [0, 0, 1, 1, 1, 2]
    assert _pole_length_in_model(env.batched.physics.env_model(0)) == 0.5


def test_eval_regime_pins_the_env():
    env = gymnasium.make(ENV_ID, time_limit=LIMIT, regime_spec={**SPEC, "eval_regime": 1})
    regimes, lengths = _episodes(env, 4)
    assert regimes == [1, 1, 1, 1] and lengths == [2.0] * 4


def test_a_restored_env_continues_the_schedule_exactly():
    def make():
        return gymnasium.make_vec(ENV_ID, num_envs=2, time_limit=LIMIT,
                                  regime_spec={**SPEC, "cycle": True})

    def run(env, steps):
        out = []
        for _ in range(steps):
            obs, *_, info = env.step(np.full((2, 1), 0.3))
            out.append((obs.copy(), info["regime"].copy()))
        return out

    env = make()
    env.reset(seed=5)
    run(env, 9)  # into the second regime
    snapshot = env.unwrapped.env_state()
    assert snapshot["challenge/episode/regime/episodes"].tolist() == [3, 3]
    expected = run(env, 20)
    fresh = make()
    fresh.reset(seed=99)
    fresh.unwrapped.restore_env_state(snapshot)
    for (obs, regime), (want_obs, want_regime) in zip(run(fresh, 20), expected):
        np.testing.assert_array_equal(regime, want_regime)
        np.testing.assert_array_equal(obs, want_obs)
    assert {tuple(r) for _, r in expected} >= {(1, 1), (2, 2), (0, 0)}  # it switched on


def test_the_episode_rows_record_each_episodes_regime(tmp_path):
    vec = VectorEpisodeRecorder(gymnasium.make_vec(ENV_ID, num_envs=2, time_limit=LIMIT,
                                                   regime_spec=SPEC), tmp_path / "rows.jsonl")
    vec.reset(seed=0)
    for _ in range(5 * (LIMIT + 1)):
        vec.step(np.zeros((2, 1)))
    vec.close()
    rows = read_rows(tmp_path / "rows.jsonl")
    assert [(r["env_index"], r["regime"]) for r in rows] == [
        (0, 0), (1, 0), (0, 0), (1, 0), (0, 1), (1, 1), (0, 1), (1, 1), (0, 1), (1, 1)]


# -- invalid specs -----------------------------------------------------------------
def parse(spec, **others):
    return parse_specs(FACTS, regime_spec=spec, **others)


@pytest.mark.parametrize("spec, match", [
    ({"regimes": [], "episodes_per_regime": 1},
     r"regime_spec\['regimes'\] = \[\] is not allowed: give a non-empty list of dicts parameter "
     r"-> value, parameters of \['pole_length', 'pole_mass'\]"),
    ({"episodes_per_regime": 1}, r"regime_spec\['regimes'\] = None is not allowed"),
    ({"regimes": "pole_length", "episodes_per_regime": 1}, r"regime_spec\['regimes'\] = 'pole_length'"),
    ({"regimes": [{"pole_lenght": 2.0}], "episodes_per_regime": 1},
     r"regime_spec\['regimes'\]\[0\]: unknown key 'pole_lenght'; allowed keys: \['pole_length', "
     r"'pole_mass'\]"),
    ({"regimes": [{"pole_length": 1.0}, 2.0], "episodes_per_regime": 1},
     r"regime_spec\['regimes'\]\[1\] must be a dict, got float 2.0"),
    ({"regimes": [{"pole_length": float("nan")}], "episodes_per_regime": 1},
     r"regime_spec\['regimes'\]\[0\]\['pole_length'\] = nan is not a finite number: "
     r"allowed \[0.3, 3.0\]"),
    ({"regimes": [{"pole_length": 5.0}], "episodes_per_regime": 1},
     r"regime_spec\['regimes'\]\[0\]\['pole_length'\] = 5.0 is out of range: allowed \[0.3, 3.0\]"),
    ({"regimes": [{}, {}], "episodes_per_regime": 1},
     r"regime_spec\['regimes'\] names no parameter: give at least one of \['pole_length'"),
    ({"regimes": LENGTHS}, r"regime_spec: give exactly one of 'episodes_per_regime' .* and "
                           r"'durations' .* a list of 3"),
    ({"regimes": LENGTHS, "episodes_per_regime": 2, "durations": [1, 1, 1]},
     r"regime_spec: give exactly one of"),
    ({"regimes": LENGTHS, "episodes_per_regime": 0},
     rf"regime_spec\['episodes_per_regime'\] = 0 is out of range: allowed integers in "
     rf"\[1, {MAX_EPISODES}\]"),
    ({"regimes": LENGTHS, "durations": [2, -1, 2]},
     r"regime_spec\['durations'\]\[1\] = -1 is out of range: allowed integers in \[1, "),
    ({"regimes": LENGTHS, "durations": [2, 1.5, 2]},
     r"regime_spec\['durations'\]\[1\] = 1.5 is not an integer"),
    ({"regimes": LENGTHS, "durations": [2, 2]},
     r"regime_spec\['durations'\] = \[2, 2\] is not allowed: give one integer in \[1, 1000000\] "
     r"per regime \(3\)"),
    ({"regimes": LENGTHS, "episodes_per_regime": 1, "eval_regime": 3},
     r"regime_spec\['eval_regime'\] = 3 is out of range: allowed integers in \[0, 2\]"),
    ({"regimes": LENGTHS, "episodes_per_regime": 1, "eval_regime": -1},
     r"regime_spec\['eval_regime'\] = -1 is out of range"),
    ({"regimes": LENGTHS, "episodes_per_regime": 1, "cycle": "yes"},
     r"regime_spec\['cycle'\] = 'yes' is not a bool"),
    ({"regimes": LENGTHS, "episodes_per_regime": 1, "switch": "sudden"},
     r"regime_spec: unknown key 'switch'; allowed keys: \['cycle', 'durations', 'enable', "
     r"'episodes_per_regime', 'eval_regime', 'regimes'\]"),
    ({"regimes": [{"pole_length": 1.0}] * 1001, "episodes_per_regime": 1},
     r"regime_spec\['regimes'\] lists 1001 regimes: allowed at most 1000"),
])
def test_an_invalid_spec_raises_one_line_naming_the_field(spec, match):
    with pytest.raises(ValueError, match=match) as err:
        parse(spec)
    assert "\n" not in str(err.value)


@pytest.mark.parametrize("others", [
    {"perturb_spec": {"param": "pole_length", "scheduler": "uniform"}},
    {"combined_challenge": "easy"},  # it perturbs cartpole's pole_length
])
def test_a_parameter_perturbed_as_well_is_refused(others):
    with pytest.raises(ValueError, match=r"regime_spec: parameter 'pole_length' is set by "
                                         r"perturb_spec too: give each parameter to one challenge"):
        parse({"regimes": LENGTHS, "episodes_per_regime": 1}, **others)
    # another parameter is fine
    parse({"regimes": [{"pole_mass": 0.2}], "episodes_per_regime": 1}, **others)


def test_gymnasium_make_refuses_a_bad_spec_with_the_same_message():
    with pytest.raises(ValueError, match=r"regime_spec\['durations'\]\[0\] = 0 is out of range"):
        gymnasium.make(ENV_ID, regime_spec={"regimes": LENGTHS, "durations": [0, 1, 1]})
