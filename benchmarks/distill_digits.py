"""Teacher-assistant distillation (TAKD) on scikit-learn's digits: the paper's three claims, measured.

Mirzadeh et al. (AAAI 2020, arXiv 1902.03393) claim that (1) the gain of
knowledge distillation over training on labels shrinks as the gap between
teacher and student grows, (2) distilling through one teacher assistant of
intermediate size beats distilling directly, and (3) the full path through
every size in between is best. For each seed this trains the ladder of
``rwrl.distill.digits`` (an MLP teacher of 2 x 256 units, students of 64, 16,
8 and 4 units): every student on labels alone (NOKD), distilled from the
teacher (BLKD), through each single assistant (TAKD) and through the full
path; nothing is tuned (the choices are in ``rwrl/distill/digits.py``).
Intervals are 95 % t-intervals over seeds of the paired differences.

Usage::

    python benchmarks/distill_digits.py --out benchmarks/results/distill_digits.json
    python benchmarks/distill_digits.py --seeds 0 1 2
    python benchmarks/distill_digits.py --page-only --out benchmarks/results/distill_digits.json
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any, Sequence

sys.path.insert(0, str(Path(__file__).resolve().parent))  # results_page.py beside this file

import numpy as np  # noqa: E402

import results_page  # noqa: E402

#: the pre-named assistant of claim 2: the middle of the ladder between teacher 256 and student 4.
CLAIM_ASSISTANT = 16
#: CIFAR-100 ResNet numbers the first author gives for the released code (issue #7, 2019-07-29), in %:
#: the paper's own tables were not read (PAPERS.md, section 3).
PAPER = {"teacher ResNet110": 72.38, "ResNet20 NOKD": 67.03, "ResNet20 BLKD (110 -> 20)": 68.11,
         "ResNet8 NOKD": 61.37, "ResNet8 BLKD (110 -> 8)": 61.41, "ResNet8 TAKD (110 -> 20 -> 8)": 61.82}


def _name(chain: Sequence[int]) -> str:
    return "-".join(map(str, chain))


def measure(seeds: Sequence[int], train_fraction: float) -> dict[str, Any]:
    """Train the ladder for every seed; return the test accuracies per seed and chain, and the times."""
    from rwrl.distill import digits
    split = digits.load_split(train_fraction)
    config = digits.TrainConfig()
    accuracy, seconds = {}, {}
    for seed in seeds:
        start = time.perf_counter()
        out = digits.run_chains(digits.ladder_chains(), split, seed, config)
        seconds[str(seed)] = time.perf_counter() - start
        accuracy[str(seed)] = {_name(chain): acc for chain, acc in out.items()}
        print(f"seed {seed}: {seconds[str(seed)]:.1f} s", file=sys.stderr, flush=True)
    return {"ladder": {str(k): list(v) for k, v in digits.LADDER.items()},
            "config": {**vars(config)}, "train_fraction": train_fraction,
            "train_images": len(split.y_train), "test_images": len(split.y_test),
            "seeds": list(seeds), "seconds": seconds, "accuracy": accuracy}


#: the mean and its 95 % t-interval over seeds (``results_page.t_interval``).
interval = results_page.t_interval


def _pct(triple: tuple[float, float, float], signed: bool = False) -> str:
    mean, low, high = (100 * v for v in triple)
    spec = "+.2f" if signed else ".2f"
    return f"{mean:{spec}} [{low:{spec}}, {high:{spec}}]"


def _verdict(low: float, high: float) -> str:
    return "holds" if low > 0 else ("contradicted" if high < 0 else "not shown (interval holds 0)")


def _full_verdict(full: dict[str, tuple[float, float, float]]) -> str:
    """Holds if the full path beats every other path (each interval above 0); contradicted if one beats it."""
    beaten_by = [m for m, (_, _, high) in full.items() if high < 0]
    if beaten_by:
        return f"contradicted ({', '.join(beaten_by)} above it)"
    return "holds" if all(low > 0 for _, low, _ in full.values()) else "not shown (an interval holds 0)"


def _per_seed(results: dict[str, Any], chain: str) -> list[float]:
    return [results["accuracy"][str(s)][chain] for s in results["seeds"]]


def _methods(teacher: int, sizes: list[int], student: int) -> list[tuple[str, str]]:
    """Return (method, chain) of ``student``: NOKD, BLKD, each single assistant, the full path."""
    between = [s for s in sizes if student < s < teacher]
    rows = [("NOKD", _name([student])), ("BLKD", _name([teacher, student]))]
    rows += [(f"TAKD via {a}", _name([teacher, a, student])) for a in between]
    if len(between) > 1:
        rows.append(("full path", _name([teacher, *between, student])))
    return rows


def analyse(results: dict[str, Any]) -> dict[str, Any]:
    """Return the tables and the three claims' numbers, from the JSON alone."""
    sizes = sorted(map(int, results["ladder"]), reverse=True)
    teacher, students = sizes[0], sizes[1:]
    diff = lambda a, b: [x - y for x, y in zip(_per_seed(results, a), _per_seed(results, b))]  # noqa: E731
    table = {s: [(m, c, interval(_per_seed(results, c))) for m, c in _methods(teacher, sizes, s)]
             for s in students}
    gains = {s: diff(_name([teacher, s]), _name([s])) for s in students}
    # per seed, the least-squares slope of the KD gain against the gap's rank (1 = the largest student).
    ranks = np.arange(1, len(students) + 1, dtype=float)
    slopes = [float(np.polyfit(ranks, [gains[s][i] for s in students], 1)[0])
              for i in range(len(results["seeds"]))]
    smallest = students[-1]
    ta = diff(_name([teacher, CLAIM_ASSISTANT, smallest]), _name([teacher, smallest]))
    # the full path against every other KD path of the smallest student, each named beforehand
    # (taking the best on the mean first would bias the comparison against the full path).
    others = [(m, c) for m, c in _methods(teacher, sizes, smallest) if m not in ("NOKD", "full path")]
    full = {m: interval(diff(_name([teacher, *students]), c)) for m, c in others}
    return {"teacher": teacher, "students": students, "table": table,
            "gains": {s: interval(g) for s, g in gains.items()}, "slope": interval(slopes),
            "ta": interval(ta), "full": full,
            "teacher_acc": interval(_per_seed(results, _name([teacher])))}


