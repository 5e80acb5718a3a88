"""PCC and its two ablations on the planar system (and the inverted pendulum): % of steps in the goal region.

Levine et al. 2020 (PCC, arXiv 1909.01506) claim that a latent space trained with prediction,
consistency and curvature losses serves iLQR well, and that ablations "support the importance
of all three PCC components" (abstract; the body and its tables were not read, PAPERS.md
section 4). This trains ``rwrl.agents.pcc`` (every choice is in its docstring) and its
ablations "no-curvature" (lambda_cur = 0) and "no-consistency" (lambda_c = 0) on the tasks of
``rwrl.planning.pcc_tasks``, and controls each trained model by receding-horizon iLQR in its
latent space on 10 random start/goal tasks (the same 10 for every model, eval seed 2020).

The numbers beside (none is the paper's own table, which was not found): the unofficial
PCC-pytorch README, planar about 48 % over its models and about 76 % for the best model,
"inverted pendulum" about 60.7 % and 80.65 %; and PCC as re-run by the PC3 authors (PC3-pytorch
README, "Table 1"): planar 56.6 +- 3.15 over models, 75.5 +- 0.32 for the best; balance 91.9 +-
1.72 and 100; swing-up 26.41 +- 2.64 and 66.9 +- 3.8. Their models trained 2,000 to 5,000 epochs.

Reduced scale (defaults): 5,000 training triples (the code's default data size; one data set,
seed 0, for every model), 200 epochs instead of the code's 2,000 (about 8,000 Adam steps of
128), 3 seeds per variant, 10 control tasks per model; the rest as the code (sizes, losses,
Adam 5e-4 with decay 1e-3, iLQR settings). On a 2-core machine shared with other benchmarks a
planar epoch takes about 1.8 s, so a planar model about 6 min and planar in all (9 models) about
an hour; a pendulum epoch about 8 s (``--datasets pendulum``: some 4 hours for 9 models at 200
epochs). Measured besides the control metric: each model's loss terms at the end, and for
planar how well a linear map of the latent means recovers the true positions (RMSE in pixels
over the valid grid: 0 for a latent map that is an affine image of the world).

Figure: ``OUT-latent.png`` (planar), the true positions coloured by place and the latent means of
each variant's seed-0 model in the same colours (the paper's latent-map figure, remade).

The results file is written atomically after every model; rerunning the same command continues
it (more ``--seeds`` extend it; other settings are refused).

Usage::

    python benchmarks/pcc.py --out benchmarks/results/pcc.json
    python benchmarks/pcc.py --datasets planar pendulum --out benchmarks/results/pcc.json
    python benchmarks/pcc.py --quick --out /tmp/pcc_quick.json
    python benchmarks/pcc.py --page-only --out benchmarks/results/pcc.json
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from pathlib import Path
from typing import Any, Sequence

sys.path.insert(0, str(Path(__file__).resolve().parent))  # results_page.py beside this file

import numpy as np  # noqa: E402

import results_page  # noqa: E402

#: the tasks each dataset's models are controlled on (swing and balance share the pendulum's models).
DATASETS = {"planar": ("planar",), "pendulum": ("swing", "balance")}
VARIANTS = ("pcc", "no-curvature", "no-consistency")
#: % of steps in the goal region: (all models, best model); PCC-pytorch README and PC3's re-run of PCC.
README = {"planar": (48.0, 76.0), "swing": (60.7, 80.65)}
PC3_RERUN = {"planar": ("56.6 ± 3.15", "75.5 ± 0.32"), "swing": ("26.41 ± 2.64", "66.9 ± 3.8"),
             "balance": ("91.9 ± 1.72", "100 ± 0")}
DEFAULTS = {"samples": 5000, "epochs": 200, "seeds": (0, 1, 2), "eval_tasks": 10}
#: --quick: every part runs, nothing is learnt.
QUICK = {"samples": 256, "epochs": 2, "seeds": (0,), "eval_tasks": 2,
         "overrides": {"encoder_hidden": [32], "dynamics_hidden": [8], "backward_embed": [2, 2, 16],
                       "backward_hidden": 16}}
DATA_SEED = 0
EVAL_SEED = 2020


def settings_of(args: argparse.Namespace, overrides: dict[str, Any]) -> dict[str, Any]:
    """Return what the measurements depend on (a continued results file must have the same)."""
    configs = {f"{d}|{v}": dataclasses.asdict(config_of(d, v, args.epochs, overrides))
               for d in DATASETS for v in VARIANTS}
    return {"samples": args.samples, "epochs": args.epochs, "eval_tasks": args.eval_tasks, "data_seed": DATA_SEED,
            "eval_seed": EVAL_SEED, "overrides": overrides, "configs": json.loads(json.dumps(configs))}


def config_of(dataset: str, variant: str, epochs: int, overrides: dict[str, Any]):
    from rwrl.agents import pcc
    fields = {k: tuple(v) if isinstance(v, list) else v for k, v in overrides.items()}
    return pcc.make_config(dataset, variant, epochs=epochs, **fields)


def latent_fit(grid: np.ndarray, z: np.ndarray) -> float:
    """Return the RMSE (pixels, over both axes) of the best affine map from latent means to true positions."""
    design = np.c_[z, np.ones(len(z))]
    coef, *_ = np.linalg.lstsq(design, grid, rcond=None)
    return float(np.sqrt(np.mean((design @ coef - grid) ** 2)))


def run_model(dataset: str, variant: str, seed: int, data: Any, settings: dict[str, Any],
              params_dir: Path | None) -> dict[str, Any]:
    """Train one model and control it on its dataset's tasks; return the run's record."""
    from rwrl.agents import pcc
    from rwrl.planning import pcc_tasks
    config = config_of(dataset, variant, settings["epochs"], settings["overrides"])
    every = max(1, config.epochs // 8)

    def progress(epoch, row):
        if epoch % every == 0 or epoch == config.epochs:
            print(f"  {dataset}|{variant}|{seed} epoch {epoch}: total {row['total']:.2f}, prediction "
                  f"{row['prediction']:.2f}, consistency {row['consistency']:.3f}, curvature {row['curvature']:.2e}",
                  file=sys.stderr, flush=True)

    trained = pcc.train(config, data.x, data.u, data.x_next, seed=seed, progress=progress)
    tasks = [pcc_tasks.make_task(name) for name in DATASETS[dataset]]
    model = pcc.make_model(config, tasks[0].obs_shape, tasks[0].action_low.size)
    if params_dir is not None:
        pcc.save_params(params_dir / f"{dataset}-{variant}-{seed}.npz", trained.params, config, tasks[0].obs_shape,
                        tasks[0].action_low.size)
    start, evals = time.perf_counter(), {}
    for task in tasks:
        out = pcc.evaluate(model, trained.params, task, settings["eval_tasks"], EVAL_SEED, amortized=config.amortized)
        evals[task.name] = {"percents": out["percents"], "mean": out["mean"]}
    record = {"train_seconds": trained.seconds, "eval_seconds": time.perf_counter() - start, "eval": evals,
              "final": trained.history[-1],
              "curve": [round(row["total"], 3) for row in trained.history[every - 1::every]]}
    if dataset == "planar":
        grid = pcc_tasks.planar_grid()
        z = pcc.encode_mean(model, trained.params, pcc_tasks.planar_render(grid))
        record["latent_fit_rmse"] = latent_fit(grid, z)
        if seed == min(DEFAULTS["seeds"]):
            record["latent"] = np.round(z, 4).tolist()
    return record


def measure(results: dict[str, Any], datasets: Sequence[str], seeds: Sequence[int], out: Path | None,
            params_dir: Path | None) -> dict[str, Any]:
    """Run every (dataset, variant, seed) not in ``results`` yet, saving after each; return ``results``."""
    from rwrl.planning import pcc_tasks
    s = results["settings"]
    for dataset in datasets:
        todo = [(v, seed) for seed in seeds for v in VARIANTS if f"{dataset}|{v}|{seed}" not in results["runs"]]
        if not todo:
            continue
        data = pcc_tasks.make_task(DATASETS[dataset][0]).sample_triples(s["samples"], DATA_SEED)
        for variant, seed in todo:
            key = f"{dataset}|{variant}|{seed}"
            run = run_model(dataset, variant, seed, data, s, params_dir)
            results["runs"][key] = run
            print(f"{key}: " + ", ".join(f"{t} {e['mean']:.1f} %" for t, e in run["eval"].items())
                  + f"; {run['train_seconds']:.0f} s training, {run['eval_seconds']:.0f} s control",
                  file=sys.stderr, flush=True)
            if out is not None:
                results_page.save_results(results, out, write_page)
    return results


# ----------------------------------------------------------------- analysis and page
interval = results_page.t_interval


def _runs(results: dict[str, Any], dataset: str, variant: str) -> dict[int, dict[str, Any]]:
    out = {}
    for key, run in results["runs"].items():
        d, v, seed = key.split("|")
        if (d, v) == (dataset, variant):
            out[int(seed)] = run
    return dict(sorted(out.items()))


def _fmt(triple: tuple[float, float, float], signed: bool = False) -> str:
    mean, low, high = triple
    spec = "+.1f" if signed else ".1f"
    if mean != mean:
        return results_page.MISSING
    return f"{mean:{spec}}" + ("" if low != low else f" [{low:{spec}}, {high:{spec}}]")


def _verdict(triple: tuple[float, float, float]) -> str:
    _, low, high = triple
    if low != low:
        return "not resolved (fewer than two seeds)"
    return "holds" if low > 0 else ("does not hold" if high < 0 else "not resolved (interval holds 0)")


def analyse(results: dict[str, Any]) -> dict[str, Any]:
    """Return the table rows and the ablation claims' verdicts, from the results alone."""
    rows, claims = [], []
    for dataset, tasks in DATASETS.items():
        for task in tasks:
            means = {}
            for variant in VARIANTS:
                runs = _runs(results, dataset, variant)
                if not runs:
                    continue
                means[variant] = {seed: r["eval"][task]["mean"] for seed, r in runs.items()}
                values = list(means[variant].values())
                fit = [r["latent_fit_rmse"] for r in runs.values() if "latent_fit_rmse" in r]
                paper = README.get(task) if variant == "pcc" else None
                rerun = PC3_RERUN.get(task) if variant == "pcc" else None
                sd = f"{np.std(values, ddof=1):.1f}" if len(values) > 1 else None
                rows.append([task, variant, len(values), _fmt(interval(values)), sd,
                             f"{max(values):.1f}", results_page.fmt(np.mean(fit) if fit else None, ".2f"),
                             f"{paper[0]:g} / {paper[1]:g}" if paper else None,
                             f"{rerun[0]} / {rerun[1]}" if rerun else None,
                             f"{np.mean([r['train_seconds'] for r in runs.values()]):.0f}"])
            for other in VARIANTS[1:]:
                if "pcc" in means and other in means:
                    paired = sorted(set(means["pcc"]) & set(means[other]))
                    diff = interval([means["pcc"][s] - means[other][s] for s in paired])
                    claims.append([f"{task}: PCC above {other} (paired by seed)", f"{_fmt(diff, True)} points",
                                   _verdict(diff)])
    return {"rows": rows, "claims": claims}


