"""Throughput benchmark: steps per second, all measured in one run, with ratios.

For each domain (cartpole swingup, walker walk, quadruped walk, humanoid walk):
  a. dm_control.suite task stepped in a Python loop (the baseline),
  b. rwrl single env through gymnasium.make,
  c. rwrl vector env through gymnasium.make_vec for N in --batch,
  d. raw ``mujoco.rollout`` of the same model and batch, no task logic,
  and with the combined ``hard`` challenge: rwrl single env (hard_single) and
  vector env at N = 64 (hard_vector_64).
Ratios: b/a, c/d per N, hard_single/a, hard_vector_64/d(64).

Usage: python benchmarks/throughput.py [--domains cartpole walker] [--seconds 1.0] [--out FILE]
Prints JSON (and writes it to --out). Steps are control steps (1000 per episode).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

os.environ.setdefault("MUJOCO_GL", "egl")

import gymnasium  # noqa: E402
import mujoco  # noqa: E402
import numpy as np  # noqa: E402
from dm_control import suite  # noqa: E402
from mujoco import rollout as mj_rollout  # noqa: E402

import rwrl  # noqa: E402,F401
from rwrl.core.engine import default_num_threads  # noqa: E402

TASKS = {"cartpole": "swingup", "walker": "walk", "quadruped": "walk", "humanoid": "walk"}


def _timed(step, min_seconds: float, batch: int) -> float:
    """Return steps/s of ``step`` (one call = ``batch`` env steps), run >= min_seconds."""
    step()  # warm-up (first-call costs)
    calls, start = 0, time.perf_counter()
    while True:
        for _ in range(50):
            step()
        calls += 50
        elapsed = time.perf_counter() - start
        if elapsed >= min_seconds:
            return calls * batch / elapsed


def dm_control_steps(domain: str, task: str, seconds: float) -> float:
    env = suite.load(domain, task, task_kwargs={"random": 0})
    env.reset()
    spec = env.action_spec()
    actions = np.random.default_rng(0).uniform(spec.minimum, spec.maximum, (1000, *spec.shape))
    t = [0]

    def step():
        ts = env.step(actions[t[0] % 1000])
        t[0] += 1
        if ts.last():
            env.reset()
    return _timed(step, seconds, 1)


def rwrl_single_steps(env_name: str, seconds: float, **kwargs) -> float:
    env = gymnasium.make(env_name, **kwargs)
    env.reset(seed=0)
    actions = np.random.default_rng(0).uniform(-1, 1, (1000, *env.action_space.shape))
    t = [0]

    def step():
        _, _, _, truncated, _ = env.step(actions[t[0] % 1000])
        t[0] += 1
        if truncated:
            env.reset()
    return _timed(step, seconds, 1)


def rwrl_vector_steps(env_name: str, n: int, seconds: float, **kwargs) -> float:
    env = gymnasium.make_vec(env_name, num_envs=n, **kwargs)
    env.reset(seed=0)
    actions = np.random.default_rng(0).uniform(-1, 1, (16, n, *env.single_action_space.shape))
    t = [0]

    def step():
        env.step(actions[t[0] % 16])
        t[0] += 1
    return _timed(step, seconds, n)


def raw_rollout_steps(domain: str, task: str, n: int, seconds: float) -> float:
    """mujoco.rollout of the task's model: N envs, 10 control steps per call.

    Each call continues from the state the previous one reached, and every
    1000 control steps all envs restart from dm_control's initial state, so
    the physics sees the same regime as the envs it is compared with (a
    humanoid lying on the floor costs far more than one falling through the air).
    """
    env = suite.load(domain, task)
    model = env.physics.model.ptr
    nsub = int(round(env.control_timestep() / model.opt.timestep))
    threads = default_num_threads(n)
    datas = [mujoco.MjData(model) for _ in range(threads)]
    state = np.empty(mujoco.mj_stateSize(model, mujoco.mjtState.mjSTATE_FULLPHYSICS))
    mujoco.mj_getState(model, env.physics.data.ptr, state, mujoco.mjtState.mjSTATE_FULLPHYSICS)
    initial = np.tile(state, (n, 1))
    control_steps = 10
    control = np.random.default_rng(0).uniform(-1, 1, (n, control_steps * nsub, model.nu))
    runner = mj_rollout.Rollout(nthread=threads)
    states = np.empty((n, control_steps * nsub, initial.shape[1]))
    current, calls = initial.copy(), [0]

    def step():
        runner.rollout(model, datas, current, control, nstep=control_steps * nsub, state=states)
        calls[0] += 1
        current[:] = initial if calls[0] % (1000 // control_steps) == 0 else states[:, -1]
    return _timed(step, seconds, n * control_steps)


def _challenge_available() -> bool:
    try:
        gymnasium.make("rwrl/cartpole-swingup-v0", combined_challenge="hard")
        return True
    except Exception as err:  # the challenge layer is reported as missing, not hidden
        print(f"combined challenge unavailable: {err}", file=sys.stderr)
        return False


def benchmark_domain(domain: str, batches, seconds: float, hard: bool) -> dict:
    task = TASKS[domain]
    name = f"rwrl/{domain}-{task}-v0"
    out = {"task": f"{domain}-{task}"}
    out["dm_control"] = dm_control_steps(domain, task, seconds)
    out["rwrl_single"] = rwrl_single_steps(name, seconds)
    out["ratio_single_over_dm_control"] = out["rwrl_single"] / out["dm_control"]
    for n in batches:
        vec, raw = rwrl_vector_steps(name, n, seconds), raw_rollout_steps(domain, task, n, seconds)
        out[f"rwrl_vector_{n}"], out[f"raw_rollout_{n}"] = vec, raw
        out[f"ratio_vector_over_raw_{n}"] = vec / raw
    if hard:
        out["hard_single"] = rwrl_single_steps(name, seconds, combined_challenge="hard")
        out["ratio_hard_single_over_dm_control"] = out["hard_single"] / out["dm_control"]
        raw64 = out.get("raw_rollout_64") or raw_rollout_steps(domain, task, 64, seconds)
        out["hard_vector_64"] = rwrl_vector_steps(name, 64, seconds, combined_challenge="hard")
        out["ratio_hard_vector_over_raw_64"] = out["hard_vector_64"] / raw64
    return {k: (round(v, 3) if isinstance(v, float) else v) for k, v in out.items()}


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--domains", nargs="+", default=list(TASKS), choices=list(TASKS))
    parser.add_argument("--batch", nargs="+", type=int, default=[1, 16, 64, 256])
    parser.add_argument("--seconds", type=float, default=1.0, help="time per measurement")
    parser.add_argument("--no-hard", action="store_true", help="skip the combined challenge")
    parser.add_argument("--out", default=None, help="also write the JSON here")
    args = parser.parse_args(argv)
    hard = not args.no_hard and _challenge_available()
    result = {"machine": {"cpus": os.cpu_count(), "mujoco": mujoco.__version__},
              "unit": "control steps per second", "domains": {}}
    for domain in args.domains:
        result["domains"][domain] = benchmark_domain(domain, args.batch, args.seconds, hard)
        print(f"{domain} done", file=sys.stderr)
    text = json.dumps(result, indent=2)
    print(text)
    if args.out:
        with open(args.out, "w") as f:
            f.write(text + "\n")
    return result


if __name__ == "__main__":
    main()
