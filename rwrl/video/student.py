"""The student: a rate-control policy learned by imitating the ES teacher, with a budget guard.

Mao et al. (2020) train a neural policy on the teacher's encoding trajectories and
say that "auxiliary losses, data augmentation/refinement and inference-time
policy improvements are critical" (abstract). The body of the paper could not be
read here (``shared/papers/PAPERS.md``, section 3), so each of the three is rwrl's
choice, named:

* **Policy**: an MLP on the env's observation (``rwrl.video.env``) with a
  softmax over the 52 QPs, trained by cross-entropy on the teacher's QP of each
  frame (imitation as classification: the QP is an ordered integer, but the
  teacher's choices are multi-modal between neighbouring QPs, and a softmax
  keeps the argmax on a QP the teacher used).
* **Auxiliary predictions**: two heads on the same torso predict, for every
  QP, the frame's bits (log2) and its PSNR; each is trained on the QP the
  teacher chose (the only one whose outcome was seen), by squared error. They
  shape the torso (the paper's auxiliary losses) and serve the guard.
* **Budget guard** (the inference-time improvement): the policy's QP is raised
  to the smallest QP at or above it whose predicted bits fit the bits left after
  a reserve for the remaining frames: each at the least a P-frame can cost, the
  current frame's predicted bits at QP 51. On an intra frame the guard does not
  act (``guard_mask`` False): an I-frame's cost at QP 51 is no estimate of the
  P-frames after it, and reserving 59 of them starved the keyframe (the first
  version did: measured in ``benchmarks/results/ratecontrol.md``).
  ``act(..., guard=False)`` is the ablation.
* Not built: the paper's data augmentation / refinement (its form is not
  known; a DAgger-style refinement would need the teacher's ES at every state
  the student visits, about a minute each here).

Observations, log2 bits and PSNR are standardised by the training data's means
and standard deviations, kept with the parameters. A student saves to one ``.npz`` (arrays
only, read with ``allow_pickle=False``) and a JSON header.
"""

from __future__ import annotations

import dataclasses
import io
import json
from pathlib import Path
from typing import Mapping, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import traverse_util

from rwrl.storage.atomic_files import atomic_write_bytes
from rwrl.video.x264 import QP_MAX, QP_MIN

NUM_QPS = QP_MAX - QP_MIN + 1


@dataclasses.dataclass(frozen=True)
class StudentConfig:
    """Training settings (rwrl's choices: the paper's are not known)."""

    hidden: tuple[int, ...] = (256, 256)
    learning_rate: float = 1e-3
    batch_size: int = 256
    steps: int = 3000
    #: weights of the auxiliary losses (standardised log2 bits and PSNR).
    bits_weight: float = 1.0
    quality_weight: float = 1.0
    seed: int = 0

    def __post_init__(self):
        for name in ("learning_rate", "batch_size", "steps"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} {getattr(self, name)!r} is not allowed: positive")
        if not self.hidden or min(self.hidden) <= 0:
            raise ValueError(f"hidden {self.hidden!r} is not allowed: positive layer widths")


class StudentNetwork(nn.Module):
    """Torso MLP; heads: QP logits, standardised log2 bits and PSNR per QP."""

    hidden: Sequence[int]

    @nn.compact
    def __call__(self, obs):
        x = obs
        for width in self.hidden:
            x = nn.relu(nn.Dense(width)(x))
        return nn.Dense(NUM_QPS)(x), nn.Dense(NUM_QPS)(x), nn.Dense(NUM_QPS)(x)


def _loss(params, network, obs, qp, log_bits, quality, config):
    logits, bits_pred, quality_pred = network.apply(params, obs)
    chosen = qp - QP_MIN
    imitation = optax.softmax_cross_entropy_with_integer_labels(logits, chosen).mean()
    pick = lambda table: jnp.take_along_axis(table, chosen[:, None], axis=1)[:, 0]  # noqa: E731
    bits_loss = jnp.mean((pick(bits_pred) - log_bits) ** 2)
    quality_loss = jnp.mean((pick(quality_pred) - quality) ** 2)
    total = imitation + config.bits_weight * bits_loss + config.quality_weight * quality_loss
    accuracy = jnp.mean(jnp.argmax(logits, axis=1) == chosen)
    return total, {"imitation": imitation, "bits": bits_loss, "quality": quality_loss,
                   "accuracy": accuracy}


