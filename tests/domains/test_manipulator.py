"""Manipulator: parity with dm_control, constraints and perturbable parameters."""

import mujoco
import numpy as np
import pytest
from dm_control import suite
from dm_control.suite import manipulator as dm_manipulator
from lxml import etree
from scipy import stats

from rwrl.tasks.task import BatchedTask
from tests.domains.parity import assert_follows_reference, flat_dm_observation, perturbed_pair

IDS = np.array([0])
TASKS = ["bring_ball", "bring_peg", "insert_ball", "insert_peg"]
#: dm_control's model has no mocap bodies: copy the state without the mocap components.
STATE_WITHOUT_MOCAP = (int(mujoco.mjtState.mjSTATE_INTEGRATION)
                       & ~int(mujoco.mjtState.mjSTATE_MOCAP_POS)
                       & ~int(mujoco.mjtState.mjSTATE_MOCAP_QUAT))


def _dm_target_pose(dm_physics, body):
    """Return the (x, z, angle) of a body that dm_control placed by editing its model."""
    pos, quat = dm_physics.named.model.body_pos[body], dm_physics.named.model.body_quat[body]
    return pos[0], pos[2], 2 * np.arctan2(quat[2], quat[0])


def copy_dm_control_state(dm, task: BatchedTask, env_id: int = 0) -> None:
    """Put env ``env_id`` in dm_control's state: physics state, then the target's place."""
    model, data = dm.physics.model.ptr, dm.physics.data.ptr
    state = np.empty(mujoco.mj_stateSize(model, STATE_WITHOUT_MOCAP))
    mujoco.mj_getState(model, data, state, STATE_WITHOUT_MOCAP)
    scratch = mujoco.MjData(task.physics.model)
    mujoco.mj_setState(task.physics.model, scratch, state, STATE_WITHOUT_MOCAP)
    row = np.empty(task.physics.state.shape[1])
    mujoco.mj_getState(task.physics.model, scratch, row, mujoco.mjtState.mjSTATE_INTEGRATION)
    task.physics.state[env_id] = row
    x, z, angle = _dm_target_pose(dm.physics, task.domain.target)
    task.domain.place_target(task.physics, np.array([env_id]), [x], [z], [angle])
    task.physics.forward(np.array([env_id]))


# Seeds 9 (bring) and 11 (insert_peg) start with the prop in the target (reward 1), 1 with
# the peg in hand (reward 1/3): the reward is compared where it is large, not only ~0.
@pytest.mark.parametrize("task_name,seed", [("bring_ball", 9), ("bring_peg", 1),
                                            ("insert_ball", 2), ("insert_peg", 11)])
def test_parity_with_dm_control(task_name, seed):
    dm = suite.load("manipulator", task_name, task_kwargs={"random": seed})
    dm.reset()
    task = BatchedTask("manipulator", task_name, 1)
    task.reset(IDS, [seed])
    copy_dm_control_state(dm, task)
    rng = np.random.default_rng(seed)
    spec = dm.action_spec()
    obs_err = rew_err = max_reward = 0.0
    for _ in range(250):
        action = rng.uniform(spec.minimum, spec.maximum)
        ts = dm.step(action)
        obs, reward, _, _ = task.step(action[None])
        obs = task.layout.unflatten(obs)
        expected = flat_dm_observation(ts.observation)
        got = np.concatenate([obs[k][0].ravel() for k in task.observation_spec])
        obs_err = max(obs_err, np.max(np.abs(got - expected) / np.maximum(1, np.abs(expected))))
        rew_err = max(rew_err, abs(float(reward[0]) - ts.reward))
        max_reward = max(max_reward, ts.reward)
    assert obs_err < 1e-6 and rew_err < 1e-9
    if task_name != "insert_ball":
        assert max_reward > 0.3


def test_observation_layout_matches_dm_control():
    dm = suite.load("manipulator", "bring_peg", task_kwargs={"random": 0})
    expected = {k: np.shape(v) for k, v in dm.reset().observation.items()}
    task = BatchedTask("manipulator", "bring_peg")
    assert {k: s for k, (s, _) in task.observation_spec.items()} == expected
    assert list(task.observation_spec) == list(expected)


def _initial_states(task_name, n):
    """Return (dm, rwrl) rows of qpos, prop x speed, target x, z and angle over n resets."""
    dm = suite.load("manipulator", task_name, task_kwargs={"random": 0})
    target = "target_peg" if "peg" in task_name else "target_ball"
    dm_rows = []
    for _ in range(n):
        dm.reset()
        dm_rows.append(np.concatenate([dm.physics.data.qpos, dm.physics.data.qvel[8:9],
                                       _dm_target_pose(dm.physics, target)]))
    rw = BatchedTask("manipulator", task_name, n)
    obs, _ = rw.reset(np.arange(n), list(range(n)))
    obs = rw.layout.unflatten(obs)
    quat = obs["target_pos"][:, 2:]
    rw_rows = np.column_stack([rw.physics.qpos, rw.physics.qvel[:, 8:9], obs["target_pos"][:, :2],
                               2 * np.arctan2(quat[:, 1], quat[:, 0])])
    assert np.all(rw.physics.qvel[:, :8] == 0) and np.all(dm.physics.data.qvel[:8] == 0)
    return np.array(dm_rows), rw_rows


