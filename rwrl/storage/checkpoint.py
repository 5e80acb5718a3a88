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
  Every way a load can fail (a damaged zip, an unexpected manifest shape, a
  missing array) is a ``CheckpointError``.
* Confined: a manifest names only files ``<stem>.npz`` directly inside its
  checkpoint directory (``stem`` letters, digits and ``_``); ``../``, absolute
  paths, separators and symbolic links are refused, so a crafted manifest
  reads nothing outside the checkpoint.
* Pruned by verification: after a write, the newest ``keep`` checkpoints that
  verify are kept and everything else (older ones, corrupt ones) removed, so
  a corrupt newer checkpoint never costs a good one.
* Disk full or read-only: the write raises ``rwrl.storage.atomic_files.WriteError``
  naming the file and the cause, and its temporary directory is removed.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import re
import shutil
import warnings
import zipfile
from pathlib import Path
from typing import Any, Callable

import jax
import numpy as np

from rwrl.storage.atomic_files import TMP_PREFIX as _TMP_PREFIX, WriteError, file_sha256, fsync_dir as _fsync_dir

FORMAT_VERSION = 1
_PREFIX = "ckpt-"
_MANIFEST = "manifest.json"
#: a group's file stem: the only file names a manifest may hold are ``<stem>.npz``.
_STEM = re.compile(r"[A-Za-z0-9_]{1,64}")
#: what reading a damaged npz can raise (numpy: ValueError on bad headers or object
#: arrays, EOFError on an empty file; zipfile: a damaged archive; KeyError: a missing array).
_LOAD_ERRORS = (OSError, ValueError, EOFError, KeyError, TypeError, zipfile.BadZipFile,
                zipfile.LargeZipFile)


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


