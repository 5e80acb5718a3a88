"""Rate control with the real x264: the ES teacher and the imitation student against x264's two-pass.

Mao et al. 2020 (arXiv 2012.05339) report, on YouTube videos with libvpx VP9, that a
student policy learned by imitating per-video evolution-strategies teachers saves a
median 8.5 % of bitrate at equal quality (BD-rate) against libvpx's two-pass VBR rate
control, with minimal constraint violation. This measures the same comparison on
rwrl's rate-control family (``rwrl.video``: every choice in its modules' docstrings):

* corpus: ``rwrl video corpus`` (defaults: 16 procedural and 6 rendered clips, 176 x 144,
  60 frames at 30 fps, split by clip: 16 train, 6 test), built under ``--corpus`` if absent;
* targets: for each clip, the budgets of a constant-QP encode at ``--target-qps``
  (28, 32, 36, 40: four points of the rate-quality curve, as BD-rate needs);
* methods, each coding every test clip at every budget with the same x264 settings
  (veryfast, zero latency, no AQ, psy off): x264's own two-pass rate control at the
  budget's bitrate (the baseline: our stand-in for libvpx's two-pass VBR), the constant
  QP found by bisection, the ES teacher (CMA-ES per clip and budget: an oracle that
  encodes each video hundreds of times), the student (an MLP trained on the teacher's
  trajectories of the train clips, through ``RateControlEnv``'s observations) with its
  budget guard, and the student without the guard (ablation); with ``--online DIR``, the
  final policies of a finished ``sweeps/ratecontrol.toml`` sweep (D4PG and RC-D4PG trained
  online on the train clips: "online-<agent>", one per seed), as the issue's comparison;
* measured per method: BD-rate against two-pass per test clip (Bjontegaard's cubic fit
  of log rate over luma PSNR, ``rwrl.video.bdrate``), its median over clips with a 95 %
  bootstrap interval, the fraction of (clip, budget) encodes within budget and the
  overshoot where not; encoder throughput (frames/s) at the corpus's size.

Resumable: each teacher search is kept under ``--work`` as JSON (written atomically) and
reused; rerunning the command continues. The students (``--student-seeds``, 3) are retrained each run.

Usage::

    python benchmarks/ratecontrol.py --corpus runs/video-corpus --work runs/ratecontrol \
        --out benchmarks/results/ratecontrol.json
    python benchmarks/ratecontrol.py --quick --corpus /tmp/vc --work /tmp/rc --out /tmp/rc.json
    python benchmarks/ratecontrol.py --page-only --out benchmarks/results/ratecontrol.json
"""

from __future__ import annotations

import argparse
import concurrent.futures
import json
import os
import sys
import time
from pathlib import Path
from typing import Any, Sequence

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))  # results_page.py beside this file
import results_page  # noqa: E402

METHODS = ("two-pass", "constant-qp", "teacher", "student", "student-no-guard")
#: the prefix of an online agent's method name (``--online``): "online-<agent>".
ONLINE = "online-"
PAPER = "median BD-rate -8.5 % against libvpx two-pass VBR (student, YouTube videos, VP9)"


def frames_of(clip) -> list:
    return [clip.frame(t) for t in range(clip.num_frames)]


def budget_of(clip, qp: int) -> float:
    from rwrl.video.features import constant_qp_encode
    return float(constant_qp_encode(clip, qp).total_bits)


def teacher_path(work: Path, clip_name: str, qp: int) -> Path:
    return work / "teacher" / f"{clip_name}__qp{qp}.json"


def run_teacher(corpus: str, work: str, clip_name: str, qp: int, search: dict) -> str:
    """Search one clip and budget with the ES teacher; keep the result as JSON; return its path."""
    from rwrl.storage.atomic_files import atomic_write_bytes
    from rwrl.video.corpus import load_clip
    from rwrl.video.teacher import es_teacher

    path = teacher_path(Path(work), clip_name, qp)
    if path.is_file():
        return str(path)
    clip = load_clip(corpus, clip_name)
    budget = budget_of(clip, qp)
    start = time.process_time()
    result = es_teacher(frames_of(clip), budget, fps=int(clip.fps), **search)
    record = {"clip": clip_name, "target_qp": qp, "budget": budget, "qps": list(result.qps),
              "bits": [r.bits for r in result.results], "psnr": [r.psnr for r in result.results],
              "feasible": result.feasible, "history": list(result.history),
              "baseline_qp": result.baseline.qp, "evaluations": result.evaluations,
              "encodes": result.encodes, "cpu_s": time.process_time() - start, "search": search}
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(path, json.dumps(record).encode())
    return str(path)