@pytest.mark.parametrize("task_name", ["bring_peg", "insert_ball"])
def test_initial_state_distribution_matches_dm_control(task_name):
    n = 500
    dm_rows, rw_rows = _initial_states(task_name, n)
    se = np.sqrt(dm_rows.var(0) / n + rw_rows.var(0) / n)
    assert np.all(np.abs(dm_rows.mean(0) - rw_rows.mean(0)) < 5 * se)
    # Same marginal distributions (two-sample Kolmogorov-Smirnov, each at the 0.1% level).
    p_values = [stats.ks_2samp(dm_rows[:, j], rw_rows[:, j]).pvalue for j in range(15)]
    assert min(p_values) > 1e-3, p_values
    # The prop's placements: in the target (10%), thrown with an x speed (most uniform ones).
    for kind in (_in_target, lambda rows: rows[:, 11] != 0):
        assert abs(kind(dm_rows).mean() - kind(rw_rows).mean()) < 0.06


def _in_target(rows):
    """Whether the prop starts where the target is (columns: qpos 8-10, target 12-13)."""
    return np.all(rows[:, [8, 9]] == rows[:, [12, 13]], axis=1)


def test_initial_state_is_collision_free_and_per_env():
    task = BatchedTask("manipulator", "insert_peg", 3)
    obs, _ = task.reset(np.arange(3), [0, 1, 2])
    obs = task.layout.unflatten(obs)
    assert len({tuple(t) for t in obs["target_pos"]}) == 3  # each env has its own target
    slot = task.physics.model.body("slot").mocapid[0]
    target = task.physics.model.body("target_peg").mocapid[0]
    mocap = task.physics.field("mocap_pos")
    np.testing.assert_array_equal(mocap[:, slot, 0::2], mocap[:, target, 0::2])
    data = mujoco.MjData(task.physics.model)
    for i in range(3):
        mujoco.mj_setState(task.physics.model, data, task.physics.state[i],
                           mujoco.mjtState.mjSTATE_INTEGRATION)
        mujoco.mj_forward(task.physics.model, data)
        assert data.ncon == 0


# -- constraints ------------------------------------------------------------------------
def _flags(task, qpos, qvel=None, coeff=1.0):
    task.configure_constraints(None, {}, coeff)
    qvel = np.zeros(task.physics.model.nv) if qvel is None else qvel
    _, info = task.set_state(IDS, qpos[None], qvel[None])
    return dict(zip(task.constraint_names, info["constraints"][0]))


def _set(task, name, value, field="qpos"):
    model = task.physics.model
    out = model.qpos0.copy() if field == "qpos" else np.zeros(model.nv)
    out[model.joint(name).qposadr[0] if field == "qpos" else model.joint(name).dofadr[0]] = value
    return out


def _only_violated(flags, name):
    return not flags[name] and all(v for k, v in flags.items() if k != name)


@pytest.fixture(scope="module")
def task():
    return BatchedTask("manipulator", "bring_ball")


def test_all_constraints_hold_with_the_arm_upright_at_rest(task):
    assert task.constraint_names == ("joint_angle", "joint_velocity", "joint_accel",
                                     "grasp_force")
    assert task.domain.ACTION_ROC_LIMIT == 1.5
    assert all(_flags(task, task.physics.model.qpos0).values())
    safety_vars = task.domain.safety_vars(task.physics)  # the published names and order
    assert list(safety_vars) == ["joint_angle", "joint_vels", "joint_accels", "grasp_force",
                                 "actions"]
    assert safety_vars["grasp_force"].shape == (1, 5)


def test_joint_angle_violated_and_scaled_by_safety_coeff(task):
    # The elbow's range is ±160° but the constraint allows ±140°.
    assert _only_violated(_flags(task, _set(task, "arm_elbow", np.deg2rad(150))), "joint_angle")
    bent = _set(task, "arm_shoulder", np.deg2rad(100))
    assert all(_flags(task, bent).values())
    assert _only_violated(_flags(task, bent, coeff=0.5), "joint_angle")  # now ±80°


