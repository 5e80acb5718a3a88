"""Checkpoints in a safe format, written atomically, verified on load.

Layout of one checkpoint, a directory under the run's ``checkpoints/``::

    ckpt-000000020000/      # env steps, zero padded so names sort by step
      state.npz             # arrays only (np.savez), read with allow_pickle=False
      replay.npz            # optional, e.g. the replay buffer's position and pending windows
      manifest.json         # step, JSON metadata, per-file sha256, size and array names,
                            # and the chunks it needs (name, sha256, size, array names)
    chunks/                 # files that several checkpoints share (the replay's transitions)
      replay_000000000000_000000020000_3f2a9c0d1e4b5a67.npz

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
* Incremental: what does not change between checkpoints (the replay's older
  transitions) goes into chunk files under ``chunks/``, written once
  (atomically, named by their content's sha256, so a chunk is never
  rewritten) and listed with their checksums by every checkpoint that needs
  them. A missing or damaged chunk fails the checkpoints that list it like
  any of their own files. Chunks that no kept checkpoint lists are removed
  with the pruning.
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
#: the folder, beside the checkpoints, of the chunk files they share.
CHUNK_DIR = "chunks"
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
      chunks: the entries (``write_chunk``'s) of the chunk files it needs, in order;
        read with ``read_chunk``.
    """

    step: int
    groups: dict[str, dict[str, np.ndarray]]
    meta: dict[str, Any]
    path: Path | None = None
    chunks: list[dict[str, Any]] = dataclasses.field(default_factory=list)

    def read_chunk(self, entry: dict[str, Any]) -> dict[str, np.ndarray]:
        """Return the arrays of one of ``chunks`` (checked against its entry again).

        Raises:
          CheckpointError: the chunk is missing, partial or corrupted (naming it).
        """
        return _read_npz(self.path.parent / CHUNK_DIR / entry["file"], entry)


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
    _prune(directory, keep, written=final, trusted={e["file"] for e in checkpoint.chunks})
    return final


def write_chunk(directory: Path, prefix: str, arrays: dict[str, np.ndarray]) -> dict[str, Any]:
    """Write ``arrays`` once under ``directory/chunks/`` (atomically); return its ``Checkpoint.chunks`` entry.

    The file is named ``<prefix>_<16 hex digits of its sha256>.npz``: a chunk
    is never rewritten in place, so the checkpoints that already list a file
    keep what they verified. List it in the next checkpoint saved: the
    pruning after each save removes the chunks that no checkpoint lists.

    Raises:
      ValueError: ``prefix`` does not make a valid file stem.
      WriteError: the disk is full or read-only (nothing of the chunk is left).
    """
    if not _STEM.fullmatch(f"{prefix}_{'0' * 16}"):
        raise ValueError(f"chunk prefix {prefix!r} must make a stem matching {_STEM.pattern}")
    chunks = Path(directory) / CHUNK_DIR
    tmp = chunks / f"{_TMP_PREFIX}{prefix}.{os.getpid()}"
    try:
        chunks.mkdir(parents=True, exist_ok=True)
        entry = _write_npz(tmp, arrays)
        entry = {"file": f"{prefix}_{entry['sha256'][:16]}.npz", **entry}
        os.replace(tmp, chunks / entry["file"])
        _fsync_dir(chunks)
    except OSError as err:
        tmp.unlink(missing_ok=True)
        raise WriteError(chunks / f"{prefix}.npz", getattr(err, "cause", err)) from err
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return entry


def _write_contents(tmp: Path, checkpoint: Checkpoint) -> None:
    files = {f"{stem}.npz": _write_npz(tmp / f"{stem}.npz", arrays)
             for stem, arrays in checkpoint.groups.items()}
    body = {"format": FORMAT_VERSION, "step": checkpoint.step, "files": files,
            "meta": checkpoint.meta, "chunks": list(checkpoint.chunks)}
    manifest = {"body": body, "sha256": _body_checksum(body)}
    try:
        with open(tmp / _MANIFEST, "w") as f:
            json.dump(manifest, f, indent=1)
            f.flush()
            os.fsync(f.fileno())
    except OSError as err:
        raise WriteError(tmp / _MANIFEST, err) from err
    _fsync_dir(tmp)


