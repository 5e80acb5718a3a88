"""``rwrl sweep status`` and ``rwrl sweep run`` verify what they count.

The run directories (conftest's ``sweep``) are fabricated with the real writers
(``record_plan``, ``write_config``, ``save_checkpoint``, the atomic writer) instead of trained,
so every case runs in well under a second; then one file is damaged the way
a kill, a full disk or a careless edit would damage it.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rwrl.experiments.sweeps.status import check_run
from rwrl.metrics import sweep_results
from rwrl.storage.atomic_files import atomic_write_bytes
from rwrl.storage.checkpoint import list_checkpoints
from typer.testing import CliRunner

from rwrl.cli import app

runner = CliRunner()


def _truncate(path: Path, keep: float = 0.5) -> None:
    data = path.read_bytes()
    path.write_bytes(data[:int(len(data) * keep)])


def _status(out: Path):
    result = runner.invoke(app, ["sweep", "status", str(out)])
    return result, result.output.splitlines()


def test_a_sweep_whose_runs_all_read_is_done_and_exits_0(sweep):
    result, lines = _status(sweep["out"])
    assert result.exit_code == 0, result.output
    assert lines[:2] == ["sweep tiny: 4 runs",
                         "done 4  failed 0  running 0  partial 0  pending 0  broken 0"]
    assert len(lines) == 2  # nothing to name


def test_a_finished_run_with_a_truncated_config_is_broken_and_named(sweep):
    run_id = sweep["ids"][1]
    config = sweep["out"] / "runs" / run_id / "config.json"
    _truncate(config)
    result, lines = _status(sweep["out"])
    assert result.exit_code == 1
    assert lines[1] == "done 3  failed 0  running 0  partial 0  pending 0  broken 1"
    named = [line for line in lines if run_id in line]
    assert len(named) == 1 and named[0].startswith(f"broken {run_id}: {config}: unreadable (")


def test_a_half_finished_run_with_a_broken_config_is_broken_not_partial(sweep):
    run_id = sweep["ids"][0]
    run_dir = sweep["out"] / "runs" / run_id
    (run_dir / "summary.json").unlink()  # killed before it finished
    data = json.loads((run_dir / "config.json").read_text())
    data["run"]["seed"] = -3  # JSON, but no RunConfig
    (run_dir / "config.json").write_text(json.dumps(data))
    result, lines = _status(sweep["out"])
    assert result.exit_code == 1
    assert lines[1] == "done 3  failed 0  running 0  partial 0  pending 0  broken 1"
    assert f"broken {run_id}: {run_dir / 'config.json'}: RunConfig.seed must be an integer" in result.output


def test_a_run_whose_summary_is_corrupt_is_broken_and_named(sweep):
    run_id = sweep["ids"][3]
    summary = sweep["out"] / "runs" / run_id / "summary.json"
    summary.write_bytes(b"\x00\xff{garbage")
    result, lines = _status(sweep["out"])
    assert result.exit_code == 1
    assert lines[1] == "done 3  failed 0  running 0  partial 0  pending 0  broken 1"
    assert any(line.startswith(f"broken {run_id}: {summary}: unreadable") for line in lines)


def test_runs_not_done_exit_1_and_a_partial_run_names_an_unreadable_newest_checkpoint(sweep):
    out, (a, b, c, _) = sweep["out"], sweep["ids"]
    (out / "runs" / a / "summary.json").unlink()  # partial, its checkpoint reads: no note
    (out / "runs" / b / "summary.json").unlink()  # partial, its newest manifest does not read
    newest = list_checkpoints(out / "runs" / b / "checkpoints")[0]
    _truncate(newest / "manifest.json")
    atomic_write_bytes(out / "runs" / c / "error.txt", b"ValueError: it diverged\n\ntraceback\n")
    (out / "runs" / c / "summary.json").unlink()
    result, lines = _status(out)
    assert result.exit_code == 1
    assert lines[1] == "done 1  failed 1  running 0  partial 2  pending 0  broken 0"
    assert f"failed {c}: ValueError: it diverged" in lines
    assert [line for line in lines if a in line] == []
    note = [line for line in lines if b in line]
    assert len(note) == 1 and note[0].startswith(f"partial {b}: {newest / 'manifest.json'}: ")
    assert note[0].endswith("--resume passes over it and starts the run over")  # its only one


def test_a_pending_run_is_not_done(sweep):
    import shutil
    shutil.rmtree(sweep["out"] / "runs" / sweep["ids"][2])
    result, lines = _status(sweep["out"])
    assert result.exit_code == 1 and "pending 1" in lines[1]


@pytest.mark.parametrize("damage", ["config", "summary"])
def test_sweep_run_neither_counts_nor_reruns_a_broken_run_and_exits_1(sweep, damage):
    """All other runs are done, so nothing trains: the broken run is named and left as it is."""
    run_dir = sweep["out"] / "runs" / sweep["ids"][2]
    file = run_dir / ("config.json" if damage == "config" else "summary.json")
    _truncate(file)
    before = file.read_bytes()
    result = runner.invoke(app, ["sweep", str(sweep["spec"]), "--out", str(sweep["out"]),
                                 "--no-progress"])
    assert result.exit_code == 1, result.output
    assert "done 3  failed 0  running 0  partial 0  pending 0  broken 1" in result.output
    assert f"broken {sweep['ids'][2]}: {file}: unreadable (" in result.output
    assert file.read_bytes() == before  # left for the user to inspect
    assert check_run(run_dir).status == "broken"
    runs = sweep_results.read_sweep(sweep["out"])[1]
    assert len(runs) == 4  # the results tables were still written


def test_the_archive_skips_a_broken_run_and_restores_it_over_the_broken_copy(sweep, tmp_path):
    from rwrl.experiments.sweeps import archive
    out, run_id = sweep["out"], sweep["ids"][0]
    config = out / "runs" / run_id / "config.json"
    good = config.read_bytes()
    _truncate(config)
    assert archive.archive(out, tmp_path / "archive") == 3  # not the broken one
    config.write_bytes(good)
    assert archive.archive(out, tmp_path / "archive") == 1
    _truncate(config)
    assert archive.restore(tmp_path / "archive", out) == 1
    assert config.read_bytes() == good and check_run(out / "runs" / run_id).status == "done"
