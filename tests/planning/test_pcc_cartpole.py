"""PCC's cartpole on rwrl's cartpole (rwrl.planning.pcc_cartpole) and its conv networks (rwrl.agents.pcc).

Rendering tests skip when no offscreen GL context can be made (``MUJOCO_GL``); tiny sizes
everywhere (a few frames, a small conv model).
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from rwrl.agents import pcc
from rwrl.planning import pcc_cartpole as pc
from rwrl.planning.pcc_tasks import TASKS, make_task


@pytest.fixture(scope="module")
def task():
    task = make_task("cartpole")
    try:
        task.observe_still(np.zeros(4))
    except ValueError as err:  # BatchRenderer's one-line error naming MUJOCO_GL
        if "offscreen rendering is unavailable" not in str(err):
            raise
        pytest.skip(str(err))
    return task


@pytest.fixture(scope="module")
def data(task):
    return task.sample_triples(6, seed=3)


def test_cartpole_is_registered_with_the_references_control_settings():
    assert "cartpole" in TASKS
    task = make_task("cartpole")
    assert isinstance(task, pc.Cartpole) and task.dataset == "cartpole" and task.obs_shape == (2, 80, 80)
    assert (task.control.q, task.control.r, task.control.horizon, task.control.plan_len) == (100.0, 1.0, 50, 5)
    assert task.action_low.tolist() == [-10.0] and task.action_high.tolist() == [10.0]


@pytest.mark.parametrize("theta, inside", [
    (0.0, True), (np.pi / 10 - 1e-9, True), (-np.pi / 10 + 1e-9, True), (np.pi / 10 + 1e-6, False),
    (-0.5, False), (2 * np.pi + 0.1, True),     # the angle is taken modulo 2 pi
    (np.pi, False),
])
def test_in_goal_is_the_pole_within_pi_over_10_of_upright(theta, inside):
    state = np.array([1.2, theta, 3.0, -4.0])                   # position and velocities play no part
    assert make_task("cartpole").in_goal(state, np.zeros(4)) is inside


def test_episodes_start_at_rest_within_pi_over_8_and_aim_upright():
    task, rng = make_task("cartpole"), np.random.default_rng(0)
    for _ in range(50):
        start, goal = task.draw_episode(rng)
        assert start[[0, 2, 3]].tolist() == [0.0, 0.0, 0.0] and abs(start[1]) <= np.pi / 8
        assert goal.tolist() == [0.0, 0.0, 0.0, 0.0]


def test_observations_are_two_grayscale_80_by_80_frames(task, data):
    assert data.x.shape == data.x_next.shape == (6, 2, 80, 80)
    assert data.x.dtype == data.x_next.dtype == data.u.dtype == np.float32 and data.u.shape == (6, 1)
    assert data.x.min() >= 0.0 and data.x.max() <= 1.0 and len(np.unique(data.x)) > 2     # grey, not binary
    assert data.s.shape == data.s_next.shape == (6, 4)
    still = task.observe_still(np.array([0.3, 0.1, 0.0, 0.0]))
    assert still.shape == (2, 80, 80) and still.dtype == np.float32
    np.testing.assert_array_equal(still[0], still[1])


def test_training_data_follow_the_references_sampler(task, data):
    # x = (frame(s0), frame(s1)), x' = (frame(s1), frame(s2)): the frames overlap by one
    np.testing.assert_array_equal(data.x[:, 1], data.x_next[:, 0])
    # x''s current frame is the frame rendered at the stepped state, and the stepped state is step(s1, a1)
    np.testing.assert_array_equal(data.x_next[:, 1], task.frame(data.s_next))
    np.testing.assert_array_equal(data.x_next[2], task.observe(data.s[2], data.s_next[2]))
    stepped = task.step(data.s[2], data.u[2])                   # u stored as float32: equal to rounding
    np.testing.assert_allclose(stepped, data.s_next[2], rtol=0, atol=1e-6)
    assert np.all(np.abs(data.u) <= 10.0) and np.all(np.abs(data.s_next[:, 1]) <= np.pi)


def test_sampling_is_a_function_of_the_seed(task, data):
    again = task.sample_triples(6, seed=3)
    for a, b in zip(data, again):
        np.testing.assert_array_equal(a, b)
    other = task.sample_triples(6, seed=4)
    assert not np.array_equal(other.s, data.s)


def test_a_step_clips_the_force_and_pushes_the_cart_its_way(task):
    rest = np.zeros(4)
    np.testing.assert_array_equal(task.step(rest, [100.0]), task.step(rest, [10.0]))
    right, left = task.step(rest, [10.0]), task.step(rest, [-10.0])
    assert right[2] > 0 > left[2] and right[3] < 0 < left[3]    # the cart speeds up, the pole tips back
    np.testing.assert_allclose(right, -left, atol=1e-12)       # the model is mirror-symmetric
    np.testing.assert_array_equal(task.step(rest, [0.0]), rest)  # upright at rest stays so


def test_the_cart_moves_right_in_the_image(task):
    frames = task.frame(np.array([[-1.0, 0.0, 0.0, 0.0], [1.0, 0.0, 0.0, 0.0]]))
    bright = [np.nonzero((f > 0.6).any(axis=0))[0].mean() for f in frames]
    assert bright[1] - bright[0] > 40                           # 25 pixels per m


# ----------------------------------------------------------------- the conv networks

def test_the_cartpole_preset_has_the_references_networks():
    config = pcc.make_config("cartpole")
    assert (config.z_dim, config.conv_channels, config.encoder_hidden, config.dynamics_hidden) == \
        (8, (32, 32, 32, 10), (200,), (40, 40))
    assert (config.backward_embed, config.backward_hidden, config.epochs) == ((10, 10, 300), 300, 5000)
    assert (config.lambda_p, config.lambda_c, config.lambda_cur) == (1.0, 8.0, 8.0)
    assert pcc.make_config("planar").conv_channels == () == pcc.make_config("pendulum").conv_channels


def test_the_conv_model_gives_the_references_shapes_and_parameter_counts():
    model = pcc.make_model(pcc.make_config("cartpole"), (2, 80, 80), 1)
    params = jax.eval_shape(model.init, jax.random.PRNGKey(0))       # shapes only: nothing is computed
    sizes = {name: sum(leaf.size for leaf in jax.tree_util.tree_leaves(p)) for name, p in params.items()}
    # counted from the code's CartPoleEncoder / CartPoleDecoder / CartPoleDynamics / CartPoleBackwardDynamics
    assert sizes == {"encoder": 264_322, "decoder": 263_698, "dynamics": 2_696, "backward": 3_941_526}
    x, z, u = jnp.zeros((2, 80, 80)), jnp.zeros(8), jnp.zeros(1)
    mean, log_std = jax.eval_shape(model.encode, params, x)
    assert mean.shape == log_std.shape == (8,)
    assert jax.eval_shape(model.decode, params, z).shape == (2 * 80 * 80,)
    assert jax.eval_shape(model.transition, params, z, u)[0].shape == (8,)
    assert [a.shape for a in jax.eval_shape(model.backward, params, z, u, x)] == [(8,), (8,)]


def test_conv_networks_need_channel_first_images_of_a_fitting_size():
    config = pcc.make_config("cartpole", conv_channels=(4, 4, 4))
    with pytest.raises(ValueError, match="multiples of 4"):
        pcc.make_model(config, (2, 42, 40), 1)
    with pytest.raises(ValueError, match=r"\(channels, height, width\)"):
        pcc.make_model(config, (40, 40), 1)


@pytest.mark.slow  # 10-25 s, nearly all of it compiling the convolutions
def test_a_few_steps_of_training_reduce_the_loss_of_a_tiny_conv_model():
    rng = np.random.default_rng(0)
    x = (rng.uniform(size=(8, 2, 16, 16)) < 0.1).astype(np.float32)
    x_next = np.roll(x, 1, axis=-1)
    u = rng.uniform(-1, 1, size=(8, 1)).astype(np.float32)
    config = pcc.make_config("cartpole", conv_channels=(4, 4), encoder_hidden=(16,), dynamics_hidden=(8,),
                             backward_embed=(4, 4, 16), backward_hidden=16, z_dim=2, epochs=8, batch_size=8,
                             learning_rate=3e-3)
    history = pcc.train(config, x, u, x_next, seed=0).history
    totals = [row["total"] for row in history]
    assert totals[-1] < 0.95 * totals[0] and np.isfinite(totals).all()
