"""Property-based fuzzing of the challenge specs and of actions (hypothesis).

Whatever a user passes, the only error is a ValueError whose message starts
with the spec it concerns (and names the field where one value is at fault);
a spec that parses has every size in its documented bound; an env built from
it resets and steps with finite outputs; a bad action leaves the env as one
that never saw it. ``pytest -s`` prints the case counts and errors by type.
"""

from __future__ import annotations

import collections
import dataclasses
import math
from decimal import Decimal

import gymnasium
import hypothesis.extra.numpy as hnp
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import rwrl  # noqa: F401  (registers the ids)
from rwrl.challenges.delay import MAX_DELAY_STEPS
from rwrl.challenges.dimensionality import MAX_RANDOM_OBSERVATIONS
from rwrl.challenges.multiobj import SafetyObjective
from rwrl.challenges.noise import MAX_RUN_STEPS
from rwrl.challenges.perturb import MAX_PERIOD, SCHEDULERS
from rwrl.challenges.realtime import MAX_MISSED, MAX_SECONDS
from rwrl.challenges.regime import MAX_EPISODES, MAX_REGIMES
from rwrl.challenges.spec_checks import MAX_STD
from rwrl.challenges.specs import ChallengeSpecs, parse_specs
from rwrl.domains import DOMAINS, domain_class, make_domain
from rwrl.tasks.facts import TaskFacts, domain_facts

SPEC_NAMES = ("safety_spec", "delay_spec", "noise_spec", "perturb_spec", "dimensionality_spec",
              "multiobj_spec", "realtime_spec", "regime_spec")
ENV_ID = "rwrl/cartpole-swingup-v0"
pytestmark = pytest.mark.filterwarnings("ignore:Generating overly large repr")
#: parse_specs cases per domain in the default suite (5 domains x 2 tests).
CASES = 200
FAST = settings(max_examples=CASES, deadline=None, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

#: test name -> outcome ('ok' or the exception type) -> count, printed at the end.
COUNTS: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)


@pytest.fixture(scope="module", autouse=True)
def _print_counts():
    yield
    for test, counter in sorted(COUNTS.items()):
        print(f"\n{test}: {sum(counter.values())} cases, {dict(counter)}")


def _facts(domain: str) -> TaskFacts:
    return domain_facts(make_domain(domain, next(iter(domain_class(domain).TASKS))))


FACTS = {d: _facts(d) for d in DOMAINS}
ALL_PARAMS = sorted({p for f in FACTS.values() for p in f.perturb_params})
ALL_CONSTRAINTS = sorted({c for f in FACTS.values() for c in f.constraint_names})


# -- strategies ---------------------------------------------------------------------
def _user_constraint(safety_vars):
    return np.ones(1, bool)


junk = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=4),
    st.binary(max_size=3), st.complex_numbers(), st.fractions(), st.decimals(),
    st.sampled_from([10**9, 10**400, -(10**400), 2**63, 1e308, -1e308, np.nan, np.float32(1.5),
                     np.int64(3), np.bool_(True), np.float64("inf"), object(), Decimal("nan"),
                     np.zeros(()), np.ones((2, 2)), range(3), {1, 2},
                     # numpy registers timedelta64 as an integer (a CI failure)
                     np.timedelta64(3, "s"), np.timedelta64("NaT"), np.datetime64("2020-01-01"),
                     np.array(["NaT"], dtype="timedelta64[Y]")]),
    st.lists(st.floats(), max_size=3), st.tuples(st.integers(), st.text(max_size=2)),
    st.lists(st.one_of(st.none(), st.text(max_size=2), st.complex_numbers()), max_size=2),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
    hnp.arrays(hnp.scalar_dtypes(), hnp.array_shapes(min_dims=0, max_dims=2, max_side=3)),
)


def _integers(hi: int, bad, lo: int = 0):
    if bad is VALID_ONLY:
        return st.one_of(st.integers(lo, min(hi, 50)), st.sampled_from([lo, hi, float(lo)]))
    return st.one_of(st.integers(-3, hi + 3), st.sampled_from([0, 1, hi, hi + 1, float(hi)]),
                     st.floats(-5, hi + 5), bad)


def _reals(lo: float, hi: float, bad):
    if bad is VALID_ONLY:
        return st.one_of(st.floats(lo, hi), st.sampled_from([lo, hi]))
    return st.one_of(st.floats(lo, hi), st.floats(), st.sampled_from([lo, hi]), bad)


