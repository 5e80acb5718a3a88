"""D4PG-HCL: the detector's saved state, a detected switch on a synthetic replay, a real run and its resume.

Tiny networks and a small flow keep the compiled functions small; the detector itself is
``rwrl.continual.hcl``'s, tested there.
"""

from __future__ import annotations

import dataclasses
import json

import jax
import numpy as np
import pytest
from typer.testing import CliRunner

from rwrl.agents import make_agent
from rwrl.agents.d4pg_hcl import detector_inputs
from rwrl.agents.replay import NStepReplay
from rwrl.cli.app import app
from rwrl.continual import hcl
from rwrl.metrics.episode_file import read_rows
from tests.experiments.fakes import Killed, kill_after
from tests.experiments.run_compare import assert_same_run

OBS, ACT = 3, 1
BATCH = 32
SMALL = dict(detector_batch=BATCH, detector_warmup=10, detector_window=8, detector_couplings=2,
             detector_hidden=16)
TINY = dict(policy_hidden_sizes=(8,), critic_hidden_sizes=(8,), batch_size=4, min_replay_size=4,
            max_consolidations=2, consolidation_batch=16, **SMALL)
#: the synthetic replay: 40 batches of dynamics A (s' = s + 0.1 a), then 20 of B (s' = s - 0.5 + a)
SWITCH_BATCH, TOTAL_BATCHES = 40, 60


def _agent(**changes):
    return make_agent("d4pg-hcl", obs_size=OBS, action_size=ACT, **{**TINY, **changes})


def _fields(step: hcl.Step) -> dict:
    """A step's fields but its time, nan as a string (nan != nan)."""
    return {k: ("nan" if isinstance(v, float) and np.isnan(v) else v)
            for k, v in dataclasses.asdict(step).items() if k != "seconds"}


def test_the_detector_state_round_trips_to_the_same_next_steps_and_parameters():
    config = hcl.detector_config(seed=0, warmup=5, window=5, num_couplings=2, hidden=16)
    rng = np.random.default_rng(0)
    stream = [rng.normal(0.0 if i < 20 else 2.0, 1.0, (BATCH, 6)) for i in range(30)]
    original = hcl.TaskDetector(6, config)
    for x in stream[:21]:  # the jump at 20: batch 20 waits (atypical), its state is in the saved dict
        original.update(x)
    saved = original.state_dict()
    assert all(isinstance(v, np.ndarray) for v in saved.values()) and int(saved["pending/count"]) == 1
    copy = hcl.TaskDetector(6, config)
    copy.load_state_dict(saved)
    steps = [(original.update(x), copy.update(x)) for x in stream[21:]]
    assert any(a.changed for a, _ in steps)
    assert all(_fields(a) == _fields(b) for a, b in steps)
    leaves = zip(jax.tree_util.tree_leaves(original.model.params), jax.tree_util.tree_leaves(copy.model.params))
    assert all(np.array_equal(a, b) for a, b in leaves)
    with pytest.raises(hcl.HCLError, match="dim 6"):
        hcl.TaskDetector(7, config).load_state_dict(saved)


def _dynamics_replay(rng) -> NStepReplay:
    """One env, one-step transitions; each batch of BATCH transitions ends an episode of BATCH steps."""
    replay = NStepReplay(4096, OBS, ACT, num_envs=1, n_step=1, gamma=0.99)
    for b in range(TOTAL_BATCHES):
        for t in range(BATCH):
            s = rng.normal(size=(1, OBS))
            a = rng.uniform(-1, 1, (1, ACT))
            nxt = s + 0.1 * a + 0.01 * rng.normal(size=(1, OBS)) if b < SWITCH_BATCH else s - 0.5 + a
            replay.add(s, a, np.zeros(1), nxt, np.zeros(1, bool), np.array([t == BATCH - 1]))
    return replay


def _drive(agent, regimes, every=2):
    """Feed the synthetic replay to observe_regime after every ``every`` batches; return (state, events)."""
    rng = np.random.default_rng(1)
    transitions = _dynamics_replay(rng).latest(TOTAL_BATCHES * BATCH)
    replay = NStepReplay(4096, OBS, ACT, num_envs=1, n_step=1, gamma=0.99)
    state, events = agent.init(jax.random.PRNGKey(0)), []
    for b in range(TOTAL_BATCHES):
        chunk = slice(b * BATCH, (b + 1) * BATCH)
        for i in range(chunk.start, chunk.stop):
            replay.add(transitions.obs_tm1[i:i + 1], transitions.action_tm1[i:i + 1], np.zeros(1),
                       transitions.obs_t[i:i + 1], np.zeros(1, bool), np.array([i == chunk.stop - 1]))
        if (b + 1) % every == 0:
            state, event = agent.observe_regime(state, replay, regimes(b), jax.random.PRNGKey(b))
            events.append((b, event))
            if event is not None:
                replay.discard()
    return state, events


@pytest.fixture(scope="module")
def driven():
    agent = _agent()
    return agent, _drive(agent, lambda b: int(b >= SWITCH_BATCH))