def page(results: dict[str, Any], source: str, date: str | None = None, machine: str | None = None) -> str:
    """Render the results page of ``results``."""
    meta = results_page.measured(results, date, machine)
    a = analyse(results)
    c, n = results["config"], len(results["seeds"])
    rows = [[s, m, f"`{chain}`", _pct(t)] for s in a["students"] for m, chain, t in a["table"][s]]
    gain_rows = [[s, i + 1, _pct(a["gains"][s], True)] for i, s in enumerate(a["students"])]
    slope, ta, full = a["slope"], a["ta"], a["full"]
    closest = min(full, key=lambda m: full[m][0])
    claims = [
        ["1. KD gain shrinks as the gap grows", "slope of (BLKD - NOKD) against the gap's rank, per seed",
         _pct(slope, True), _verdict(-slope[2], -slope[1])],
        ["2. one assistant beats direct KD", f"student {a['students'][-1]}: TAKD via {CLAIM_ASSISTANT} - BLKD",
         _pct(ta, True), _verdict(ta[1], ta[2])],
        ["3. the full path is best", f"student {a['students'][-1]}: full path - each other KD path; "
         f"the least favourable: {closest}", _pct(full[closest], True), _full_verdict(full)],
    ]
    total = sum(results["seconds"].values())
    sections = [
        (None, [f"{results['train_images']} training and {results['test_images']} test images "
                f"(train fraction {results['train_fraction']}, stratified, split seed 0); "
                f"{n} seeds; teacher: MLP {results['ladder'][str(a['teacher'])]}, students MLPs of one "
                f"hidden layer ({', '.join(map(str, a['students']))} units). KD loss: (1 - lambda) CE + "
                f"lambda tau^2 KL, tau = {c['temperature']:g}, lambda = {c['lam']:g}; SGD lr "
                f"{c['learning_rate']:g}, momentum {c['momentum']:g}, weight decay {c['weight_decay']:g}, "
                f"batch {c['batch_size']}, {c['epochs']} epochs; last-epoch test accuracy. "
                f"Time: {total:.0f} s in all ({total / n:.0f} s per seed)."]),
        ("Test accuracy, %, mean [95 % interval over seeds]",
         [f"Teacher ({a['teacher']}) on labels: {_pct(a['teacher_acc'])}.", "",
          *results_page.table(["student", "method", "chain", "accuracy"], rows, "rllr")]),
        ("Gain of KD over labels alone (BLKD - NOKD), points", [
            *results_page.table(["student", "gap rank", "gain"], gain_rows, "rrr")]),
        ("The three claims", [*results_page.table(["claim", "measured as", "points", "verdict"], claims)]),
        ("Beside the paper", [
            "The paper's CIFAR tables were not read here (PAPERS.md, section 3); the numbers below are the "
            "first author's for the released code, CIFAR-100, ResNets (issue #7), in %:", "",
            *results_page.table(["network", "accuracy"], [[k, f"{v:.2f}"] for k, v in PAPER.items()], "lr"),
            "", "There the KD gain is +1.08 for ResNet20 and +0.04 for ResNet8 (the larger gap), and the "
            "assistant adds +0.41 over direct KD; no full-path number was read. CIFAR-100 has 50,000 "
            "32 x 32 colour training images and 100 classes; here 359 8 x 8 grey images and 10 classes, "
            "MLPs instead of CNNs."]),
    ]
    return results_page.render_page(
        "Teacher-assistant knowledge distillation on digits", meta["command"], meta["date"],
        meta["machine"], sections, source=Path(source).name,
        rebuild=results_page.rebuild_command("distill_digits.py", f"--out {source}", meta))


def write_page(json_path: Path, date: str | None = None, machine: str | None = None) -> Path:
    return results_page.write_json_page(json_path, page, date, machine)


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=list(range(20)))
    parser.add_argument("--train-fraction", type=float, default=0.2,
                        help="the share of the 1,797 images trained on (default 0.2)")
    results_page.add_page_arguments(parser)
    args = parser.parse_args(argv)
    if results_page.rewrite_page_only(parser, args, write_page):
        return
    result = {"measured": results_page.stamp("distill_digits.py", argv),
              **measure(args.seeds, args.train_fraction)}
    results_page.publish(result, args.out, write_page)


if __name__ == "__main__":
    main()
