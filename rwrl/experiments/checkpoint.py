"""Checkpoints in a safe format, written atomically, verified on load.

Layout of one checkpoint, a directory under the run's ``checkpoints/``::

    ckpt-000000020000/      # env steps, zero padded so names sort by step
      state.npz             # arrays only (np.savez), read with allow_pickle=False
      replay.npz            # optional, the replay buffer's state_dict
      manifest.json         # step, JSON metadata, per-file sha256, size and array names

Why this shape:

* No pickle anywhere: a pytree is stored as its flattened leaves; the tree
  structure comes from code (a template built by ``agent.init``) and the leaf
  paths are recorded in the manifest, so a structure mismatch is an error
  naming the leaf rather than a silent misassignment.
* Atomic: everything is written into a temporary directory in the same
  parent, each file fsync'ed, then the directory is renamed into place with
  ``os.replace`` and the parent fsync'ed. A kill at any moment leaves either
  the complete new checkpoint or none; leftovers named ``.tmp-*`` are ignored
  and swept.
* Verified: the manifest carries a sha256 per file and one of its own body,
  so a truncated or bit-flipped file is detected on load with a message
  naming the file, and ``load_latest`` falls back to the previous checkpoint.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import shutil
import warnings
from pathlib import Path
from typing import Any

import jax
import numpy as np

from rwrl.core.files import TMP_PREFIX as _TMP_PREFIX, fsync_dir as _fsync_dir

FORMAT_VERSION = 1
_PREFIX = "ckpt-"
_MANIFEST = "manifest.json"


class CheckpointError(RuntimeError):
    """A checkpoint is missing, partial or corrupted; the message names the file."""


class CheckpointWarning(UserWarning):
    """A checkpoint was skipped in favour of an older one."""


@dataclasses.dataclass
class Checkpoint:
    """One checkpoint's content.

    Attributes:
      step: env steps at which it was taken.
      groups: file stem -> named arrays (e.g. "state" -> flattened pytree leaves).
      meta: JSON-serialisable metadata (counters, numpy RNG state, ...).
      path: its directory, when it was read from disk.
    """

    step: int
    groups: dict[str, dict[str, np.ndarray]]
    meta: dict[str, Any]
    path: Path | None = None


# ----------------------------------------------------------------- pytrees


def flatten_pytree(tree: Any) -> dict[str, np.ndarray]:
    """Return the leaves of ``tree`` as numpy arrays keyed by their tree path.

    Typed JAX random keys are stored as their raw key data.
    """
    flat, _ = jax.tree_util.tree_flatten_with_path(tree)
    out = {}
    for path, leaf in flat:
        if isinstance(leaf, jax.Array) and jax.dtypes.issubdtype(leaf.dtype, jax.dtypes.prng_key):
            leaf = jax.random.key_data(leaf)
        out[jax.tree_util.keystr(path)] = np.asarray(leaf)
    return out


def unflatten_like(template: Any, arrays: dict[str, np.ndarray]) -> Any:
    """Rebuild a pytree shaped like ``template`` from ``flatten_pytree`` output.

    Raises:
      CheckpointError: a leaf is missing or its shape or dtype differs.
    """
    flat, treedef = jax.tree_util.tree_flatten_with_path(template)
    leaves = []
    for path, ref in flat:
        name = jax.tree_util.keystr(path)
        if name not in arrays:
            raise CheckpointError(f"checkpoint lacks the leaf {name}")
        value = arrays[name]
        is_key = isinstance(ref, jax.Array) and jax.dtypes.issubdtype(ref.dtype, jax.dtypes.prng_key)
        ref_data = jax.random.key_data(ref) if is_key else np.asarray(ref)
        if value.shape != ref_data.shape or value.dtype != ref_data.dtype:
            raise CheckpointError(
                f"checkpoint leaf {name} has shape {value.shape} {value.dtype}, "
                f"expected {ref_data.shape} {ref_data.dtype}")
        leaf = jax.random.wrap_key_data(value, impl=jax.random.key_impl(ref)) if is_key else value
        leaves.append(jax.numpy.asarray(leaf) if isinstance(ref, jax.Array) else leaf)
    return jax.tree_util.tree_unflatten(treedef, leaves)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _body_checksum(body: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()


# ------------------------------------------------------------------- write


def _write_npz(path: Path, arrays: dict[str, np.ndarray]) -> dict[str, Any]:
    """Write arrays under positional names; return the manifest entry."""
    names = list(arrays)
    with open(path, "wb") as f:
        np.savez(f, **{f"a{i}": np.asarray(arrays[n]) for i, n in enumerate(names)})
        f.flush()
        os.fsync(f.fileno())
    return {"names": names, "sha256": _sha256(path), "bytes": path.stat().st_size}


def save_checkpoint(directory: Path, checkpoint: Checkpoint, keep: int = 2) -> Path:
    """Write ``checkpoint`` atomically under ``directory``; keep the newest ``keep``.

    Returns:
      The checkpoint's directory.
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    final = directory / f"{_PREFIX}{checkpoint.step:012d}"
    tmp = directory / f"{_TMP_PREFIX}{final.name}.{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    files = {f"{stem}.npz": _write_npz(tmp / f"{stem}.npz", arrays)
             for stem, arrays in checkpoint.groups.items()}
    body = {"format": FORMAT_VERSION, "step": checkpoint.step, "files": files,
            "meta": checkpoint.meta}
    manifest = {"body": body, "sha256": _body_checksum(body)}
    with open(tmp / _MANIFEST, "w") as f:
        json.dump(manifest, f, indent=1)
        f.flush()
        os.fsync(f.fileno())
    _fsync_dir(tmp)
    if final.exists():  # the same step written again: replace the old one
        shutil.rmtree(final)
    os.replace(tmp, final)
    _fsync_dir(directory)
    _prune(directory, keep)
    return final


