"""Checkpoints: exact round trip, atomic writes, corruption detected and skipped."""

from __future__ import annotations

import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from rwrl.experiments import checkpoint as ckpt
from rwrl.core.files import atomic_write_bytes
from rwrl.experiments.checkpoint import (Checkpoint, CheckpointError, CheckpointWarning,
                                         flatten_pytree, list_checkpoints,
                                         load_checkpoint, load_latest, save_checkpoint,
                                         unflatten_like)


def _tree():
    return {"params": {"w": jnp.arange(6.0).reshape(2, 3), "b": jnp.ones(3, jnp.float32)},
            "opt": (jnp.zeros((), jnp.int32), {"mu": jnp.full((2,), 0.5)})}


def _checkpoint(step: int, scale: float = 1.0) -> Checkpoint:
    state = jax.tree_util.tree_map(lambda x: (x * scale).astype(x.dtype), _tree())
    return Checkpoint(step=step, groups={"state": flatten_pytree(state),
                                         "replay": {"obs": np.arange(10.0) * step}},
                      meta={"counters": {"env_steps": step}, "rng": {"state": 2**100 + step}})


def test_round_trip_restores_every_leaf_and_the_metadata(tmp_path):
    path = save_checkpoint(tmp_path, _checkpoint(40, scale=2.0))
    loaded = load_checkpoint(path)
    state = unflatten_like(_tree(), loaded.groups["state"])
    expected = jax.tree_util.tree_map(lambda x: (x * 2.0).astype(x.dtype), _tree())
    jax.tree_util.tree_map(np.testing.assert_array_equal, state, expected)
    assert jax.tree_util.tree_structure(state) == jax.tree_util.tree_structure(expected)
    np.testing.assert_array_equal(loaded.groups["replay"]["obs"], np.arange(10.0) * 40)
    assert loaded.meta == {"counters": {"env_steps": 40}, "rng": {"state": 2**100 + 40}}


def test_typed_random_keys_round_trip(tmp_path):
    tree = {"key": jax.random.key(3)}
    path = save_checkpoint(tmp_path, Checkpoint(1, {"state": flatten_pytree(tree)}, {}))
    restored = unflatten_like({"key": jax.random.key(0)}, load_checkpoint(path).groups["state"])
    np.testing.assert_array_equal(jax.random.key_data(restored["key"]), jax.random.key_data(tree["key"]))


def test_unflatten_names_the_leaf_that_does_not_fit():
    arrays = flatten_pytree(_tree())
    arrays["['params']['w']"] = np.zeros((3, 3))
    with pytest.raises(CheckpointError, match=r"\['params'\]\['w'\] has shape \(3, 3\)"):
        unflatten_like(_tree(), arrays)
    del arrays["['params']['w']"]
    with pytest.raises(CheckpointError, match=r"lacks the leaf \['params'\]\['w'\]"):
        unflatten_like(_tree(), arrays)


def test_only_the_newest_checkpoints_are_kept(tmp_path):
    for step in (0, 10, 20, 30):
        save_checkpoint(tmp_path, _checkpoint(step), keep=2)
    assert [p.name for p in list_checkpoints(tmp_path)] == ["ckpt-000000000030", "ckpt-000000000020"]


def _truncate(path):
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def _flip_byte(path):
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF  # same size: only the checksum can tell
    path.write_bytes(bytes(data))


def _edit_manifest(path):
    path.write_text(path.read_text().replace('"env_steps": 20', '"env_steps": 21'))


@pytest.mark.parametrize("damage, file, message", [
    (_truncate, "state.npz", r"state\.npz: \d+ bytes, manifest says \d+ \(truncated"),
    (_flip_byte, "state.npz", r"state\.npz: sha256 mismatch"),
    (_flip_byte, "replay.npz", r"replay\.npz: sha256 mismatch"),
    (lambda p: p.unlink(), "replay.npz", r"replay\.npz: missing file"),
    (_truncate, "manifest.json", r"manifest\.json: unreadable manifest"),
    (_edit_manifest, "manifest.json", r"manifest\.json: checksum mismatch"),
])
def test_a_damaged_checkpoint_is_named_and_the_previous_one_used(tmp_path, damage, file, message):
    save_checkpoint(tmp_path, _checkpoint(10))
    newest = save_checkpoint(tmp_path, _checkpoint(20))
    damage(newest / file)
    with pytest.raises(CheckpointError, match=message):
        load_checkpoint(newest)
    with pytest.warns(CheckpointWarning, match=r"skipping checkpoint ckpt-000000000020: .*" + message):
        loaded = load_latest(tmp_path)
    assert loaded.step == 10
    np.testing.assert_array_equal(loaded.groups["replay"]["obs"], np.arange(10.0) * 10)


def test_load_latest_is_none_without_a_good_checkpoint(tmp_path):
    assert load_latest(tmp_path / "absent") is None
    only = save_checkpoint(tmp_path, _checkpoint(10))
    _truncate(only / "state.npz")
    with pytest.warns(CheckpointWarning):
        assert load_latest(tmp_path) is None


def test_a_writer_killed_before_the_rename_leaves_no_checkpoint(tmp_path, monkeypatch):
    save_checkpoint(tmp_path, _checkpoint(10))

    def killed(*args):
        raise KeyboardInterrupt("killed")
    monkeypatch.setattr(ckpt.os, "replace", killed)
    with pytest.raises(KeyboardInterrupt):
        save_checkpoint(tmp_path, _checkpoint(20))
    monkeypatch.undo()
    # The partial write sits in a .tmp- directory that is neither listed nor loaded.
    assert [p.name for p in list_checkpoints(tmp_path)] == ["ckpt-000000000010"]
    assert load_latest(tmp_path).step == 10
    assert any(p.name.startswith(".tmp-") for p in tmp_path.iterdir())


def test_leftovers_of_a_killed_writer_are_swept(tmp_path):
    leftover = tmp_path / ".tmp-ckpt-000000000020.999999"
    leftover.mkdir()
    (leftover / "state.npz").write_bytes(b"partial")
    save_checkpoint(tmp_path, _checkpoint(30))
    assert not leftover.exists()


def test_atomic_write_keeps_the_old_file_when_killed(tmp_path, monkeypatch):
    target = tmp_path / "report.html"
    atomic_write_bytes(target, b"old")
    monkeypatch.setattr(ckpt.os, "replace", lambda *a: (_ for _ in ()).throw(OSError("killed")))
    with pytest.raises(OSError):
        atomic_write_bytes(target, b"new content")
    assert target.read_bytes() == b"old"
    monkeypatch.undo()
    atomic_write_bytes(target, b"new")
    assert target.read_bytes() == b"new"
    assert os.listdir(tmp_path) == ["report.html"]  # no temporary file left behind


def test_checkpoint_files_load_without_pickle(tmp_path):
    path = save_checkpoint(tmp_path, _checkpoint(5))
    with np.load(path / "state.npz", allow_pickle=False) as data:
        assert all(data[k].dtype != object for k in data.files)
