"""The Gymnasium conventions frameworks (TorchRL, RLlib, SB3) rely on.

* an unknown keyword argument raises a TypeError (TorchRL drops ``frameskip``
  only on a TypeError); a bad value of a known one stays a ValueError;
* every info value is a numpy scalar or array of one dtype and shape per id,
  on every reset and step;
* the vector env's three autoreset modes behave as ``gymnasium.vector.SyncVectorEnv``
  over single rwrl envs seeded with ``spawn_seeds(s, N)``: the seeding
  contract, checked across autoresets (time limit 3, two envs);
* ``env_state()`` / ``restore_env_state()`` continue exactly in every mode;
* ``info_layout='flat'`` gives the nested info as 'outer/inner' keys.
"""

import gymnasium
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env
from gymnasium.vector import AutoresetMode, SyncVectorEnv

import rwrl  # noqa: F401  (registers the rwrl/ ids)
from rwrl.core.seeding import spawn_seeds
from rwrl.envs.gym_env import RwrlEnv, flat_info
from rwrl.envs.vector_env import RwrlVectorEnv

ID = "rwrl/cartpole-swingup-v0"
N, LIMIT, SEED = 2, 3, 5
SAFETY = {"enable": True}
PERTURB = {"enable": True, "param": "pole_length", "scheduler": "uniform", "period": 1}
CHALLENGES = {"safety_spec": SAFETY, "perturb_spec": PERTURB}
MODES = [AutoresetMode.NEXT_STEP, AutoresetMode.SAME_STEP, AutoresetMode.DISABLED]


def _actions(steps: int, n: int = N) -> np.ndarray:
    return np.random.default_rng(0).uniform(-1, 1, (steps, n, 1))


# --- unknown keyword arguments -------------------------------------------------------------

@pytest.mark.parametrize("make", [
    lambda: gymnasium.make(ID, frameskip=4),
    lambda: gymnasium.make_vec(ID, num_envs=2, frameskip=4),
    lambda: RwrlEnv("cartpole", "swingup", frameskip=4),
])
def test_an_unknown_keyword_is_a_type_error_naming_it_and_the_allowed_ones(make):
    with pytest.raises(TypeError, match=r"unexpected keyword argument 'frameskip': "
                                        r"allowed \['combined_challenge', .*'safety_spec'"):
        make()


@pytest.mark.parametrize("kwargs,match", [
    ({"observation_mode": "image"}, r"observation_mode 'image'"),
    ({"info_layout": "deep"}, r"info_layout 'deep' is not allowed.*'flat'"),
    ({"safety_spec": True}, r"safety_spec"),
])
def test_a_bad_value_of_a_known_keyword_stays_a_value_error(kwargs, match):
    with pytest.raises(ValueError, match=match):
        gymnasium.make(ID, **kwargs)


def test_a_bad_autoreset_mode_is_a_value_error_naming_the_modes():
    with pytest.raises(ValueError, match=r"autoreset_mode 'Sometimes' is not allowed.*"
                                         r"\['NEXT_STEP', 'SAME_STEP', 'DISABLED'\]"):
        RwrlVectorEnv("cartpole", "swingup", N, autoreset_mode="Sometimes")


def test_closing_a_half_built_vector_env_frees_nothing_and_raises_nothing():
    # Gymnasium <= 1.2's VectorEnv.__del__ closes an env whose constructor raised, before it had
    # a batched env or a renderer: that close must not raise (it printed "Exception ignored").
    env = RwrlVectorEnv.__new__(RwrlVectorEnv)
    env.close()
    assert env.closed


# --- info dtypes and shapes ----------------------------------------------------------------

def _signature(info: dict) -> dict:
    """Return 'outer/inner' key -> (type, dtype, shape) of every leaf of ``info``."""
    leaves = flat_info(info)
    assert all(isinstance(v, (np.ndarray, np.generic)) for v in leaves.values()), leaves
    return {key: (type(value), value.dtype, value.shape) for key, value in leaves.items()}


