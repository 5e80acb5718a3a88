"""PCC's simulators (rwrl.planning.pcc_tasks): dynamics and collisions by hand, rendering, data, registry."""

import numpy as np
import pytest

from rwrl.planning import pcc_tasks as pt
from rwrl.planning.pcc_tasks import TASKS, make_task, pendulum_acceleration, pendulum_frame, pendulum_step


# ----------------------------------------------------------------- planar

@pytest.mark.parametrize("s, valid", [
    ((1.5, 1.5), True),          # the corner the agent's square just fits in
    ((1.4, 10.0), False),        # outside the world
    ((38.5, 38.5), True),
    ((38.6, 20.0), False),
    ((19.0, 4.0), False),        # obstacle centre (20.5, 5.5) at offset (1.5, 1.5): on the square's corner
    ((18.9, 4.0), True),         # offset 1.6 along rows: outside the square
    ((20.5, 20.5), True),        # the free middle between the four inner obstacles
    ((10.5, 19.0), False),       # obstacle (10.5, 20.5) at offset (0, 1.5)
])
def test_planar_valid_positions_by_hand(s, valid):
    assert bool(pt.planar_valid(np.array(s))) is valid


@pytest.mark.parametrize("s, u, expected", [
    ((10.0, 10.0), (2.0, -1.0), (12.0, 9.0)),      # a free move
    ((10.0, 10.0), (5.0, -7.0), (13.0, 7.0)),      # the action is clipped to [-3, 3] per axis
    ((37.0, 2.5), (3.0, -3.0), (38.5, 1.5)),       # clipped to the world [1.5, 38.5]
    ((17.0, 5.5), (3.0, 0.0), (17.0, 5.5)),        # would end at (20, 5.5), obstacle (20.5, 5.5) inside: stays
    ((18.9, 6.0), (1.1, 1.1), (20.0, 7.1)),        # passes the obstacle's square, ends outside it: moves
    ((25.0, 25.0), (-3.0, 0.0), (22.0, 25.0)),     # obstacle (20.5, 27.5) at offset (1.5, 2.5): 2.5 > 1.5, free
    ((25.0, 26.0), (-3.0, 0.0), (25.0, 26.0)),     # the same at offset (1.5, 1.5): on the corner, stays
])
def test_planar_step_by_hand(s, u, expected):
    np.testing.assert_allclose(pt.planar_step(np.array(s), np.array(u)), expected, atol=1e-12)


def test_planar_step_is_batched_like_single_steps():
    rng = np.random.default_rng(0)
    s, u = rng.uniform(1.5, 38.5, (50, 2)), rng.uniform(-4, 4, (50, 2))
    batched = pt.planar_step(s, u)
    np.testing.assert_array_equal(batched, np.array([pt.planar_step(a, b) for a, b in zip(s, u)]))


def test_obstacles_are_drawn_as_the_codes_five_by_five_discs():
    image = pt.OBSTACLE_IMAGE
    assert image.shape == (40, 40) and image.dtype == np.float32 and image.sum() == 6 * 21
    # obstacle (20.5, 5.5) is drawn about pixel (20, 5): distance 2 on, sqrt(5) on, sqrt(8) off
    assert image[20, 5] == image[20, 7] == image[22, 6] == 1.0
    assert image[22, 7] == 0.0 and image[20, 8] == 0.0


def test_the_agent_is_three_by_three_pixels_about_its_rounded_position():
    image = pt.planar_render(np.array([10.4, 30.5]))
    agent = image - pt.OBSTACLE_IMAGE
    rows, cols = np.nonzero(agent)
    assert agent.sum() == 9 and set(rows) == {9, 10, 11} and set(cols) == {30, 31, 32}
    assert set(np.unique(image)) == {0.0, 1.0}


def test_planar_rendering_is_batched_and_deterministic():
    s = np.array([[5.0, 5.0], [30.2, 12.7]])
    batch = pt.planar_render(s)
    assert batch.shape == (2, 40, 40) and batch.dtype == np.float32
    np.testing.assert_array_equal(batch[1], pt.planar_render(s[1]))
    np.testing.assert_array_equal(batch, pt.planar_render(s))


def test_the_planar_grid_is_every_valid_integer_position():
    grid = pt.planar_grid()
    # 37 x 37 integer positions in [2, 38], less a 4 x 4 block of centres per obstacle
    assert grid.shape == (37 * 37 - 6 * 16, 2)
    assert np.all(pt.planar_valid(grid))


def test_planar_triples_are_deterministic_near_integer_and_collision_free():
    task = make_task("planar")
    a, b = task.sample_triples(300, seed=4), task.sample_triples(300, seed=4)
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x, y)
    assert not np.array_equal(a.u, task.sample_triples(300, seed=5).u)
    assert a.x.shape == (300, 40, 40) and a.u.shape == (300, 2) and a.x.dtype == a.u.dtype == np.float32
    np.testing.assert_array_equal(a.s, pt.planar_grid()[:300])
    assert np.all(np.abs(a.u - np.round(a.u)) <= 0.1 + 1e-6) and np.all(np.abs(a.u) <= 3)
    np.testing.assert_allclose(a.s_next, a.s + a.u, atol=1e-6)        # valid actions: no collision, no clip
    np.testing.assert_array_equal(a.x_next, pt.planar_render(a.s_next))


def test_planar_episodes_start_in_the_corner_box_and_aim_at_a_far_corner():
    task, rng = make_task("planar"), np.random.default_rng(0)
    for _ in range(30):
        start, goal = task.draw_episode(rng)
        assert np.all((start >= 3) & (start <= 7))
        assert goal.tolist() in ([37.0, 37.0], [37.0, 3.0], [3.0, 37.0])
    assert task.in_goal(np.array([36.0, 36.0]), np.array([37.0, 37.0]))          # distance sqrt(2) <= 2
    assert not task.in_goal(np.array([35.0, 36.0]), np.array([37.0, 37.0]))      # distance sqrt(5) > 2


