"""Pixel observations: frames per second of pixel-mode stepping, rwrl against dm_control.

For each task (cartpole-swingup and walker-walk by default) and each N of
--num-envs (1 and 16), images of --size x --size (84) from the pixel
benchmarks' camera, random actions:

* ``rwrl``: ``gymnasium.make(id, observation_mode='pixels')`` at N = 1,
  ``gymnasium.make_vec(id, num_envs=N, observation_mode='pixels')`` above:
  one GL context renders the batch (``rwrl.envs.render.BatchRenderer``);
* ``dm_control``: N ``suite.load(domain, task)`` envs, each in
  ``pixels.Wrapper(pixels_only=True, render_kwargs=...)``, stepped one after
  the other (how one process steps N dm_control pixel envs).

Frames per second = N x steps / wall seconds (rendering runs on the GL
driver's threads, so wall time is the cost), the median of --repeats rounds
in which the two take turns, so that a load change on a shared machine hits
both alike. ``parity_max_abs_diff``: the largest difference, in intensity
levels, between rwrl's frame and dm_control's ``physics.render`` of the same
state (0: the same image).

``render_ms`` (with --tiled, at the largest N): milliseconds per frame of
rendering alone, as rwrl does it (each env drawn at the framebuffer's origin
and read back) and as a batched alternative would (the N envs drawn into
tiles of one framebuffer, read back once), with the largest difference
between their pixels: the alternative is not used, see ``rwrl.envs.render``.

Prints one JSON object; ``--out FILE`` also writes it to FILE and its results
page beside it (``--page-only`` rewrites that page from FILE). Usage::

    python benchmarks/pixels.py --out benchmarks/results/pixels.json --tiled
    python benchmarks/pixels.py --steps 3 --repeats 1 --num-envs 1,2   # a quick check
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("MUJOCO_GL", "egl")
sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np  # noqa: E402

TASKS = ("cartpole-swingup", "walker-walk")


def _rwrl_env(task: str, n: int, size: int):
    import gymnasium

    import rwrl  # noqa: F401  (registers the ids)
    kwargs = dict(observation_mode="pixels", pixels_width=size, pixels_height=size)
    if n == 1:
        return gymnasium.make(f"rwrl/{task}-v0", **kwargs)
    return gymnasium.make_vec(f"rwrl/{task}-v0", num_envs=n, **kwargs)


def _dm_envs(task: str, n: int, size: int, camera: int) -> list:
    from dm_control import suite
    from dm_control.suite.wrappers import pixels
    domain, name = task.split("-")
    render_kwargs = {"height": size, "width": size, "camera_id": camera}
    return [pixels.Wrapper(suite.load(domain, name, task_kwargs={"random": i}),
                           pixels_only=True, render_kwargs=render_kwargs) for i in range(n)]


def _time_rwrl(env, steps: int, rng) -> float:
    space = env.action_space
    actions = rng.uniform(space.low, space.high, (steps,) + space.shape).astype(np.float32)
    started = time.perf_counter()
    for action in actions:
        env.step(action)
    return time.perf_counter() - started


def _time_dm(envs: list, steps: int, rng) -> float:
    spec = envs[0].action_spec()
    actions = rng.uniform(spec.minimum, spec.maximum, (steps, len(envs)) + spec.shape)
    started = time.perf_counter()
    for row in actions:
        for env, action in zip(envs, row):
            if env.step(action).last():
                env.reset()
    return time.perf_counter() - started


def _parity(obs: np.ndarray, env, task: str, size: int, camera: int) -> int:
    """Return the largest |rwrl - dm_control| of the frame ``obs`` of env 0's state, in levels."""
    from dm_control import suite
    physics = env.unwrapped.physics
    domain, name = task.split("-")
    dm = suite.load(domain, name)
    dm.reset()
    with dm.physics.reset_context():
        dm.physics.data.qpos[:] = physics.qpos[0]
        dm.physics.data.qvel[:] = physics.qvel[0]
    theirs = dm.physics.render(size, size, camera_id=camera)
    return int(np.abs(obs.astype(int) - theirs).max())