@dataclasses.dataclass
class Student:
    """A trained student: parameters, observation statistics, settings, training history."""

    params: Mapping
    obs_mean: np.ndarray
    obs_std: np.ndarray
    #: (mean, std) of log2 bits and of PSNR in the training data.
    target_stats: np.ndarray
    config: StudentConfig
    history: list[dict] = dataclasses.field(default_factory=list)

    def __post_init__(self):
        self._network = StudentNetwork(tuple(self.config.hidden))
        self._apply = jax.jit(self._network.apply)

    def predict(self, obs: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Return (QP logits, predicted bits, predicted PSNR), each (n, 52), for obs (n, D)."""
        x = (np.asarray(obs, np.float32) - self.obs_mean) / self.obs_std
        logits, log_bits, quality = (np.asarray(a, np.float64) for a in self._apply(self.params, x))
        (bits_mean, bits_std), (quality_mean, quality_std) = self.target_stats
        return (logits, np.exp2(bits_mean + bits_std * log_bits),
                quality_mean + quality_std * quality)

    def act(self, obs: np.ndarray, bits_left: np.ndarray | None = None,
            frames_left: np.ndarray | None = None, guard: bool = True,
            guard_mask: np.ndarray | None = None) -> np.ndarray:
        """Return the (n,) integer QPs for obs (n, D); with ``guard``, fitted to the bits left.

        ``bits_left``: (n,) budget not yet spent; ``frames_left``: (n,) frames
        still to code, this one included (both required with ``guard``);
        ``guard_mask``: (n,) bool, the frames the guard acts on (default all;
        False for intra frames, see the module docstring).
        """
        logits, bits, _ = self.predict(obs)
        qps = np.argmax(logits, axis=1) + QP_MIN
        if not guard:
            return qps
        if bits_left is None or frames_left is None:
            raise ValueError("bits_left and frames_left are required with guard=True")
        reserve = (np.asarray(frames_left) - 1) * bits[:, -1]
        allowance = np.asarray(bits_left, np.float64) - reserve
        out = qps.copy()
        acting = np.ones(len(qps), bool) if guard_mask is None else np.asarray(guard_mask, bool)
        for i, qp in enumerate(qps):
            if not acting[i]:
                continue
            fits = np.nonzero(bits[i, qp - QP_MIN:] <= allowance[i])[0]
            out[i] = qp + fits[0] if fits.size else QP_MAX
        return out

    def save(self, path: str | Path) -> None:
        """Write the student as ``path`` (.npz, arrays only) and ``path``.json (settings, history)."""
        path = Path(path)
        flat = traverse_util.flatten_dict(dict(self.params), sep="/")
        arrays = {f"params/{k}": np.asarray(v) for k, v in flat.items()}
        arrays.update(obs_mean=self.obs_mean, obs_std=self.obs_std, target_stats=self.target_stats)
        buffer = io.BytesIO()
        np.savez(buffer, **arrays)
        atomic_write_bytes(path, buffer.getvalue())
        header = {"config": dataclasses.asdict(self.config), "history": self.history}
        atomic_write_bytes(path.with_suffix(".json"), json.dumps(header, indent=1).encode())

    @classmethod
    def load(cls, path: str | Path) -> "Student":
        """Read a student written by ``save``."""
        path = Path(path)
        header = json.loads(path.with_suffix(".json").read_text())
        config = dict(header["config"], hidden=tuple(header["config"]["hidden"]))
        with np.load(path, allow_pickle=False) as arrays:
            flat = {k.removeprefix("params/"): jnp.asarray(arrays[k])
                    for k in arrays.files if k.startswith("params/")}
            mean, std, stats = arrays["obs_mean"], arrays["obs_std"], arrays["target_stats"]
        params = traverse_util.unflatten_dict(flat, sep="/")
        return cls(params, mean, std, stats, StudentConfig(**config), header["history"])


def train_student(data: Mapping[str, np.ndarray], config: StudentConfig = StudentConfig(),
                  ) -> Student:
    """Fit a student to teacher trajectories.

    ``data``: ``obs`` (M, D), ``qp`` (M,) int (the teacher's), ``bits`` (M,) and
    ``psnr`` (M,) (what the encoder gave at that QP).
    """
    obs = np.asarray(data["obs"], np.float32)
    qp = np.asarray(data["qp"])
    if obs.ndim != 2 or len(obs) == 0:
        raise ValueError(f"obs of shape {obs.shape} is not allowed: (M, D) with M > 0")
    if qp.shape != (len(obs),) or qp.min() < QP_MIN or qp.max() > QP_MAX:
        raise ValueError(f"qp is not allowed: {len(obs)} integers in [{QP_MIN}, {QP_MAX}]")
    mean, std = obs.mean(axis=0), obs.std(axis=0) + 1e-6
    x = (obs - mean) / std
    log_bits = np.log2(np.maximum(np.asarray(data["bits"], np.float64), 1.0))
    quality = np.asarray(data["psnr"], np.float64)
    stats = np.array([[log_bits.mean(), log_bits.std() + 1e-6], [quality.mean(), quality.std() + 1e-6]])
    log_bits = ((log_bits - stats[0, 0]) / stats[0, 1]).astype(np.float32)
    quality = ((quality - stats[1, 0]) / stats[1, 1]).astype(np.float32)

    network = StudentNetwork(tuple(config.hidden))
    key = jax.random.PRNGKey(config.seed)
    params = network.init(key, x[:1])
    optimiser = optax.adam(config.learning_rate)
    opt_state = optimiser.init(params)

    @jax.jit
    def step(params, opt_state, batch):
        (_, metrics), grads = jax.value_and_grad(_loss, has_aux=True)(
            params, network, *batch, config)
        updates, opt_state = optimiser.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state, metrics

    rng = np.random.default_rng(config.seed)
    history = []
    for t in range(config.steps):
        rows = rng.integers(0, len(x), config.batch_size)
        batch = (x[rows], qp[rows].astype(np.int32), log_bits[rows], quality[rows])
        params, opt_state, metrics = step(params, opt_state, batch)
        if t % max(1, config.steps // 20) == 0 or t == config.steps - 1:
            history.append({"step": t, **{k: float(v) for k, v in metrics.items()}})
    return Student(params, mean, std, stats, config, history)