def read_run_config(checkpoint: Path) -> dict[str, Any]:
    """Return the ``config.json`` of checkpoint ``checkpoint``'s run (``RUN/checkpoints/ckpt-<steps>``).

    ``{"run": {...}, "agent": {...}}``, as ``rwrl run`` writes it. Raises a
    CheckpointError naming the checkpoint and the file when it cannot be read or
    its ``run`` table names no agent.
    """
    path = Path(checkpoint).parent.parent / "config.json"
    try:
        config = json.loads(path.read_text())
        agent = config["run"]["agent"]
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise CheckpointError(f"checkpoint {checkpoint}: cannot read its run's {path} "
                              f"({type(err).__name__}: {err})") from err
    if not isinstance(agent, str):
        raise CheckpointError(f"checkpoint {checkpoint}: its run's {path} names no agent "
                              f"(run.agent = {agent!r})")
    return config


def list_checkpoints(directory: Path) -> list[Path]:
    """Return the checkpoint directories under ``directory``, newest first."""
    directory = Path(directory)
    if not directory.is_dir():
        return []
    found = [p for p in directory.iterdir()
             if p.name.startswith(_PREFIX) and p.is_dir() and not p.is_symlink()]
    return sorted(found, key=lambda p: p.name, reverse=True)


def _prune(directory: Path, keep: int, written: Path, trusted: set[str]) -> None:
    """Keep the newest ``keep`` checkpoints that verify (``written`` counts as verified).

    Walks newest first and stops verifying once ``keep`` are found, so a
    prune reads at most the checkpoints it keeps; the chunks ``written``
    lists (``trusted``) count as verified with it, so only the few chunks
    an older checkpoint alone lists are read. Corrupt ones are removed with
    the old ones: they would never be loaded. Then every chunk no kept
    checkpoint lists is removed.
    """
    kept = 0
    for path in list_checkpoints(directory):
        if kept < keep and (path == written or _verifies(path, trusted)):
            kept += 1
        else:
            shutil.rmtree(path, ignore_errors=True)
    for tmp in directory.glob(f"{_TMP_PREFIX}*"):  # left by a killed writer
        if tmp.is_dir() and not tmp.name.endswith(f".{os.getpid()}"):
            shutil.rmtree(tmp, ignore_errors=True)
    _sweep_chunks(directory)


def _sweep_chunks(directory: Path) -> None:
    """Remove the chunk files no checkpoint under ``directory`` lists (and killed writers' leftovers)."""
    chunks = directory / CHUNK_DIR
    if not chunks.is_dir():
        return
    listed = set()
    for path in list_checkpoints(directory):
        try:
            listed.update(entry["file"] for entry in read_manifest(path).get("chunks", []))
        except CheckpointError:
            return  # a kept checkpoint that no longer reads: remove nothing it might need
    for file in chunks.iterdir():
        if file.name not in listed and not file.name.endswith(f".{os.getpid()}"):
            file.unlink(missing_ok=True)


def _verifies(path: Path, trusted: set[str]) -> bool:
    try:
        _load(path, trusted)
    except CheckpointError:
        return False
    return True


# -------------------------------------------------------------------- read


def read_manifest(path: Path) -> dict[str, Any]:
    """Return the verified manifest body of checkpoint ``path`` (no array file is read).

    Raises:
        CheckpointError: the manifest is missing, unreadable or fails its own checksum.
    """
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
    chunks = body.get("chunks", [])  # absent from checkpoints written before chunks existed
    if not isinstance(chunks, list) or not all(isinstance(e, dict) for e in chunks):
        raise bad(f"chunks must be a list of objects, got {chunks!r}")
    named = [*files.items(), *((e.get("file"), e) for e in chunks)]
    for name, entry in named:
        stem = name[:-len(".npz")] if isinstance(name, str) and name.endswith(".npz") else ""
        if not _STEM.fullmatch(stem):
            raise bad(f"file name {name!r} is not <stem>.npz inside the checkpoint "
                      f"(stem matching {_STEM.pattern})")
        if not (isinstance(entry, dict) and isinstance(entry.get("sha256"), str)
                and isinstance(entry.get("bytes"), int) and isinstance(entry.get("names"), list)
                and all(isinstance(n, str) for n in entry["names"])):
            raise bad(f"entry of {name} must hold names (strings), sha256 and bytes, got {entry!r}")