def teachers(corpus: Path, work: Path, pairs: Sequence[tuple[str, int]], search: dict,
             jobs: int) -> dict[tuple[str, int], dict]:
    """Run (or reuse) the teacher on every (clip, target QP); return the records."""
    todo = [p for p in pairs if not teacher_path(work, *p).is_file()]
    print(f"teacher: {len(pairs) - len(todo)} of {len(pairs)} searches kept, {len(todo)} to run",
          file=sys.stderr)
    if todo:
        with concurrent.futures.ProcessPoolExecutor(max_workers=jobs) as pool:
            futures = {pool.submit(run_teacher, str(corpus), str(work), name, qp, search): (name, qp)
                       for name, qp in todo}
            for done, future in enumerate(concurrent.futures.as_completed(futures), 1):
                future.result()
                name, qp = futures[future]
                print(f"teacher {done}/{len(todo)}: {name} qp {qp}", file=sys.stderr, flush=True)
    return {p: json.loads(teacher_path(work, *p).read_text()) for p in pairs}


def env_for(clip, qp: int):
    from rwrl.video.env import RateControlEnv
    return RateControlEnv([clip], 1, target_qps=(qp,))


def rollout(clip, qp: int, choose) -> dict:
    """Code ``clip`` at target ``qp``'s budget through the env, QPs from ``choose(obs, info, t)``."""
    env = env_for(clip, qp)
    obs, info = env.reset(np.zeros(1, np.int64), [0])
    rows = {"obs": [], "qp": [], "bits": [], "psnr": []}
    for t in range(clip.num_frames):
        action = int(choose(obs, info, t))
        rows["obs"].append(obs[0])
        obs, _, _, info = env.step(np.array([[float(action)]]))
        rows["qp"].append(int(info["budget"]["qp"][0]))
        rows["bits"].append(float(info["budget"]["bits"][0]) - sum(rows["bits"]))
        rows["psnr"].append(float(info["budget"]["psnr"][0]))
    rows["budget"] = float(info["budget"]["budget"][0])
    env.close()
    return rows


def intra_column() -> int:
    """The column of the current frame's ``intra`` feature in the env's flat observation."""
    from rwrl.video.env import observation_layout
    from rwrl.video.features import FEATURE_NAMES
    return observation_layout().slices["frame"].start + FEATURE_NAMES.index("intra")


def summary(bits: Sequence[float], psnr: Sequence[float], budget: float) -> dict:
    total = float(np.sum(bits))
    return {"bits": total, "psnr": float(np.mean(psnr)), "budget": budget,
            "within": total <= budget, "overshoot": max(0.0, total / budget - 1.0)}


def online_policies(sweep: Path) -> dict[str, list]:
    """The last checkpoint of every finished run of an online sweep, as "online-<agent>" -> [policy per seed]."""
    from rwrl.datasets.behaviour_policies import load_policy
    from rwrl.experiments.run import is_finished
    from rwrl.storage.checkpoint import list_checkpoints

    policies: dict[str, list] = {}
    for run_dir in sorted((Path(sweep) / "runs").iterdir()):
        if not is_finished(run_dir):
            raise SystemExit(f"{run_dir} is not finished: finish the sweep first "
                             f"(rwrl sweep run ... --out {sweep})")
        agent = json.loads((run_dir / "config.json").read_text())["run"]["agent"]
        policies.setdefault(ONLINE + agent, []).append(
            load_policy(list_checkpoints(run_dir / "checkpoints")[-1]))
    return policies