#: ``bad`` of the strategies that draw valid values only (the env fuzz).
VALID_ONLY = st.nothing()


def _spec(values: dict, bad):
    """Return a strategy of dicts holding any subset of ``values``' keys (and odd ones)."""
    return st.fixed_dictionaries({}, optional={**values, "bogus": bad, "enable ": bad})


def spec_fields(bad) -> tuple[dict, dict]:
    """Return (noise kind -> field -> strategy, spec name -> field -> strategy).

    Every field draws from its valid range and a little beyond; ``bad`` adds
    other values (``junk`` for any input, ``st.nothing()`` for near-valid ones).
    """
    enable = (st.booleans() if bad is VALID_ONLY else
              st.one_of(st.booleans(), st.sampled_from([0, 1, 2, "yes", None]), bad))
    names = st.sampled_from(ALL_CONSTRAINTS + ["action_roc", "slider_pos_constraint", "bogus"])
    constraints = st.one_of(
        st.none(), st.lists(st.one_of(names, bad), max_size=4),
        st.dictionaries(names, st.one_of(st.none(), st.just(_user_constraint), bad), max_size=3),
        bad)
    latency = st.one_of(st.floats(0, 0.1), st.lists(st.one_of(st.floats(0, 0.1), bad),
                                                    max_size=3),
                        st.just(lambda step: 0.01 * (step % 3)), bad)
    runs = {"enable": enable, "actions_prob": _reals(0, 1, bad),
            "observations_prob": _reals(0, 1, bad),
            "actions_steps": _integers(MAX_RUN_STEPS, bad, 1),
            "observations_steps": _integers(MAX_RUN_STEPS, bad, 1)}
    noise = {
        "gaussian": {"enable": enable, "actions": _reals(0, MAX_STD, bad),
                     "observations": _reals(0, MAX_STD, bad)},
        "dropped": runs, "stuck": runs,
        "repetition": {"enable": enable, "actions_prob": _reals(0, 1, bad),
                       "actions_steps": _integers(MAX_RUN_STEPS, bad, 1)}}
    specs = {
        "safety_spec": {"enable": enable, "constraints": constraints, "observations": enable,
                        "safety_coeff": _reals(0, 1, bad), "limits": bad},
        "delay_spec": {"enable": enable, **{k: _integers(MAX_DELAY_STEPS, bad)
                                            for k in ("actions", "observations", "rewards")}},
        "noise_spec": {kind: st.one_of(_spec(fields, bad), bad) for kind, fields in noise.items()},
        "perturb_spec": {
            "enable": enable, "period": _integers(MAX_PERIOD, bad, 1),
            "param": st.one_of(st.sampled_from(ALL_PARAMS), bad),
            "scheduler": st.one_of(st.sampled_from(SCHEDULERS + ("sine",)), bad),
            "start": _reals(0, 20, bad), "min": _reals(0, 20, bad), "max": _reals(0, 20, bad),
            "std": _reals(0, MAX_STD, bad)},
        "dimensionality_spec": {
            "enable": enable,
            "num_random_state_observations": _integers(MAX_RANDOM_OBSERVATIONS, bad)},
        "multiobj_spec": {"enable": enable, "reward": enable, "observed": enable,
                          "coeff": _reals(0, 1, bad),
                          "objective": st.one_of(st.sampled_from(
                              ["safety", "energy", SafetyObjective, SafetyObjective()]), bad)},
        "realtime_spec": {"enable": enable, "mode": st.one_of(st.sampled_from(
                              ["simulated", "wallclock", "async"]), bad),
                          "budget": _reals(0, 0.1, bad), "latency": latency,
                          "fallback": st.one_of(st.sampled_from(["hold", "zero", "last"]), bad),
                          "max_missed": _integers(MAX_MISSED, bad)},
        "regime_spec": {"enable": enable, "cycle": enable,
                        "regimes": st.one_of(st.lists(st.one_of(st.dictionaries(
                            st.sampled_from(ALL_PARAMS + ["bogus"]), _reals(0, 20, bad),
                            max_size=2), bad), max_size=3), bad),
                        "episodes_per_regime": _integers(MAX_EPISODES, bad, 1),
                        "durations": st.one_of(st.lists(_integers(MAX_EPISODES, bad, 1),
                                                        max_size=3), bad),
                        "eval_regime": st.one_of(st.none(), _integers(3, bad))},
    }
    return noise, specs