def _verify_file(path: Path, entry: dict[str, Any]) -> None:
    """Check that ``path`` is a plain file of the entry's size and sha256."""
    try:
        if path.is_symlink() or not path.is_file():
            link = " (a symbolic link)" if path.is_symlink() else ""
            raise CheckpointError(f"{path}: missing file{link}")
        size = path.stat().st_size
        if size != entry["bytes"]:
            raise CheckpointError(f"{path}: {size} bytes, manifest says {entry['bytes']} "
                                  "(truncated or partial file)")
        if file_sha256(path) != entry["sha256"]:
            raise CheckpointError(f"{path}: sha256 mismatch (corrupted file)")
    except OSError as err:
        raise CheckpointError(f"{path}: unreadable ({err.strerror or err})") from err


def _read_npz(path: Path, entry: dict[str, Any]) -> dict[str, np.ndarray]:
    _verify_file(path, entry)
    try:
        with np.load(path, allow_pickle=False) as data:
            return {name: data[f"a{i}"] for i, name in enumerate(entry["names"])}
    except _LOAD_ERRORS as err:
        raise CheckpointError(f"{path}: unreadable arrays ({type(err).__name__}: {err})") from err


def load_checkpoint(path: Path) -> Checkpoint:
    """Read and verify one checkpoint directory (its chunks verified, read by ``read_chunk``).

    Raises:
      CheckpointError: naming the file that is missing, partial, corrupted or
        not allowed (every failure to read it).
    """
    return _load(Path(path), trusted=set())


def _load(path: Path, trusted: set[str]) -> Checkpoint:
    """``load_checkpoint``, taking the chunks named in ``trusted`` as verified."""
    if path.is_symlink():
        raise CheckpointError(f"{path}: a symbolic link, not a checkpoint directory")
    body = read_manifest(path)
    try:
        groups = {name[:-len(".npz")]: _read_npz(path / name, entry)
                  for name, entry in body["files"].items()}
    except OSError as err:
        raise CheckpointError(f"{err.filename or path}: unreadable ({err.strerror or err})") from err
    chunks = body.get("chunks", [])
    for entry in chunks:
        if entry["file"] not in trusted:
            _verify_file(path.parent / CHUNK_DIR / entry["file"], entry)
    return Checkpoint(step=body["step"], groups=groups, meta=body["meta"], path=path, chunks=chunks)


def copy_latest(directory: Path, to: Path) -> Checkpoint | None:
    """Copy the newest checkpoint of ``directory`` that verifies, with the chunks it lists, to ``to``.

    ``to`` becomes a ``checkpoints/`` folder holding that one checkpoint
    (``to/ckpt-<step>/``) and its chunks (``to/chunks/``), which
    :func:`load_latest` reads as it reads the original; it is written into a
    temporary sibling and renamed into place, so a kill leaves either the whole
    copy or the folder as it was. Nothing else (older checkpoints, chunks no
    longer listed) is copied.

    Returns:
      The copied checkpoint as read from ``directory`` (None: none verifies; ``to``
      is left as it was).
    """
    checkpoint = load_latest(directory)
    if checkpoint is None:
        return None
    to = Path(to)
    tmp = to.parent / f"{_TMP_PREFIX}{to.name}.{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        to.parent.mkdir(parents=True, exist_ok=True)
        shutil.copytree(checkpoint.path, tmp / checkpoint.path.name)
        (tmp / CHUNK_DIR).mkdir()
        for entry in checkpoint.chunks:
            shutil.copy2(checkpoint.path.parent / CHUNK_DIR / entry["file"], tmp / CHUNK_DIR / entry["file"])
        _fsync_dir(tmp)
        old = to.parent / f"{_TMP_PREFIX}{to.name}.old.{os.getpid()}"
        if to.exists():
            os.replace(to, old)
        os.replace(tmp, to)
        shutil.rmtree(old, ignore_errors=True)
        _fsync_dir(to.parent)
    except OSError as err:
        shutil.rmtree(tmp, ignore_errors=True)
        raise WriteError(Path(err.filename or to), err) from err
    return checkpoint


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