def _body_checksum(body: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()


# ------------------------------------------------------------------- write


def _write_npz(path: Path, arrays: dict[str, np.ndarray]) -> dict[str, Any]:
    """Write arrays under positional names; return the manifest entry."""
    names = list(arrays)
    try:
        with open(path, "wb") as f:
            np.savez(f, **{f"a{i}": np.asarray(arrays[n]) for i, n in enumerate(names)})
            f.flush()
            os.fsync(f.fileno())
    except OSError as err:
        raise WriteError(path, err) from err
    return {"names": names, "sha256": file_sha256(path), "bytes": path.stat().st_size}


def save_checkpoint(directory: Path, checkpoint: Checkpoint, keep: int = 2) -> Path:
    """Write ``checkpoint`` atomically under ``directory``; keep the newest ``keep`` that verify.

    Returns:
      The checkpoint's directory.

    Raises:
      ValueError: a group name is not a valid file stem (letters, digits, ``_``).
      WriteError: the disk is full or read-only; nothing of this checkpoint is left.
    """
    for stem in checkpoint.groups:
        if not _STEM.fullmatch(stem):
            raise ValueError(f"checkpoint group name {stem!r} must match {_STEM.pattern}")
    directory = Path(directory)
    final = directory / f"{_PREFIX}{checkpoint.step:012d}"
    tmp = directory / f"{_TMP_PREFIX}{final.name}.{os.getpid()}"
    try:
        directory.mkdir(parents=True, exist_ok=True)
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir()
        _write_contents(tmp, checkpoint)
        if final.exists():  # the same step written again: replace the old one
            shutil.rmtree(final)
        os.replace(tmp, final)
        _fsync_dir(directory)
    except WriteError as err:  # name the file where it would have landed, not the temporary one
        shutil.rmtree(tmp, ignore_errors=True)
        raise WriteError(final / Path(err.filename).name, err.cause) from err.cause
    except OSError as err:
        shutil.rmtree(tmp, ignore_errors=True)
        raise WriteError(final, err) from err
    except BaseException:  # a kill (KeyboardInterrupt) mid-write: leave no partial folder
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    _prune(directory, keep, written=final)
    return final


def _write_contents(tmp: Path, checkpoint: Checkpoint) -> None:
    files = {f"{stem}.npz": _write_npz(tmp / f"{stem}.npz", arrays)
             for stem, arrays in checkpoint.groups.items()}
    body = {"format": FORMAT_VERSION, "step": checkpoint.step, "files": files,
            "meta": checkpoint.meta}
    manifest = {"body": body, "sha256": _body_checksum(body)}
    try:
        with open(tmp / _MANIFEST, "w") as f:
            json.dump(manifest, f, indent=1)
            f.flush()
            os.fsync(f.fileno())
    except OSError as err:
        raise WriteError(tmp / _MANIFEST, err) from err
    _fsync_dir(tmp)


def list_checkpoints(directory: Path) -> list[Path]:
    """Return the checkpoint directories under ``directory``, newest first."""
    directory = Path(directory)
    if not directory.is_dir():
        return []
    found = [p for p in directory.iterdir()
             if p.name.startswith(_PREFIX) and p.is_dir() and not p.is_symlink()]
    return sorted(found, key=lambda p: p.name, reverse=True)


def _prune(directory: Path, keep: int, written: Path) -> None:
    """Keep the newest ``keep`` checkpoints that verify (``written`` counts as verified).

    Walks newest first and stops verifying once ``keep`` are found, so a
    prune reads at most the checkpoints it keeps. Corrupt ones are removed
    with the old ones: they would never be loaded.
    """
    kept = 0
    for path in list_checkpoints(directory):
        if kept < keep and (path == written or _verifies(path)):
            kept += 1
        else:
            shutil.rmtree(path, ignore_errors=True)
    for tmp in directory.glob(f"{_TMP_PREFIX}*"):  # left by a killed writer
        if tmp.is_dir() and not tmp.name.endswith(f".{os.getpid()}"):
            shutil.rmtree(tmp, ignore_errors=True)


def _verifies(path: Path) -> bool:
    try:
        load_checkpoint(path)
    except CheckpointError:
        return False
    return True


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
    if not isinstance(body, dict) or body.get("format") != FORMAT_VERSION:
        found = body.get("format") if isinstance(body, dict) else body
        raise CheckpointError(f"{manifest_path}: format {found!r}, expected {FORMAT_VERSION}")
    _check_body(manifest_path, body)
    return body


def _check_body(manifest_path: Path, body: dict[str, Any]) -> None:
    """Refuse a manifest body of an unexpected shape or naming files outside its folder."""
    def bad(what: str) -> CheckpointError:
        return CheckpointError(f"{manifest_path}: {what}")
    if not isinstance(body.get("step"), int) or isinstance(body.get("step"), bool):
        raise bad(f"step must be an integer, got {body.get('step')!r}")
    if not isinstance(body.get("meta"), dict):
        raise bad(f"meta must be an object, got {type(body.get('meta')).__name__}")
    files = body.get("files")
    if not isinstance(files, dict):
        raise bad(f"files must be an object, got {type(files).__name__}")
    for name, entry in files.items():
        if not (name.endswith(".npz") and _STEM.fullmatch(name[:-len(".npz")])):
            raise bad(f"file name {name!r} is not <stem>.npz inside the checkpoint "
                      f"(stem matching {_STEM.pattern})")
        if not (isinstance(entry, dict) and isinstance(entry.get("sha256"), str)
                and isinstance(entry.get("bytes"), int) and isinstance(entry.get("names"), list)
                and all(isinstance(n, str) for n in entry["names"])):
            raise bad(f"entry of {name} must hold names (strings), sha256 and bytes, got {entry!r}")


def _read_npz(path: Path, entry: dict[str, Any]) -> dict[str, np.ndarray]:
    if path.is_symlink() or not path.is_file():
        raise CheckpointError(f"{path}: missing file" + (" (a symbolic link)" if path.is_symlink() else ""))
    size = path.stat().st_size
    if size != entry["bytes"]:
        raise CheckpointError(f"{path}: {size} bytes, manifest says {entry['bytes']} "
                              "(truncated or partial file)")
    if file_sha256(path) != entry["sha256"]:
        raise CheckpointError(f"{path}: sha256 mismatch (corrupted file)")
    try:
        with np.load(path, allow_pickle=False) as data:
            return {name: data[f"a{i}"] for i, name in enumerate(entry["names"])}
    except _LOAD_ERRORS as err:
        raise CheckpointError(f"{path}: unreadable arrays ({type(err).__name__}: {err})") from err


def load_checkpoint(path: Path) -> Checkpoint:
    """Read and verify one checkpoint directory.

    Raises:
      CheckpointError: naming the file that is missing, partial, corrupted or
        not allowed (every failure to read it).
    """
    path = Path(path)
    if path.is_symlink():
        raise CheckpointError(f"{path}: a symbolic link, not a checkpoint directory")
    body = _read_manifest(path)
    try:
        groups = {name[:-len(".npz")]: _read_npz(path / name, entry)
                  for name, entry in body["files"].items()}
    except OSError as err:
        raise CheckpointError(f"{err.filename or path}: unreadable ({err.strerror or err})") from err
    return Checkpoint(step=body["step"], groups=groups, meta=body["meta"], path=path)


def load_latest(directory: Path,
                accept: Callable[[Checkpoint], None] | None = None) -> Checkpoint | None:
    """Return the newest checkpoint that verifies (and that ``accept`` takes), or None.

    Args:
      directory: the run's ``checkpoints/``.
      accept: called with each verified checkpoint, newest first; it raises
        ``CheckpointError`` (with the reason) to refuse one, e.g. a restore
        that finds a leaf missing, or a metrics file shorter than it counted.

    Each skipped checkpoint raises a ``CheckpointWarning`` naming it and the reason.
    """
    for path in list_checkpoints(directory):
        try:
            checkpoint = load_checkpoint(path)
            if accept is not None:
                accept(checkpoint)
            return checkpoint
        except CheckpointError as err:
            warnings.warn(f"skipping checkpoint {path.name}: {err}; trying the previous one",
                          CheckpointWarning, stacklevel=2)
    return None