def test_single_env_info_values_are_numpy_of_fixed_dtype_and_shape_over_an_episode():
    env = gymnasium.make(ID, time_limit=LIMIT, physics_state_info=True, **CHALLENGES)
    _, info = env.reset(seed=SEED)
    first = _signature(info)
    assert first["cost"] == (np.float64, np.dtype(np.float64), ())
    assert first["diverged"] == (np.ndarray, np.dtype(np.bool_), ())  # see unbatch_info
    assert first["constraints"] == (np.ndarray, np.dtype(np.bool_), (3,))
    assert first["safety_vars/slider_pos"] == (np.float64, np.dtype(np.float64), ())
    assert first["perturbation/pole_length"] == (np.float64, np.dtype(np.float64), ())
    assert first["physics_state"][2] == (env.unwrapped.physics_state_size,)
    for action in _actions(LIMIT, 1)[:, 0]:
        *_, truncated, info = env.step(action)
        assert _signature(info) == first
    assert truncated


@pytest.mark.parametrize("mode", MODES, ids=lambda m: m.name)
def test_vector_env_info_values_are_numpy_of_fixed_dtype_and_shape(mode):
    env = RwrlVectorEnv("cartpole", "swingup", N, time_limit=LIMIT, autoreset_mode=mode,
                        **CHALLENGES)
    _, info = env.reset(seed=SEED)
    first = _signature(info)
    assert first["cost"] == (np.ndarray, np.dtype(np.float64), (N,))
    for t, actions in enumerate(_actions(2 * LIMIT)):
        if mode is AutoresetMode.DISABLED and t == LIMIT:
            env.reset(options={"reset_mask": np.ones(N, bool)})
        info = env.step(actions)[4]
        finals = info.pop("final_info", None)
        plain = {k: v for k, v in _signature(info).items() if k.lstrip("_") != "final_obs"}
        assert plain == {**first, **({"_final_info": (np.ndarray, np.dtype(bool), (N,))}
                                     if finals is not None else {})}
        if finals is not None:
            assert {k: v for k, v in _signature(finals).items() if "/_" not in k
                    and not k.startswith("_")} == first


def test_check_env_passes_on_the_single_env_in_both_info_layouts():
    for layout in ("nested", "flat"):
        check_env(RwrlEnv("cartpole", "swingup", info_layout=layout, **CHALLENGES),
                  skip_render_check=True)


# --- autoreset modes against SyncVectorEnv --------------------------------------------------

def _pair(mode, **kwargs):
    """Return (rwrl's vector env, SyncVectorEnv over single rwrl envs), both reset with SEED."""
    ours = RwrlVectorEnv("cartpole", "swingup", N, time_limit=LIMIT, autoreset_mode=mode,
                         **CHALLENGES, **kwargs)
    theirs = SyncVectorEnv([lambda: RwrlEnv("cartpole", "swingup", time_limit=LIMIT,
                                            **CHALLENGES, **kwargs)] * N,
                           autoreset_mode=mode)
    first = ours.reset(seed=SEED), theirs.reset(seed=spawn_seeds(SEED, N))
    return ours, theirs, first


def _assert_same_info(ours: dict, theirs: dict) -> None:
    """Assert equal infos; SyncVectorEnv's own '_<key>' masks of the plain keys aside."""
    theirs = {k: v for k, v in theirs.items()
              if not k.startswith("_") or k[1:] in ("final_obs", "final_info")}
    assert sorted(ours) == sorted(theirs)
    for key, value in theirs.items():
        if key == "final_obs":
            assert [o is None for o in ours[key]] == [o is None for o in value]
            for a, b in zip(ours[key], value):
                if b is not None:
                    np.testing.assert_array_equal(a, b)
        elif key == "final_info":  # masks included: built as SyncVectorEnv builds them
            _assert_same_tree(ours[key], value)
        elif isinstance(value, dict):
            _assert_same_info(ours[key], value)
        else:
            assert ours[key].dtype == value.dtype, key
            np.testing.assert_array_equal(ours[key], value)


