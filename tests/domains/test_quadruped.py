"""Quadruped: parity with dm_control, constraints and perturbable parameters."""

import mujoco
import numpy as np
import pytest
from dm_control import suite
from dm_control.suite import common
from dm_control.suite import quadruped as dm_quadruped
from lxml import etree

from rwrl.tasks.task import BatchedTask
from tests.domains.parity import assert_follows_reference, parity_errors, perturbed_pair

IDS = np.array([0])
TASKS = ["walk", "run"]
#: dm_control's floor half-size (m) per task: 20 s times the target speed.
FLOOR_SIZE = {"walk": 10, "run": 100}


@pytest.mark.parametrize("task", TASKS)
def test_parity_with_dm_control(task):
    # force_torque holds contact forces of thousands of newtons: errors are relative there.
    obs_err, rew_err = parity_errors("quadruped", task, seed=1, steps=250)
    assert obs_err < 1e-6 and rew_err < 1e-6


def test_observation_layout_matches_dm_control():
    dm = suite.load("quadruped", "walk", task_kwargs={"random": 0})
    expected = {k: np.shape(v) for k, v in dm.reset().observation.items()}
    task = BatchedTask("quadruped", "walk")
    assert list(task.observation_spec) == list(expected)
    assert {k: s for k, (s, _) in task.observation_spec.items()} == expected
    assert expected["egocentric_state"] == (44,)  # 16 hinge angles, 16 speeds, 12 activations


def _initial_root_states(dm, n):
    states = []
    for _ in range(n):
        dm.reset()
        states.append(dm.physics.data.qpos[:7].copy())
    return np.array(states)


@pytest.mark.parametrize("task", TASKS)
def test_initial_state_distribution_matches_dm_control(task):
    n = 150
    dm_q = _initial_root_states(suite.load("quadruped", task, task_kwargs={"random": 0}), n)
    rw = BatchedTask("quadruped", task, n)
    rw.reset(np.arange(n), list(range(n)))
    rw_q = rw.physics.qpos[:, :7].copy()
    assert np.all(rw.physics.qpos[:, 7:] == 0) and np.all(rw.physics.qvel == 0)
    np.testing.assert_array_equal(rw_q[:, :2], 0)  # the torso starts above the origin
    # Height and |quaternion components|: for a uniform rotation each component has
    # density (2/π)·sqrt(1 - x²) on [-1, 1], so E|q_i| = 4 / (3π).
    dm_m = np.column_stack([dm_q[:, 2], np.abs(dm_q[:, 3:])])
    rw_m = np.column_stack([rw_q[:, 2], np.abs(rw_q[:, 3:])])
    se = np.sqrt(dm_m.var(0) / n + rw_m.var(0) / n)
    assert np.all(np.abs(dm_m.mean(0) - rw_m.mean(0)) < 5 * se)
    assert np.allclose(dm_m.std(0), rw_m.std(0), rtol=0.25)
    assert abs(rw_m[:, 1:].mean() - 4 / (3 * np.pi)) < 0.03


def test_initial_state_touches_nothing_and_is_one_step_above_contact():
    task = BatchedTask("quadruped", "walk", 4)
    task.reset(np.arange(4), [0, 1, 2, 3])
    model = task.physics.model
    data = mujoco.MjData(model)
    for i in range(4):
        data.qpos[:] = task.physics.qpos[i]
        mujoco.mj_forward(model, data)
        assert data.ncon == 0
        data.qpos[2] -= 0.01  # one search step lower the body touches something
        mujoco.mj_forward(model, data)
        assert data.ncon > 0


def _flags(task, qpos, qvel=None, coeff=1.0):
    task.configure_constraints(None, {}, coeff)
    model = task.physics.model
    qvel = np.zeros(model.nv) if qvel is None else qvel
    _, info = task.set_state(IDS, qpos[None], qvel[None])
    return dict(zip(task.constraint_names, info["constraints"][0]))


def _joint(task, name, value, field="qpos"):
    model = task.physics.model
    out = model.qpos0.copy() if field == "qpos" else np.zeros(model.nv)
    adr = model.joint(name).qposadr[0] if field == "qpos" else model.joint(name).dofadr[0]
    out[adr] = value
    return out


def _only_violated(flags, name):
    return not flags[name] and all(v for k, v in flags.items() if k != name)


@pytest.mark.parametrize("task_name", TASKS)
def test_all_constraints_hold_in_the_air_at_rest(task_name):
    task = BatchedTask("quadruped", task_name)
    assert task.constraint_names == ("joint_angle", "joint_velocity", "upright", "foot_force")
    assert task.domain.ACTION_ROC_LIMIT == 1.4
    assert all(_flags(task, task.physics.model.qpos0).values())
    safety_vars = task.domain.safety_vars(task.physics)  # the published names and order
    assert list(safety_vars) == ["joint_pos", "joint_vels", "z_up", "tfl_f", "tfr_f", "tbl_f",
                                 "tbr_f", "actions"]
    assert safety_vars["joint_pos"].shape == (1, 16)


def test_joint_angle_violated_beyond_60_degrees_and_scaled_by_safety_coeff():
    task = BatchedTask("quadruped", "walk")
    # No hinge's range reaches past 60°, so beyond it the joint limit's reaction also
    # loads the toe (foot_force falls too); inside the ranges, c = 0.5 isolates it.
    assert not _flags(task, _joint(task, "pitch_front_left", np.deg2rad(61)))["joint_angle"]
    yaw_40 = _joint(task, "yaw_front_left", np.deg2rad(40))  # inside the yaw range ±50°
    assert all(_flags(task, yaw_40).values())
    assert _only_violated(_flags(task, yaw_40, coeff=0.5), "joint_angle")  # limit now 30°


