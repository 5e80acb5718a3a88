"""Regularization-based continual learning on permuted digits: how the Hessian's approximation ranks methods.

Yin, Farajtabar, Li, Levine and Mott (arXiv 2006.10974) read a quadratic
regulariser as the Taylor model of each past task's loss and find that the
more accurate the Hessian's approximation, the better the final average
accuracy (permuted MNIST: KF-Laplace 96.0 % against EWC's 56.9 % and plain
SGD's 52.6 %, multi-task 96.8 %). This runs every method of
``rwrl.continual.regularized`` (finetune, L2, EWC, KFAC, full Fisher,
multi-task) over permuted digits for each seed and checks the ordering
full >= KFAC >= EWC >= L2 >= finetune, claim by claim, on paired differences
over seeds (the same seed gives every method the same initial weights and
batches), with 95 % t-intervals.

Scale at the defaults (chosen to fit about 15-25 CPU-minutes on two cores):
10 tasks, an MLP of two hidden layers of 32 units (3,466 parameters, so the
full Fisher is formed), 5 epochs per task at batch 10 with Adam 1e-3, seeds 0-9. One seed took
130 s of wall time (72 s of CPU) with the lambda selection (41 s of it) on a shared 2-core machine
under load 7.5; each further seed about 85 s.

Lambda, one per method, by a rule fixed before any result: the grid
``regularized.LAMBDA_GRID`` (L2: 1e-4 ... 1; EWC, KFAC, full: 1 ... 1e4, by
decades), each value trained on tasks 0 and 1 with 20 % of their training
images held out (selection seed 1000, not an evaluation seed), scored by the
mean held-out accuracy of both tasks after task 1; the best wins, a tie goes
to the smaller lambda. Test images are never used to choose.

Resumable: every finished unit (a lambda selection, a (method, seed) run) is
written to ``--out`` at once (atomically); the same command again skips what is
there, and more ``--seeds`` extend it. A JSON of another configuration
(tasks, epochs, widths, grid) is refused.

Usage::

    python benchmarks/continual_digits.py --out benchmarks/results/continual_digits.json
    python benchmarks/continual_digits.py --seeds 0 1 2 --tasks 5 --epochs 2 --out /tmp/c.json
    python benchmarks/continual_digits.py --quick --out /tmp/quick.json
    python benchmarks/continual_digits.py --page-only --out benchmarks/results/continual_digits.json

Writes ``OUT.json``, its page ``OUT.md`` and ``OUT.png`` (forgetting against the
relative approximation error of the curvature, per run).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any, Sequence

sys.path.insert(0, str(Path(__file__).resolve().parent))  # results_page.py beside this file

import numpy as np  # noqa: E402

import results_page  # noqa: E402

DEFAULT_OUT = Path(__file__).resolve().parent / "results" / "continual_digits.json"
METHODS = ("finetune", "l2", "ewc", "kfac", "full", "multitask")
#: the claimed ordering, best first: each neighbouring pair is one claim.
ORDER = ("full", "kfac", "ewc", "l2", "finetune")
LABELS = {"finetune": "finetune (SGD)", "l2": "L2", "ewc": "EWC (diagonal)", "kfac": "KFAC",
          "full": "full Fisher", "multitask": "multi-task"}
SELECTION_SEED = 1000
#: the paper's permuted-MNIST final average accuracy, % (PAPERS.md part 2, section 1: a third-party
#: summary, not the PDF's tables); None where no number was found.
PAPER = {"multitask": "96.8 ± 0.0", "kfac": "96.0 ± 0.0 (32 ep)", "ewc": "62.8 ± 0.7 (1 ep), 56.9 ± 1.9 (32 ep)",
         "finetune": "59.1 ± 0.9 (1 ep), 52.6 ± 1.6 (32 ep)", "l2": None, "full": None}
QUICK = {"tasks": 2, "epochs": 1, "hidden": [8], "seeds": [0, 1], "grid": 2}


def scale(args: argparse.Namespace) -> dict[str, Any]:
    """Return the configuration a JSON is tied to (everything but the seeds)."""
    from rwrl.continual import regularized as rg
    hidden = QUICK["hidden"] if args.quick else list(rg.Config.hidden)
    grid = {m: list(g[:QUICK["grid"]] if args.quick else g) for m, g in rg.LAMBDA_GRID.items()}
    config = rg.Config()
    return {"tasks": args.tasks, "epochs": args.epochs, "hidden": hidden, "batch_size": config.batch_size,
            "learning_rate": config.learning_rate, "fisher": config.fisher, "num_samples": config.num_samples,
            "grid": grid, "selection_seed": SELECTION_SEED, "validation_fraction": 0.2}


def _config(conf: dict[str, Any]) -> Any:
    from rwrl.continual import regularized as rg
    return rg.Config(hidden=tuple(conf["hidden"]), epochs=conf["epochs"], batch_size=conf["batch_size"],
                     learning_rate=conf["learning_rate"], fisher=conf["fisher"], num_samples=conf["num_samples"])


def _save(results: dict[str, Any], out: Path) -> None:
    from rwrl.storage.atomic_files import atomic_write_bytes
    out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(out, (json.dumps(results, indent=2) + "\n").encode())


def _load(out: Path, conf: dict[str, Any]) -> dict[str, Any]:
    if not out.is_file():
        return {"config": conf, "lambdas": {}, "runs": {}}
    results = json.loads(out.read_text())
    if results.get("config") != conf:
        raise SystemExit(f"--out {out} holds a run of another configuration ({results.get('config')}): "
                         f"give another --out, or the same --tasks/--epochs/--quick")
    return results


def measure(conf: dict[str, Any], seeds: Sequence[int], out: Path, results: dict[str, Any]) -> dict[str, Any]:
    """Select each lambda, then run every (method, seed) missing from ``results``; save after each unit."""
    from rwrl.continual import digits
    from rwrl.continual import regularized as rg
    tasks = digits.permuted_digits(conf["tasks"])
    config = _config(conf)
    for method, grid in conf["grid"].items():
        if method in results["lambdas"]:
            continue
        start = time.perf_counter()
        lam, scores = rg.select_lambda(tasks, method, grid, conf["selection_seed"], config)
        results["lambdas"][method] = {"chosen": lam, "scores": {str(k): v for k, v in scores.items()},
                                      "seconds": time.perf_counter() - start}
        _save(results, out)
        print(f"lambda {method}: {lam:g} ({time.perf_counter() - start:.1f} s)", file=sys.stderr, flush=True)
    for seed in seeds:
        for method in METHODS:
            name = f"{method}/{seed}"
            if name in results["runs"]:
                continue
            lam = results["lambdas"][method]["chosen"] if method in conf["grid"] else 0.0
            r = rg.run(tasks, method, lam, seed, config)
            results["runs"][name] = {
                "method": method, "seed": seed, "lam": lam, "accuracy": r.accuracy.tolist(),
                "average_accuracy": r.average_accuracy, "forgetting": r.forgetting,
                "approximation_error": list(r.approximation_error), "curvature_seconds": list(r.curvature_seconds),
                "full_seconds": list(r.full_seconds), "seconds": r.seconds}
            _save(results, out)
            print(f"{name}: {100 * r.average_accuracy:.1f} % average, {100 * r.forgetting:.1f} forgetting "
                  f"({r.seconds:.1f} s)", file=sys.stderr, flush=True)
    return results


# ---------------------------------------------------------------------------------------------
# the page


#: the mean and its 95 % t-interval over seeds (``results_page.t_interval``).
interval = results_page.t_interval


def _seeds(results: dict[str, Any]) -> list[int]:
    """The seeds every method has finished, ascending."""
    done = [{r["seed"] for r in results["runs"].values() if r["method"] == m} for m in METHODS]
    return sorted(set.intersection(*done)) if done else []


def _values(results: dict[str, Any], method: str, field: str) -> list[float]:
    return [results["runs"][f"{method}/{s}"][field] for s in _seeds(results)]


def _pct(triple: tuple[float, float, float], signed: bool = False) -> str:
    mean, low, high = (100 * v for v in triple)
    spec = "+.1f" if signed else ".1f"
    if low != low:
        return f"{mean:{spec}}"
    return f"{mean:{spec}} [{low:{spec}}, {high:{spec}}]"


def verdict(low: float, high: float) -> str:
    """'holds' when the paired interval lies above 0, 'does not hold' below it, else not shown."""
    if low != low:
        return "not shown (one seed)"
    return "holds" if low > 0 else ("does not hold" if high < 0 else "not shown (interval holds 0)")


def analyse(results: dict[str, Any]) -> dict[str, Any]:
    """Return the per-method intervals and the ordering's claims (paired differences), from the JSON alone."""
    rows = {}
    for m in METHODS:
        errors = [float(np.mean(e)) for e in _values(results, m, "approximation_error") if e]
        own = [s for seconds in _values(results, m, "curvature_seconds") for s in seconds[1:]]
        full = [s for seconds in _values(results, m, "full_seconds") for s in seconds[1:]]
        rows[m] = {"accuracy": interval(_values(results, m, "average_accuracy")),
                   "forgetting": interval(_values(results, m, "forgetting")),
                   "error": float(np.mean(errors)) if errors else None,
                   "estimate_seconds": float(np.median(own)) if own else None,
                   "full_seconds": float(np.median(full)) if full else None,
                   "run_seconds": float(np.mean(_values(results, m, "seconds")))}
    claims = []
    for better, worse in zip(ORDER, ORDER[1:]):
        acc = interval(np.subtract(_values(results, better, "average_accuracy"),
                                   _values(results, worse, "average_accuracy")))
        fgt = interval(np.subtract(_values(results, worse, "forgetting"), _values(results, better, "forgetting")))
        claims.append((better, worse, acc, verdict(acc[1], acc[2]), fgt, verdict(fgt[1], fgt[2])))
    return {"rows": rows, "claims": claims, "seeds": _seeds(results)}