def every_spec(bad):
    """Return a strategy of parse_specs keyword arguments: any subset of the specs."""
    _, fields = spec_fields(bad)
    specs = {name: st.one_of(_spec(fields[name], bad), st.none(), bad) for name in SPEC_NAMES}
    levels = st.one_of(st.sampled_from(["easy", "medium", "hard", "x"]), bad)
    return st.fixed_dictionaries({}, optional={**specs, "combined_challenge": levels})


def valid_cartpole_specs():
    """Return a strategy of valid cartpole specs: every value in its range (some min > max)."""
    _, fields = spec_fields(VALID_ONLY)
    p = FACTS["cartpole"].perturb_params["pole_length"]
    fields["safety_spec"]["constraints"] = st.one_of(st.none(), st.lists(st.sampled_from(
        FACTS["cartpole"].constraint_names + ("action_roc",)), max_size=4, unique=True))
    fields["perturb_spec"].update(param=st.just(p.name), start=st.floats(p.min, p.max),
                                  min=st.floats(p.min, p.max), max=st.floats(p.min, p.max),
                                  scheduler=st.sampled_from(SCHEDULERS), std=st.floats(0, 1))
    fields["multiobj_spec"]["objective"] = st.just("safety")
    fields["realtime_spec"].update(mode=st.sampled_from(["simulated", "wallclock"]),
                                   fallback=st.sampled_from(["hold", "zero"]))
    specs = {name: st.one_of(st.fixed_dictionaries({}, optional=fields[name]), st.none())
             for name in SPEC_NAMES}
    specs["regime_spec"] = st.one_of(_valid_regime_spec(p), st.none())
    return st.fixed_dictionaries({}, optional=specs)


@st.composite
def _valid_regime_spec(draw, p) -> dict:
    """A valid cartpole regime_spec: regimes of cartpole parameters and durations to match."""
    one = st.fixed_dictionaries({"pole_length": st.floats(p.min, p.max)},
                                optional={"pole_mass": st.floats(0.1, 10.0)})
    regimes = draw(st.lists(one, min_size=1, max_size=3))
    spec = {"regimes": regimes, "cycle": draw(st.booleans())}
    if draw(st.booleans()):
        spec["episodes_per_regime"] = draw(st.integers(1, 3))
    else:
        spec["durations"] = draw(st.lists(st.integers(1, 3), min_size=len(regimes),
                                          max_size=len(regimes)))
    if draw(st.booleans()):
        spec["eval_regime"] = draw(st.integers(0, len(regimes) - 1))
    return spec


NOISE_FIELDS, FIELDS = spec_fields(junk)
ANY_SPECS = every_spec(junk)
VALID_CARTPOLE_SPECS = valid_cartpole_specs()


