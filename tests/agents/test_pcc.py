"""PCC's losses (rwrl.agents.pcc) by hand on a tiny linear model; training's seed; saving; control end to end.

The hand model: x in {0, 1}^2, one latent, one action::

    P(z | x)          = N(w . x, 0.5^2),        w = (1, 2)
    P(x | z)          = Bernoulli(sigmoid(v z)), v = (1, -1)
    P(z' | z, u)      = N(a z + b u, 0.25^2),   a = 1, b = 2
    Q(z | z', u, x)   = N(c z' + d u, 1),       c = 0.4, d = 1
"""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from rwrl.agents import pcc
from rwrl.planning import pcc_tasks

X_T, X_TP1, U_T = jnp.array([1.0, 0.0]), jnp.array([0.0, 1.0]), jnp.array([0.5])


def log_sigmoid(v):
    return -math.log1p(math.exp(-v))


def hand_model(dynamics=None, amortized_heads=None):
    """The linear model above; ``dynamics(z, u)`` replaces the transition's mean when given."""
    mean = dynamics or (lambda z, u: 1.0 * z + 2.0 * u)

    def transition(p, z, u):
        heads = amortized_heads or (None, None)
        return mean(z, u), jnp.full(z.shape, math.log(0.25)), *heads

    return pcc.PCCModel(
        encode=lambda p, x: (jnp.array([x @ jnp.array([1.0, 2.0])]), jnp.array([math.log(0.5)])),
        decode=lambda p, z: jnp.array([1.0, -1.0]) * z[0],
        transition=transition,
        backward=lambda p, z_next, u, x: (0.4 * z_next + 1.0 * u, jnp.zeros(1)),
        init=lambda key: {}, z_dim=1, u_dim=1)


NOISE = pcc.Noise(z_hat=jnp.array([1.0]), z_back=jnp.array([-1.0]), z_prior=jnp.array([2.0]),
                  curv_z=jnp.array([1.0]), curv_u=jnp.array([-1.0]))


def test_prediction_and_consistency_by_hand():
    pred, consis = pcc.prediction_consistency(hand_model(), {}, X_T, U_T, X_TP1, NOISE)
    # Q(z_hat | x') = N(2, 0.5): z_hat = 2 + 0.5 * 1 = 2.5
    # Q(z | z_hat, u, x) = N(0.4 * 2.5 + 0.5, 1) = N(1.5, 1): z_t = 1.5 - 1 = 0.5
    # P(z_hat | z_t, u) = N(0.5 + 2 * 0.5, 0.25) = N(1.5, 0.25): log p(2.5) = -0.5 * 4^2 - log 0.25 - 0.5 log 2 pi
    log_trans = -8.0 - math.log(0.25) - 0.5 * math.log(2 * math.pi)
    # KL(N(1.5, 1) || N(1, 0.5)) = log(0.5 / 1) + (1 + 0.5^2) / (2 * 0.25) - 0.5
    kl = math.log(0.5) + 1.25 / 0.5 - 0.5
    # H(N(., 0.5)) = 0.5 log(2 pi e) + log 0.5
    entropy = 0.5 * math.log(2 * math.pi * math.e) + math.log(0.5)
    expected_consis = kl - entropy - log_trans                         # 8.113707
    # decode z_hat = 2.5: logits (2.5, -2.5); x' = (0, 1): log sigmoid(-2.5) twice
    expected_pred = -2 * log_sigmoid(-2.5) + expected_consis           # 13.271485
    assert float(consis) == pytest.approx(expected_consis, rel=1e-5)
    assert float(pred) == pytest.approx(expected_pred, rel=1e-5)
    assert expected_consis == pytest.approx(8.113707, rel=1e-6) and expected_pred == pytest.approx(13.271485, rel=1e-6)


