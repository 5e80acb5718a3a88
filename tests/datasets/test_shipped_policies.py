"""The behaviour snapshots shipped with rwrl: the export, its loader, and datasets made from them."""

from __future__ import annotations

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from rwrl.datasets import shipped_policies
from rwrl.datasets.behaviour_policies import (PolicyError, load_policy, manifest_snapshot, read_manifest,
                                              restore_agent, snapshot_checksum)
from rwrl.datasets.create import default_policy_path
from rwrl.datasets.shipped_policies import export_policies, shipped_manifest_path
from rwrl.storage.checkpoint import load_checkpoint, read_run_config
from tests.datasets.conftest import cli


@pytest.fixture(scope="module")
def exported(tiny_policies, tmp_path_factory):
    dest = tmp_path_factory.mktemp("shipped") / "cartpole-swingup-none"
    export_policies(tiny_policies, dest, (0.5, 0.75))
    return dest


def test_the_exported_snapshot_acts_exactly_as_the_full_one_and_keeps_only_the_policy(
        tiny_policies, exported):
    full_path, _ = manifest_snapshot(read_manifest(tiny_policies), 0.75)
    cut_path, entry = manifest_snapshot(read_manifest(exported), 0.75)
    full, cut = load_policy(full_path), load_policy(cut_path, entry["sha256"])
    obs = np.random.default_rng(3).normal(size=(32, full.obs_size)).astype(np.float32)
    np.testing.assert_array_equal(full(obs), cut(obs))
    names = list(load_checkpoint(cut_path).groups["state"])
    assert names and all(n.startswith(".policy_params") for n in names)
    assert entry["full_sha256"] == snapshot_checksum(full_path)
    assert entry["sha256"] == snapshot_checksum(cut_path)


def test_the_exported_manifest_keeps_the_reference_return_and_only_the_shipped_snapshots(
        tiny_policies, exported):
    source, shipped = read_manifest(tiny_policies), read_manifest(exported)
    assert shipped["best_return"] == source["best_return"]
    assert [s["fraction"] for s in shipped["snapshots"]] == [0.5, 0.75]
    assert {c["path"] for c in shipped["checkpoints"]} == {s["path"] for s in shipped["snapshots"]}
    assert read_run_config(manifest_snapshot(shipped, 0.75)[0]) == json.loads(
        (tiny_policies / "run" / "config.json").read_text())
    with pytest.raises(PolicyError, match=r"fraction = 1.0: the manifest .* has snapshots at \[0.5, 0.75\]"):
        manifest_snapshot(shipped, 1.0)


def test_every_checkpoint_exports_the_whole_policy_set_each_acting_as_the_full_one(tiny_policies, tmp_path):
    from rwrl.datasets.behaviour_policies import ope_loader
    from rwrl.ope.evaluate import load_policy_set
    source = read_manifest(tiny_policies)
    shipped = export_policies(tiny_policies, tmp_path / "set", (0.75,), every_checkpoint=True)
    assert len(source["checkpoints"]) > 2  # more than the snapshots: the test means something
    assert [c["full_sha256"] for c in shipped["checkpoints"]] == [c["sha256"] for c in source["checkpoints"]]
    assert [c["env_steps"] for c in shipped["checkpoints"]] == [c["env_steps"] for c in source["checkpoints"]]
    assert [s["fraction"] for s in shipped["snapshots"]] == [0.75]
    full = load_policy_set(tiny_policies, ope_loader)
    cut = load_policy_set(tmp_path / "set", ope_loader)  # each checksum checked on load
    obs = np.random.default_rng(5).normal(size=(16, full[0].function.obs_size)).astype(np.float32)
    for a, b in zip(full, cut, strict=True):
        np.testing.assert_array_equal(a(obs), b(obs))


def test_a_policy_only_snapshot_is_refused_where_more_than_acting_is_read(exported):
    path, _ = manifest_snapshot(read_manifest(exported), 0.75)
    run = read_run_config(path)
    with pytest.raises(PolicyError, match="holds only the policy's leaves .* needs a full run checkpoint"):
        restore_agent(path, run["run"]["agent"], run["agent"], 5, 1)


def test_an_unknown_fraction_is_named_and_nothing_is_written(tiny_policies, tmp_path):
    with pytest.raises(PolicyError, match=r"fraction = 0.3: the manifest .* has snapshots at"):
        export_policies(tiny_policies, tmp_path / "x", (0.3,))
    assert not (tmp_path / "x").exists()