def test_a_dynamics_change_is_declared_within_the_patience_and_consolidated_once(driven):
    agent, (state, events) = driven
    declared = [(b, e) for b, e in events if e is not None]
    assert len(declared) == 1
    b, event = declared[0]
    # the change starts at batch 40; 3 atypical batches in a row declare it: at batch 42, or at 41
    # when batch 39 (the old dynamics) happened to be atypical; looks come after every 2 batches
    assert b >= SWITCH_BATCH and SWITCH_BATCH + 1 <= b <= SWITCH_BATCH + 2 + 2 * 2
    # the curvature was estimated on the transitions before the wait's first batch: the old dynamics'
    assert (SWITCH_BATCH - 3) * BATCH <= int(state.extra["wait_start"]) <= SWITCH_BATCH * BATCH
    assert event["switched"] == 1.0 and event["detected_task"] == 1.0 and event["ended_task"] == 0.0
    assert event["recognised"] == 0.0 and event["consolidations"] == 1.0
    assert int(state.consolidations) == 1 and int(state.regime) == 1
    slot0 = jax.tree_util.tree_map(lambda s: s[0], state.policy_penalty)
    slot1 = jax.tree_util.tree_map(lambda s: s[1], state.policy_penalty)
    assert float(np.abs(slot0.weight)) > 0.0 and float(np.abs(slot1.weight)) == 0.0
    assert int(state.extra["seen"]) == TOTAL_BATCHES * BATCH


def test_the_reported_regime_is_ignored(driven):
    agent, (state, events) = driven
    for regimes in (lambda b: None, lambda b: 7 - b % 3):
        other_state, other_events = _drive(agent, regimes)
        assert [(b, e is None) for b, e in other_events] == [(b, e is None) for b, e in events]
        assert [e for _, e in other_events if e] == [
            {**e, "curvature_seconds": o["curvature_seconds"]} for (_, e), (_, o) in zip(events, other_events) if e]
        flat, other = (jax.tree_util.tree_flatten_with_path(s)[0] for s in (state, other_state))
        for (path, a), (_, b) in zip(flat, other):
            if "seconds" not in jax.tree_util.keystr(path):  # the curvature's timing
                np.testing.assert_array_equal(np.asarray(a), np.asarray(b), err_msg=jax.tree_util.keystr(path))


def test_a_new_agent_object_continues_from_the_state_s_detector(driven):
    agent, (state, _) = driven
    fresh = _agent()  # a resumed process: no Python detector, the state's buffer only
    detector = fresh._detector_for(state.extra)
    assert detector.task == 1 and detector.model.index == TOTAL_BATCHES
    x = detector_inputs(_dynamics_replay(np.random.default_rng(5)).latest(BATCH))
    original = agent._detector_for(state.extra)
    assert _fields(detector.update(x)) == _fields(original.update(x))


def _cli(out, steps="2000", extra=()):
    spec = json.dumps({"regimes": [{"pole_length": 1.0}, {"pole_length": 3.0}], "episodes_per_regime": 10})
    return ["run", "--agent", "d4pg-hcl", "--env", "cartpole-swingup", "--steps", steps, "--num-envs", "1",
            "--eval-every", "1000", "--eval-episodes", "1", "--checkpoint-every", "500",
            "--agent-config", "batch_size=16", "--agent-config", "min_replay_size=64",
            "--agent-config", "policy_hidden_sizes=[8]", "--agent-config", "critic_hidden_sizes=[8]",
            "--agent-config", "consolidation_batch=64",
            *[f for k, v in SMALL.items() for f in ("--agent-config", f"{k}={v}")],
            "--env-kwarg", "time_limit=100", "--env-kwarg", f"regime_spec={spec}", "--no-progress",
            "--out", str(out), *extra]


@pytest.fixture(scope="module")
def hcl_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("hcl") / "run"
    result = CliRunner().invoke(app, _cli(out))
    assert result.exit_code == 0, result.output
    return out


def test_rwrl_run_d4pg_hcl_on_two_regimes_finishes(hcl_run):
    out = hcl_run
    rows = read_rows(out / "metrics.jsonl")
    train = [r for r in rows if r["phase"] == "train"]
    assert [r["regime"] for r in train] == [0] * 10 + [1] * 10
    assert "continual/forgetting/0" in json.loads((out / "summary.json").read_text())


@pytest.mark.slow  # a second whole run; the detector's own round trip is tested above, in the default suite
def test_a_killed_d4pg_hcl_run_resumes_to_the_very_same_run(hcl_run, tmp_path):
    from rwrl.experiments.config import read_config
    from rwrl.experiments.run import RunHooks, resume_run, start_run
    config, _ = read_config(hcl_run / "config.json")
    # env step 1300: after the checkpoint at 1000 (the detector's state is in the agent state), in regime 1
    hooks = RunHooks(on_step=kill_after(1300), progress=False)
    with pytest.raises(Killed):
        start_run(config, tmp_path / "run", hooks)
    resume_run(tmp_path / "run", hooks=RunHooks(progress=False))
    assert_same_run(tmp_path / "run", hcl_run)