@pytest.mark.parametrize("task_name,fast,slow", [("walk", 25.0, 15.0), ("run", 0.5, 0.3)])
def test_joint_velocity_violated_above_the_task_limit(task_name, fast, slow):
    # walk: 20 rad/s; run: 0.4 rad/s, as published.
    task = BatchedTask("quadruped", task_name)
    qpos0 = task.physics.model.qpos0
    fast_knee = _joint(task, "knee_front_left", fast, field="qvel")
    assert _only_violated(_flags(task, qpos0, fast_knee), "joint_velocity")
    assert all(_flags(task, qpos0, _joint(task, "knee_front_left", slow, field="qvel")).values())


def test_upright_violated_when_the_torso_lies_on_its_side():
    task = BatchedTask("quadruped", "walk")
    qpos = task.physics.model.qpos0.copy()
    qpos[3:7] = np.cos(np.pi / 4), np.sin(np.pi / 4), 0, 0  # 90° about x: z_up = 0 < 0.3
    assert _only_violated(_flags(task, qpos), "upright")
    qpos[3:7] = np.cos(np.pi / 8), np.sin(np.pi / 8), 0, 0  # 45°: z_up = 0.71 > 0.3
    assert all(_flags(task, qpos).values())


def test_foot_force_violated_with_the_toes_deep_in_the_floor():
    task = BatchedTask("quadruped", "walk")  # 20000 N
    qpos = task.physics.model.qpos0.copy()
    qpos[2] = 0.1  # the toes ~0.4 m into the floor: ~21500 N each
    assert _only_violated(_flags(task, qpos), "foot_force")
    qpos[2] = 0.3  # ~10600 N
    assert all(_flags(task, qpos).values())
    run = BatchedTask("quadruped", "run")  # 300000 N at c = 1, 15000 N at c = 0.05
    qpos[2] = 0.0  # ~27400 N
    assert all(_flags(run, qpos).values())
    assert _only_violated(_flags(run, qpos, coeff=0.05), "foot_force")


# -- perturbable parameters ------------------------------------------------------------
def _xml_edited_model(param, value, floor_size=FLOOR_SIZE["walk"]):
    """Compile dm_control's model with the published suite's XML edit of ``param``."""
    mjcf = etree.fromstring(dm_quadruped.make_model(floor_size=floor_size))
    if param == "shin_length":
        for part in mjcf.findall("./default/default/default"):
            if part.get("class") == "knee":
                part.find("./geom").set("fromto", f"0 0 0 {value} 0 {-value}")
        for ankle in mjcf.findall("./worldbody/body/body/body/body"):
            ankle.set("pos", f"{value} 0 {-value}")
    elif param == "torso_density":
        mjcf.find("./worldbody/body/geom[@name='torso']").set("density", str(value))
    elif param == "joint_damping":
        mjcf.find("./default/default/joint").set("damping", str(value))
    elif param == "contact_friction":
        for part in mjcf.findall("./default/default/default"):
            if part.get("class") == "toe":
                part.find("./geom").set("friction", str(value))
        mjcf.find("./worldbody/geom").set("friction", f"{value} .1 .1")
    return mujoco.MjModel.from_xml_string(etree.tostring(mjcf).decode(), common.ASSETS)


PARAMS = [("shin_length", 0.6), ("torso_density", 3000.0), ("joint_damping", 80.0),
          ("contact_friction", 3.0)]
MODEL_FIELDS = ["body_pos", "body_mass", "body_inertia", "body_ipos", "geom_size", "geom_pos",
                "geom_friction", "dof_damping", "site_pos"]


@pytest.mark.parametrize("param,value", PARAMS)
def test_parameter_equals_an_xml_edited_model(param, value):
    task = perturbed_pair("quadruped", "walk", param, value)
    ref_model = _xml_edited_model(param, value)
    model = task.physics.env_model(1)
    for field in MODEL_FIELDS:
        np.testing.assert_allclose(getattr(model, field), getattr(ref_model, field),
                                   rtol=1e-12, atol=1e-12, err_msg=field)
    assert_follows_reference(task, ref_model, steps=25, atol=1e-9)
    assert task.get_parameter(1, param) == value and task.get_parameter(0, param) != value


def test_shin_length_moves_the_lower_leg_and_its_mass():
    task = BatchedTask("quadruped", "walk")
    nominal = task.physics.model
    task.set_parameter(0, "shin_length", 0.5)
    model = task.physics.env_model(0)
    for leg in ("front_left", "back_right"):
        np.testing.assert_allclose(model.body(f"ankle_{leg}").pos, [0.5, 0, -0.5])
        # capsule half-length: half the shin's length L·√2
        assert model.geom(f"shin_{leg}").size[1] == pytest.approx(0.5 * np.sqrt(2) / 2)
        assert model.body(f"knee_{leg}").mass[0] > nominal.body(f"knee_{leg}").mass[0]
        np.testing.assert_allclose(model.body(f"knee_{leg}").ipos, [0.25, 0, -0.25])
    np.testing.assert_allclose(model.body("toe_front_left").pos, [0, 0, -0.3])  # moves with ankle
    task.set_parameter(0, "shin_length", 0.25)  # back to nominal: the shared model again
    assert task.physics.env_model(0) is task.physics.model
