"""Archiving a sweep's finished runs without checkpoints, and restoring them into a new directory."""

from __future__ import annotations

import gzip
import json
import shutil

import pandas as pd
import pytest
from typer.testing import CliRunner

from rwrl.experiments.sweeps import archive as sweep_archive
from rwrl.experiments.sweeps.run import run_sweep
from rwrl.metrics.sweep_results import read_sweep
from tests.experiments.sweep_fixtures import sweep_cli, tiny_plan, without_wall_clock


def _archive_of(local_sweep, tmp_path):
    archive = tmp_path / "archive"
    assert sweep_archive.archive(local_sweep["dir"], archive) == 4
    return archive


def test_the_archive_holds_each_finished_run_without_checkpoints(local_sweep, tmp_path):
    archive = _archive_of(local_sweep, tmp_path)
    assert sweep_archive.archive(local_sweep["dir"], archive) == 0  # nothing new the second time
    for run in local_sweep["plan"].runs:
        source, kept = local_sweep["dir"] / "runs" / run.run_id, archive / "runs" / run.run_id
        assert (source / "checkpoints").exists()
        assert sorted(p.name for p in kept.iterdir()) == ["config.json", "metrics.jsonl.gz", "summary.json"]
        assert gzip.decompress((kept / "metrics.jsonl.gz").read_bytes()) == (source / "metrics.jsonl").read_bytes()
        assert (kept / "summary.json").read_bytes() == (source / "summary.json").read_bytes()


def test_a_new_directory_restores_the_archived_runs_instead_of_running_them(local_sweep, tmp_path):
    archive = _archive_of(local_sweep, tmp_path)
    out = tmp_path / "fresh"
    counts = run_sweep(local_sweep["plan"], out, progress=False, archive=archive)
    assert counts["done"] == 4
    assert not list(out.glob("runs/*/checkpoints"))  # nothing ran
    _, runs_before, episodes_before = read_sweep(local_sweep["dir"])
    _, runs_after, episodes_after = read_sweep(out)
    pd.testing.assert_frame_equal(without_wall_clock(runs_before), without_wall_clock(runs_after))
    pd.testing.assert_frame_equal(episodes_before, episodes_after)


def test_a_run_missing_from_the_archive_runs_and_is_archived_when_it_finishes(local_sweep, tmp_path):
    archive = _archive_of(local_sweep, tmp_path)
    missing = local_sweep["plan"].runs[0].run_id
    shutil.rmtree(archive / "runs" / missing)
    out = tmp_path / "fresh"
    assert run_sweep(local_sweep["plan"], out, progress=False, archive=archive)["done"] == 4
    assert [p.parent.name for p in out.glob("runs/*/checkpoints")] == [missing]  # only it ran
    assert (archive / "runs" / missing / "summary.json").exists()


def test_an_archive_of_another_scale_is_refused_naming_the_field(local_sweep, tmp_path):
    archive = _archive_of(local_sweep, tmp_path)
    _, longer = tiny_plan(tmp_path, steps=300)
    with pytest.raises(sweep_archive.ArchiveMismatchError, match=r"with another config \(steps differ\)"):
        run_sweep(longer, tmp_path / "fresh", progress=False, archive=archive)
    assert not list((tmp_path / "fresh").glob("runs/*/summary.json"))


def test_the_cli_archives_a_sweep_directory(local_sweep, tmp_path):
    app = sweep_cli()
    result = CliRunner().invoke(app, ["sweep", "archive", str(local_sweep["dir"]), str(tmp_path / "a")])
    assert result.exit_code == 0, result.output
    assert "archived 4 newly finished runs" in result.output
    result = CliRunner().invoke(app, ["sweep", "archive", str(tmp_path / "nothing"), str(tmp_path / "b")])
    assert result.exit_code != 0 and "holds no sweep" in result.output