def figure(results: dict[str, Any], path: Path) -> Path | None:
    """Plot the planar latent maps (true positions, then each variant's seed-0 model); return ``path``."""
    latents = {v: r["latent"] for v in VARIANTS for r in _runs(results, "planar", v).values() if "latent" in r}
    if not latents:
        return None
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from rwrl.planning.pcc_tasks import PLANAR_SIZE, planar_grid
    grid = planar_grid()
    colours = np.c_[grid[:, 0] / PLANAR_SIZE, 0.35 * np.ones(len(grid)), grid[:, 1] / PLANAR_SIZE]
    fig, axes = plt.subplots(1, 1 + len(latents), figsize=(3.2 * (1 + len(latents)), 3.3))
    axes[0].scatter(grid[:, 1], grid[:, 0], c=colours, s=6)
    axes[0].set_title("true positions\n(x: column, y: row)", fontsize=9)
    axes[0].invert_yaxis()
    for ax, (variant, z) in zip(axes[1:], latents.items()):
        z = np.asarray(z)
        ax.scatter(z[:, 0], z[:, 1], c=colours, s=6)
        fit = _runs(results, "planar", variant)
        rmse = next(r["latent_fit_rmse"] for r in fit.values() if "latent" in r)
        ax.set_title(f"{variant}, seed 0\naffine fit RMSE {rmse:.1f} px", fontsize=9)
    for ax in axes:
        ax.set_xticks([]), ax.set_yticks([])
    fig.savefig(path, dpi=90, bbox_inches="tight")
    plt.close(fig)
    return path