def figure(results: dict[str, Any], path: Path) -> Path:
    """Plot each regularised run's forgetting against its mean relative approximation error; return ``path``."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(5.5, 4))
    for m in ORDER[:-1]:
        runs = [r for r in results["runs"].values() if r["method"] == m and r["approximation_error"]]
        ax.scatter([np.mean(r["approximation_error"]) for r in runs], [100 * r["forgetting"] for r in runs],
                   label=LABELS[m], alpha=0.8)
    ax.set_xlabel("relative approximation error ||F - H||_F / ||F||_F (mean over task ends)")
    ax.set_ylabel("forgetting (points of accuracy)")
    ax.set_title("Permuted digits: forgetting against curvature error", fontsize=10)
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    fig.savefig(path, dpi=90, bbox_inches="tight")
    plt.close(fig)
    return path


def page(results: dict[str, Any], source: str, date: str | None = None, machine: str | None = None) -> str:
    """Render the results page of ``results``."""
    meta = results_page.measured(results, date, machine)
    conf, a = results["config"], analyse(results)
    fmt = results_page.fmt
    method_rows = [[LABELS[m], fmt(results["lambdas"].get(m, {}).get("chosen"), "g") if m in conf["grid"] else None,
                    _pct(r["accuracy"]), _pct(r["forgetting"]), fmt(r["error"], ".3f"),
                    fmt(r["estimate_seconds"], ".3f"), fmt(r["full_seconds"], ".3f"), fmt(r["run_seconds"], ".0f")]
                   for m, r in a["rows"].items()]
    claim_rows = [[f"{LABELS[b]} >= {LABELS[w]}", _pct(acc, True), va, _pct(fgt, True), vf]
                  for b, w, acc, va, fgt, vf in a["claims"]]
    lambda_rows = [[LABELS[m], ", ".join(f"{float(k):g}: {100 * v:.1f}" for k, v in sel["scores"].items()),
                    f"{sel['chosen']:g}"] for m, sel in results["lambdas"].items()]
    paper_rows = [[LABELS[m], PAPER[m], _pct(a["rows"][m]["accuracy"])] for m in METHODS]
    total = sum(r["seconds"] for r in results["runs"].values()) + sum(
        s["seconds"] for s in results["lambdas"].values())
    n = len(a["seeds"])
    sections = [
        (None, [f"Permuted digits (`rwrl.continual.digits`): {conf['tasks']} tasks, task 0 the plain digits, "
                f"1,257 training and 540 test 8 x 8 images each. MLP {conf['hidden']} (ReLU), Adam "
                f"{conf['learning_rate']:g}, batch {conf['batch_size']}, {conf['epochs']} epoch(s) per task; "
                f"curvature: Fisher with {conf['num_samples']} label(s) {conf['fisher']} from the model per "
                f"image, at each task's end. {n} seeds ({', '.join(map(str, a['seeds']))}). "
                f"Time: {total:.0f} s in all (lambda selection included)."]),
        ("Per method, mean [95 % t-interval over seeds]", [
            "Final average accuracy: mean over tasks of the test accuracy after the last task, %. Forgetting "
            "(Chaudhry et al. 2018): mean over tasks j < T-1 of the best accuracy on j after training j..T-2 "
            "minus the last, points. Error: ||F - H||_F / ||F||_F against the full Fisher of the same labels, "
            "mean over the T-1 task ends (L2: the best multiple of I). Estimate and full: median seconds of one "
            "curvature estimate, the first (compiling) one left out.", "",
            *results_page.table(["method", "lambda", "final avg acc %", "forgetting", "error", "estimate s",
                                 "full s", "run s"], method_rows, "lrrrrrrr")]),
        ("The ordering, claim by claim (paired differences over seeds)", [
            "Accuracy: better minus worse, points; forgetting: worse minus better, points. A claim holds where "
            "the interval lies above 0 and does not hold where it lies below.", "",
            *results_page.table(["claim", "accuracy difference", "verdict", "forgetting difference", "verdict"],
                                claim_rows, "lrlrl")]),
        ("Lambda selection", [
            f"Rule: each grid value trained on tasks 0-1 with 20 % of their training images held out (selection "
            f"seed {conf['selection_seed']}), scored by the mean held-out accuracy of both tasks after task 1 "
            f"(%); best wins, ties to the smaller.", "",
            *results_page.table(["method", "scores (lambda: %)", "chosen"], lambda_rows)]),
        ("Forgetting against approximation error", [
            f"![forgetting against the curvature's relative error]({Path(source).with_suffix('.png').name})"]),
        ("Beside the paper", [
            "The paper's permuted-MNIST final average accuracy, % (a third-party summary of the paper, "
            "PAPERS.md part 2 section 1; the PDF's tables were not read): 20 tasks of 28 x 28 MNIST, 60,000 "
            "training images each, an MLP of 2 hidden layers, lr 1e-3, batch 10, lambda tuned on the test "
            "average. Here: 8 x 8 digits, 1,257 training images per task, "
            f"{conf['tasks']} tasks, lambda chosen by the rule above. No L2 or full-Hessian number was found "
            "in what was read.", "",
            *results_page.table(["method", "paper (permuted MNIST)", "here (permuted digits)"], paper_rows, "lrr")]),
    ]
    return results_page.render_page(
        "Regularization-based continual learning on permuted digits", meta["command"], meta["date"],
        meta["machine"], sections, source=Path(source).name,
        rebuild=results_page.rebuild_command("continual_digits.py", f"--out {source}", meta))


def write_page(json_path: Path, date: str | None = None, machine: str | None = None) -> Path:
    """Write the page (and the figure) of the JSON at ``json_path``; return the page's path."""
    results = json.loads(Path(json_path).read_text())
    if _seeds(results):
        figure(results, Path(json_path).with_suffix(".png"))
    return results_page.write_json_page(json_path, page, date, machine)


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=None, help="default 0..9 (--quick: 0 1)")
    parser.add_argument("--tasks", type=int, default=None, help="tasks in the sequence (default 10, --quick 2)")
    parser.add_argument("--epochs", type=int, default=None, help="epochs per task (default 5, --quick 1)")
    parser.add_argument("--quick", action="store_true",
                        help="a tiny run for tests: 2 tasks, 1 epoch, 8 hidden units, 2 seeds, 2 lambdas")
    results_page.add_page_arguments(parser)
    args = parser.parse_args(argv)
    args.out = DEFAULT_OUT if args.out is None else args.out
    if results_page.rewrite_page_only(parser, args, write_page):
        return
    args.tasks = args.tasks or (QUICK["tasks"] if args.quick else 10)
    args.epochs = args.epochs or (QUICK["epochs"] if args.quick else 5)
    seeds = args.seeds if args.seeds is not None else (QUICK["seeds"] if args.quick else list(range(10)))
    if args.tasks < 2 or args.epochs < 1:
        parser.error(f"--tasks {args.tasks} --epochs {args.epochs}: give at least 2 tasks and 1 epoch")
    conf = scale(args)
    results = _load(args.out, conf)
    results["measured"] = results_page.stamp("continual_digits.py", argv)
    measure(conf, seeds, args.out, results)
    print(f"page: {write_page(args.out)}", file=sys.stderr)


if __name__ == "__main__":
    main()