def test_vae_bound_and_deterministic_terms_by_hand():
    model = hand_model()
    # z = 1 + 0.5 * 2 = 2, logits (2, -2), x = (1, 0): -2 log sigmoid(2)
    # KL(N(1, 0.5) || N(0, 1)) = -log 0.5 + (0.25 + 1) / 2 - 0.5
    vae = -2 * log_sigmoid(2.0) + (-math.log(0.5) + 1.25 / 2 - 0.5)
    assert float(pcc.vae_bound(model, {}, X_T, NOISE.z_prior)) == pytest.approx(vae, rel=1e-5)   # 1.072003
    assert float(pcc.reconstruction(model, {}, X_T, NOISE.z_prior)) == pytest.approx(-2 * log_sigmoid(2.0), rel=1e-5)
    # mean z = 1, mean z' = 1 + 2 * 0.5 = 2, logits (2, -2), x' = (0, 1): -2 log sigmoid(-2)
    det = pcc.deterministic_prediction(model, {}, X_T, U_T, X_TP1)
    assert float(det) == pytest.approx(-2 * log_sigmoid(-2.0), rel=1e-5)                       # 4.253856


def test_curvature_of_linear_dynamics_is_exactly_zero_even_with_a_non_symmetric_jacobian():
    M, N = jnp.array([[1.0, 3.0], [-2.0, 0.5]]), jnp.array([[1.0], [2.0]])
    model = hand_model(dynamics=lambda z, u: M @ z + N @ u)
    eps_z, eps_u = jnp.array([1.0, -2.0]), jnp.array([0.75])
    # dyadic numbers (delta = 1/8): every product and sum is exact in float32, so the loss is exactly 0
    assert float(pcc.curvature(model, {}, jnp.array([0.25, -1.0]), U_T, eps_z, eps_u, 0.125)) == 0.0
    # with delta = 0.1 only rounding is left
    assert float(pcc.curvature(model, {}, jnp.array([0.3, -1.1]), U_T, eps_z, eps_u, 0.1)) < 1e-12
    # the code's vector-Jacobian product J^T eps would leave ||(M - M^T) delta eps_z||^2 here (delta 0.1):
    # M - M^T = [[0, 5], [-5, 0]], times (0.1, -0.2) = (-1, -0.5): 1 + 0.25 = 1.25
    vjp_error = (M - M.T) @ (0.1 * eps_z)
    assert float(jnp.sum(vjp_error ** 2)) == pytest.approx(1.25, rel=1e-5)


def test_curvature_of_a_square_is_the_fourth_power_of_the_perturbation():
    # f(z, u) = z^2 + u: f(z + d) - f(z) - 2 z d = d^2, so the loss is sum d^4 with d = 0.1 * eps_z
    model = hand_model(dynamics=lambda z, u: z ** 2 + u)
    loss = pcc.curvature(model, {}, jnp.array([1.0, 2.0]), U_T, jnp.array([1.0, -2.0]), jnp.array([3.0]), 0.1)
    assert float(loss) == pytest.approx(0.1 ** 4 + 0.2 ** 4, rel=1e-4)


def test_amortized_curvature_uses_the_jacobian_heads():
    M, N = jnp.array([[1.0, 3.0], [-2.0, 0.5]]), jnp.array([[1.0], [2.0]])
    heads = (M + jnp.array([[0.5, 0.0], [0.0, 0.0]]), N)             # A head off by 0.5 in one entry
    model = hand_model(dynamics=lambda z, u: M @ z + N @ u, amortized_heads=heads)
    loss = pcc.curvature(model, {}, jnp.zeros(2), U_T, jnp.array([1.0, -2.0]), jnp.array([0.7]), 0.1, amortized=True)
    # the error is -(0.5 * 0.1 * 1, 0) : 0.0025
    assert float(loss) == pytest.approx(0.0025, rel=1e-5)


@pytest.mark.parametrize("ablation, weights", [("pcc", (1, 8, 8)), ("no-curvature", (1, 8, 0)),
                                               ("no-consistency", (1, 0, 8))])
