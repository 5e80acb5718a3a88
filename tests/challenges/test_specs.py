"""Spec parsing: every invalid spec raises a message naming the field, value and range."""

import numpy as np
import pytest

from rwrl.challenges.combined import combined_specs
from rwrl.challenges.delay import DelaySpec
from rwrl.challenges.noise import GaussianSpec, RunSpec
from rwrl.challenges.realtime import checked_latency
from rwrl.challenges.specs import parse_specs
from rwrl.domains.base import PerturbParam
from rwrl.domains.cartpole import Cartpole
from rwrl.tasks.facts import TaskFacts

FACTS = TaskFacts("cartpole", ("slider_pos", "slider_accel", "balance_velocity"),
                  {"pole_length": PerturbParam("pole_length", 1.0, 0.3, 3.0, 0.3, None),
                   "pole_mass": PerturbParam("pole_mass", 0.1, 0.1, 10.0, 0.5, None)},
                  combined_perturbation=Cartpole.COMBINED_PERTURBATION)


def parse(**kwargs):
    return parse_specs(FACTS, **kwargs)


@pytest.mark.parametrize("kwargs, match", [
    # unknown keys name the key and the allowed keys
    (dict(delay_spec={"enable": True, "action": 3}),
     r"delay_spec: unknown key 'action'; allowed keys: \['actions', 'enable', 'observations'"),
    (dict(noise_spec={"gausian": {}}), r"noise_spec: unknown key 'gausian'; allowed keys"),
    (dict(noise_spec={"dropped": {"enable": True, "obs_prob": 0.1}}),
     r"noise_spec\['dropped'\]: unknown key 'obs_prob'; allowed keys: \['actions_prob'"),
    (dict(perturb_spec={"enable": True, "parameter": "pole_length"}),
     r"perturb_spec: unknown key 'parameter'; allowed keys: \['enable', 'max', 'min'"),
    (dict(safety_spec={"enable": True, "coeff": 0.5}),
     r"safety_spec: unknown key 'coeff'; allowed keys: \['constraints', 'enable'"),
    (dict(dimensionality_spec={"enable": True, "num": 3}),
     r"dimensionality_spec: unknown key 'num'; allowed keys"),
    (dict(multiobj_spec={"enable": True, "alpha": 0.5}), r"multiobj_spec: unknown key 'alpha'"),
    (dict(realtime_spec={"enable": True, "deadline": 0.5}),
     r"realtime_spec: unknown key 'deadline'"),
    # out-of-range values name the field, the value and the range
    (dict(delay_spec={"enable": True, "actions": -1}),
     r"delay_spec\['actions'\] = -1 is out of range: allowed integers in \[0, 1000\]"),
    (dict(delay_spec={"enable": True, "rewards": 1.5}),
     r"delay_spec\['rewards'\] = 1.5 is not an integer"),
    (dict(noise_spec={"dropped": {"enable": True, "observations_prob": 1.5}}),
     r"noise_spec\['dropped'\]\['observations_prob'\] = 1.5 is out of range: allowed \[0.0, 1.0\]"),
    (dict(noise_spec={"stuck": {"enable": True, "actions_prob": -0.1}}),
     r"noise_spec\['stuck'\]\['actions_prob'\] = -0.1 is out of range"),
    (dict(noise_spec={"repetition": {"enable": True, "actions_steps": 0}}),
     r"noise_spec\['repetition'\]\['actions_steps'\] = 0 is out of range: "
     r"allowed integers in \[1, 1000\]"),
    (dict(noise_spec={"gaussian": {"enable": True, "actions": -0.1}}),
     r"noise_spec\['gaussian'\]\['actions'\] = -0.1 is out of range: allowed \[0.0, 1000000.0\]"),
    (dict(safety_spec={"enable": True, "safety_coeff": 1.5}),
     r"safety_spec\['safety_coeff'\] = 1.5 is out of range: allowed \[0.0, 1.0\]"),
    (dict(safety_spec={"enable": True, "safety_coeff": -0.1}),
     r"safety_spec\['safety_coeff'\] = -0.1 is out of range"),
    (dict(safety_spec={"enable": True, "limits": {}}), r"safety_spec\['limits'\] is not supported"),
    (dict(safety_spec={"enable": True, "constraints": ["slider_speed"]}),
     r"entry 'slider_speed' \(domain 'cartpole'\) = 'slider_speed' is unknown: allowed "
     r"\['slider_pos', 'slider_accel', 'balance_velocity', 'action_roc'\]"),
    (dict(safety_spec={"enable": True, "constraints": {"slider_pos_constraint": lambda sv: sv}}),
     r"names a built-in constraint"),
    (dict(safety_spec={"enable": True, "constraints": {"mine": 3}}),
     r"\['mine'\] = 3 is not callable"),
    (dict(safety_spec={"enable": True, "constraints": ["slider_pos", "slider_pos_constraint"]}),
     r"lists 'slider_pos' twice"),
    (dict(safety_spec={"constraints": "slider_pos"}),
     r"safety_spec\['constraints'\] = 'slider_pos' is not allowed: give a list of names"),
    (dict(safety_spec={"enable": "yes"}), r"safety_spec\['enable'\] = 'yes' is not a bool"),
    (dict(perturb_spec={"enable": True, "scheduler": "sine"}),
     r"perturb_spec\['scheduler'\] = 'sine' is unknown: allowed \['constant', 'random_walk'"),
    (dict(perturb_spec={"enable": True, "param": "thigh_length"}),
     r"perturb_spec\['param'\] \(domain 'cartpole'\) = 'thigh_length' is unknown: allowed "
     r"\['pole_length', 'pole_mass'\]"),
    (dict(perturb_spec={"enable": True, "max": 5.0}),
     r"perturb_spec\['max'\] \(pole_length\) = 5.0 is out of range: allowed \[0.3, 3.0\]"),
    (dict(perturb_spec={"enable": True, "min": 2.0, "max": 1.0}),
     r"perturb_spec\['max'\] \(pole_length\) = 1.0 is out of range: allowed \[2.0, 3.0\]"),
    (dict(perturb_spec={"enable": True, "min": 1.0, "max": 2.0, "start": 0.5}),
     r"perturb_spec\['start'\] \(pole_length\) = 0.5 is out of range: allowed \[1.0, 2.0\]"),
    (dict(perturb_spec={"enable": True, "period": 0}),
     r"perturb_spec\['period'\] = 0 is out of range: allowed integers in \[1, 1000000\]"),
    (dict(perturb_spec={"enable": True, "std": -1}), r"perturb_spec\['std'\] \(pole_length\) = -1"),
    (dict(dimensionality_spec={"enable": True, "num_random_state_observations": -2}),
     r"dimensionality_spec\['num_random_state_observations'\] = -2 is out of range"),
    (dict(multiobj_spec={"enable": True, "coeff": 2.0}),
     r"multiobj_spec\['coeff'\] = 2.0 is out of range: allowed \[0.0, 1.0\]"),
    (dict(multiobj_spec={"enable": True, "objective": "energy"}),
     r"multiobj_spec\['objective'\] = 'energy' is unknown: allowed \['safety'\]"),
    (dict(realtime_spec={"enable": True, "mode": "async", "budget": 0.01}),
     r"realtime_spec\['mode'\] = 'async' is unknown: allowed \['wallclock', 'simulated'\]"),
    (dict(realtime_spec={"enable": True, "budget": 0.01, "fallback": "last"}),
     r"realtime_spec\['fallback'\] = 'last' is unknown: allowed \['hold', 'zero'\]"),
    (dict(realtime_spec={"enable": True, "budget": -0.01}),
     r"realtime_spec\['budget'\] = -0.01 is out of range"),
    (dict(realtime_spec={"enable": True, "mode": "simulated"}),
     r"realtime_spec\['budget'\] is required"),
    (dict(realtime_spec={"enable": True, "mode": "wallclock", "budget": 0.01, "latency": 0.1}),
     r"realtime_spec\['latency'\] is only allowed in 'simulated' mode"),
    (dict(realtime_spec={"enable": True, "budget": 0.01, "latency": [0.0, -1.0]}),
     r"realtime_spec\['latency'\]\[1\] = -1.0 is out of range"),
    (dict(combined_challenge="extreme"),
     r"combined_challenge = 'extreme' is unknown: allowed \['easy', 'medium', 'hard'\]"),
    (dict(combined_challenge="easy", delay_spec={"enable": True, "actions": 1}),
     r"combined_challenge='easy' sets the delay, noise, perturbation and dimensionality specs; "
     r"do not pass \['delay_spec'\] too"),
    (dict(safety_spec=[1, 2]), r"safety_spec must be a dict or None, got list \[1, 2\]"),
])
def test_invalid_spec_raises_naming_field_value_and_range(kwargs, match):
    with pytest.raises(ValueError, match=match):
        parse(**kwargs)