def _assert_same_tree(ours: dict, theirs: dict) -> None:
    """Assert the same keys (masks too), dtypes and values at every level."""
    assert sorted(ours) == sorted(theirs)
    for key, value in theirs.items():
        if isinstance(value, dict):
            _assert_same_tree(ours[key], value)
        else:
            assert ours[key].dtype == value.dtype, key
            np.testing.assert_array_equal(ours[key], value)


def _assert_same_step(ours, theirs) -> None:
    for a, b in zip(ours[:4], theirs[:4]):
        np.testing.assert_array_equal(a, b)
    _assert_same_info(ours[4], theirs[4])


@pytest.mark.parametrize("mode", MODES, ids=lambda m: m.name)
def test_every_autoreset_mode_matches_sync_vector_env_over_spawned_seeds(mode):
    ours, theirs, (first_ours, first_theirs) = _pair(mode)
    np.testing.assert_array_equal(first_ours[0], first_theirs[0])
    _assert_same_info(first_ours[1], first_theirs[1])
    for t, actions in enumerate(_actions(3 * LIMIT + 1)):  # crosses two episode ends
        if mode is AutoresetMode.DISABLED and t % LIMIT == 0 and t:
            mask = {"reset_mask": np.array([True, True])}
            got, want = ours.reset(options=dict(mask)), theirs.reset(options=dict(mask))
            np.testing.assert_array_equal(got[0], want[0])
        _assert_same_step(ours.step(actions), theirs.step(actions))


def test_same_step_returns_the_new_episode_and_the_final_one_in_info():
    # env 0 is reset again after step 1, so it ends at step 4, env 1 at step 3
    ours, theirs, _ = _pair(AutoresetMode.SAME_STEP)
    actions = _actions(5)
    masks = []
    for t in range(5):
        if t == 1:
            mask = np.array([True, False])
            ours.reset(options={"reset_mask": mask})
            theirs.reset(options={"reset_mask": mask.copy()})
        step = ours.step(actions[t])
        _assert_same_step(step, theirs.step(actions[t]))
        masks.append(step[4].get("_final_obs", np.zeros(N, bool)).tolist())
        if step[3].any():
            assert step[4]["final_info"]["_cost"].tolist() == step[3].tolist()
    assert masks == [[False, False], [False, False], [False, True], [True, False],
                     [False, False]]


def test_disabled_mode_refuses_to_step_an_ended_env_as_sync_vector_env_does():
    ours, theirs, _ = _pair(AutoresetMode.DISABLED)
    for actions in _actions(LIMIT):
        _assert_same_step(ours.step(actions), theirs.step(actions))
    with pytest.raises(AssertionError, match=r"env\(s\) \[0, 1\] ended.*reset_mask"):
        ours.step(_actions(1)[0])
    with pytest.raises(AssertionError):
        theirs.step(_actions(1)[0])
    ours.reset(options={"reset_mask": np.array([True, False])})
    with pytest.raises(AssertionError, match=r"env\(s\) \[1\] ended"):
        ours.step(_actions(1)[0])


def test_same_step_with_physics_state_gives_the_final_state_in_final_info():
    ours, theirs, _ = _pair(AutoresetMode.SAME_STEP, physics_state_info=True)
    for actions in _actions(LIMIT):
        step = ours.step(actions)
        _assert_same_step(step, theirs.step(actions))
    assert step[4]["_final_info"].all()
    assert not np.array_equal(step[4]["final_info"]["physics_state"], step[4]["physics_state"])


# --- make_vec forwarding, metadata ---------------------------------------------------------

@pytest.mark.parametrize("mode", [AutoresetMode.SAME_STEP, "SAME_STEP", "SameStep"])
def test_make_vec_passes_autoreset_mode_to_the_vector_entry_point(mode):
    env = gymnasium.make_vec(ID, num_envs=4, vectorization_mode="vector_entry_point",
                             autoreset_mode=mode)
    assert isinstance(env.unwrapped, RwrlVectorEnv)
    assert env.metadata["autoreset_mode"] is AutoresetMode.SAME_STEP
    assert env.unwrapped.autoreset_mode is AutoresetMode.SAME_STEP
    assert RwrlVectorEnv.metadata["autoreset_mode"] is AutoresetMode.NEXT_STEP  # class untouched


