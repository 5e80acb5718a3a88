"""The PCC benchmark's page from a results file: all / top 1 over models, paired ablation verdicts, the latent fit."""

import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "benchmarks"))

import pcc as pcc_benchmark  # noqa: E402  (benchmarks/pcc.py)


def _run(percents):
    return {"eval": {"planar": {"percents": percents, "mean": float(np.mean(percents))}}, "train_seconds": 60.0,
            "eval_seconds": 5.0, "final": {}, "curve": [], "latent_fit_rmse": 1.5}


def _results(pcc, no_curvature):
    runs = {}
    for seed, (a, b) in enumerate(zip(pcc, no_curvature)):
        runs[f"planar|pcc|{seed}"] = _run([a] * 10)
        runs[f"planar|no-curvature|{seed}"] = _run([b] * 10)
    return {"settings": {}, "runs": runs}


def test_rows_give_the_mean_over_models_and_the_best_model():
    rows = pcc_benchmark.analyse(_results([70.0, 74.0, 78.0], [10.0, 20.0, 30.0]))["rows"]
    pcc = next(r for r in rows if r[:2] == ["planar", "pcc"])
    # mean 74, sample sd of (70, 74, 78) is 4, 95 % t half-width 4.303 * 4 / sqrt(3) = 9.94
    assert pcc[2] == 3 and pcc[3] == "74.0 [64.1, 83.9]" and pcc[4] == "4.0" and pcc[5] == "78.0"
    assert pcc[6] == "1.50" and pcc[7] == "48 / 76" and pcc[8].startswith("56.6")


@pytest.mark.parametrize("pcc, other, verdict", [
    ([70.0, 74.0, 78.0], [10.0, 20.0, 30.0], "holds"),
    ([10.0, 20.0, 30.0], [70.0, 74.0, 78.0], "does not hold"),
    ([70.0, 20.0, 50.0], [50.0, 40.0, 50.0], "not resolved (interval holds 0)"),
    ([70.0], [50.0], "not resolved (fewer than two seeds)"),
])
def test_ablation_verdicts_come_from_paired_differences(pcc, other, verdict):
    claims = pcc_benchmark.analyse(_results(pcc, other))["claims"]
    assert claims == [[claims[0][0], claims[0][1], verdict]]
    assert claims[0][0] == "planar: PCC above no-curvature (paired by seed)"


def test_latent_fit_is_zero_for_an_affine_image_of_the_world():
    grid = np.random.default_rng(0).uniform(0, 40, (100, 2))
    z = grid @ np.array([[0.3, -1.0], [2.0, 0.5]]) + 4.0
    assert pcc_benchmark.latent_fit(grid, z) < 1e-9
    assert pcc_benchmark.latent_fit(grid, np.zeros((100, 2))) == pytest.approx(np.sqrt(grid.var(0).mean()))
