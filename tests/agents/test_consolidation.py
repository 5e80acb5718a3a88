"""D4PG-EWC and D4PG-KFAC: the penalties they add, when they consolidate, and a whole regime run.

Tiny networks (8 units) keep the compiled functions small; the curvature itself is
``rwrl.continual.curvature``'s, tested there.
"""

from __future__ import annotations

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from typer.testing import CliRunner

from rwrl.agents import d4pg, make_agent
from rwrl.agents.replay import NStepReplay
from rwrl.agents.types import Transition
from rwrl.cli.app import app
from rwrl.continual import curvature
from rwrl.metrics.episode_file import read_rows
from tests.experiments.fakes import Killed, kill_after
from tests.experiments.run_compare import assert_same_run

OBS, ACT = 3, 1
TINY = dict(policy_hidden_sizes=(8,), critic_hidden_sizes=(8,), batch_size=4, min_replay_size=4,
            max_consolidations=2, consolidation_batch=16)


def _agent(name="d4pg-ewc", **changes):
    return make_agent(name, obs_size=OBS, action_size=ACT, **{**TINY, **changes})


def _replay(rng, steps=10) -> NStepReplay:
    replay = NStepReplay(64, OBS, ACT, num_envs=2, n_step=1, gamma=0.99)
    for _ in range(steps):
        replay.add(rng.normal(size=(2, OBS)), rng.uniform(-1, 1, (2, ACT)), rng.normal(size=2),
                   rng.normal(size=(2, OBS)), np.zeros(2, bool), np.zeros(2, bool))
    return replay


def _batch(rng, n=4) -> Transition:
    return Transition(obs_tm1=rng.normal(size=(n, OBS)).astype(np.float32),
                      action_tm1=rng.uniform(-1, 1, (n, ACT)).astype(np.float32),
                      reward_t=rng.normal(size=n).astype(np.float32), discount_t=np.full(n, 0.99, np.float32),
                      obs_t=rng.normal(size=(n, OBS)).astype(np.float32))


def _moved(params, by=0.1):
    return jax.tree_util.tree_map(lambda x: x + by, params)


@pytest.mark.parametrize("name, form", [("d4pg-ewc", "diagonal"), ("d4pg-kfac", "kfac")])
def test_a_switch_fills_a_slot_with_the_penalty_the_curvature_module_gives(name, form):
    agent, rng = _agent(name), np.random.default_rng(0)
    replay, key = _replay(rng), jax.random.PRNGKey(3)
    state = agent.init(jax.random.PRNGKey(0))
    state, event = agent.observe_regime(state, replay, 0, key)  # the first regime: recorded only
    assert event is None and int(state.regime) == 0 and int(state.consolidations) == 0
    state, event = agent.observe_regime(state, replay, 0, key)
    assert event is None
    state, event = agent.observe_regime(state, replay, 1, key)  # a switch
    assert event["switched"] == 1.0 and event["consolidations"] == 1.0 and int(state.regime) == 1
    # the slot holds lambda * the policy's Gauss-Newton curvature on the 16 newest transitions
    batch = replay.latest(16)
    policy_key = jax.random.split(key)[1]
    h = curvature.estimate(form, agent.networks.policy, state.policy_params, (jnp.asarray(batch.obs_tm1),),
                           policy_key, output="gaussian")
    expected = curvature.quadratic_penalty(state.policy_params, h, 250.0)
    moved = _moved(state.policy_params)
    slot0 = jax.tree_util.tree_map(lambda s: s[0], state.policy_penalty)
    np.testing.assert_allclose(slot0.value(moved), expected.value(moved), rtol=1e-5)
    assert float(curvature.total_penalty(state.policy_penalty, moved)) == pytest.approx(
        float(expected.value(moved)), rel=1e-5)  # the empty slot adds nothing
    assert float(curvature.total_penalty(state.policy_penalty, state.policy_params)) == 0.0
    assert float(curvature.total_penalty(state.critic_penalty, _moved(state.critic_params))) > 0.0


def test_slots_fill_in_turn_and_the_oldest_is_overwritten():
    agent, rng = _agent(), np.random.default_rng(1)
    replay, state = _replay(rng), agent.init(jax.random.PRNGKey(0))
    anchors = []
    for regime in range(4):  # 3 switches into 2 slots
        state, _ = agent.observe_regime(state, replay, regime, jax.random.PRNGKey(regime))
        anchors.append(state.policy_params)
        state = state._replace(d4pg=state.d4pg._replace(policy_params=_moved(state.policy_params, 0.5)))
    assert int(state.consolidations) == 3
    kernel = lambda p: np.asarray(jax.tree_util.tree_leaves(p)[0])  # noqa: E731
    np.testing.assert_array_equal(kernel(state.policy_penalty.anchor)[0], kernel(anchors[3]))  # 3rd switch
    np.testing.assert_array_equal(kernel(state.policy_penalty.anchor)[1], kernel(anchors[2]))  # 2nd switch