# -- checks -------------------------------------------------------------------------
def _numbers(obj):
    """Yield (path, value) of every number in a parsed spec (dataclasses, tuples)."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        for f in dataclasses.fields(obj):
            yield from ((f"{f.name}.{p}", v) for p, v in _numbers(getattr(obj, f.name)))
    elif isinstance(obj, tuple):
        for i, v in enumerate(obj):
            yield from ((f"{i}.{p}", x) for p, x in _numbers(v))
    elif isinstance(obj, (int, float)) and not isinstance(obj, bool):
        yield "", obj


#: a word of a parsed field's path -> its documented upper bound (the lower is 0).
BOUNDS = {"delay": MAX_DELAY_STEPS, "steps": MAX_RUN_STEPS, "period": MAX_PERIOD,
          "num_random_state_observations": MAX_RANDOM_OBSERVATIONS,
          "max_missed": MAX_MISSED, "budget": MAX_SECONDS, "latency": MAX_SECONDS,
          "gaussian": MAX_STD, "std": MAX_STD, "prob": 1.0, "coeff": 1.0,
          "durations": MAX_EPISODES, "eval_regime": MAX_REGIMES}


def check_parsed(parsed: ChallengeSpecs, facts: TaskFacts) -> None:
    """Assert every number of a parsed spec is a finite int or float within its bound."""
    for path, value in _numbers(parsed):
        assert type(value) in (int, float) and math.isfinite(value), (path, value)
        if path.split(".")[1] in ("start", "min", "max", "values"):
            continue  # a parameter's range: checked below
        bound = next(b for key, b in BOUNDS.items() if key in path)
        assert 0 <= value <= bound, (path, value, bound)
    if parsed.perturb:
        p, param = parsed.perturb, facts.perturb_params[parsed.perturb.param]
        assert param.min <= p.min <= p.start <= p.max <= param.max
    if parsed.regime:
        r = parsed.regime
        assert len(r.values) == len(r.durations) <= MAX_REGIMES and r.params
        for regime in r.values:
            for name, value in zip(r.params, regime):
                assert facts.perturb_params[name].min <= value <= facts.perturb_params[name].max


def parse_or_name(facts: TaskFacts, kwargs: dict, record: collections.Counter):
    """Parse ``kwargs``; return the specs, or None after checking the ValueError names its spec."""
    try:
        parsed = parse_specs(facts, **kwargs)
    except ValueError as err:  # any other exception fails the test
        record["ValueError"] += 1
        named = [k for k in kwargs if str(err).startswith(k)]
        assert named, f"{err} names none of {sorted(kwargs)}"
        assert len(str(err)) < 400, "a message names the value, never pages of it"
        return None
    record["ok"] += 1
    check_parsed(parsed, facts)
    return parsed


# -- fuzzing parse_specs ------------------------------------------------------------
@pytest.mark.parametrize("domain", sorted(DOMAINS))
@FAST
@given(kwargs=ANY_SPECS)
def test_any_specs_parse_or_raise_value_error_naming_the_spec(domain, kwargs):
    parse_or_name(FACTS[domain], kwargs, COUNTS[f"parse_specs any ({domain})"])


VALID = {
    "safety_spec": {"safety_coeff": 0.5, "constraints": None, "observations": True},
    "delay_spec": {"actions": 1, "observations": 2, "rewards": 3},
    "noise_spec": {"gaussian": {"actions": 0.1, "observations": 0.1},
                   "dropped": {"actions_prob": 0.1, "actions_steps": 2,
                               "observations_prob": 0.1, "observations_steps": 2},
                   "stuck": {"actions_prob": 0.1, "actions_steps": 2,
                             "observations_prob": 0.1, "observations_steps": 2},
                   "repetition": {"actions_prob": 0.5, "actions_steps": 2}},
    "dimensionality_spec": {"num_random_state_observations": 5},
    "multiobj_spec": {"objective": "safety", "reward": True, "coeff": 0.5, "observed": True},
    "realtime_spec": {"mode": "simulated", "budget": 0.01, "fallback": "hold", "latency": 0.02,
                      "max_missed": 5},
}


def _valid_regime(facts: TaskFacts) -> dict:
    # a parameter the domain's combined challenges leave alone: perturb_spec is drawn apart
    name, p = list(facts.perturb_params.items())[-1]
    return {"regimes": [{name: p.start}, {name: p.max}], "episodes_per_regime": 2, "cycle": True,
            "eval_regime": 1}


def _valid_perturb(facts: TaskFacts) -> dict:
    name, p = next(iter(facts.perturb_params.items()))
    return {"param": name, "scheduler": "uniform", "period": 2, "min": p.min, "max": p.max,
            "start": p.start, "std": p.std}


@st.composite
def one_fault(draw, domain: str):
    """Return (kwargs, prefixes the error may start with): a valid spec, one value replaced."""
    name = draw(st.sampled_from(SPEC_NAMES))
    spec = (_valid_perturb(FACTS[domain]) if name == "perturb_spec" else
            _valid_regime(FACTS[domain]) if name == "regime_spec" else VALID[name])
    spec = {k: dict(v) if isinstance(v, dict) else v for k, v in spec.items()}
    target, fields, where = spec, FIELDS[name], name
    if name == "noise_spec":  # one sub-spec, or one key of it
        kind = draw(st.sampled_from(sorted(NOISE_FIELDS)))
        if draw(st.booleans()):
            spec[kind] = draw(junk)
            return {name: spec}, [f"{name}[{kind!r}]"]
        target, fields, where = spec[kind], NOISE_FIELDS[kind], f"{name}[{kind!r}]"
    key = draw(st.sampled_from(sorted(fields) + ["bogus"]))
    target[key] = draw(junk if key == "bogus" else fields[key])
    allowed = [f"{where}[{key!r}]", f"{where}: unknown key"]
    if name == "perturb_spec":  # a new param or bound moves the others' ranges
        allowed += [f"{name}[{k!r}]" for k in ("min", "max", "start")]
    if name == "realtime_spec" and key == "mode":  # wallclock measures the latency itself
        allowed.append(f"{name}['latency']")
    if name == "regime_spec":  # one of two keys, and an index into the regimes
        allowed += [f"{name}: give exactly one of", f"{name}['eval_regime']",
                    f"{name}['regimes'] names no parameter"]
    return {name: spec}, allowed


def check_one_fault(domain: str, data, label: str = "parse_specs one fault") -> None:
    """Parse one spec with one bad value; the error must name that value's field."""
    facts, record = FACTS[domain], COUNTS[f"{label} ({domain})"]
    kwargs, allowed = data.draw(one_fault(domain))
    try:
        parsed = parse_specs(facts, **kwargs)
    except ValueError as err:
        record["ValueError"] += 1
        assert any(str(err).startswith(a) for a in allowed), f"{err!s} names none of {allowed}"
        return
    record["ok"] += 1
    check_parsed(parsed, facts)


