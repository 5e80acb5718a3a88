"""The HCL digits benchmark: its stream, its verdicts from a results file, resuming, and a --quick run."""

import json
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "benchmarks"))

import hcl_digits  # noqa: E402
import results_page  # noqa: E402


def test_the_stream_runs_the_tasks_in_order_then_the_first_again():
    from rwrl.continual import digits
    tasks = digits.split_digits()
    batches = hcl_digits.stream(tasks, epochs=2, rng=np.random.default_rng(0))
    per_segment = [2 * (len(tasks[t].y_train) // hcl_digits.BATCH) for t in hcl_digits.ORDER]
    assert len(batches) == sum(per_segment)
    segments = [segment for _, _, segment in batches]
    assert segments == sorted(segments) and [segments.count(k) for k in range(6)] == per_segment
    for x, y, segment in batches:
        assert x.shape == (hcl_digits.BATCH, 64) and set(y) <= set(tasks[hcl_digits.ORDER[segment]].classes)


def _run(after_five, recognised=True, missed=0, false_alarms=0):
    return {"after_five": [after_five] * 5, "final": [after_five] * 5, "delays": [2] * (5 - missed) + [None] * missed,
            "missed": missed, "false_alarms": false_alarms, "recognised": recognised, "seconds": 10.0}


def _results(fr, gr, finetune, **gr_run):
    runs = {}
    for seed, (a, b, c) in enumerate(zip(fr, gr, finetune)):
        runs[f"hcl-fr|{seed}"] = _run(a)
        runs[f"hcl-gr|{seed}"] = _run(b, **gr_run)
        runs[f"finetune|{seed}"] = _run(c, recognised=False)
        runs[f"joint|{seed}"] = {"after_five": [0.99] * 5, "final": [0.99] * 5, "seconds": 2.0}
    settings = {"order": list(hcl_digits.ORDER), "epochs": 2, "batch": 32, "split_seed": 0, "overrides": {},
                "config": {"num_couplings": 6, "hidden": 128, "learning_rate": 1e-3, "replay_size": 32,
                           "fr_weight": 1.0, "warmup": 40, "window": 20, "quantile": 0.99, "patience": 3,
                           "recognition_scale": 5.0}}
    return {"settings": settings, "runs": runs}


def test_the_verdicts_follow_the_intervals():
    # FR - GR per seed: +2, +3, +2.5 points: the interval is above 0; both ~70 points above fine-tuning
    results = _results([0.95, 0.96, 0.955], [0.93, 0.93, 0.93], [0.25, 0.2, 0.22])
    claims = {row[0]: row[2] for row in hcl_digits.analyse(results)["claims"]}
    assert list(claims.values()) == ["holds"] * 5
    # GR above FR by 2 points on every seed; GR misses a boundary and one recognition; fine-tuning close
    worse = _results([0.90, 0.91, 0.92], [0.92, 0.93, 0.94], [0.85, 0.86, 0.87], missed=1, recognised=False)
    verdicts = [row[2] for row in hcl_digits.analyse(worse)["claims"]]
    assert verdicts == ["does not hold"] * 5
    rows = hcl_digits.analyse(worse)["rows"]
    assert rows[1][:2] == ["hcl-gr", 3] and rows[1][4] == "12 / 15" and rows[1][7] == "0 / 3"
    assert rows[3][4] == "–" and rows[1][8] == "84.65"


def test_the_page_names_the_claims_and_the_paper(tmp_path):
    results = _results([0.95, 0.96, 0.955], [0.93, 0.93, 0.93], [0.25, 0.2, 0.22])
    text = hcl_digits.page(results, str(tmp_path / "hcl_digits.json"), date="2026-01-01", machine="test")
    assert "| HCL-FR >= HCL-GR (accuracy after five tasks) | FR - GR: +2.50 [" in text
    assert "90.89" in text and "8 x 8 digits" in text and "28 x 28 MNIST" in text


def test_a_results_file_continues_only_with_its_own_settings(tmp_path):
    out = tmp_path / "hcl.json"
    settings = hcl_digits.settings_of(30, {})
    out.write_text(json.dumps({"settings": settings, "runs": {"hcl-fr|0": {}}}))
    assert results_page.continue_results(out, settings)["runs"] == {"hcl-fr|0": {}}
    with pytest.raises(SystemExit, match=r"other settings \(config, epochs, overrides\)"):
        results_page.continue_results(out, hcl_digits.settings_of(6, dict(hcl_digits.QUICK["config"])))


@pytest.mark.slow
def test_quick_runs_every_method_and_resumes_without_measuring_again(tmp_path):
    # about a minute on the shared 2-core machine
    out = tmp_path / "hcl_digits.json"
    hcl_digits.main(["--quick", "--out", str(out)])
    results = json.loads(out.read_text())
    assert sorted(results["runs"]) == sorted(f"{m}|{s}" for m in hcl_digits.METHODS for s in (0, 1))
    for method in ("hcl-fr", "hcl-gr", "finetune"):
        run = results["runs"][f"{method}|0"]
        assert len(run["boundaries"]) == 5 and len(run["delays"]) == 5 and len(run["after_five"]) == 5
        assert run["trained_as"][0] == 0
    page = out.with_suffix(".md").read_text()
    assert "## The claims" in page and "every task change detected" in page
    before = results["runs"]
    hcl_digits.main(["--quick", "--out", str(out)])
    again = json.loads(out.read_text())
    assert again["runs"] == before and len(again["sessions"]) == 2