def evaluate(clip, qp: int, teacher: dict, students: Sequence,
             online: dict[str, list] | None = None) -> dict[str, Any]:
    """Every method's total bits and mean PSNR on one test clip and budget (students and
    online agents: one per seed)."""
    from rwrl.video.baselines import constant_qp_for_budget, two_pass

    frames = frames_of(clip)
    budget = budget_of(clip, qp)
    out: dict[str, Any] = {}
    results = two_pass(frames, budget, int(clip.fps))
    out["two-pass"] = summary([r.bits for r in results], [r.psnr for r in results], budget)
    constant = constant_qp_for_budget(frames, budget, fps=int(clip.fps))
    out["constant-qp"] = summary([r.bits for r in constant.results],
                                 [r.psnr for r in constant.results], budget)
    out["teacher"] = summary(teacher["bits"], teacher["psnr"], budget)
    length = clip.num_frames
    intra = intra_column()
    for name, guard in (("student", True), ("student-no-guard", False)):
        out[name] = []
        for student in students:
            def choose(obs, info, t, guard=guard, student=student):
                left = info["budget"]["budget"] - info["budget"]["bits"]
                predicting = obs[:, intra] < 0.5  # the guard leaves intra frames alone
                return student.act(obs, left, np.array([length - t]), guard=guard,
                                   guard_mask=predicting)[0]
            rows = rollout(clip, qp, choose)
            out[name].append({**summary(rows["bits"], rows["psnr"], budget), "qps": rows["qp"]})
    for name, policies in (online or {}).items():
        out[name] = []
        for policy in policies:
            rows = rollout(clip, qp, lambda obs, info, t, policy=policy: policy(obs)[0, 0])
            out[name].append({**summary(rows["bits"], rows["psnr"], budget), "qps": rows["qp"]})
    return out


def bootstrap_median(values: Sequence[float], seed: int = 0, draws: int = 10_000):
    values = np.asarray(values, float)
    rng = np.random.default_rng(seed)
    medians = np.median(rng.choice(values, (draws, len(values))), axis=1)
    return float(np.median(values)), float(np.quantile(medians, 0.025)), \
        float(np.quantile(medians, 0.975))


def analyse(evaluations: dict[str, dict[int, dict]], target_qps: Sequence[int],
            methods: Sequence[str] = METHODS) -> dict:
    """BD-rate against two-pass per clip, medians, budget adherence, per method.

    A student or online method has one result per seed: its BD-rate per clip is the mean
    over seeds (seeds whose curve does not overlap two-pass's left out), and each seed's
    median over clips is reported too (None where it overlaps on no clip).
    """
    from rwrl.video.bdrate import bd_rate

    def by_seed(value):
        return value if isinstance(value, list) else [value]

    out = {}
    for method in methods:
        per_clip, per_seed, within, overshoots = {}, {}, [], []
        for clip_name, by_qp in evaluations.items():
            base = [by_qp[q]["two-pass"] for q in target_qps]
            seeds = len(by_seed(by_qp[target_qps[0]][method]))
            values = []
            for seed in range(seeds):
                mine = [by_seed(by_qp[q][method])[seed] for q in target_qps]
                within += [m["within"] for m in mine]
                overshoots += [m["overshoot"] for m in mine if not m["within"]]
                if method == "two-pass":
                    continue
                try:
                    value = bd_rate([b["bits"] for b in base], [b["psnr"] for b in base],
                                    [m["bits"] for m in mine], [m["psnr"] for m in mine])
                except ValueError:  # the PSNR ranges do not overlap: no BD-rate here
                    value = None
                per_seed.setdefault(seed, {})[clip_name] = value
                values.append(value)
            known = [v for v in values if v is not None]
            if method != "two-pass":
                per_clip[clip_name] = float(np.mean(known)) if known else None
        entry = {"within_budget": float(np.mean(within)), "encodes": len(within),
                 "overshoot_median": float(np.median(overshoots)) if overshoots else 0.0,
                 "overshoot_max": float(np.max(overshoots)) if overshoots else 0.0}
        if per_clip:
            entry["bd_rate"] = per_clip
            known = [v for v in per_clip.values() if v is not None]
            entry["bd_rate_clips"] = len(known)
            entry["bd_rate_median"] = bootstrap_median(known) if known else None
            if len(per_seed) > 1:
                # None: that seed's curve overlaps two-pass's on no clip
                entry["bd_rate_median_by_seed"] = [
                    float(np.median(known)) if (known := [v for v in clips.values() if v is not None])
                    else None for _, clips in sorted(per_seed.items())]
        out[method] = entry
    return out


def throughput(clips, seconds: float = 3.0) -> float:
    """Frames per second of the forced-QP encoder (QP 32) over the clips, one thread."""
    from rwrl.video.x264 import encode_frames
    frames, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        for clip in clips:
            encode_frames(frames_of(clip), [32] * clip.num_frames)
            frames += clip.num_frames
    return frames / (time.perf_counter() - start)