def test_empty_or_disabled_specs_are_off():
    specs = parse(delay_spec={}, noise_spec={"gaussian": {"enable": False, "actions": 1.0}},
                  safety_spec={"enable": False}, perturb_spec=None)
    assert (specs.delay, specs.noise, specs.safety, specs.perturb) == (None, None, None, None)


def test_enable_defaults_to_true_when_keys_are_given():
    # The published suite needed 'enable': True; rwrl switches a non-empty spec on.
    assert parse(delay_spec={"actions": 2}).delay == DelaySpec(actions=2)


def test_noise_spec_fields_and_defaults():
    noise = parse(noise_spec={"gaussian": {"enable": True, "actions": 0.2},
                              "dropped": {"enable": True, "observations_prob": 0.1,
                                          "observations_steps": 4}}).noise
    assert noise.gaussian == GaussianSpec(actions=0.2, observations=0.0)
    assert noise.dropped == RunSpec(observations_prob=0.1, observations_steps=4)
    assert noise.stuck is None and noise.repetition is None


def test_perturb_defaults_are_the_domains():
    spec = parse(perturb_spec={"enable": True}).perturb
    # The first parameter of the domain and its reference (start, min, max, std).
    assert (spec.param, spec.scheduler, spec.period) == ("pole_length", "constant", 1)
    assert (spec.start, spec.min, spec.max, spec.std) == (1.0, 0.3, 3.0, 0.3)
    # A range that excludes the default start moves the start into it.
    assert parse(perturb_spec={"min": 1.5, "max": 2.0}).perturb.start == 1.5