def measure_task(task: str, n: int, args) -> dict:
    """Return rwrl's and dm_control's frames/s at N = ``n`` (median of the rounds) and their ratio."""
    from rwrl.domains import make_domain
    camera = make_domain(*task.split("-")).PIXELS_CAMERA
    env = _rwrl_env(task, n, args.size)
    env.reset(seed=0)
    dm_envs = _dm_envs(task, n, args.size, camera)
    for dm in dm_envs:
        dm.reset()
    rng = np.random.default_rng(0)
    _time_rwrl(env, 2, rng), _time_dm(dm_envs, 2, rng)  # warm up: GL contexts, first draws
    ours, theirs = [], []
    for _ in range(args.repeats):
        ours.append(n * args.steps / _time_rwrl(env, args.steps, rng))
        theirs.append(n * args.steps / _time_dm(dm_envs, args.steps, rng))
    row = {"rwrl_fps": round(statistics.median(ours), 1),
           "dm_control_fps": round(statistics.median(theirs), 1)}
    row["ratio_rwrl_over_dm_control"] = round(row["rwrl_fps"] / row["dm_control_fps"], 3)
    if n == 1:
        obs = env.step(env.action_space.sample())[0]
        row["parity_max_abs_diff"] = _parity(obs, env, task, args.size, camera)
    env.close()
    return row