def measure(args) -> dict:
    from rwrl.video.corpus import build_corpus, load_clips, load_corpus
    from rwrl.video.student import StudentConfig, train_student

    corpus, work = Path(args.corpus), Path(args.work)
    if not (corpus / "manifest.json").is_file():
        from rwrl.datasets.video_clips import rendered_clips
        print(f"building the corpus at {corpus}", file=sys.stderr)
        build_corpus(corpus, seed=0, num_procedural=args.procedural, frames=args.frames,
                     rendered=rendered_clips if args.rendered else None,
                     progress=lambda line: print(line, file=sys.stderr))
    manifest = load_corpus(corpus)
    train, test = load_clips(corpus, "train"), load_clips(corpus, "test")
    qps = list(args.target_qps)
    search = {"population": args.population, "generations": args.generations, "seed": 0}
    pairs = [(c.name, q) for c in train + test for q in qps]
    records = teachers(corpus, work, pairs, search, args.jobs)

    data = {"obs": [], "qp": [], "bits": [], "psnr": []}
    for clip in train:
        for qp in qps:
            teacher = records[(clip.name, qp)]
            rows = rollout(clip, qp, lambda obs, info, t, q=teacher["qps"]: q[t])
            assert rows["qp"] == teacher["qps"] and np.allclose(rows["psnr"], teacher["psnr"])
            for key in data:
                data[key] += rows[key]
    start = time.perf_counter()
    students = [train_student({k: np.asarray(v) for k, v in data.items()},
                              StudentConfig(steps=args.student_steps, seed=seed))
                for seed in range(args.student_seeds)]
    train_s = (time.perf_counter() - start) / len(students)
    for seed, student in enumerate(students):
        student.save(work / f"student-s{seed}.npz")

    online = online_policies(Path(args.online)) if args.online else {}
    methods = METHODS + tuple(sorted(online))
    evaluations = {}
    for clip in test:
        evaluations[clip.name] = {q: evaluate(clip, q, records[(clip.name, q)], students, online)
                                  for q in qps}
        print(f"evaluated {clip.name}", file=sys.stderr, flush=True)
    teacher_cpu = [r["cpu_s"] for r in records.values()]
    return {
        "corpus": {"root": str(corpus), "clips": len(manifest["clips"]),
                   "train": [c.name for c in train], "test": [c.name for c in test],
                   "size": f"{test[0].width}x{test[0].height}", "frames": test[0].num_frames,
                   "fps": test[0].fps},
        "target_qps": qps, "teacher_search": search,
        "teacher_cpu_s_median": float(np.median(teacher_cpu)),
        "teacher_improvement_db": {f"{n}@{q}": r["psnr_gain"] for (n, q), r in (
            ((k, {"psnr_gain": float(np.mean(v["psnr"]) - v["history"][0])}) for k, v in records.items()))},
        "student": {"samples": len(data["qp"]), "steps": args.student_steps, "seeds": len(students),
                    "train_s": train_s, "final": [s.history[-1] for s in students]},
        "evaluations": {name: {str(q): v for q, v in by.items()} for name, by in evaluations.items()},
        "methods": list(methods),
        "online": None if not online else {
            "sweep": str(args.online), "seeds": {m: len(p) for m, p in online.items()}},
        "analysis": analyse(evaluations, qps, methods),
        "encoder_fps": throughput(test[:2]),
    }


def online_sentence(online: dict | None) -> str:
    """The page's words on the online agents (``--online``), or nothing."""
    if not online:
        return ""
    seeds = ", ".join(f"{name} {count}" for name, count in sorted(online["seeds"].items()))
    return (f" Online agents: the final policies of the sweep `sweeps/ratecontrol.toml` "
            f"({Path(online['sweep']).name}; seeds: {seeds}; trained on the train clips, "
            f"budgets from QP 28-40, reward_scale 0.01, cost 'running'), acting "
            f"deterministically.")