def test_restoring_into_an_empty_directory_brings_the_plan_to_read_the_results(local_sweep, tmp_path):
    archive = _archive_of(local_sweep, tmp_path)
    out = tmp_path / "read-only"
    assert sweep_archive.restore(archive, out) == 4
    assert sweep_archive.restore(archive, out) == 0  # already done there
    _, runs_before, _ = read_sweep(local_sweep["dir"])
    _, runs_after, _ = read_sweep(out)
    pd.testing.assert_frame_equal(without_wall_clock(runs_before), without_wall_clock(runs_after))


def _stopped_at_step_100(local_sweep, tmp_path):
    """A copy of the finished tiny sweep in which one run stopped at its step-100 checkpoint."""
    stopped = tmp_path / "stopped"
    shutil.copytree(local_sweep["dir"], stopped)
    run_id = local_sweep["plan"].runs[1].run_id
    run = stopped / "runs" / run_id
    (run / "summary.json").unlink()
    newest = sorted(run.glob("checkpoints/ckpt-*"))[-1]
    assert newest.name.endswith("200")
    shutil.rmtree(newest)  # its rows after step 100 stay: the resume drops and reruns them
    return stopped, run_id


def test_an_unfinished_run_is_carried_with_its_newest_checkpoint_and_continued_elsewhere(local_sweep, tmp_path):
    stopped, run_id = _stopped_at_step_100(local_sweep, tmp_path)
    archive = tmp_path / "archive"
    assert sweep_archive.archive(stopped, archive) == 3  # without --unfinished nothing else is carried
    assert not (archive / "unfinished").exists()
    assert sweep_archive.archive(stopped, archive, unfinished=True) == 0
    carried = archive / "unfinished" / run_id
    assert sweep_archive.unfinished_runs(archive) == {run_id: 100}
    assert [p.name for p in (carried / "checkpoints").glob("ckpt-*")] == ["ckpt-000000000100"]
    listed = _listed_chunks(carried / "checkpoints" / "ckpt-000000000100")
    assert sorted(p.name for p in (carried / "checkpoints" / "chunks").iterdir()) == listed  # no more
    out = tmp_path / "elsewhere"
    assert run_sweep(local_sweep["plan"], out, progress=False, archive=archive)["done"] == 4
    assert [p.parent.name for p in out.glob("runs/*/checkpoints")] == [run_id]  # only it ran, from step 100
    summary = json.loads((out / "runs" / run_id / "summary.json").read_text())
    assert summary["counters"]["session"] == 1  # a resume, not a start
    _, _, before = read_sweep(local_sweep["dir"])
    _, _, after = read_sweep(out)
    pd.testing.assert_frame_equal(without_wall_clock(before), without_wall_clock(after))  # the same rows
    assert not carried.exists() and (archive / "runs" / run_id / "summary.json").exists()


def test_a_carried_run_does_not_replace_a_run_that_is_further(local_sweep, tmp_path):
    stopped, run_id = _stopped_at_step_100(local_sweep, tmp_path)
    archive = tmp_path / "archive"
    sweep_archive.archive(stopped, archive, unfinished=True)
    ahead = tmp_path / "ahead"
    shutil.copytree(local_sweep["dir"], ahead)
    (ahead / "runs" / run_id / "summary.json").unlink()  # partial at step 200, ahead of the copy
    assert sweep_archive.restore_unfinished(archive, ahead) == []
    assert sorted(p.name for p in (ahead / "runs" / run_id).glob("checkpoints/ckpt-*"))[-1] == "ckpt-000000000200"


def test_the_cli_carries_unfinished_runs_and_says_at_which_step(local_sweep, tmp_path):
    stopped, run_id = _stopped_at_step_100(local_sweep, tmp_path)
    result = CliRunner().invoke(sweep_cli(), ["sweep", "archive", str(stopped), str(tmp_path / "a"), "--unfinished"])
    assert result.exit_code == 0, result.output
    assert result.output.splitlines() == [
        f"archived 3 newly finished runs to {tmp_path / 'a'}",
        f"carrying 1 unfinished runs with their newest checkpoint: {run_id} at step 100"]


def _listed_chunks(checkpoint):
    from rwrl.storage.checkpoint import read_manifest
    return sorted(entry["file"] for entry in read_manifest(checkpoint).get("chunks", []))
