"""Humanoid: parity with dm_control, constraints and perturbable parameters."""

import mujoco
import numpy as np
import pytest
from dm_control import suite
from dm_control.suite import humanoid as dm_humanoid
from lxml import etree

from rwrl.tasks.task import BatchedTask
from tests.domains.parity import assert_follows_reference, parity_errors, perturbed_pair

IDS = np.array([0])
TASKS = ["stand", "walk", "run"]


@pytest.mark.parametrize("task", TASKS)
def test_parity_with_dm_control(task):
    obs_err, rew_err = parity_errors("humanoid", task, seed=3, steps=250)
    assert obs_err < 1e-6 and rew_err < 1e-6


def test_initial_state_distribution_matches_dm_control():
    n = 200
    dm = suite.load("humanoid", "walk", task_kwargs={"random": 0})
    dm_q = np.array([(dm.reset(), dm.physics.data.qpos.copy())[1] for _ in range(n)])
    rw = BatchedTask("humanoid", "walk", n)
    rw.reset(np.arange(n), list(range(n)))
    rw_q = rw.physics.qpos.copy()
    # root at (0, 0, 1.5), orientation from a normalised U[0, 1)^4, joints uniform in range
    se = np.sqrt(dm_q.var(0) / n + rw_q.var(0) / n) + 1e-12
    assert np.all(np.abs(dm_q.mean(0) - rw_q.mean(0)) < 5 * se)
    assert np.allclose(dm_q.std(0), rw_q.std(0), rtol=0.25, atol=1e-9)
    # every pose drawn again until collision-free, as dm_control does
    assert all(rw.physics.env_data(i).ncon == 0 for i in range(0, n, 10))
    assert np.all(rw.physics.qvel == 0)


@pytest.fixture(scope="module")
def humanoid():
    return BatchedTask("humanoid", "walk")


def _flags(task, joints=None, root=None, qvel=None, coeff=1.0):
    """Return name -> satisfied flag at qpos0 changed by {joint: angle}, root overrides."""
    model = task.physics.model
    q, v = model.qpos0.copy(), np.zeros(model.nv)
    for name, angle in (joints or {}).items():
        q[model.joint(name).qposadr[0]] = angle
    for i, x in (root or {}).items():
        q[i] = x
    for i, x in (qvel or {}).items():
        v[i] = x
    task.configure_constraints(None, {}, coeff)
    _, info = task.set_state(IDS, q[None], v[None])
    return dict(zip(task.constraint_names, info["constraints"][0]))


def _pitch(degrees, height=1.5):
    """Root qpos overrides: torso pitched about y, centre at ``height`` (m)."""
    half = np.deg2rad(degrees) / 2
    return {2: height, 3: np.cos(half), 4: 0.0, 5: np.sin(half), 6: 0.0}


def _only_violated(flags, name):
    return not flags[name] and all(v for k, v in flags.items() if k != name)


def test_constraints_in_published_order_and_hold_at_the_nominal_pose(humanoid):
    assert humanoid.constraint_names == ("joint_angle", "joint_velocity", "upright",
                                         "dangerous_fall", "foot_force")
    assert all(_flags(humanoid).values())
    assert humanoid.domain.ACTION_ROC_LIMIT == 1.85


def test_joint_angle(humanoid):
    assert _only_violated(_flags(humanoid, {"abdomen_z": 3.3}), "joint_angle")  # > pi
    assert _flags(humanoid, {"abdomen_z": 2.0})["joint_angle"]
    assert _only_violated(_flags(humanoid, {"abdomen_z": 2.0}, coeff=0.5), "joint_angle")


def test_joint_velocity_covers_every_non_root_dof(humanoid):
    # dof 6 (abdomen_z) is the one the published qvel[7:] skips
    for dof in (6, 26):
        assert _only_violated(_flags(humanoid, qvel={dof: -95.0}), "joint_velocity")
    assert _flags(humanoid, qvel={6: 60.0})["joint_velocity"]
    assert _only_violated(_flags(humanoid, qvel={6: 60.0}, coeff=0.5), "joint_velocity")
    assert _flags(humanoid, qvel={0: 95.0, 5: 95.0})["joint_velocity"]  # root dofs