def figure_path(json_path: Path) -> Path:
    return Path(json_path).with_name(Path(json_path).stem + "-latent.png")


def page(results: dict[str, Any], source: str, date: str | None = None, machine: str | None = None) -> str:
    """Render the results page of ``results``."""
    meta = results_page.measured(results, date, machine)
    a = analyse(results)
    s = results["settings"]
    total = sum(r["train_seconds"] + r["eval_seconds"] for r in results["runs"].values())
    planar = s["configs"]["planar|pcc"]
    sections = [
        (None, [f"{s['samples']:,} training triples per dataset (data seed {s['data_seed']}), {s['epochs']} epochs "
                f"(batches of {planar['batch_size']}, Adam {planar['learning_rate']:g}, weight decay "
                f"{planar['weight_decay']:g}), loss weights (1, 8, 8) with the code's extra terms (VAE "
                f"{planar['vae_coeff']:g}, deterministic {planar['determ_coeff']:g}); control: receding-horizon "
                f"iLQR, {s['eval_tasks']} random start/goal tasks per model (eval seed {s['eval_seed']}). "
                f"Overrides: {s['overrides'] or 'none'}. Time: {total / 60:.0f} min in all."]),
        ("% of steps in the goal region (mean [95 % t-interval] over models; their sample sd; the best model)", [
            *results_page.table(["task", "variant", "models", "all", "sd", "top 1", "latent fit (px)",
                                 "PCC-pytorch README (all / best)", "PC3's re-run of PCC (all / top 1)",
                                 "s per model"], a["rows"], "llrrrrrrrr"),
            "", "Latent fit: RMSE of the best affine map from the latent means to the true positions over the "
            "valid planar grid (0 for a latent map that is an affine image of the world). The README's pendulum "
            "figures are for its \"inverted pendulum\" (shown on the swing row; which task it means is not said). "
            "The reference models trained 2,000 to 5,000 epochs; these trained fewer (above)."]),
        ("The ablation claims (\"the importance of all three PCC components\")",
         [*results_page.table(["claim", "PCC - ablation", "verdict"], a["claims"])]),
    ]
    if any("latent" in r for r in results["runs"].values()):
        sections.append(("Planar latent maps", [f"![planar latent maps]({figure_path(Path(source)).name})"]))
    return results_page.render_page(
        "PCC and its ablations: % of steps in the goal region", meta["command"], meta["date"], meta["machine"],
        sections, source=Path(source).name, rebuild=results_page.rebuild_command("pcc.py", f"--out {source}", meta))


