"""The benchmarks run and print the JSON their readers expect (no timing is asserted)."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_throughput_benchmark_prints_ratios_measured_in_one_run(tmp_path):
    out = tmp_path / "throughput.json"
    subprocess.run([sys.executable, str(ROOT / "benchmarks" / "throughput.py"),
                    "--domains", "cartpole", "--batch", "4", "--seconds", "0.05",
                    "--out", str(out)], check=True, capture_output=True, timeout=300)
    result = json.loads(out.read_text())["domains"]["cartpole"]
    for key in ("dm_control", "rwrl_single", "rwrl_vector_4", "raw_rollout_4", "hard_single",
                "hard_vector_64"):
        assert result[key] > 0
    assert result["ratio_single_over_dm_control"] == pytest.approx(
        result["rwrl_single"] / result["dm_control"], abs=2e-3)
    assert "ratio_vector_over_raw_4" in result and "ratio_hard_vector_over_raw_64" in result
