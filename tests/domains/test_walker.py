"""Walker: parity with dm_control, constraints and perturbable parameters."""

import mujoco
import numpy as np
import pytest
from dm_control import suite
from dm_control.suite import walker as dm_walker
from lxml import etree

from rwrl.tasks.task import BatchedTask
from tests.domains.parity import assert_follows_reference, parity_errors, perturbed_pair

IDS = np.array([0])
TASKS = ["stand", "walk", "run"]
NQ = NV = 9  # rootz, rootx, rooty, then the right leg's and the left leg's three joints


@pytest.mark.parametrize("task", TASKS)
def test_parity_with_dm_control(task):
    obs_err, rew_err = parity_errors("walker", task, seed=3, steps=250)
    assert obs_err < 1e-6 and rew_err < 1e-6


@pytest.mark.parametrize("task", ["walk"])
def test_initial_state_distribution_matches_dm_control(task):
    n = 200
    dm = suite.load("walker", task, task_kwargs={"random": 0})
    dm_q = np.array([(dm.reset(), dm.physics.data.qpos.copy())[1] for _ in range(n)])
    rw = BatchedTask("walker", task, n)
    rw.reset(np.arange(n), list(range(n)))
    rw_q = rw.physics.qpos.copy()
    assert np.all(rw.physics.qvel == 0)
    # rooty ~ U[-pi, pi]; legs ~ U[joint range]; rootz, rootx stay 0
    se = np.sqrt(dm_q.var(0) / n + rw_q.var(0) / n) + 1e-12
    assert np.all(np.abs(dm_q.mean(0) - rw_q.mean(0)) < 5 * se)
    assert np.allclose(dm_q.std(0), rw_q.std(0), rtol=0.2, atol=1e-9)
    assert rw_q[:, 2].std() == pytest.approx(2 * np.pi / np.sqrt(12), rel=0.15)


def _flags(task, qpos=None, qvel=None, coeff=1.0):
    """Return name -> satisfied flag at a state given as {qpos index: value}."""
    q, v = np.zeros(NQ), np.zeros(NV)
    for i, x in (qpos or {}).items():
        q[i] = x
    for i, x in (qvel or {}).items():
        v[i] = x
    task.configure_constraints(None, {}, coeff)
    _, info = task.set_state(IDS, q[None], v[None])
    return dict(zip(task.constraint_names, info["constraints"][0]))


def _joint(task, name):
    return task.physics.model.joint(name).qposadr[0]


@pytest.fixture(scope="module")
def walker():
    return BatchedTask("walker", "walk")


def test_constraints_in_published_order_and_hold_at_the_nominal_pose(walker):
    assert walker.constraint_names == ("joint_angle", "joint_velocity", "dangerous_fall",
                                       "torso_upright")
    assert all(_flags(walker).values())
    assert walker.domain.ACTION_ROC_LIMIT == 1.55


def _only_violated(flags, name):
    return not flags[name] and all(v for k, v in flags.items() if k != name)


def test_joint_angle_needs_every_joint_in_range(walker):
    # one knee bent backwards by 20 deg (limit 15 deg) violates it, though the
    # other five joints are in range (the published "any" form would not)
    assert _only_violated(_flags(walker, {_joint(walker, "left_knee"): np.deg2rad(20)}),
                          "joint_angle")
    assert _flags(walker, {_joint(walker, "left_knee"): np.deg2rad(10)})["joint_angle"]
    # a 60 deg hip holds at c = 1 (limit 110 deg), not at c = 0.5 (55 deg)
    hip = {_joint(walker, "right_hip"): np.deg2rad(60)}
    assert _flags(walker, hip)["joint_angle"]
    assert _only_violated(_flags(walker, hip, coeff=0.5), "joint_angle")


def test_joint_velocity(walker):
    ankle = _joint(walker, "right_ankle")  # hinge: its dof index equals its qpos index
    assert _only_violated(_flags(walker, qvel={ankle: -70.0}), "joint_velocity")
    assert _flags(walker, qvel={ankle: -60.0})["joint_velocity"]
    assert _only_violated(_flags(walker, qvel={ankle: -40.0}, coeff=0.5), "joint_velocity")
    # the root's speed is not a joint velocity
    assert _flags(walker, qvel={1: 100.0})["joint_velocity"]