def write_page(json_path: Path, date: str | None = None, machine: str | None = None) -> Path:
    """Write the page (and the latent-map figure) of the JSON at ``json_path``; return the page's path."""
    figure(json.loads(Path(json_path).read_text()), figure_path(json_path))
    return results_page.write_json_page(json_path, page, date, machine)


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--datasets", nargs="+", choices=sorted(DATASETS), default=["planar"])
    parser.add_argument("--seeds", type=int, nargs="+", default=None, help="default 0 1 2 (--quick: 0)")
    parser.add_argument("--samples", type=int, default=None, help=f"training triples (default {DEFAULTS['samples']})")
    parser.add_argument("--epochs", type=int, default=None, help=f"epochs per model (default {DEFAULTS['epochs']})")
    parser.add_argument("--eval-tasks", type=int, default=None, help="control tasks per model (default 10)")
    parser.add_argument("--params-dir", type=Path, default=None, help="also save each model's parameters here")
    parser.add_argument("--quick", action="store_true", help="a smoke run: tiny networks and data, 2 epochs")
    results_page.add_page_arguments(parser)
    args = parser.parse_args(argv)
    if results_page.rewrite_page_only(parser, args, write_page):
        return
    scale = QUICK if args.quick else DEFAULTS
    for name in ("samples", "epochs", "eval_tasks"):
        if getattr(args, name) is None:
            setattr(args, name, scale[name])
    seeds = args.seeds if args.seeds is not None else list(scale["seeds"])
    results_page.measure_resumable(
        "pcc.py", argv, args.out, settings_of(args, dict(scale.get("overrides", {}))),
        lambda results: measure(results, args.datasets, seeds, args.out, args.params_dir),
        lambda results: analyse(results)["claims"], write_page)


if __name__ == "__main__":
    main()