def test_upright(humanoid):
    # pitch th: xmat[torso, zz] = cos(th); in the air, nothing touches
    assert _only_violated(_flags(humanoid, root=_pitch(100)), "upright")
    assert _flags(humanoid, root=_pitch(50))["upright"]  # 0.64 > 0
    assert _only_violated(_flags(humanoid, root=_pitch(50), coeff=0.2), "upright")  # > 0.8


def test_dangerous_fall(humanoid):
    # lying back (pitched -80 deg, still z_up = 0.17 > 0), hips flexed so only the
    # head and torso press into the floor: about 690 N and 200 N
    legs_up = {"right_hip_y": np.deg2rad(-30), "left_hip_y": np.deg2rad(-30)}
    assert _only_violated(_flags(humanoid, legs_up, _pitch(-80, 0.05)), "dangerous_fall")
    # barely touching (torso about 40 N): holds at c = 1, not at c = 0.3 (30 N)
    assert _flags(humanoid, legs_up, _pitch(-80, 0.07))["dangerous_fall"]
    assert not _flags(humanoid, legs_up, _pitch(-80, 0.07), coeff=0.3)["dangerous_fall"]


def test_foot_force(humanoid):
    # feet pushed into the floor: about 4900 N standing 10 cm too low ...
    assert _flags(humanoid, root={2: 1.2})["foot_force"]
    assert _only_violated(_flags(humanoid, root={2: 1.2}, coeff=0.5), "foot_force")
    # ... and over 8000 N when also moving down at 5 m/s
    assert _only_violated(_flags(humanoid, root={2: 1.25}, qvel={2: -5.0}), "foot_force")


# -- perturbable parameters --------------------------------------------------------------
def _xml_edited(param, value):
    """Compile dm_control's humanoid with the published suite's XML edit."""
    xml, assets = dm_humanoid.get_model_and_assets()
    root = etree.fromstring(xml.encode() if isinstance(xml, str) else xml)
    if param == "joint_damping":
        root.find("./default/default/joint").set("damping", str(value))
    elif param == "contact_friction":
        root.find("./default/default/geom").set("friction", f"{value} .1 .1")
        root.find("./worldbody/geom").set("friction", f"{value} .1 .1")
    elif param == "head_size":
        root.find("./worldbody/body/body/geom").set("size", str(value))
    return mujoco.MjModel.from_xml_string(etree.tostring(root).decode(), assets)


@pytest.mark.parametrize("param,value", [("contact_friction", 0.2), ("joint_damping", 2.0),
                                         ("head_size", 0.15)])
def test_parameter_equals_an_xml_edited_model(param, value):
    task = perturbed_pair("humanoid", "walk", param, value)
    assert_follows_reference(task, _xml_edited(param, value), steps=60, atol=1e-10)
    assert task.get_parameter(1, param) == value and task.get_parameter(0, param) != value


def test_head_size_changes_geometry_and_mass():
    task = BatchedTask("humanoid", "walk")
    task.set_parameter(0, "head_size", 0.15)
    got, want = task.physics.env_model(0), _xml_edited("head_size", 0.15)
    nominal = task.physics.model
    for field in ("body_mass", "body_ipos", "body_inertia", "body_subtreemass", "geom_size",
                  "geom_rbound", "site_size"):
        np.testing.assert_allclose(getattr(got, field), getattr(want, field), atol=1e-12,
                                   err_msg=field)
    assert got.geom("head").size[0] == pytest.approx(0.15)
    # a solid sphere of density 1000: mass grows with the cube of the radius
    ratio = got.body("head").mass[0] / nominal.body("head").mass[0]
    assert ratio == pytest.approx((0.15 / 0.09) ** 3)