def test_dangerous_fall_and_torso_upright(walker):
    # pitch th about y: -xmat[torso, zx] = sin(th), xmat[torso, zz] = cos(th)
    assert _only_violated(_flags(walker, {2: np.deg2rad(-40)}), "dangerous_fall")
    assert _flags(walker, {2: np.deg2rad(-20)})["dangerous_fall"]
    assert _only_violated(_flags(walker, {2: np.deg2rad(100)}), "torso_upright")
    # 50 deg: cos = 0.64 > 1 - c holds at c = 1, not at c = 0.2 (limit 0.8)
    assert _flags(walker, {2: np.deg2rad(50)})["torso_upright"]
    assert _only_violated(_flags(walker, {2: np.deg2rad(50)}, coeff=0.2), "torso_upright")


# -- perturbable parameters --------------------------------------------------------------
def _xml_edited(param, value, published_torso=False):
    """Compile dm_control's walker with the published suite's XML edit."""
    xml, assets = dm_walker.get_model_and_assets()
    root = etree.fromstring(xml.encode() if isinstance(xml, str) else xml)
    if param == "thigh_length":
        for thigh in root.findall("./worldbody/body/body/geom"):
            thigh.set("pos", f"0 0 {-value}")
            thigh.set("size", f"0.05 {value}")
        for leg in root.findall("./worldbody/body/body/body"):
            leg.set("pos", f"0 0 {-0.25 - 2 * value}")
    elif param == "torso_length":
        root.find("./worldbody/body/geom").set("size", f"0.07 {value}")
        for thigh in root.findall("./worldbody/body/body"):
            y = "-.05" if published_torso else thigh.get("pos").split()[1]
            thigh.set("pos", f"0 {y} {-value}")
    elif param == "joint_damping":
        root.find("./default/joint").set("damping", str(value))
    elif param == "contact_friction":
        root.find("./default/geom").set("friction", f"{value} .1 .1")
        root.find("./worldbody/geom").set("friction", f"{value} .1 .1")
    return mujoco.MjModel.from_xml_string(etree.tostring(root).decode(), assets)


@pytest.mark.parametrize("param,value", [("thigh_length", 0.4), ("torso_length", 0.5),
                                         ("joint_damping", 5.0), ("contact_friction", 0.2)])
def test_parameter_equals_an_xml_edited_model(param, value):
    task = perturbed_pair("walker", "walk", param, value)
    assert_follows_reference(task, _xml_edited(param, value), steps=60, atol=1e-10)
    assert task.get_parameter(1, param) == value and task.get_parameter(0, param) != value


def test_published_torso_edit_differs_only_off_the_plane():
    # The published edit puts both thighs at y = -0.05: same planar dynamics.
    task = perturbed_pair("walker", "walk", "torso_length", 0.5)
    assert_follows_reference(task, _xml_edited("torso_length", 0.5, True), steps=60, atol=1e-8)


@pytest.mark.parametrize("param,value", [("thigh_length", 0.4), ("torso_length", 0.5)])
def test_length_moves_geometry_and_mass(param, value):
    task = BatchedTask("walker", "walk")
    task.set_parameter(0, param, value)
    got, want, nominal = task.physics.env_model(0), _xml_edited(param, value), task.physics.model
    for field in ("body_pos", "body_mass", "body_ipos", "body_inertia", "geom_size", "geom_pos",
                  "jnt_pos"):
        np.testing.assert_allclose(getattr(got, field), getattr(want, field), atol=1e-12,
                                   err_msg=field)
    body = "right_thigh" if param == "thigh_length" else "torso"
    assert got.body(body).mass[0] > nominal.body(body).mass[0]
    if param == "thigh_length":
        assert got.body("left_leg").pos[2] == pytest.approx(-0.25 - 2 * value)
        assert got.geom("left_thigh").size[1] == pytest.approx(value)
    else:
        assert got.body("left_thigh").pos == pytest.approx([0, 0.05, -value])
        assert got.geom("torso").size[1] == pytest.approx(value)
