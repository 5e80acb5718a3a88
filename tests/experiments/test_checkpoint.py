"""Checkpoints: exact round trip, atomic writes, corruption detected and skipped."""

from __future__ import annotations

import io
import json
import os
import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from rwrl.storage import checkpoint as ckpt
from rwrl.storage.atomic_files import atomic_write_bytes
from rwrl.storage.atomic_files import WriteError
from rwrl.storage.checkpoint import (CHUNK_DIR, Checkpoint, CheckpointError, CheckpointWarning,
                                         flatten_pytree, list_checkpoints,
                                         load_checkpoint, load_latest, save_checkpoint,
                                         unflatten_like, write_chunk)


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


def test_a_writer_interrupted_before_the_rename_leaves_no_checkpoint(tmp_path, monkeypatch):
    save_checkpoint(tmp_path, _checkpoint(10))

    def killed(*args):
        raise KeyboardInterrupt("killed")
    monkeypatch.setattr(ckpt.os, "replace", killed)
    with pytest.raises(KeyboardInterrupt):
        save_checkpoint(tmp_path, _checkpoint(20))
    monkeypatch.undo()
    # The partial write is removed; the older checkpoint stays the newest.
    assert [p.name for p in list_checkpoints(tmp_path)] == ["ckpt-000000000010"]
    assert load_latest(tmp_path).step == 10
    assert not any(p.name.startswith(".tmp-") for p in tmp_path.iterdir())


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


# ------------------------------------------------- pruning keeps verified ones


def test_a_corrupt_newer_checkpoint_does_not_cost_a_good_one(tmp_path):
    for step in (10, 20):
        save_checkpoint(tmp_path, _checkpoint(step), keep=2)
    _flip_byte(tmp_path / "ckpt-000000000020" / "state.npz")
    save_checkpoint(tmp_path, _checkpoint(30), keep=2)
    # Pruning by name would keep 30 and the corrupt 20 and delete the good 10.
    assert [p.name for p in list_checkpoints(tmp_path)] == ["ckpt-000000000030", "ckpt-000000000010"]
    _truncate(tmp_path / "ckpt-000000000030" / "state.npz")
    with pytest.warns(CheckpointWarning, match="ckpt-000000000030"):
        assert load_latest(tmp_path).step == 10


# ------------------------------------------------------ shared chunk files


def _chunk(tmp_path, first: int, count: int = 5) -> dict:
    return write_chunk(tmp_path, f"rows_{first:04d}", {"x": np.arange(first, first + count, dtype=float)})


def _with_chunks(step: int, *chunks) -> Checkpoint:
    checkpoint = _checkpoint(step)
    checkpoint.chunks = list(chunks)
    return checkpoint


def _chunk_names(tmp_path):
    return sorted(p.name for p in (tmp_path / CHUNK_DIR).iterdir())


def test_chunks_are_written_once_listed_by_several_checkpoints_and_read_back(tmp_path):
    a = _chunk(tmp_path, 0)
    save_checkpoint(tmp_path, _with_chunks(10, a))
    b = _chunk(tmp_path, 5)
    newest = load_checkpoint(save_checkpoint(tmp_path, _with_chunks(20, a, b)))
    assert a["file"].startswith("rows_0000_") and a["file"] == newest.chunks[0]["file"]
    assert _chunk_names(tmp_path) == sorted([a["file"], b["file"]])
    np.testing.assert_array_equal(newest.read_chunk(newest.chunks[1])["x"], np.arange(5.0, 10.0))


def test_a_missing_or_damaged_chunk_fails_every_checkpoint_that_lists_it(tmp_path):
    a = _chunk(tmp_path, 0)
    save_checkpoint(tmp_path, _with_chunks(10, a))
    b = _chunk(tmp_path, 5)
    save_checkpoint(tmp_path, _with_chunks(20, a, b))
    (tmp_path / CHUNK_DIR / b["file"]).unlink()  # listed by 20 only
    with pytest.warns(CheckpointWarning, match=rf"ckpt-000000000020: .*{b['file']}: missing file"):
        assert load_latest(tmp_path).step == 10
    _flip_byte(tmp_path / CHUNK_DIR / a["file"])  # listed by both
    with pytest.warns(CheckpointWarning) as caught:
        assert load_latest(tmp_path) is None
    assert re.search(rf"ckpt-000000000010: .*{a['file']}: sha256 mismatch", str(caught[-1].message))