def test_make_vec_refuses_vector_kwargs_for_vector_entry_points():
    # Gymnasium's own rule (envs/registration.py make_vec): keywords go to the entry point.
    with pytest.raises(gymnasium.error.Error, match="vector_kwargs"):
        gymnasium.make_vec(ID, num_envs=4, vectorization_mode="vector_entry_point",
                           vector_kwargs={"autoreset_mode": AutoresetMode.SAME_STEP})


# --- snapshots in every mode ---------------------------------------------------------------

@pytest.mark.parametrize("mode", MODES, ids=lambda m: m.name)
def test_a_restored_vector_env_continues_exactly_in_every_mode(mode):
    def make():
        return RwrlVectorEnv("cartpole", "swingup", N, time_limit=LIMIT, autoreset_mode=mode,
                             **CHALLENGES)

    def run(env):
        out = []
        for t, actions in enumerate(_actions(2 * LIMIT)):
            if mode is AutoresetMode.DISABLED and t % LIMIT == 0:
                out.append(env.reset(options={"reset_mask": np.ones(N, bool)}))
            out.append(env.step(actions))
        return out

    env = make()
    env.reset(seed=SEED)
    for actions in _actions(LIMIT):  # every episode just ended
        env.step(actions)
    snapshot = env.env_state()
    assert snapshot["vector/resetting"].tolist() == [mode is not AutoresetMode.SAME_STEP] * N
    expected = run(env)
    fresh = make()
    fresh.restore_env_state(snapshot)
    for got, want in zip(run(fresh), expected, strict=True):
        for a, b in zip(got[:-1], want[:-1]):
            np.testing.assert_array_equal(a, b)
        _assert_same_info(got[-1], want[-1])


def test_a_pending_next_step_autoreset_cannot_be_restored_into_same_step():
    env = RwrlVectorEnv("cartpole", "swingup", N, time_limit=LIMIT)
    env.reset(seed=SEED)
    for actions in _actions(LIMIT):
        env.step(actions)
    same = RwrlVectorEnv("cartpole", "swingup", N, time_limit=LIMIT, autoreset_mode="SAME_STEP")
    with pytest.raises(ValueError, match=r"'vector/resetting'.*SAME_STEP"):
        same.restore_env_state(env.env_state())


# --- flat info layout ----------------------------------------------------------------------

def test_flat_info_layout_gives_the_nested_entries_as_slash_keys():
    nested = gymnasium.make(ID, **CHALLENGES)
    flat = gymnasium.make(ID, info_layout="flat", **CHALLENGES)
    _, a = nested.reset(seed=SEED)
    _, b = flat.reset(seed=SEED)
    assert sorted(b) == ["constraints", "cost", "diverged", "perturbation/pole_length",
                         "safety_vars/actions", "safety_vars/joint_angle_cos",
                         "safety_vars/joint_vel", "safety_vars/slider_accel",
                         "safety_vars/slider_pos"]
    assert b["safety_vars/slider_pos"] == a["safety_vars"]["slider_pos"]


def test_flat_info_layout_in_same_step_flattens_final_info_too():
    env = RwrlVectorEnv("cartpole", "swingup", N, time_limit=LIMIT, autoreset_mode="SAME_STEP",
                        info_layout="flat", **CHALLENGES)
    env.reset(seed=SEED)
    for actions in _actions(LIMIT):
        info = env.step(actions)[4]
    assert not any(isinstance(v, dict) for k, v in info.items() if k != "final_info")
    assert not any(isinstance(v, dict) for v in info["final_info"].values())
    assert info["final_info"]["_safety_vars/slider_pos"].tolist() == [True, True]