@pytest.mark.parametrize("domain", sorted(DOMAINS))
@FAST
@given(data=st.data())
def test_one_bad_value_raises_value_error_naming_its_field(domain, data):
    check_one_fault(domain, data)


# -- fuzzing the env ----------------------------------------------------------------
@settings(max_examples=80, deadline=None, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(kwargs=st.one_of(VALID_CARTPOLE_SPECS, VALID_CARTPOLE_SPECS, ANY_SPECS))
def test_any_specs_through_gymnasium_make_give_a_usable_env_or_a_value_error(kwargs):
    record = COUNTS["gymnasium.make any specs"]
    if parse_or_name(FACTS["cartpole"], kwargs, collections.Counter()) is None:
        with pytest.raises(ValueError):
            gymnasium.make(ENV_ID, **kwargs)
        record["ValueError"] += 1
        return
    env = gymnasium.make(ENV_ID, **kwargs)
    obs, _ = env.reset(seed=0)
    for _ in range(3):
        obs, reward, terminated, truncated, info = env.step(env.action_space.sample())
        assert np.all(np.isfinite(obs)) and math.isfinite(reward)
    env.close()
    record["ok"] += 1


class _Twins:
    """Two envs reset alike: one is fed fuzzed actions, the other only the accepted ones."""

    def __init__(self):
        self.fuzzed, self.reference = (gymnasium.make(ENV_ID, combined_challenge="hard")
                                       for _ in range(2))
        self.episode = 0
        self.reset()

    def reset(self):
        self.episode += 1
        self.fuzzed.reset(seed=self.episode)
        self.reference.reset(seed=self.episode)

    def step_both(self, action):
        a, *_, trunc_a, _ = self.fuzzed.step(action)
        b, *_, trunc_b, _ = self.reference.step(action)
        np.testing.assert_array_equal(a, b)
        if trunc_a or trunc_b:
            self.reset()


@pytest.fixture(scope="module")
def twins():
    return _Twins()


actions = st.one_of(
    hnp.arrays(st.one_of(hnp.scalar_dtypes(), hnp.unicode_string_dtypes(max_len=3)),
               hnp.array_shapes(min_dims=0, max_dims=2, max_side=2)),
    hnp.arrays(np.float64, st.just((1,)), elements=st.floats(-3, 3)),
    st.lists(st.one_of(st.floats(), st.text(max_size=3), st.complex_numbers(), st.none(),
                       st.booleans(), st.integers()), max_size=2),
    junk)


@settings(max_examples=300, deadline=None, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                 HealthCheck.function_scoped_fixture])
@given(action=actions)
def test_any_action_steps_or_raises_value_error_leaving_the_env_unchanged(twins, action):
    record = COUNTS["actions"]
    try:
        obs, *_, truncated, _ = twins.fuzzed.step(action)
    except ValueError as err:
        record["ValueError"] += 1
        assert str(err).startswith("action")
        twins.step_both(np.full(1, 0.5))  # both step on as if nothing happened
        return
    record["ok"] += 1  # accepted: a real, finite (1,) action; the reference takes it too
    ref, *_, ref_truncated, _ = twins.reference.step(action)
    np.testing.assert_array_equal(obs, ref)
    if truncated or ref_truncated:
        twins.reset()


# -- the bigger variant -------------------------------------------------------------
@pytest.mark.slow
@pytest.mark.parametrize("domain", sorted(DOMAINS))
@settings(max_examples=10 * CASES, deadline=None, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(kwargs=ANY_SPECS, data=st.data())
def test_many_specs_parse_or_raise_value_error_naming_the_field(domain, kwargs, data):
    parse_or_name(FACTS[domain], kwargs, COUNTS[f"slow parse_specs any ({domain})"])
    check_one_fault(domain, data, "slow parse_specs one fault")