def test_the_total_weighs_the_terms_as_configured(ablation, weights):
    config = pcc.make_config("planar", ablation)
    assert (config.lambda_p, config.lambda_c, config.lambda_cur) == weights
    terms = pcc.pcc_loss(hand_model(), config, {}, X_T, U_T, X_TP1, NOISE)
    assert float(terms["curvature"]) < 1e-12                          # linear dynamics: 0 but for rounding
    expected = (weights[0] * terms["prediction"] + weights[1] * terms["consistency"] + 0.01 * terms["vae"]
                + 0.3 * terms["deterministic"])
    assert float(terms["total"]) == pytest.approx(float(expected), rel=1e-6)
    assert float(terms["prediction"]) == pytest.approx(13.271485, rel=1e-5)


def test_the_extra_terms_switch_off_with_their_weights():
    config = pcc.make_config("planar", vae_coeff=0.0, determ_coeff=0.0)
    terms = pcc.pcc_loss(hand_model(), config, {}, X_T, U_T, X_TP1, NOISE)
    assert float(terms["vae"]) == float(terms["deterministic"]) == 0.0
    assert float(terms["total"]) == pytest.approx(float(terms["prediction"] + 8 * terms["consistency"]), rel=1e-6)


def test_gaussian_pieces_by_hand():
    assert float(pcc.gaussian_kl(jnp.zeros(3), jnp.zeros(3), jnp.zeros(3), jnp.zeros(3))) == 0.0
    # KL(N(1, e^0.5) || N(0, 1)) = 0.5 (e + 1 - 1) - 0.5
    assert float(pcc.gaussian_kl(jnp.ones(1), jnp.full(1, 0.5), jnp.zeros(1), jnp.zeros(1))) == pytest.approx(
        0.5 * math.e - 0.5, rel=1e-6)
    log_prob = pcc.gaussian_log_prob(jnp.zeros(2), jnp.zeros(2), jnp.zeros(2))
    assert float(log_prob) == pytest.approx(-math.log(2 * math.pi))    # two coordinates of -0.5 log 2 pi
    assert float(pcc.bernoulli_log_prob(jnp.array([1.0, 0.0]), jnp.zeros(2))) == pytest.approx(2 * math.log(0.5))


@pytest.mark.parametrize("field, value", [("z_dim", 0), ("lambda_c", -1.0), ("delta", 0.0), ("batch_size", 0)])
def test_bad_config_values_are_refused_by_name(field, value):
    with pytest.raises(ValueError, match=f"{field} = "):
        pcc.PCCConfig(**{field: value})
    with pytest.raises(ValueError, match="ablation = 'none'"):
        pcc.make_config("planar", "none")


def test_adam_weight_decay_is_added_to_the_gradient_before_adam():
    # zero loss gradient: Adam's first step on g = wd p is -lr g / (|g| + 1e-8) = -lr sign(p), not AdamW's -lr wd p
    config = pcc.PCCConfig()
    opt = pcc.make_optimizer(config)
    params = {"w": jnp.array([2.0, -0.5])}
    updates, _ = opt.update({"w": jnp.zeros(2)}, opt.init(params), params)
    np.testing.assert_allclose(updates["w"], [-5e-4, 5e-4], rtol=1e-4)


TINY = dict(encoder_hidden=(16,), dynamics_hidden=(8,), backward_embed=(2, 2, 8), backward_hidden=8, epochs=3,
            batch_size=20, warmup_epochs=1)   # 40 examples: two full batches, one compiled shape


@pytest.fixture(scope="module")
def planar_data():
    return pcc_tasks.make_task("planar").sample_triples(40, seed=0)


def test_training_is_reproducible_from_its_seed(planar_data):
    config = pcc.make_config("planar", **TINY)
    d = planar_data
    a, b = (pcc.train(config, d.x, d.u, d.x_next, seed=7) for _ in range(2))
    other = pcc.train(config, d.x, d.u, d.x_next, seed=8)
    assert a.history == b.history and [row["warmup"] for row in a.history] == [1.0, 0.0, 0.0]
    jax.tree_util.tree_map(np.testing.assert_array_equal, a.params, b.params)
    assert a.history != other.history


