"""Stage snapshots: a stage restored from ``state()`` transforms the next inputs as the original.

Each row makes two identical stages; the first runs K steps of seeded inputs,
is snapshot, and runs K more; the second, restored from the snapshot, must
give exactly the outputs of those K more steps. The draws come from a
``CounterRandom`` that is snapshot and restored beside the stage.
"""

import copy

import numpy as np
import pytest

from rwrl.challenges.delay import Delay
from rwrl.challenges.dimensionality import RandomFeatures
from rwrl.challenges.multiobj import MultiObjective, ObserveObjectives, SafetyObjective
from rwrl.challenges.noise import ActionRepetition, DroppedNoise, GaussianNoise, StuckNoise
from rwrl.challenges.perturb import Perturbation, PerturbSpec
from rwrl.challenges.realtime import Immediate, RealTime
from rwrl.challenges.safety import ConstraintObservation
from rwrl.challenges.stage import Frame
from rwrl.core.seeding import CounterRandom, stream_key

N, K = 2, 6

STAGES = {  # id -> (make() -> stage, per-env input shape, run a reset frame first)
    "delay": (lambda: Delay(3, N, (2,)), (2,), False),
    "delay-fill-at-reset": (lambda: Delay(2, N, (2,), fill_at_reset=True), (2,), True),
    "dropped": (lambda: DroppedNoise(0.4, 3, N, 3), (3,), False),
    "stuck": (lambda: StuckNoise(0.4, 3, N, 3), (3,), True),
    "repetition": (lambda: ActionRepetition(0.5, 3, N, 2), (2,), False),
    "gaussian": (lambda: GaussianNoise(0.5, N, 2), (2,), False),
}


def _draws() -> CounterRandom:
    rng = CounterRandom(N)
    rng.reset(np.arange(N), [stream_key(s, "stage test") for s in range(N)])
    return rng


def _run(stage, rng: CounterRandom, inputs) -> list:
    outputs = []
    for x in inputs:
        rng.next_step()
        outputs.append(stage(x, Frame(None, rng)))
    return outputs


@pytest.mark.parametrize("name", list(STAGES))
def test_a_restored_stage_continues_exactly(name):
    make, shape, reset_frame = STAGES[name]
    inputs = np.random.default_rng(0).normal(size=(2 * K, N) + shape)
    stage, rng = make(), _draws()
    stage.reset(np.arange(N))
    if reset_frame:
        stage(inputs[0], Frame(np.arange(N), _draws()))
    _run(stage, rng, inputs[:K])
    snapshot, rng_snapshot = stage.state(), rng.state()
    kept = copy.deepcopy(snapshot)
    expected = _run(stage, rng, inputs[K:])
    for key, value in kept.items():  # state() returned copies: running on left them alone
        np.testing.assert_array_equal(snapshot[key], value, err_msg=key)

    fresh, fresh_rng = make(), CounterRandom(N)
    fresh.restore(snapshot)
    fresh_rng.restore(rng_snapshot)
    assert sorted(fresh.state()) == sorted(snapshot)
    for want, got in zip(expected, _run(fresh, fresh_rng, inputs[K:])):
        np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("stage", [
    GaussianNoise(0.1, N, 2), RandomFeatures(3), MultiObjective(SafetyObjective(), True, 0.5),
    ObserveObjectives(2), ConstraintObservation(2), Immediate()])
def test_stages_without_state_save_nothing(stage):
    assert stage.state() == {}
    stage.restore({})


def test_a_counter_random_restored_draws_the_same_numbers():
    rng = _draws()
    rng.next_step()
    rng.uniform((2,))  # one draw of this step made: the next one differs
    state = rng.state()
    assert state["draw"] == 1 and state["keys"].dtype == np.uint64
    expected = rng.normal((3,))
    fresh = CounterRandom(N)
    fresh.restore(state)
    np.testing.assert_array_equal(fresh.normal((3,)), expected)


class _Task:
    """Records the parameter values a perturbation sets."""

    def __init__(self):
        self.calls = []

    def set_parameter(self, env_id, name, value):
        self.calls.append((env_id, name, value))


@pytest.mark.parametrize("scheduler, period, values", [
    ("random_walk", 1, None), ("saw_wave", 2, None), ("uniform", 1, (0.5, 1.0, 2.0))])
def test_a_restored_perturbation_schedule_continues_exactly(scheduler, period, values):
    spec = PerturbSpec(param="pole_length", scheduler=scheduler, period=period, start=1.0,
                       min=0.3, max=3.0, std=0.4, values=values)
    ids = np.arange(N)

    def episodes(stage, task, count):
        for _ in range(count):
            stage.begin(ids, [None] * N, task)
        return stage.values.copy()

    stage, task = Perturbation(spec, N), _Task()
    stage.begin(ids, [3, 4], task)
    episodes(stage, task, 2)
    snapshot = stage.state()
    task.calls.clear()
    expected = episodes(stage, task, 5)
    fresh, fresh_task = Perturbation(spec, N), _Task()
    fresh.restore(snapshot)
    np.testing.assert_array_equal(episodes(fresh, fresh_task, 5), expected)
    assert fresh_task.calls == task.calls and task.calls  # the same values reach the task


def test_a_restored_realtime_stage_continues_its_latencies_and_held_actions():
    def make():
        return RealTime("simulated", budget=0.01, fallback="hold", latency=[0.0, 0.02, 0.05],
                        control_timestep=0.01, max_missed=10, num_envs=N, action_size=1)

    stage = make()
    stage.latency()
    stage._executed = np.array([[0.3], [-0.2]])  # what ``advance`` leaves after a step
    snapshot = stage.state()
    fresh = make()
    fresh.restore(snapshot)
    assert [fresh.latency() for _ in range(4)] == [stage.latency() for _ in range(4)]
    np.testing.assert_array_equal(fresh.fallback_action(-np.ones(1), np.ones(1)), [[0.3], [-0.2]])