# ----------------------------------------------------------------- pendulum

def test_pendulum_acceleration_by_hand():
    # 3 g sin(theta) / l = 3 * 9.81 / 0.5 = 58.86 rad/s^2 at theta = pi/2, no torque
    assert pendulum_acceleration(np.pi / 2, 0.0) == pytest.approx(58.86)
    # a torque alone: -u / (m l^2 / 3) = -0.65 / (0.1 * 0.25 / 3) = -78 rad/s^2
    assert pendulum_acceleration(0.0, 0.65) == pytest.approx(-78.0)


def test_pendulum_rests_upright_and_hanging_and_falls_away_from_upright():
    np.testing.assert_array_equal(pendulum_step(np.zeros(2), np.zeros(1), 1.0), np.zeros(2))
    hanging = pendulum_step(np.array([-np.pi, 0.0]), np.zeros(1), 1.0)
    assert abs(hanging[0]) == pytest.approx(np.pi) and abs(hanging[1]) < 1e-9
    tilted = pendulum_step(np.array([0.1, 0.0]), np.zeros(1), 1.0)
    # small step: theta grows by about 0.5 * 58.86 sin(0.1) * 0.02^2 = 1.18e-3
    assert tilted[0] - 0.1 == pytest.approx(0.5 * 58.86 * np.sin(0.1) * 0.02 ** 2, rel=0.02)


def test_pendulum_clips_torque_and_speed_and_wraps_the_angle():
    np.testing.assert_array_equal(pendulum_step(np.zeros(2), np.array([5.0]), 0.65),
                                  pendulum_step(np.zeros(2), np.array([0.65]), 0.65))
    fast = pendulum_step(np.array([0.0, 3 * np.pi]), np.array([-1.0]), 1.0)
    assert fast[1] == 3 * np.pi
    wrapped = pendulum_step(np.array([np.pi - 1e-3, 5.0]), np.zeros(1), 1.0)
    assert -np.pi <= wrapped[0] < -np.pi + 0.2


def test_pendulum_frames_show_the_rod_where_it_points():
    up, right = pendulum_frame(0.0), pendulum_frame(np.pi / 2)
    assert up.shape == (48, 48) and up.dtype == np.float32 and set(np.unique(up)) == {0.0, 1.0}
    rows, cols = np.nonzero(up)
    # tip at y = 24 - 22 = 2, and the round end reaches 2 pixels beyond it
    assert rows.min() == 0 and rows.max() <= 26 and set(cols) <= {22, 23, 24, 25, 26}
    rows, cols = np.nonzero(right)
    assert cols.max() == 47 and cols.min() >= 22 and set(rows) <= {22, 23, 24, 25, 26}
    np.testing.assert_array_equal(pendulum_frame(np.array([0.0, np.pi / 2])), np.stack([up, right]))


def test_pendulum_triples_share_the_middle_frame_and_are_deterministic():
    task = make_task("swing")
    a = task.sample_triples(50, seed=1)
    assert a.x.shape == (50, 2, 48, 48) and a.u.shape == (50, 1)
    np.testing.assert_array_equal(a.x[:, 1], a.x_next[:, 0])
    np.testing.assert_array_equal(a.x_next[:, 1], pendulum_frame(a.s_next[:, 0]))
    np.testing.assert_allclose(a.s_next, pendulum_step(a.s, a.u, 1.0), atol=1e-6)   # u stored as float32
    np.testing.assert_array_equal(a.x, task.sample_triples(50, seed=1).x)
    assert np.all(np.abs(a.u) <= 1.0) and np.any(np.abs(a.u) > 0.65)    # the data's torque is 1, control's 0.65


def test_swing_and_balance_start_where_the_code_starts_them():
    rng = np.random.default_rng(0)
    for _ in range(20):
        start, goal = make_task("swing").draw_episode(rng)
        assert 0.9 * np.pi <= start[0] <= 0.95 * np.pi and start[1] == 0.0 and goal.tolist() == [0.0, 0.0]
    start, _ = make_task("balance").draw_episode(rng)
    assert start.tolist() == [0.0, 0.0]
    task = make_task("balance")
    assert task.in_goal(np.array([np.pi / 6, 3.0]), None) and not task.in_goal(np.array([-0.53, 0.0]), None)
    obs = task.observe_still(np.zeros(2))
    np.testing.assert_array_equal(obs[0], obs[1])


# ----------------------------------------------------------------- the registry

@pytest.mark.parametrize("name", sorted(TASKS))
def test_every_task_gives_observations_of_its_shape_and_steps_within_its_action_box(name):
    task = make_task(name)
    start, goal = task.draw_episode(np.random.default_rng(0))
    obs = task.observe_still(start)
    assert obs.shape == task.obs_shape and obs.dtype == np.float32
    s = task.step(start, task.action_high * 10)                      # the task clips what it executes
    np.testing.assert_array_equal(s, task.step(start, task.action_high))
    assert task.observe(start, s).shape == task.obs_shape
    data = task.sample_triples(8, seed=0)
    assert data.x.shape == (8, *task.obs_shape) and data.u.shape == (8, task.action_low.size)
    assert task.control.horizon > 0 and task.control.plan_len > 0 and task.dataset in ("planar", "pendulum", "cartpole")


def test_an_unknown_task_is_refused_by_name():
    with pytest.raises(ValueError, match="task = 'threepole' is not allowed"):
        make_task("threepole")
    with pytest.raises(ValueError, match="n = 0 is not allowed"):
        make_task("planar").sample_triples(0, seed=0)
