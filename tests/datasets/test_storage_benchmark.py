"""benchmarks/dataset_storage.py runs and prints the figures the backend choice rests on."""

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_the_storage_benchmark_measures_hdf5_and_records_arrows_scalar_info_failure(tmp_path):
    done = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "dataset_storage.py"),
                           "--episodes", "2", "--repeats", "2", "--k", "2", "--batch", "16"],
                          check=True, capture_output=True, text=True, timeout=300, cwd=tmp_path)
    result = json.loads(done.stdout)
    assert result["steps"] == 2000
    for backend in ("hdf5", "arrow_cost_as_column"):
        figures = result[backend]
        assert figures["bytes"] > 2000 * 5 * 4  # at least the float32 observations
        assert all(figures[k] > 0 for k in ("write_s", "sample_episodes_ms", "batch_ms"))
    # minari 0.5.4's Arrow backend cannot read back a per-step scalar info
    assert "error" in result["arrow"]