def test_with_weight_zero_the_update_is_d4pg_s_and_with_a_penalty_it_is_not():
    rng = np.random.default_rng(2)
    batch, key = _batch(rng), jax.random.PRNGKey(5)
    plain = make_agent("d4pg", obs_size=OBS, action_size=ACT,
                       **{k: v for k, v in TINY.items() if k not in ("max_consolidations", "consolidation_batch")})
    zero = _agent(consolidation_weight=0.0)
    reference, _ = plain.update(plain.init(jax.random.PRNGKey(0)), batch, key)
    state = zero.init(jax.random.PRNGKey(0))
    state, _ = zero.consolidate(state, _batch(rng, 8), key)
    state = state._replace(d4pg=state.d4pg._replace(policy_params=_moved(state.policy_params, 0.0)))
    updated, metrics = zero.update(state, batch, key)
    for a, b in zip(jax.tree_util.tree_leaves(updated.d4pg), jax.tree_util.tree_leaves(reference)):
        np.testing.assert_array_equal(a, b)
    assert float(metrics["consolidations"]) == 1.0 and float(metrics["policy_penalty"]) == 0.0
    ewc = _agent(consolidation_weight=1e6)
    state = ewc.init(jax.random.PRNGKey(0))
    state, _ = ewc.consolidate(state, _batch(rng, 8), key)
    moved = state._replace(d4pg=state.d4pg._replace(policy_params=_moved(state.policy_params)))
    updated, metrics = ewc.update(moved, batch, key)
    assert float(metrics["policy_penalty"]) > 0.0
    before = np.asarray(jax.tree_util.tree_leaves(moved.policy_params)[0])
    after = np.asarray(jax.tree_util.tree_leaves(updated.policy_params)[0])
    anchor = np.asarray(jax.tree_util.tree_leaves(state.policy_params)[0])
    assert np.abs(after - anchor).sum() < np.abs(before - anchor).sum()  # pulled back to the anchor


def test_no_regime_and_bad_settings_are_one_line_errors():
    agent, rng = _agent(), np.random.default_rng(3)
    with pytest.raises(ValueError, match="give the env a regime_spec") as error:
        agent.observe_regime(agent.init(jax.random.PRNGKey(0)), _replay(rng), None, jax.random.PRNGKey(0))
    assert "\n" not in str(error.value)
    for field, value, message in (("consolidation_weight", float("nan"), "consolidation_weight"),
                                  ("consolidation_weight", -1.0, "consolidation_weight"),
                                  ("max_consolidations", 0, "max_consolidations"),
                                  ("consolidation_batch", 0, "consolidation_batch")):
        with pytest.raises(ValueError, match=message) as error:
            _agent(**{field: value})
        assert "\n" not in str(error.value)


SPEC = {"regimes": [{"pole_length": 1.0}, {"pole_length": 2.0}, {"pole_length": 0.5}], "episodes_per_regime": 3}


def _run_args(out, agent="d4pg-ewc", steps=1800):
    return ["run", "--agent", agent, "--env", "cartpole-swingup", "--steps", str(steps), "--num-envs", "2",
            "--eval-every", "600", "--eval-episodes", "1", "--checkpoint-every", "300",
            "--agent-config", "batch_size=16", "--agent-config", "min_replay_size=64",
            "--agent-config", "policy_hidden_sizes=[8]", "--agent-config", "critic_hidden_sizes=[8]",
            "--agent-config", "consolidation_batch=64",
            "--env-kwarg", "time_limit=100", "--env-kwarg", f"regime_spec={json.dumps(SPEC)}", "--no-progress",
            "--out", str(out)]


@pytest.fixture(scope="module")
def ewc_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("ewc") / "run"
    result = CliRunner().invoke(app, _run_args(out))
    assert result.exit_code == 0, result.output
    return out


def test_rwrl_run_consolidates_at_each_switch_and_empties_the_replay(ewc_run):
    rows = [r for r in read_rows(ewc_run / "metrics.jsonl") if r["phase"] == "train"]
    # each env's nine 100-step episodes: regimes 0, 1, 2 three each (switches at env steps 600, 1200)
    assert [r["regime"] for r in rows] == [0] * 6 + [1] * 6 + [2] * 6
    counts = [r.get("learner/consolidations") for r in rows]
    assert counts[6] == 1.0 and counts[12] == 2.0 and max(c or 0.0 for c in counts[:6]) == 0.0
    # the replay restarts empty: no update until it holds min_replay_size transitions again, so the
    # first round of episodes of a regime has fewer updates than the round before it
    per_round = [rows[i + 1]["updates"] - rows[i - 1]["updates"] for i in range(1, len(rows) - 1, 2)]
    assert per_round[2] < per_round[1] and per_round[5] < per_round[4]  # rounds 3 and 6: switches
    summary = json.loads((ewc_run / "summary.json").read_text())
    assert {"continual/forgetting/0", "continual/forgetting/1"} <= set(summary)


@pytest.mark.slow  # a second whole run with its curvature compiles (minutes on a loaded machine)
def test_a_killed_consolidating_run_resumes_to_the_very_same_run(ewc_run, tmp_path):
    from rwrl.experiments.config import read_config
    from rwrl.experiments.run import RunHooks, resume_run, start_run
    config, _ = read_config(ewc_run / "config.json")
    hooks = RunHooks(on_step=kill_after(450), progress=False)  # vector step 450: env step 900, regime 1
    with pytest.raises(Killed):
        start_run(config, tmp_path / "run", hooks)
    resume_run(tmp_path / "run", hooks=RunHooks(progress=False))
    assert_same_run(tmp_path / "run", ewc_run)


def test_a_run_of_a_reported_regime_agent_without_a_regime_spec_is_refused_before_anything_is_written(tmp_path):
    out = tmp_path / "run"
    result = CliRunner().invoke(app, ["run", "--agent", "d4pg-kfac", "--env", "cartpole-swingup", "--steps", "200",
                                      "--no-progress", "--out", str(out)])
    assert result.exit_code == 2, result.output
    assert "RunConfig.env_kwargs must be a regime_spec for 'd4pg-kfac'" in result.output
    assert len(result.output.strip().splitlines()) == 1 and not out.exists()