def test_safety_constraint_names_with_or_without_suffix_and_user_constraints():
    def mine(sv):
        return np.ones(1, bool)
    spec = parse(safety_spec={"constraints": {"slider_pos_constraint": None, "action_roc": None,
                                              "mine": mine}}).safety
    assert spec.constraints == ("slider_pos", "action_roc", "mine")
    assert spec.user_constraints == {"mine": mine}
    assert spec.observations is True and spec.safety_coeff == 1.0
    assert parse(safety_spec={"enable": True}).safety.constraints == FACTS.constraint_names


def test_combined_challenge_may_come_with_safety_multiobj_and_realtime():
    specs = parse(combined_challenge="medium", safety_spec={"enable": True},
                  multiobj_spec={"enable": True, "reward": True, "coeff": 0.3},
                  realtime_spec={"budget": 0.01})
    assert specs.delay == DelaySpec(6, 6, 20) and specs.safety and specs.multiobj
    assert specs.realtime.budget == 0.01


def test_combined_specs_are_published_dictionaries():
    hard = combined_specs("hard", FACTS)
    assert hard["delay_spec"] == {"enable": True, "actions": 9, "observations": 9, "rewards": 40}
    assert hard["noise_spec"]["repetition"] == {"enable": True, "actions_prob": 1.0,
                                                "actions_steps": 3}


# -- every integer field: NaN, inf, bools, strings, non-integers and huge numbers --------
INTEGER_FIELDS = [
    # (spec keyword, spec builder of one value, field name in the message, lo, hi)
    ("delay_spec", lambda v: {"actions": v}, r"delay_spec\['actions'\]", 0, 1000),
    ("delay_spec", lambda v: {"observations": v}, r"delay_spec\['observations'\]", 0, 1000),
    ("delay_spec", lambda v: {"rewards": v}, r"delay_spec\['rewards'\]", 0, 1000),
    ("noise_spec", lambda v: {"dropped": {"actions_steps": v}},
     r"noise_spec\['dropped'\]\['actions_steps'\]", 1, 1000),
    ("noise_spec", lambda v: {"dropped": {"observations_steps": v}},
     r"noise_spec\['dropped'\]\['observations_steps'\]", 1, 1000),
    ("noise_spec", lambda v: {"stuck": {"actions_steps": v}},
     r"noise_spec\['stuck'\]\['actions_steps'\]", 1, 1000),
    ("noise_spec", lambda v: {"stuck": {"observations_steps": v}},
     r"noise_spec\['stuck'\]\['observations_steps'\]", 1, 1000),
    ("noise_spec", lambda v: {"repetition": {"actions_steps": v}},
     r"noise_spec\['repetition'\]\['actions_steps'\]", 1, 1000),
    ("perturb_spec", lambda v: {"period": v}, r"perturb_spec\['period'\]", 1, 10**6),
    ("dimensionality_spec", lambda v: {"num_random_state_observations": v},
     r"dimensionality_spec\['num_random_state_observations'\]", 0, 10_000),
    ("realtime_spec", lambda v: {"budget": 0.01, "max_missed": v},
     r"realtime_spec\['max_missed'\]", 0, 1000),
]
BAD_INTEGERS = [float("nan"), float("inf"), -float("inf"), np.float64("nan"), True, False,
                "3", None, [3], 2.5, 10**9, 10**400, -(10**400), 1e308, np.array(3),
                np.timedelta64(3, "s"), np.timedelta64("NaT"), np.datetime64("2020-01-01")]