def list_checkpoints(directory: Path) -> list[Path]:
    """Return the checkpoint directories under ``directory``, newest first."""
    directory = Path(directory)
    if not directory.is_dir():
        return []
    found = [p for p in directory.iterdir() if p.is_dir() and p.name.startswith(_PREFIX)]
    return sorted(found, key=lambda p: p.name, reverse=True)


def _prune(directory: Path, keep: int) -> None:
    for old in list_checkpoints(directory)[keep:]:
        shutil.rmtree(old, ignore_errors=True)
    for tmp in directory.glob(f"{_TMP_PREFIX}*"):  # left by a killed writer
        if tmp.is_dir() and not tmp.name.endswith(f".{os.getpid()}"):
            shutil.rmtree(tmp, ignore_errors=True)


# -------------------------------------------------------------------- read


def _read_manifest(path: Path) -> dict[str, Any]:
    manifest_path = path / _MANIFEST
    try:
        manifest = json.loads(manifest_path.read_text())
        body = manifest["body"]
        stored = manifest["sha256"]
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise CheckpointError(f"{manifest_path}: unreadable manifest ({err})") from err
    if _body_checksum(body) != stored:
        raise CheckpointError(f"{manifest_path}: checksum mismatch (corrupted manifest)")
    if body.get("format") != FORMAT_VERSION:
        raise CheckpointError(f"{manifest_path}: format {body.get('format')}, "
                              f"expected {FORMAT_VERSION}")
    return body


def _read_npz(path: Path, entry: dict[str, Any]) -> dict[str, np.ndarray]:
    if not path.is_file():
        raise CheckpointError(f"{path}: missing file")
    size = path.stat().st_size
    if size != entry["bytes"]:
        raise CheckpointError(f"{path}: {size} bytes, manifest says {entry['bytes']} "
                              "(truncated or partial file)")
    if _sha256(path) != entry["sha256"]:
        raise CheckpointError(f"{path}: sha256 mismatch (corrupted file)")
    with np.load(path, allow_pickle=False) as data:
        return {name: data[f"a{i}"] for i, name in enumerate(entry["names"])}


def load_checkpoint(path: Path) -> Checkpoint:
    """Read and verify one checkpoint directory.

    Raises:
      CheckpointError: naming the file that is missing, partial or corrupted.
    """
    path = Path(path)
    body = _read_manifest(path)
    groups = {name[:-len(".npz")]: _read_npz(path / name, entry)
              for name, entry in body["files"].items()}
    return Checkpoint(step=body["step"], groups=groups, meta=body["meta"], path=path)


def load_latest(directory: Path) -> Checkpoint | None:
    """Return the newest checkpoint that verifies, or None when there is none.

    Each skipped checkpoint raises a ``CheckpointWarning`` naming the bad file.
    """
    for path in list_checkpoints(directory):
        try:
            return load_checkpoint(path)
        except CheckpointError as err:
            warnings.warn(f"skipping checkpoint {path.name}: {err}; trying the previous one",
                          CheckpointWarning, stacklevel=2)
    return None
