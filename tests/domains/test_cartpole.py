"""Cartpole: parity with dm_control, constraints and perturbable parameters."""

import mujoco
import numpy as np
import pytest
from dm_control import suite
from dm_control.suite import cartpole as dm_cartpole
from lxml import etree

from rwrl.tasks.task import BatchedTask
from tests.domains.parity import assert_follows_reference, parity_errors, perturbed_pair

IDS = np.array([0])


@pytest.mark.parametrize("task", ["swingup", "balance"])
def test_parity_with_dm_control(task):
    obs_err, rew_err = parity_errors("cartpole", task, seed=3, steps=300)
    assert obs_err < 1e-9 and rew_err < 1e-9


@pytest.mark.parametrize("task", ["swingup", "balance"])
def test_initial_state_distribution_matches_dm_control(task):
    n = 300
    dm = suite.load("cartpole", task, task_kwargs={"random": 0})
    dm_q = np.array([np.concatenate([dm.reset().observation["position"],
                                     dm.physics.data.qvel]) for _ in range(n)])
    rw = BatchedTask("cartpole", task, n)
    obs, _ = rw.reset(np.arange(n), list(range(n)))
    obs = rw.layout.unflatten(obs)
    rw_q = np.concatenate([obs["position"], rw.physics.qvel], axis=1)
    se = np.sqrt(dm_q.var(0) / n + rw_q.var(0) / n) + 1e-12
    assert np.all(np.abs(dm_q.mean(0) - rw_q.mean(0)) < 5 * se)
    assert np.allclose(dm_q.std(0), rw_q.std(0), rtol=0.2, atol=1e-6)


def _flags(task, qpos, qvel=(0.0, 0.0), coeff=1.0):
    task.configure_constraints(None, {}, coeff)
    _, info = task.set_state(IDS, np.array([qpos]), np.array([qvel]))
    return dict(zip(task.constraint_names, info["constraints"][0]))


def test_constraints_hold_on_the_initial_state():
    task = BatchedTask("cartpole", "swingup")
    _, info = task.reset(IDS, [0])
    assert task.constraint_names == ("slider_pos", "slider_accel", "balance_velocity")
    assert info["constraints"].all() and info["cost"][0] == 0


def test_slider_pos_violated_only_beyond_the_limit():
    task = BatchedTask("cartpole", "balance")  # limit 1.5 m at c = 1
    assert _flags(task, [1.4, 0.0])["slider_pos"]
    flags = _flags(task, [1.6, 0.0])
    assert not flags["slider_pos"] and flags["slider_accel"] and flags["balance_velocity"]
    # c = 0.5 halves the limit to 0.75 m
    assert not _flags(task, [1.0, 0.0], coeff=0.5)["slider_pos"]


def test_balance_velocity_violated_when_upright_and_fast():
    task = BatchedTask("cartpole", "swingup")
    assert _flags(task, [0.0, 0.0], [0.0, 0.4])["balance_velocity"]
    flags = _flags(task, [0.0, 0.0], [0.0, 0.6])  # upright, 0.6 > 0.5 rad/s
    assert not flags["balance_velocity"] and flags["slider_pos"]
    assert _flags(task, [0.0, np.pi], [0.0, 3.0])["balance_velocity"]  # hanging: allowed


def test_slider_accel_violated_by_a_hard_push():
    task = BatchedTask("cartpole", "balance")  # 10 m/s^2 at c = 1
    task.reset(IDS, [0])
    _, _, _, info = task.step(np.array([[1.0]]))  # gear 10 on a ~1.1 kg cart: ~9 m/s^2
    accel = info["safety_vars"]["slider_accel"][0]
    assert accel > 5
    task.configure_constraints(None, {}, accel / 10 * 0.99)  # a limit just under the acceleration reached
    assert not flags_now(task)[0, 1]
    task.configure_constraints(None, {}, accel / 10 * 1.01)
    assert flags_now(task)[0, 1]


def flags_now(task):
    """Return the constraint flags of the task's current state, as a step would give them."""
    return task._constraints(task.domain.safety_vars(task.physics))


def _xml_edited(param, value):
    xml, assets = dm_cartpole.get_model_and_assets()
    root = etree.fromstring(xml.encode() if isinstance(xml, str) else xml)
    if param == "pole_length":
        geom = root.find("./default/default/geom")
        geom.set("fromto", f"0 0 0 0 0 {value}")
        geom.set("mass", str(value / 10))
    elif param == "pole_mass":
        root.find("./default/default/geom").set("mass", str(value))
    elif param == "joint_damping":
        root.find("./default/default/joint").set("damping", str(value))
    elif param == "slider_damping":
        root.find("./worldbody/body/joint").set("damping", str(value))
    return mujoco.MjModel.from_xml_string(etree.tostring(root).decode(), assets)


@pytest.mark.parametrize("param,value", [("pole_length", 2.0), ("pole_mass", 3.0),
                                         ("joint_damping", 0.1), ("slider_damping", 1.5)])
def test_parameter_equals_an_xml_edited_model(param, value):
    task = perturbed_pair("cartpole", "swingup", param, value)
    assert_follows_reference(task, _xml_edited(param, value), steps=50, atol=1e-10)
    assert task.get_parameter(1, param) == value and task.get_parameter(0, param) != value


def test_pole_length_moves_geometry_and_mass():
    task = BatchedTask("cartpole", "swingup")
    task.set_parameter(0, "pole_length", 2.0)
    model = task.physics.env_model(0)
    pole = model.body("pole_1").id
    assert model.body_mass[pole] == pytest.approx(0.2)
    assert model.geom("pole_1").size[1] == pytest.approx(1.0)  # capsule half-length
    assert model.body_ipos[pole][2] == pytest.approx(1.0)  # centre of mass moved up
    task.set_parameter(0, "pole_length", 1.0)  # back to nominal: the shared model again
    assert task.physics.env_model(0) is task.physics.model