def test_params_round_trip_through_npz_without_pickle(planar_data, tmp_path):
    config = pcc.make_config("planar", **TINY)
    d = planar_data
    result = pcc.train(config, d.x, d.u, d.x_next, seed=0)
    path = pcc.save_params(tmp_path / "pcc.npz", result.params, config, (40, 40), 2)
    params, loaded, obs_shape, u_dim = pcc.load_params(path)
    assert loaded == config and obs_shape == (40, 40) and u_dim == 2
    jax.tree_util.tree_map(np.testing.assert_array_equal, params, result.params)
    np.load(path, allow_pickle=False)   # readable without pickle


def oracle_planar_model():
    """A 'perfect' planar latent: the agent's pixel centroid, and z' = z + u (obstacles unknown)."""
    rows, cols = np.mgrid[:40, :40]
    coords = jnp.asarray(np.stack([rows.ravel(), cols.ravel()], axis=1), jnp.float32)
    background = jnp.asarray(pcc_tasks.OBSTACLE_IMAGE.ravel())

    def encode(p, x):
        agent = jnp.clip(x.reshape(-1) - background, 0.0, 1.0)
        return agent @ coords / jnp.sum(agent), jnp.zeros(2)

    return pcc.PCCModel(encode=encode, decode=None, transition=lambda p, z, u: (z + u, jnp.zeros(2), None, None),
                        backward=None, init=None, z_dim=2, u_dim=2)


def test_control_with_a_perfect_latent_reaches_the_open_goal_and_stays():
    task = pcc_tasks.make_task("planar")
    model = oracle_planar_model()
    controller = pcc.make_controller(model, task)
    out = pcc.run_episode(model, {}, task, controller, np.array([5.0, 5.0]), np.array([37.0, 37.0]), seed=0)
    # 32 * sqrt(2) = 45 pixels at up to 3 * sqrt(2) per step: about 11 steps to arrive, then 29 of 40 in the goal
    assert out["in_goal"] >= 25 and out["percent"] == 100.0 * out["in_goal"] / 40
    assert out["states"].shape == (41, 2)
    np.testing.assert_allclose(out["states"][-1], [37.0, 37.0], atol=2.0)


def test_amortized_control_plans_with_the_jacobian_heads():
    # z' = z + u with heads (I, I): the heads are the true Jacobians, so both planners agree;
    # with a B head of 2 I the linearisation is wrong and the first plan differs
    task = pcc_tasks.make_task("planar")

    def model_with(b_head):
        return pcc.PCCModel(encode=None, decode=None, backward=None, init=None, z_dim=2, u_dim=2,
                            transition=lambda p, z, u: (z + u, jnp.zeros(2), jnp.eye(2), b_head * jnp.eye(2)))

    z, goal = np.array([5.0, 5.0]), np.array([20.0, 30.0])
    plans = []
    for model, amortized in ((model_with(1.0), False), (model_with(1.0), True), (model_with(2.0), True)):
        controller = pcc.make_controller(model, task, amortized=amortized)
        controller.reset(seed=0)
        plans.append(np.asarray(controller.plan({}, z, goal).u))
    np.testing.assert_allclose(plans[1], plans[0], rtol=1e-5, atol=1e-5)
    assert np.abs(plans[2] - plans[0]).max() > 0.1


def test_amortized_heads_get_gradient_from_the_curvature_loss_alone(planar_data):
    config = pcc.make_config("planar", **TINY, amortized=True)
    model = pcc.make_model(config, (40, 40), 2)
    params = model.init(jax.random.PRNGKey(0))
    noise = pcc.draw_noise(jax.random.PRNGKey(1), 2, 2)
    x, u, x_next = (jnp.asarray(a[0]) for a in (planar_data.x, planar_data.u, planar_data.x_next))
    grads = {name: jax.grad(lambda p: pcc.pcc_loss(model, config, p, x, u, x_next, noise)[name])(params)
             for name in ("total", "curvature")}
    # dense layers 2 and 3 of the dynamics are the A and B heads: only the curvature term reaches them
    for head in ("TorchDense_2", "TorchDense_3"):
        total = grads["total"]["dynamics"]["params"][head]["kernel"]
        assert np.abs(total).max() > 0
        np.testing.assert_allclose(total, 8.0 * grads["curvature"]["dynamics"]["params"][head]["kernel"], rtol=1e-5)