def tiled_render(task: str, n: int, size: int, repeats: int) -> dict:
    """Return ms per frame of rwrl's renderer and of drawing the N envs into tiles of one buffer."""
    import mujoco
    from mujoco.rendering.classic import gl_context

    from rwrl.envs.render import BatchRenderer
    from rwrl.tasks.task import BatchedTask
    batched = BatchedTask(*task.split("-"), num_envs=n)
    batched.reset(np.arange(n), list(range(n)))
    rng = np.random.default_rng(0)
    for _ in range(20):
        batched.step(rng.uniform(batched.action_low, batched.action_high, (n, len(batched.action_low))))
    camera = batched.domain.PIXELS_CAMERA
    renderer = BatchRenderer(batched, size, size, camera)
    per_env = renderer.render()
    model = batched.render_model(0)
    width, height = model.vis.global_.offwidth, model.vis.global_.offheight
    cols, rows = width // size, height // size
    context = gl_context.GLContext(width, height)
    context.make_current()
    mjr = mujoco.MjrContext(model, mujoco.mjtFontScale.mjFONTSCALE_150.value)
    mujoco.mjr_setBuffer(mujoco.mjtFramebuffer.mjFB_OFFSCREEN.value, mjr)
    scene, option = mujoco.MjvScene(model, maxgeom=10_000), mujoco.MjvOption()
    cam = mujoco.MjvCamera()
    cam.type, cam.fixedcamid = mujoco.mjtCamera.mjCAMERA_FIXED, camera
    data = mujoco.MjData(model)

    def tiles() -> np.ndarray:
        context.make_current()
        out = np.empty((n, size, size, 3), np.uint8)
        per_pass = cols * rows
        for start in range(0, n, per_pass):
            count = min(per_pass, n - start)
            for k in range(count):
                batched.copy_env_data(start + k, data)
                mujoco.mjv_updateScene(model, data, option, None, cam,
                                       mujoco.mjtCatBit.mjCAT_ALL.value, scene)
                row, col = divmod(k, cols)
                mujoco.mjr_render(mujoco.MjrRect(col * size, height - (row + 1) * size, size, size),
                                  scene, mjr)
            used = -(-count // cols) * size
            wide = min(count, cols) * size
            buffer = np.empty((used, wide, 3), np.uint8)
            mujoco.mjr_readPixels(buffer, None, mujoco.MjrRect(0, height - used, wide, used), mjr)
            buffer = buffer[::-1]
            for k in range(count):
                row, col = divmod(k, cols)
                out[start + k] = buffer[row * size:(row + 1) * size, col * size:(col + 1) * size]
        return out

    tiled = tiles()
    timings = {"per_env": [], "tiled": []}
    for _ in range(repeats):
        for name, draw in (("per_env", renderer.render), ("tiled", tiles)):
            started = time.perf_counter()
            draw()
            timings[name].append(1e3 * (time.perf_counter() - started) / n)
    mjr.free()
    context.free()
    renderer.close()
    return {"num_envs": n,
            "per_env_ms_per_frame": round(statistics.median(timings["per_env"]), 3),
            "tiled_ms_per_frame": round(statistics.median(timings["tiled"]), 3),
            "tiled_max_abs_diff": int(np.abs(tiled.astype(int) - per_env).max())}


def page(results: dict, source: str, date: str | None = None, machine: str | None = None) -> str:
    """Return the results page of one run's JSON (``source``: its path as the command gives it)."""
    import results_page
    f = results_page.fmt
    meta = results_page.measured(results, date, machine)
    rows, render_rows = [], []
    for task, figures in results["tasks"].items():
        for n, row in figures["num_envs"].items():
            rows.append([task, n, f(row["rwrl_fps"], ".1f"), f(row["dm_control_fps"], ".1f"),
                         f(row["ratio_rwrl_over_dm_control"], ".2f"),
                         row.get("parity_max_abs_diff")])
        if "render_ms" in figures:
            r = figures["render_ms"]
            render_rows.append([task, r["num_envs"], f(r["per_env_ms_per_frame"], ".2f"),
                                f(r["tiled_ms_per_frame"], ".2f"), r["tiled_max_abs_diff"]])
    sections = [(None, [
        f"Pixel-mode stepping at {results['size']} x {results['size']}, random actions, "
        f"{results['steps']} steps per round, median of {results['repeats']} rounds: rwrl's "
        "`observation_mode='pixels'` (one GL context per batch) against N dm_control envs in "
        "`pixels.Wrapper`, stepped in turn. Frames/s = N x steps / wall second. Parity: the "
        "largest difference (intensity levels) between the two renderings of one state.", "",
        *results_page.table(["task", "N", "rwrl frames/s", "dm_control frames/s",
                             "rwrl / dm_control", "parity"], rows, "lrrrrr")])]
    if render_rows:
        sections.append(("Rendering alone: per env (used) or tiles of one buffer", [
            "Milliseconds per frame; max diff: intensity levels between the two (the tile's "
            "position changes a few multisampled pixels).", "",
            *results_page.table(["task", "N", "per env ms", "tiled ms", "max diff"],
                                render_rows, "lrrrr")]))
    return results_page.render_page(
        "Pixel observations: rwrl against dm_control's pixels.Wrapper", meta["command"],
        meta["date"], meta["machine"], sections, source=Path(source).name,
        rebuild=results_page.rebuild_command("pixels.py", f"--out {source}", meta))


def write_page(json_path: Path, date: str | None = None, machine: str | None = None) -> Path:
    """Write the page beside ``json_path`` from that JSON; return the page's path."""
    import results_page
    return results_page.write_json_page(json_path, page, date, machine)


def main(argv: list[str] | None = None) -> None:
    import results_page
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tasks", default=",".join(TASKS))
    parser.add_argument("--num-envs", default="1,16", help="comma-separated batch sizes N")
    parser.add_argument("--size", type=int, default=84, help="image width and height")
    parser.add_argument("--steps", type=int, default=100, help="steps per round")
    parser.add_argument("--repeats", type=int, default=3, help="rounds (median)")
    parser.add_argument("--tiled", action="store_true",
                        help="also time rendering alone, per env and in tiles, at the largest N")
    results_page.add_page_arguments(parser)
    args = parser.parse_args(argv)
    if results_page.rewrite_page_only(parser, args, write_page):
        return
    sizes = [int(n) for n in args.num_envs.split(",")]
    results = {"size": args.size, "steps": args.steps, "repeats": args.repeats, "tasks": {}}
    for task in args.tasks.split(","):
        figures = {"num_envs": {str(n): measure_task(task, n, args) for n in sizes}}
        if args.tiled:
            figures["render_ms"] = tiled_render(task, max(sizes), args.size, args.repeats)
        results["tasks"][task] = figures
    results["measured"] = results_page.stamp("pixels.py", sys.argv[1:] if argv is None else argv)
    results_page.publish(results, args.out, write_page)


if __name__ == "__main__":
    main()