def test_joint_accel_violated_by_a_damped_swing(task):
    # 3 rad/s against the shoulder's damping decelerates it at ~16000 rad/s² > 3600.
    qvel = _set(task, "arm_shoulder", 3.0, field="qvel")
    assert _only_violated(_flags(task, task.physics.model.qpos0, qvel), "joint_accel")


def test_joint_velocity_violated_above_10_rad_s(task):
    # Joint damping over the arm's small inertia (~5000 /s) exceeds the limits' ratio
    # (3600 / 10 = 360 /s), so no state is too fast without also being too accelerated.
    qvel = _set(task, "arm_shoulder", 10.5, field="qvel")
    flags = _flags(task, task.physics.model.qpos0, qvel)
    assert not flags["joint_velocity"] and flags["joint_angle"] and flags["grasp_force"]
    safety_vars = {"joint_vels": np.array([[10.5, 0.0], [9.5, 0.0]])}
    velocity = {c.name: c for c in task.domain.constraints()}["joint_velocity"]
    np.testing.assert_array_equal(velocity.fn(safety_vars, 1.0), [False, True])
    np.testing.assert_array_equal(velocity.fn(safety_vars, 0.9), [False, False])


def test_grasp_force_violated_when_the_fingers_are_folded_into_the_arm(task):
    # The wrist 10° past its range presses the fingers into the lower arm: touch ~650 N.
    assert _only_violated(_flags(task, _set(task, "arm_wrist", np.deg2rad(150))), "grasp_force")


# -- perturbable parameters ------------------------------------------------------------
def _xml_edited_model(task_name, param, value):
    """Compile dm_control's model with the published suite's XML edit of ``param``."""
    use_peg, insert = "peg" in task_name, task_name.startswith("insert")
    xml, assets = dm_manipulator.make_model(use_peg, insert)
    mjcf = etree.fromstring(xml)
    if param == "lower_arm_length":
        mjcf.find("./worldbody/body/body/body/geom").set("fromto", f"0 0 0 0 0 {value}")
        mjcf.find("./worldbody/body/body/body/body").set("pos", f"0 0 {value}")
    elif param == "root_damping":
        mjcf.find("./worldbody/body/joint[@name='arm_root']").set("damping", str(value))
    elif param == "shoulder_damping":
        mjcf.find("./worldbody/body/body/joint").set("damping", str(value))
    return mujoco.MjModel.from_xml_string(etree.tostring(mjcf).decode(), assets)


MODEL_FIELDS = ["body_pos", "body_mass", "body_inertia", "body_ipos", "geom_size", "geom_pos",
                "dof_damping", "site_pos"]


@pytest.mark.parametrize("param,value", [("lower_arm_length", 0.2), ("root_damping", 6.0),
                                         ("shoulder_damping", 5.0)])
def test_parameter_equals_an_xml_edited_model(param, value):
    task = perturbed_pair("manipulator", "insert_ball", param, value, seed=4)
    ref_model = _xml_edited_model("insert_ball", param, value)
    model = task.physics.env_model(1)
    placed = [model.body(b).id for b in task.domain.placed_bodies]  # their place: mocap
    for field in MODEL_FIELDS:
        ours, theirs = getattr(model, field), getattr(ref_model, field)
        if field == "body_pos":
            ours, theirs = np.delete(ours, placed, axis=0), np.delete(theirs, placed, axis=0)
        np.testing.assert_allclose(ours, theirs, rtol=1e-12, atol=1e-12, err_msg=field)
    # dm_control places the target and cup by editing the model: do so from env 1's mocap.
    for body in task.domain.placed_bodies:
        mocap = model.body(body).mocapid[0]
        ref_model.body(body).pos = task.physics.field("mocap_pos")[1, mocap]
        ref_model.body(body).quat = task.physics.field("mocap_quat")[1, mocap]
    assert_follows_reference(task, ref_model, steps=60, atol=1e-9)


def test_lower_arm_length_moves_the_hand_and_the_arm_mass(task):
    nominal = task.physics.model
    task.set_parameter(0, "lower_arm_length", 0.2)
    try:
        model = task.physics.env_model(0)
        np.testing.assert_allclose(model.body("hand").pos, [0, 0, 0.2])
        assert model.geom("lower_arm").size[1] == pytest.approx(0.1)  # capsule half-length
        assert model.body("lower_arm").mass[0] > nominal.body("lower_arm").mass[0]
        np.testing.assert_allclose(model.body("lower_arm").ipos, [0, 0, 0.1])
        data = mujoco.MjData(model)
        mujoco.mj_kinematics(model, data)  # arm upright: the grasp site is 8 cm higher
        assert data.site("grasp").xpos[2] == pytest.approx(
            0.4 + 0.18 + 0.15 + 0.2 + 0.065)
    finally:
        task.set_parameter(0, "lower_arm_length", 0.12)
    assert task.physics.env_model(0) is task.physics.model
