"""Behaviour policies: snapshot selection, the manifest, loading a snapshot as a batched policy."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from rwrl.datasets.behaviour_policies import (PolicyError, evaluate_policy, load_policy, manifest_snapshot,
                                    read_manifest, select_snapshots, snapshot_checksum)
from tests.datasets.conftest import train_tiny


def _entry(step, ret):
    return {"env_steps": step, "mean_return": ret, "path": f"ckpt-{step}"}


def test_snapshots_are_the_checkpoints_nearest_to_fractions_of_the_best():
    entries = [_entry(0, 10.0), _entry(1, 240.0), _entry(2, 520.0), _entry(3, 800.0),
               _entry(4, 760.0), _entry(5, 1000.0), _entry(6, 260.0)]
    picked = select_snapshots(entries, (0.25, 0.5, 0.75, 1.0))
    # targets 250, 500, 750, 1000: 240 and 260 are both 10 away -> the earlier (step 1);
    # 520 is 20 from 500; 760 is 10 from 750 (800 is 50); 1000 is the best itself.
    assert [p["env_steps"] for p in picked] == [1, 2, 4, 5]
    assert [p["target_return"] for p in picked] == [250.0, 500.0, 750.0, 1000.0]


@pytest.mark.parametrize("fraction", [0.0, 1.5, -0.25])
def test_a_fraction_outside_0_1_is_refused(fraction):
    with pytest.raises(ValueError, match=f"fraction {fraction!r} must be in"):
        select_snapshots([_entry(0, 1.0)], (fraction,))


def test_the_manifest_lists_every_checkpoint_with_its_measured_return(tiny_policies):
    manifest = read_manifest(tiny_policies / "manifest.json")
    assert (manifest["task"], manifest["challenge"]) == ("cartpole-swingup", "none")
    steps = [c["env_steps"] for c in manifest["checkpoints"]]
    # step 0, one near 500 (taken at an episode boundary, or once overdue), the end
    assert len(steps) == 3 and steps[0] == 0 and 500 <= steps[1] < 1000 and steps[2] == 1000
    for c in manifest["checkpoints"]:
        path = tiny_policies / c["path"]
        assert snapshot_checksum(path) == c["sha256"]
        assert c["episodes"] == 3 and np.isfinite(c["mean_return"]) and c["std_return"] >= 0
    assert [s["fraction"] for s in manifest["snapshots"]] == [0.25, 0.5, 0.75, 1.0]
    best = max(c["mean_return"] for c in manifest["checkpoints"])
    assert manifest["snapshots"][-1]["mean_return"] == best == manifest["best_return"]


def test_the_manifest_return_is_reproduced_by_evaluating_the_snapshot(tiny_policies):
    manifest = read_manifest(tiny_policies)
    entry = manifest["checkpoints"][-1]
    policy = load_policy(tiny_policies / entry["path"], entry["sha256"])
    seed = int(np.random.SeedSequence([manifest["seed"], entry["env_steps"]]).generate_state(1)[0])
    returns = evaluate_policy(policy, policy.env_id, policy.env_kwargs, 3, seed)
    assert returns.mean() == pytest.approx(entry["mean_return"], rel=1e-6)


def test_a_snapshot_acts_on_a_batch_as_on_each_row(tiny_policies):
    path, _ = manifest_snapshot(read_manifest(tiny_policies), 1.0)
    policy = load_policy(path)
    obs = np.random.default_rng(0).normal(size=(7, policy.obs_size)).astype(np.float32)
    batch = policy(obs)
    assert batch.shape == (7, 1) and batch.dtype == np.float32
    assert np.all(np.abs(batch) <= 1.0) and np.ptp(batch) > 0  # bounded, depends on obs
    rows = np.concatenate([policy(obs[i:i + 1]) for i in range(7)])
    np.testing.assert_allclose(batch, rows, atol=1e-6)
    with pytest.raises(ValueError, match=r"expected \(B, 5\)"):
        policy(obs[:, :3])


def test_a_changed_or_damaged_snapshot_is_refused(tiny_policies, tmp_path):
    manifest = read_manifest(tiny_policies)
    entry = manifest["checkpoints"][-1]
    copy = tmp_path / "run"
    shutil.copytree(tiny_policies / "run", copy)
    ckpt = copy / "checkpoints" / entry["path"].split("/")[-1]
    state = ckpt / "state.npz"
    data = bytearray(state.read_bytes())
    data[len(data) // 2] ^= 0xFF
    state.write_bytes(bytes(data))
    with pytest.raises(PolicyError, match="differs from the manifest"):
        load_policy(ckpt, entry["sha256"])
    with pytest.raises(PolicyError, match=r"state.npz: sha256 mismatch \(corrupted file\)"):
        load_policy(ckpt)


def test_the_same_command_again_neither_trains_nor_evaluates_again(tiny_policies, tmp_path):
    out = tmp_path / "again"
    shutil.copytree(tiny_policies, out)
    metrics = (out / "run" / "metrics.jsonl").read_bytes()
    evaluations = (out / "evaluations.json").read_bytes()
    result = train_tiny(out)
    assert result.exit_code == 0, result.output
    assert (out / "run" / "metrics.jsonl").read_bytes() == metrics
    assert (out / "evaluations.json").read_bytes() == evaluations
    assert json.loads((out / "manifest.json").read_text()) == \
        json.loads((tiny_policies / "manifest.json").read_text())


def test_a_killed_run_is_continued_by_the_same_command(tiny_policies, tmp_path):
    out = tmp_path / "killed"
    shutil.copytree(tiny_policies, out)
    # as if killed after the middle checkpoint: the last checkpoint, summary and manifest gone
    shutil.rmtree(out / "run" / "checkpoints" / "ckpt-000000001000")
    for name in ("run/summary.json", "manifest.json", "evaluations.json"):
        (out / name).unlink()
    result = train_tiny(out)
    assert result.exit_code == 0, result.output
    manifest = read_manifest(out)
    assert [c["env_steps"] for c in manifest["checkpoints"]][::2] == [0, 1000]


def test_an_unknown_challenge_is_refused(tmp_path):
    result = train_tiny(tmp_path / "x", challenge="hard")
    assert result.exit_code == 2 and "challenge must be one of ('none', 'easy'), got 'hard'" in result.output