def test_the_default_policy_is_the_users_own_then_the_shipped_one_then_a_named_error(
        tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(shipped_policies, "SHIPPED_ROOT", tmp_path / "shipped")
    with pytest.raises(PolicyError, match=r"no behaviour policy for walker-walk \(easy\): neither "
                                          r"policies/walker-walk-easy/manifest.json .*rwrl policies train"):
        default_policy_path("walker-walk", "easy")
    shipped = shipped_manifest_path("walker-walk", "easy")
    shipped.parent.mkdir(parents=True)
    shipped.write_text("{}")
    assert default_policy_path("walker-walk", "easy") == shipped
    local = tmp_path / "policies" / "walker-walk-easy" / "manifest.json"
    local.parent.mkdir(parents=True)
    local.write_text("{}")
    assert default_policy_path("walker-walk", "easy").resolve() == local


@pytest.mark.parametrize("name", shipped_policies.shipped_tasks())
def test_every_shipped_snapshot_loads_with_its_checksum_and_acts_in_its_env(name):
    manifest = read_manifest(shipped_policies.SHIPPED_ROOT / name)
    path, entry = manifest_snapshot(manifest)
    policy = load_policy(path, entry["sha256"])
    assert f"{policy.env}-{manifest['challenge']}" == name
    actions = policy(np.zeros((2, policy.obs_size), np.float32))
    assert actions.shape == (2, policy.action_size) and np.isfinite(actions).all()


def test_dataset_create_on_a_fresh_checkout_uses_the_shipped_snapshot(tmp_path, monkeypatch):
    """The issue's check: no ``policies/`` folder, no training step, a 1 % dataset."""
    if "cartpole-swingup-none" not in shipped_policies.shipped_tasks():
        pytest.fail("the cartpole-swingup (none) behaviour snapshot is not shipped")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MINARI_DATASETS_PATH", str(tmp_path / "datasets"))
    result = CliRunner().invoke(cli(), ["dataset", "create", "cartpole-swingup", "--challenge", "none",
                                        "--size", "1", "--no-progress", "--ref-episodes", "2"])
    assert result.exit_code == 0, result.output
    assert "rwrl/cartpole-swingup-none-1pct-v0: 5 episodes, 5000 steps" in result.output
    shown = CliRunner().invoke(cli(), ["dataset", "show", "rwrl/cartpole-swingup-none-1pct-v0"])
    summary = json.loads(shown.output)
    manifest = read_manifest(shipped_manifest_path("cartpole-swingup", "none"))
    assert summary["ref_max_score"] == manifest["best_return"]
    assert summary["rwrl_policy"]["sha256"] == manifest_snapshot(manifest)[1]["sha256"]


def test_policies_export_through_the_cli_and_its_one_line_errors(tiny_policies, tmp_path):
    runner = CliRunner()
    result = runner.invoke(cli(), ["policies", "export", str(tiny_policies), "--out", str(tmp_path / "cut")])
    assert result.exit_code == 0, result.output
    assert result.output.startswith(f"{tmp_path / 'cut'}: best ") and "; 0.75: " in result.output
    bad = runner.invoke(cli(), ["policies", "export", str(tiny_policies), "--out", str(tmp_path / "x"),
                                "--fraction", "0.3"])
    assert bad.exit_code == 2 and bad.output.count("\n") == 1
    assert "fraction = 0.3: the manifest" in bad.output and not (tmp_path / "x").exists()


def test_behaviour_curves_page_reads_the_policies_folders(tiny_policies, tmp_path):
    """benchmarks/behaviour_curves.py: one curve per run, its 0.75 snapshot and best return, a page and figure."""
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
    import behaviour_curves

    out = tmp_path / "curves.json"
    assert behaviour_curves.main(["--policies", str(tiny_policies.parent), "--out", str(out)]) == 0
    (run,) = json.loads(out.read_text())["runs"]
    manifest = read_manifest(tiny_policies)
    assert run["best_return"] == manifest["best_return"] and len(run["curve"]) == len(manifest["checkpoints"])
    assert run["snapshot"]["env_steps"] == manifest_snapshot(manifest)[1]["env_steps"]
    (row,) = [line for line in out.with_suffix(".md").read_text().splitlines()
              if line.startswith("| cartpole-swingup | none | ")]
    assert " | 1,000 | " in row and row.endswith(" | 3 | no |")  # env steps; 3 checkpoints; not the shipped one
    assert (tmp_path / "behaviour_curves.png").stat().st_size > 0
    with pytest.raises(SystemExit):
        behaviour_curves.main(["--policies", str(tmp_path / "empty"), "--out", str(out)])


def test_behaviour_curves_merge_keeps_the_earlier_pages_runs_the_folder_lacks(tiny_policies, tmp_path):
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
    import behaviour_curves

    earlier = tmp_path / "earlier.json"
    assert behaviour_curves.main(["--policies", str(tiny_policies.parent), "--out", str(earlier)]) == 0
    runs = json.loads(earlier.read_text())["runs"]
    gone = dict(runs[0], task="walker-walk", best_return=12.5)  # a run whose folder no longer exists
    stale = dict(runs[0], best_return=-1.0)  # the folder's run, as an older page had it
    earlier.write_text(json.dumps({"runs": [gone, stale]}))
    out = tmp_path / "curves.json"
    assert behaviour_curves.main(["--policies", str(tiny_policies.parent), "--merge", str(earlier),
                                  "--out", str(out)]) == 0
    merged = json.loads(out.read_text())
    assert [(r["task"], r["best_return"]) for r in merged["runs"]] == [
        ("cartpole-swingup", runs[0]["best_return"]), ("walker-walk", 12.5)]  # the folder's wins
    assert merged["carried"] == 1 and "1 of the 2 runs are carried over" in out.with_suffix(".md").read_text()
    with pytest.raises(SystemExit):
        behaviour_curves.main(["--policies", str(tiny_policies.parent), "--merge", str(tmp_path / "no.json")])


def test_training_recipe_names_each_shipped_runs_steps_and_config():
    from rwrl.datasets.shipped_policies import training_recipe

    assert training_recipe("walker-walk", "easy") == (300_000, {"preset": "fast"})
    assert training_recipe("humanoid-walk", "none") == (2_000_000, {"preset": "fast"})
    assert training_recipe("quadruped-walk", "none") == (500_000, {"preset": "fast"})
    assert training_recipe("quadruped-walk", "easy") == (300_000, {})  # the paper preset: fast did not learn it
    for name in shipped_policies.shipped_tasks():  # each shipped run was trained with its recipe's config
        task, challenge = name.rsplit("-", 1)
        config = json.loads((shipped_policies.SHIPPED_ROOT / name / "run" / "config.json").read_text())
        assert config["run"]["agent_config"] == training_recipe(task, challenge)[1], name


def test_ope_benchmark_keeps_each_policy_set_in_its_archive_and_restores_it_without_training(
        tiny_policies, tmp_path, monkeypatch):
    """benchmarks/ope.py --archive: the set is exported once trained; a fresh root gets it back, untrained."""
    import argparse
    import shutil
    import sys
    from pathlib import Path
    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
    import offline
    import ope
    trained = []
    monkeypatch.setattr(offline, "make_policies", lambda stages: trained.append(list(stages.tasks)))
    archive = tmp_path / "archive"
    first = argparse.Namespace(root=tmp_path / "first", archive=archive, tasks=["cartpole-swingup"], size=20)
    shutil.copytree(tiny_policies, first.root / "policies" / "cartpole-swingup-none")  # as if just trained
    ope.make_policy_sets(first, argparse.Namespace(tasks=first.tasks))
    assert trained == [["cartpole-swingup"]]
    kept = read_manifest(archive / "policies" / "cartpole-swingup-none")
    assert len(kept["checkpoints"]) == len(read_manifest(tiny_policies)["checkpoints"])
    assert ope.policy_set(first, "cartpole-swingup") == archive / "policies" / "cartpole-swingup-none"
    assert ope.result_path(first, "cartpole-swingup", "fqe").parent == archive / "ope"

    second = argparse.Namespace(**{**vars(first), "root": tmp_path / "second"})
    ope.make_policy_sets(second, argparse.Namespace(tasks=second.tasks))
    assert trained[-1] == []  # nothing trained: the set came back from the archive
    restored = read_manifest(second.root / "policies" / "cartpole-swingup-none")
    assert [c["sha256"] for c in restored["checkpoints"]] == [c["sha256"] for c in kept["checkpoints"]]
