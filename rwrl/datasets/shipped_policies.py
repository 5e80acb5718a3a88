"""The behaviour snapshots that ship with rwrl, and the export that makes them.

``rwrl dataset create TASK --challenge C --size N`` needs a behaviour
policy. Training one (``rwrl policies train``) takes minutes to hours, so
the snapshots the datasets are generated with ship inside the package,
under ``rwrl/datasets/policies/<task>-<challenge>/``, and are used when
``--policy`` is not given and no ``policies/<task>-<challenge>/`` of the
user's own exists (``rwrl.datasets.create.default_policy_path``).

A shipped directory has the layout of a ``rwrl policies train`` output, cut
down to what a dataset reads::

    manifest.json                     # the run's manifest, its snapshot list cut to the
                                      # shipped fractions (0.75: the datasets' default)
    run/config.json                   # the run's config: agent, agent config, env
    run/checkpoints/ckpt-<steps>/     # a policy-only checkpoint per shipped snapshot

Choices (issue 28 asks for "only those [snapshots]; they are small"):

* Policy-only: a snapshot keeps the leaves of the agent state that acting
  reads (``.policy_params``), not the critic, the target networks or the
  optimiser moments: about a tenth of a run checkpoint (tens of KB for the
  ``fast`` preset's networks). Its checkpoint meta names the kept prefixes
  (``behaviour_policies.POLICY_ONLY_META``); ``load_policy`` fills the other
  leaves from ``agent.init`` and every other reader refuses it. The export
  checks that the cut snapshot acts exactly as the full one on a batch of
  observations, so a policy that reads another leaf is refused at export.
* The manifest keeps ``best_return`` (the datasets' ``ref_max_score``) and the
  run's facts; its ``checkpoints`` list keeps only the shipped snapshots, with
  their sha256 recomputed over the cut checkpoint; ``exported_from`` records
  the full run's snapshot checksums.
* ``every_checkpoint=True`` (``rwrl policies export --every-checkpoint``) cuts
  every checkpoint of the run instead: the policy set off-policy evaluation
  ranks (``benchmarks/ope.py --archive`` keeps one per task), about 80 KB each.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np

from rwrl.datasets.behaviour_policies import (DEFAULT_BEHAVIOUR_FRACTION, MANIFEST_FILE, POLICY_ONLY_META,
                                              PolicyError, load_policy, manifest_snapshot, read_manifest,
                                              snapshot_checksum,
                                              write_manifest)
from rwrl.storage.atomic_files import TMP_PREFIX, atomic_write_bytes

#: where the shipped snapshots live, one folder per ``<task>-<challenge>``.
SHIPPED_ROOT = Path(__file__).with_name("policies")
#: the state leaf prefixes an exported snapshot keeps: what ``agent.act`` reads.
ACTING_LEAVES = (".policy_params",)
#: the behaviour runs behind the shipped snapshots: env steps per task, and the D4PG
#: config (``fast``: the preset that learns cartpole and walker in minutes here; see
#: ``rwrl.agents.presets``). ``rwrl policies train TASK --challenge C --steps N
#: --agent-config preset=fast --out DIR`` then ``rwrl policies export DIR`` remakes one;
#: ``benchmarks/offline.py --stages policies`` trains them all (``training_recipe``).
TRAINING_STEPS = {"cartpole-swingup": 300_000, "walker-walk": 300_000, "quadruped-walk": 500_000,
                  "humanoid-walk": 2_000_000}
TRAINING_AGENT_CONFIG = {"preset": "fast"}
#: the pairs trained otherwise: (env steps, D4PG config). Quadruped-walk under ``easy``: the
#: ``fast`` preset did not learn it in 500k steps (best 130 against 103 untrained), D4PG's
#: paper preset (no config) did in 300k (best 280; 2026-12-07).
TRAINING_EXCEPTIONS = {("quadruped-walk", "easy"): (300_000, {})}


def training_recipe(task: str, challenge: str) -> tuple[int, dict[str, Any]]:
    """Return (env steps, D4PG agent config) of the behaviour run behind a shipped snapshot."""
    steps, config = TRAINING_EXCEPTIONS.get((task, challenge), (TRAINING_STEPS[task], TRAINING_AGENT_CONFIG))
    return steps, dict(config)


def shipped_manifest_path(task: str, challenge: str) -> Path:
    """Return the path of the shipped manifest of ``task`` and ``challenge`` (it may not exist)."""
    return SHIPPED_ROOT / f"{task}-{challenge}" / MANIFEST_FILE


def shipped_tasks() -> list[str]:
    """Return the ``<task>-<challenge>`` names that have a shipped manifest, sorted."""
    if not SHIPPED_ROOT.is_dir():
        return []
    return sorted(p.parent.name for p in SHIPPED_ROOT.glob(f"*/{MANIFEST_FILE}")
                  if not p.parent.name.startswith(TMP_PREFIX))


def _cut_checkpoint(source: Path, dest_checkpoints: Path, keep: int) -> Path:
    """Write a policy-only copy of checkpoint ``source`` under ``dest_checkpoints``; return it.

    ``keep``: how many cut checkpoints the folder holds once this one is written (at least
    the number the export writes: saving prunes the oldest beyond it).
    """
    from rwrl.storage.checkpoint import Checkpoint, load_checkpoint, save_checkpoint
    saved = load_checkpoint(source)
    kept = {k: v for k, v in saved.groups["state"].items() if k.startswith(ACTING_LEAVES)}
    if not kept:
        raise PolicyError(f"snapshot {source}: its state has no leaf under {', '.join(ACTING_LEAVES)}")
    cut = Checkpoint(step=saved.step, groups={"state": kept}, meta={POLICY_ONLY_META: list(ACTING_LEAVES)})
    return save_checkpoint(dest_checkpoints, cut, keep=keep)


def _check_same_actions(full: Path, cut: Path, seed: int = 0, batch: int = 64) -> None:
    """Refuse the export when the cut snapshot does not act exactly as the full one."""
    a, b = load_policy(full), load_policy(cut)
    obs = np.random.default_rng(seed).normal(size=(batch, a.obs_size)).astype(np.float32)
    if not np.array_equal(a(obs), b(obs)):
        raise PolicyError(f"snapshot {full}: its policy-only copy acts differently (acting reads "
                          f"leaves outside {', '.join(ACTING_LEAVES)}); not exported")


def export_policies(manifest_path: Path, dest: Path,
                    fractions: tuple[float, ...] = (DEFAULT_BEHAVIOUR_FRACTION,),
                    every_checkpoint: bool = False) -> dict[str, Any]:
    """Write the policy-only copy of a policies directory's ``fractions`` snapshots to ``dest``.

    Args:
      manifest_path: a ``rwrl policies train`` manifest (or its directory).
      dest: the shipped folder to (re)write, e.g. ``SHIPPED_ROOT / "cartpole-swingup-none"``.
      fractions: the snapshots to keep, each one listed in the manifest.
      every_checkpoint: also keep every other checkpoint of the run (the whole policy set,
        listed under ``checkpoints`` in the run's order); the snapshots stay ``fractions``.

    Returns:
      The written manifest.

    Raises:
      PolicyError: a fraction is not in the manifest, or a snapshot does not export.
    """
    manifest = read_manifest(manifest_path)
    chosen = [manifest_snapshot(manifest, f)[1] for f in fractions]  # names a fraction it lacks
    source_dir = Path(manifest.pop("_path")).parent
    dest = Path(dest)
    staging = dest.with_name(TMP_PREFIX + dest.name)  # a killed export leaves no shipped folder
    shutil.rmtree(staging, ignore_errors=True)
    (staging / "run").mkdir(parents=True)
    atomic_write_bytes(staging / "run" / "config.json",
                       (source_dir / "run" / "config.json").read_bytes())
    kept = (manifest["checkpoints"] if every_checkpoint else []) + chosen
    keep = len({entry["path"] for entry in kept})
    cut_entries = {}  # the run's checkpoint path -> the cut copy's path and checksums
    for entry in kept:
        if entry["path"] not in cut_entries:
            full = source_dir / entry["path"]
            cut = _cut_checkpoint(full, staging / "run" / "checkpoints", keep)
            _check_same_actions(full, cut)
            cut_entries[entry["path"]] = {"path": str(cut.relative_to(staging)), "sha256": snapshot_checksum(cut),
                                          "full_sha256": entry["sha256"]}
    exported = [{**entry, **cut_entries[entry["path"]]} for entry in chosen]
    unique = {cut_entries[e["path"]]["path"]: {k: v for k, v in {**e, **cut_entries[e["path"]]}.items()
                                               if k not in ("fraction", "target_return")}
              for e in kept}
    shipped = {**manifest, "snapshots": exported, "checkpoints": list(unique.values()),
               "fractions": list(fractions),
               "exported_from": {"leaves": list(ACTING_LEAVES),
                                 "note": "policy-only copies of the run's snapshots; full_sha256 is "
                                         "each full checkpoint's checksum"}}
    write_manifest(staging / MANIFEST_FILE, shipped)
    if dest.exists():
        shutil.rmtree(dest)
    staging.rename(dest)
    return shipped


def exported_size(dest: Path) -> int:
    """Return the bytes of a shipped folder's files."""
    return sum(p.stat().st_size for p in Path(dest).rglob("*") if p.is_file())


def describe(dest: Path) -> str:
    """Return one line: the folder, its snapshots' fractions, returns and size."""
    manifest = json.loads((Path(dest) / MANIFEST_FILE).read_text())
    parts = [f"{s['fraction']:.2f}: {s['mean_return']:.1f}" for s in manifest["snapshots"]]
    return f"{dest}: best {manifest['best_return']:.1f}; {'; '.join(parts)}; {exported_size(dest) // 1024} KB"


__all__ = ["ACTING_LEAVES", "SHIPPED_ROOT", "TRAINING_AGENT_CONFIG", "TRAINING_EXCEPTIONS", "TRAINING_STEPS", "describe",
           "export_policies", "exported_size", "shipped_manifest_path", "shipped_tasks", "training_recipe"]