@pytest.mark.parametrize("keyword, build, field, lo, hi", INTEGER_FIELDS)
@pytest.mark.parametrize("value", BAD_INTEGERS, ids=repr)
def test_bad_integer_raises_value_error_naming_field_and_range(keyword, build, field, lo, hi,
                                                               value):
    with pytest.raises(ValueError, match=field + rf" = .* allowed integers in \[{lo}, {hi}\]"):
        parse(**{keyword: build(value)})


@pytest.mark.parametrize("keyword, build, field, lo, hi", INTEGER_FIELDS)
def test_integer_bounds_are_inclusive_and_integral_floats_count(keyword, build, field, lo, hi):
    for value in (lo, hi, float(hi), np.int64(hi)):
        parse(**{keyword: build(value)})
    with pytest.raises(ValueError, match=field + " = " + str(hi + 1) + " is out of range"):
        parse(**{keyword: build(hi + 1)})


FLOAT_FIELDS = [
    ("safety_spec", lambda v: {"safety_coeff": v}, r"safety_spec\['safety_coeff'\]"),
    ("noise_spec", lambda v: {"gaussian": {"actions": v}},
     r"noise_spec\['gaussian'\]\['actions'\]"),
    ("noise_spec", lambda v: {"gaussian": {"observations": v}},
     r"noise_spec\['gaussian'\]\['observations'\]"),
    ("noise_spec", lambda v: {"dropped": {"actions_prob": v}},
     r"noise_spec\['dropped'\]\['actions_prob'\]"),
    ("noise_spec", lambda v: {"stuck": {"observations_prob": v}},
     r"noise_spec\['stuck'\]\['observations_prob'\]"),
    ("noise_spec", lambda v: {"repetition": {"actions_prob": v}},
     r"noise_spec\['repetition'\]\['actions_prob'\]"),
    ("perturb_spec", lambda v: {"min": v}, r"perturb_spec\['min'\]"),
    ("perturb_spec", lambda v: {"max": v}, r"perturb_spec\['max'\]"),
    ("perturb_spec", lambda v: {"start": v}, r"perturb_spec\['start'\]"),
    ("perturb_spec", lambda v: {"std": v}, r"perturb_spec\['std'\]"),
    ("multiobj_spec", lambda v: {"coeff": v}, r"multiobj_spec\['coeff'\]"),
    ("realtime_spec", lambda v: {"budget": v}, r"realtime_spec\['budget'\]"),
    ("realtime_spec", lambda v: {"budget": 0.01, "latency": v}, r"realtime_spec\['latency'\]"),
    ("realtime_spec", lambda v: {"budget": 0.01, "latency": [0.0, v]},
     r"realtime_spec\['latency'\]\[1\]"),
]
BAD_FLOATS = [float("nan"), float("inf"), -float("inf"), np.float32("nan"), True, "0.1",
              None, 1e308, 10**400, -1e-300, [[0.1]], np.array([[0.1, 0.2]]),
              np.timedelta64(1, "s"), np.timedelta64("NaT"), np.datetime64("NaT"),
              np.array(["NaT"], dtype="timedelta64[Y]")]


@pytest.mark.parametrize("keyword, build, field", FLOAT_FIELDS)
@pytest.mark.parametrize("value", BAD_FLOATS, ids=repr)
def test_bad_float_raises_value_error_naming_field_and_range(keyword, build, field, value):
    with pytest.raises(ValueError, match=field + r".* = .*allowed"):
        parse(**{keyword: build(value)})