def test_pruning_removes_the_chunks_no_kept_checkpoint_lists(tmp_path):
    a = _chunk(tmp_path, 0)
    save_checkpoint(tmp_path, _with_chunks(10, a), keep=2)
    b = _chunk(tmp_path, 5)
    save_checkpoint(tmp_path, _with_chunks(20, a, b), keep=2)
    leftover = tmp_path / CHUNK_DIR / ".tmp-rows_0010.999999"  # a killed chunk writer's
    leftover.write_bytes(b"partial")
    c = _chunk(tmp_path, 10)
    save_checkpoint(tmp_path, _with_chunks(30, b, c), keep=2)  # 10 goes; 20 still lists a
    assert _chunk_names(tmp_path) == sorted([a["file"], b["file"], c["file"]])
    save_checkpoint(tmp_path, _with_chunks(40, c), keep=2)  # 20 goes, and a with it
    assert _chunk_names(tmp_path) == sorted([b["file"], c["file"]])


def test_pruning_reads_the_chunks_only_an_older_checkpoint_lists(tmp_path):
    a = _chunk(tmp_path, 0)
    save_checkpoint(tmp_path, _with_chunks(10, a), keep=2)
    b = _chunk(tmp_path, 5)
    save_checkpoint(tmp_path, _with_chunks(20, a, b), keep=2)
    _flip_byte(tmp_path / CHUNK_DIR / a["file"])
    save_checkpoint(tmp_path, _with_chunks(30, b), keep=2)  # 20 and 10 list the damaged a
    assert [p.name for p in list_checkpoints(tmp_path)] == ["ckpt-000000000030"]
    assert _chunk_names(tmp_path) == [b["file"]]


@pytest.mark.parametrize("name", ["../state.npz", "sub/x.npz", "x.npy", 3])
def test_chunk_names_are_confined_to_the_chunk_folder(tmp_path, name):
    newest = save_checkpoint(tmp_path, _with_chunks(10, _chunk(tmp_path, 0)))
    _rewrite_body(newest, lambda body: body["chunks"][0].update(file=name))
    with pytest.raises(CheckpointError, match=r"manifest\.json: file name .* is not <stem>\.npz"):
        load_checkpoint(newest)


def test_a_chunk_that_cannot_be_written_is_named_and_leaves_nothing(tmp_path, monkeypatch):
    def full(path, arrays):
        path.write_bytes(b"par")
        raise WriteError(path, OSError(28, "No space left on device"))
    monkeypatch.setattr(ckpt, "_write_npz", full)
    with pytest.raises(WriteError, match=rf"cannot write {tmp_path}/chunks/rows_0000\.npz: No space"):
        _chunk(tmp_path, 0)
    assert _chunk_names(tmp_path) == []


# ------------------------------------------------ crafted or damaged manifests


def _rewrite_body(path, edit):
    """Apply ``edit`` to the manifest body and re-seal it with a valid checksum."""
    manifest_path = path / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    edit(manifest["body"])
    manifest["sha256"] = ckpt._body_checksum(manifest["body"])
    manifest_path.write_text(json.dumps(manifest))


def _rename_file(new_name):
    def edit(body):
        body["files"][new_name] = body["files"].pop("state.npz")
    return edit


@pytest.mark.parametrize("name", ["../state.npz", "/etc/passwd.npz", "sub/state.npz",
                                  "..\\state.npz", "state.npy", ".npz", "a b.npz"])