def page(results: dict, source: str, date: str | None = None, machine: str | None = None) -> str:
    meta = results_page.measured(results, date, machine)
    r = results["results"]
    a = r["analysis"]
    methods = r.get("methods", METHODS)
    rows = []
    for method in methods:
        e = a[method]
        bd = e.get("bd_rate_median")
        clips = e.get("bd_rate_clips")
        seeds = e.get("bd_rate_median_by_seed")
        rows.append([method, "0 (reference)" if method == "two-pass" else "no overlap" if bd is None
                     else f"{bd[0]:+.1f} % [{bd[1]:+.1f}, {bd[2]:+.1f}] ({clips} clips)"
                     + ("" if not seeds else "; seeds " + ", ".join(
                         "no overlap" if v is None or np.isnan(v) else f"{v:+.1f}" for v in seeds)),
                     f"{100 * e['within_budget']:.0f} % of {e['encodes']}",
                     "–" if e["overshoot_max"] == 0 else
                     f"median {100 * e['overshoot_median']:.1f} %, max {100 * e['overshoot_max']:.1f} %"])
    per_clip = []
    for clip in r["corpus"]["test"]:
        per_clip.append([clip] + [results_page.fmt(a[m]["bd_rate"][clip], "+.1f")
                                  for m in methods[1:]])
    c = r["corpus"]
    gains = list(r["teacher_improvement_db"].values())
    sections = [
        (None, [f"Corpus: {c['clips']} clips ({len(c['train'])} train, {len(c['test'])} test), "
                f"{c['size']}, {c['frames']} frames at {c['fps']} fps; budgets: constant-QP "
                f"encodes at QP {', '.join(map(str, r['target_qps']))}. Teacher: CMA-ES, "
                f"population {r['teacher_search']['population']}, "
                f"{r['teacher_search']['generations']} generations (median "
                f"{r['teacher_cpu_s_median']:.0f} s of CPU per clip and budget); its mean PSNR "
                f"gain over the constant-QP start: median {np.median(gains):.2f} dB. Student: "
                f"{r['student']['samples']} teacher frames, {r['student']['steps']} steps, "
                f"{r['student']['seeds']} seeds (BD-rate per clip: the mean over seeds) "
                f"({r['student']['train_s']:.0f} s). Encoder: {r['encoder_fps']:.0f} frames/s "
                f"(one thread, QP 32)." + online_sentence(r.get("online"))]),
        ("BD-rate against x264 two-pass (negative = fewer bits at equal PSNR)",
         [*results_page.table(["method", "median BD-rate [95 % bootstrap]", "within budget",
                               "overshoot where not"], rows),
          "", f"Paper: {PAPER}."]),
        ("Per test clip (BD-rate %, against two-pass)",
         results_page.table(["clip", *methods[1:]], per_clip)),
    ]
    return results_page.render_page(
        "Rate control with the real x264 (issue 30)", meta["command"], meta["date"],
        meta["machine"], sections, source=Path(source).name,
        rebuild=results_page.rebuild_command("ratecontrol.py", f"--out {source}", meta))


def write_page(json_path: Path, date: str | None = None, machine: str | None = None) -> Path:
    return results_page.write_json_page(json_path, page, date, machine)


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--corpus", default="runs/video-corpus", help="corpus root (built if absent)")
    parser.add_argument("--work", default="runs/ratecontrol", help="teacher results (resumable)")
    parser.add_argument("--target-qps", type=lambda s: [int(x) for x in s.split(",")],
                        default=[28, 32, 36, 40])
    parser.add_argument("--population", type=int, default=10)
    parser.add_argument("--generations", type=int, default=20)
    parser.add_argument("--student-steps", type=int, default=3000)
    parser.add_argument("--student-seeds", type=int, default=3)
    parser.add_argument("--procedural", type=int, default=16)
    parser.add_argument("--rendered", type=int, default=1, help="1: include rendered clips")
    parser.add_argument("--frames", type=int, default=60)
    parser.add_argument("--jobs", type=int, default=max(1, (os.cpu_count() or 1)))
    parser.add_argument("--online", default=None,
                        help="a finished sweeps/ratecontrol.toml sweep: its agents as methods too")
    parser.add_argument("--quick", action="store_true",
                        help="tiny scale (6 procedural clips of 12 frames, 3 generations)")
    results_page.add_page_arguments(parser)
    args = parser.parse_args(argv)
    if results_page.rewrite_page_only(parser, args, write_page):
        return
    if args.quick:
        args.procedural, args.rendered, args.frames = 8, 0, 12
        args.population, args.generations, args.student_steps, args.student_seeds = 4, 3, 200, 2
    result = {"measured": results_page.stamp("ratecontrol.py", argv), "results": measure(args)}
    results_page.publish(result, args.out, write_page)


if __name__ == "__main__":
    main()