@pytest.mark.parametrize("sigma", [1e308, 1e7, float("inf")])
def test_gaussian_sigma_has_an_upper_bound(sigma):
    # sigma 1e308 once put -inf into observations: the bound keeps x + noise finite.
    with pytest.raises(ValueError, match=r"noise_spec\['gaussian'\]\['observations'\] = .* "
                                         r"allowed \[0.0, 1000000.0\]"):
        parse(noise_spec={"gaussian": {"observations": sigma}})
    assert parse(noise_spec={"gaussian": {"observations": 1e6}}).noise.gaussian.observations == 1e6


@pytest.mark.parametrize("keyword", ["safety_spec", "delay_spec", "noise_spec", "perturb_spec",
                                     "dimensionality_spec", "multiobj_spec", "realtime_spec"])
@pytest.mark.parametrize("value", [True, False, 0, 1.5, "enable", [1], ("a",), np.zeros(2), {1}],
                         ids=repr)
def test_non_dict_spec_raises_value_error_naming_the_spec(keyword, value):
    # safety_spec=True once raised a TypeError from "limits" in spec.
    with pytest.raises(ValueError, match=rf"^{keyword} must be a dict or None, got "):
        parse(**{keyword: value})


@pytest.mark.parametrize("sub", [True, None, 0.1, "on", [("enable", True)]], ids=repr)
def test_non_dict_noise_sub_spec_raises_naming_it(sub):
    with pytest.raises(ValueError, match=r"noise_spec\['stuck'\] must be a dict"):
        parse(noise_spec={"stuck": sub})


@pytest.mark.parametrize("value", [None, {}, {"a": 0.1}, "0.1", b"0.1", [], (), [0.1, "x"],
                                   [0.1, None], [[0.1]], np.array(0.1), np.zeros((2, 2)),
                                   {0.1, 0.2}, range(3)], ids=repr)
def test_bad_latency_rejected_at_parse_time(value):
    with pytest.raises(ValueError, match=r"realtime_spec\['latency'\]"):
        parse(realtime_spec={"budget": 0.01, "latency": value})


def test_good_latencies_parse_to_floats_tuples_or_the_callable():
    def latency(step):
        return 0.01 * step
    assert parse(realtime_spec={"budget": 0.01, "latency": np.float32(0.5)}).realtime.latency == 0.5
    assert parse(realtime_spec={"budget": 0.01,
                                "latency": np.array([0.1, 0.2])}).realtime.latency == (0.1, 0.2)
    assert parse(realtime_spec={"budget": 0.01, "latency": latency}).realtime.latency is latency


@pytest.mark.parametrize("value", [float("nan"), float("inf"), -0.001, None, "0.1", True,
                                   np.array([0.1]), 1e9, complex(0.1, 0)], ids=repr)
def test_checked_latency_names_the_call_and_the_value(value):
    with pytest.raises(ValueError, match=r"realtime_spec\['latency'\]\(7\) = .* allowed "
                                         r"\[0.0, 3600.0\]"):
        checked_latency(value, 7)


def test_checked_latency_returns_float_seconds():
    assert checked_latency(np.float32(0.25), 0) == 0.25
    assert type(checked_latency(1, 0)) is float


@pytest.mark.parametrize("kwargs, match", [
    (dict(combined_challenge=np.array(["hard"])), r"combined_challenge = .* is unknown"),
    (dict(combined_challenge=["hard"]), r"combined_challenge = \['hard'\] is unknown"),
    (dict(perturb_spec={"param": np.array("pole_length")}), r"perturb_spec\['param'\]"),
    (dict(perturb_spec={"scheduler": 3}), r"perturb_spec\['scheduler'\] = 3 is unknown"),
    (dict(delay_spec={1: 2}), r"delay_spec: unknown key 1; allowed keys"),
    (dict(delay_spec={"actions": "x" * 10_000}), r"delay_spec\['actions'\] = 'x{20,}\.\.\."),
    (dict(realtime_spec={"enable": True}), r"realtime_spec\['budget'\] is required"),
])
def test_odd_values_raise_value_error_with_a_short_message(kwargs, match):
    with pytest.raises(ValueError, match=match) as err:
        parse(**kwargs)
    assert len(str(err.value)) < 300  # a message names the value, never pages of it