def test_manifest_file_names_are_confined_to_the_checkpoint(tmp_path, name):
    save_checkpoint(tmp_path, _checkpoint(10))
    newest = save_checkpoint(tmp_path, _checkpoint(20))
    # A file the crafted name would reach, with the right content: it must not be read.
    (tmp_path / "state.npz").write_bytes((newest / "state.npz").read_bytes())
    _rewrite_body(newest, _rename_file(name))
    with pytest.raises(CheckpointError, match=r"manifest\.json: file name .* is not <stem>\.npz"):
        load_checkpoint(newest)
    with pytest.warns(CheckpointWarning, match="ckpt-000000000020"):
        assert load_latest(tmp_path).step == 10


def _write_raw(path, data: bytes, body):
    """Replace a file's bytes and record its size and hash, as a crafted manifest would."""
    path.write_bytes(data)
    body["files"][path.name].update(bytes=len(data), sha256=ckpt.file_sha256(path))


def _npz_bytes(**arrays) -> bytes:
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    return buffer.getvalue()


@pytest.mark.parametrize("edit, message", [
    (lambda p, b: _write_raw(p / "state.npz", _npz_bytes(a0=np.zeros(100))[:300], b),
     r"state\.npz: unreadable arrays \(BadZipFile"),
    (lambda p, b: _write_raw(p / "state.npz", b"not a zip at all", b), r"state\.npz: unreadable arrays \(ValueError"),
    (lambda p, b: _write_raw(p / "state.npz", b"", b), r"state\.npz: unreadable arrays \(EOFError"),
    (lambda p, b: _write_raw(p / "state.npz", _npz_bytes(a0=np.array([{"x": 1}], dtype=object)), b),
     r"state\.npz: unreadable arrays \(ValueError"),
    (lambda p, b: _write_raw(p / "state.npz", _npz_bytes(other=np.zeros(2)), b),
     r"state\.npz: unreadable arrays \(KeyError"),
    (lambda p, b: b["files"]["state.npz"].pop("sha256"), r"entry of state\.npz must hold"),
    (lambda p, b: b["files"]["state.npz"].update(bytes="12"), r"entry of state\.npz must hold"),
    (lambda p, b: b.update(files=["state.npz"]), r"files must be an object, got list"),
    (lambda p, b: b.pop("step"), r"step must be an integer, got None"),
    (lambda p, b: b.update(meta=[1]), r"meta must be an object"),
])
def test_every_load_failure_is_a_checkpoint_error_and_falls_back(tmp_path, edit, message):
    save_checkpoint(tmp_path, _checkpoint(10))
    newest = save_checkpoint(tmp_path, _checkpoint(20))
    _rewrite_body(newest, lambda body: edit(newest, body))
    with pytest.raises(CheckpointError, match=message):
        load_checkpoint(newest)
    with pytest.warns(CheckpointWarning, match=r"skipping checkpoint ckpt-000000000020: .*" + message):
        assert load_latest(tmp_path).step == 10


def test_a_symlinked_file_is_not_followed(tmp_path):
    save_checkpoint(tmp_path, _checkpoint(10))
    newest = save_checkpoint(tmp_path, _checkpoint(20))
    outside = tmp_path.parent / f"{tmp_path.name}-outside.npz"
    (newest / "state.npz").rename(outside)
    (newest / "state.npz").symlink_to(outside)
    with pytest.raises(CheckpointError, match=r"state\.npz: missing file \(a symbolic link\)"):
        load_checkpoint(newest)


def test_an_accept_check_refuses_a_checkpoint_with_its_reason(tmp_path):
    save_checkpoint(tmp_path, _checkpoint(10))
    save_checkpoint(tmp_path, _checkpoint(20))

    def accept(checkpoint):
        if checkpoint.step > 15:
            raise CheckpointError("too new for the metrics file")
    with pytest.warns(CheckpointWarning, match="ckpt-000000000020: too new for the metrics file"):
        assert load_latest(tmp_path, accept=accept).step == 10


@pytest.mark.parametrize("stem", ["../x", "a/b", "", "x.npz"])
def test_group_names_must_be_file_stems(tmp_path, stem):
    with pytest.raises(ValueError, match="checkpoint group name"):
        save_checkpoint(tmp_path, Checkpoint(1, {stem: {"a": np.zeros(1)}}, {}))
    assert not list(tmp_path.iterdir())
