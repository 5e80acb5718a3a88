"""RateControlEnv: choose each frame's quantiser under a bit budget, with the real x264 encoder.

The rate-control task of Mao et al. (2020, "Neural Rate Control for Video Encoding
using Imitation Learning", arXiv 2012.05339) as a batched env
(``rwrl.tasks.protocol.BatchedEnv``, met structurally: this room imports no task), so the
Gymnasium, vector and dm_env adapters of ``rwrl.envs`` serve it as they are
(``rwrl.envs.ratecontrol``: ``gymnasium.make("rwrl/ratecontrol-v0")``).

An episode codes one clip, a frame per step, each env with its own
``rwrl.video.x264.X264Encoder`` (zero latency: a frame's size and quality come
back before the next decision).

* Action: (1,) float in [QP_MIN, QP_MAX] = [0, 51], the quantiser of the current
  frame, rounded half up to an integer (floor(a + 0.5)): H.264's QP is an
  integer, and a continuous Box keeps the usual continuous-control agents
  usable. ``info['budget']['qp']`` is the QP x264 used (always the rounded one).
* Reward: the coded frame's luma PSNR in dB (capped at 100 for a lossless frame),
  or its luma SSIM with ``reward='ssim'``, times ``reward_scale`` (1.0). Mao et
  al. maximise quality under the budget; PSNR is the quality rate-control
  papers report.
* Constraint ``bitrate``: the episode's bits must not exceed its budget. It can
  only be judged when the clip is done, so (``cost='final'``, the default) its
  flag is True on every step but the last, and on the last step says ``total
  bits <= budget``; ``cost`` is 1.0 on a last step that overshot, 0 otherwise,
  so the suite's evaluators count a violating episode once. With
  ``cost='running'`` the flag says ``bits so far <= budget`` on every step: a
  per-step signal for the constrained agents (whose J_C is an episode's mean
  cost per step), the same verdict on the last step.
  ``info['budget']['overshoot']`` gives the size of the violation (bits) on
  the last step.
* Budget of an episode: by default the total bits of the clip coded at a
  constant QP drawn from ``target_qps`` (28, 32, 36, 40): a budget that some
  policy meets exactly, whatever the content (a fixed bitrate would be
  lossless for a static clip and unreachable for noise). With ``target_kbps``
  (a number, or a list to draw from) the budget is kbps * 1000 * T / fps bits.
* Episode end: the clip's last frame is a termination (``info['terminated']``,
  ``rwrl.tasks.protocol``): nothing follows it, so an agent must not bootstrap
  past it (Gymnasium: ``terminated``; dm_env: discount 0). Clips of different
  lengths may share an env: each episode ends at its own clip's end, and
  ``time_limit`` is the longest clip's length.
* ``facts`` is None: the real-world challenge stages (``rwrl.challenges``) are
  defined on MuJoCo tasks and none applies to this family.

Observation entries (``layout``; F = len(FEATURE_NAMES) first-pass features per
frame, ``rwrl.video.features``), t = frames coded so far, T = clip length, B =
budget (bits), S = bits spent:

* ``frame`` (F,): the features of frame t, the one this step codes (zeros once
  the clip is done);
* ``next_frames`` (L, F): frames t+1 .. t+L (L = ``lookahead``), zero past the
  clip's end, and ``next_present`` (L,) bool: which of them exist;
* ``budget_left`` (1,): (B - S) / B, negative once overshot;
* ``frames_left`` (1,): (T - t) / T;
* ``budget_vs_reference`` (1,): (B - S) / (the first pass's bits of frames
  t .. T-1): above 1, the rest of the clip can be coded finer than the
  reference QP; 0 once the clip is done;
* ``budget_log_bpp`` (1,): (log2(B / (T W H)) + 4) / 4, the budget in bits per
  pixel on the scale of the ``ref_log_bpp`` feature;
* ``previous_qp`` (1,): the last frame's QP / 51; ``previous_bits`` (1,): its
  bits / (B / T), the per-frame budget; ``previous_psnr`` (1,): (PSNR - 40) / 10;
  all three 0 before the first frame.

``info`` (same keys and shapes on every reset and step; n envs):

* ``constraints`` (n, 1) bool, ``cost`` (n,) float64: the ``bitrate`` constraint above;
* ``budget``: dict of (n,) arrays: ``bits`` (spent so far), ``budget``,
  ``overshoot`` (max(0, bits - budget) on the last step, else 0), ``qp`` and
  ``psnr`` of the frame coded at this step (NaN at a reset: no frame coded),
  all float64, and ``clip`` (int64), the episode's index into ``clips``; with
  ``reward='ssim'`` also ``ssim``. SSIM costs more than ten times the encode
  of a QCIF frame (measured here: 7.7 ms against 0.4 to 0.7 ms), so it is
  measured only when it is the reward, and its key is absent otherwise rather
  than NaN on every step (Gymnasium's env checker, and any test of
  determinism by equality, reads NaN != NaN as a difference);
* ``safety_vars``: {'budget_left': (n,) float64, as the observation entry};
* ``diverged`` (n,) bool: always False (an encoder does not diverge);
* ``terminated`` (n,) bool: True on a clip's last frame (False at a reset); the
  adapters take it out of ``info`` and report it as the episode's termination.

A step of an env whose clip is done (a vector env's NEXT_STEP autoreset steps
every env before it resets the ended ones) codes nothing: reward 0, ended as a
truncation, flag satisfied, cost 0, NaN qp and quality.

Seeding: ``reset(ids, seeds)`` reseeds env i's generator (``env_rng(seed, 'video')``),
which draws the clip, then the budget; a vector env seeded s gives env i the
i-th of ``spawn_seeds(s, N)``, as the MuJoCo tasks do.

Snapshots: x264's C state cannot be copied, so ``env_state()`` holds the choices
(clip, budget, the QPs coded so far) and ``restore_env_state`` codes those QPs
again into fresh encoders: the encoder is deterministic (one thread), so the
later steps repeat bit for bit.

Example:
  >>> from rwrl.video.clip import Clip
  >>> y = np.tile(np.arange(64, dtype=np.uint8) * 3, (4, 48, 1))
  >>> u = v = np.full((4, 24, 32), 128, np.uint8)
  >>> env = RateControlEnv([Clip("ramp", 30, y, u, v, source="procedural", kind="flat")], 2)
  >>> obs, info = env.reset(np.arange(2), [0, 1])
  >>> obs.shape == (2, env.layout.size), env.time_limit, env.constraint_names
  (True, 4, ('bitrate',))
  >>> obs, reward, truncated, info = env.step(np.full((2, 1), 30.0))
  >>> info["budget"]["qp"].tolist(), truncated.tolist()
  ([30.0, 30.0], [False, False])
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence
from typing import Any

import numpy as np

from rwrl.core.checks import count
from rwrl.core.env_state import EnvState, check_env_state
from rwrl.core.layout import FlatLayout
from rwrl.core.seeding import (env_rng, fresh_seed, generators_array, generators_from_array,
                               seeds_array, seeds_from_array)
from rwrl.video.clip import Clip
from rwrl.video.features import (FEATURE_NAMES, PSNR_CENTRE, PSNR_SCALE, REFERENCE_QP,
                                 ClipFeatures, clip_features, clip_fingerprint,
                                 constant_qp_encode, scaled_log_bpp)
from rwrl.video.x264 import QP_MAX, QP_MIN, X264Encoder

#: x264's speed presets, fastest first.
PRESETS = ("ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow", "slower",
           "veryslow", "placebo")
#: encoders with a chosen QP per frame here (``rwrl.video.x264``). libvpx (VP8/VP9) is
#: in PyAV's FFmpeg too, but FFmpeg's wrapper sets one rate control per stream and rwrl
#: drives no libvpx C API yet, so those names are refused with that reason.
ENCODERS = ("x264",)
_NO_PER_FRAME_QP = ("libvpx", "libvpx-vp9", "vp8", "vp9", "libx265", "x265", "hevc", "av1")
#: the per-frame quality the reward is: luma PSNR (dB) or luma SSIM.
REWARDS = ("psnr", "ssim")
#: when the ``bitrate`` flag is judged: on the last frame only, or on every frame.
COSTS = ("final", "running")
#: constant QPs whose total bits are the default budgets: fine (28) to coarse (40) in steps
#: of 4 QP, about a factor 1.6 in bits each (x264 halves a frame's bits about every 6 QP).
DEFAULT_TARGET_QPS = (28, 32, 36, 40)
#: frames of first-pass features observed after the current one.
DEFAULT_LOOKAHEAD = 4
#: the most envs of one batch, and the longest lookahead.
MAX_NUM_ENVS, MAX_LOOKAHEAD = 65_536, 250
_SAME = "same constructor arguments: clips, num_envs, reward, preset, reference QP, keyint"


def _check_clips(clips) -> list[Clip]:
    if isinstance(clips, Clip) or not isinstance(clips, Sequence) or not len(clips):
        raise ValueError(f"clips = {clips!r:.60} is not allowed: give a non-empty list of "
                         f"rwrl.video.clip.Clip")
    for index, clip in enumerate(clips):
        if not isinstance(clip, Clip):
            raise ValueError(f"clips[{index}] is a {type(clip).__name__}: allowed "
                             f"rwrl.video.clip.Clip only")
    rates = sorted({int(clip.fps) for clip in clips})
    if len(rates) > 1:
        raise ValueError(f"clips have frame rates {rates}: allowed one frame rate per env "
                         f"(its control_timestep is 1 / fps)")
    return list(clips)


def _check_kbps(target_kbps) -> tuple[float, ...]:
    values = list(target_kbps) if isinstance(target_kbps, (list, tuple)) else [target_kbps]
    for value in values:
        if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real) \
                or not math.isfinite(value) or value <= 0:
            raise ValueError(f"target_kbps {value!r} is not allowed: a positive finite bitrate "
                             f"(kbit/s), or a non-empty list of them")
    if not values:
        raise ValueError("target_kbps [] is not allowed: a positive finite bitrate (kbit/s), "
                         "or a non-empty list of them")
    return tuple(float(v) for v in values)


def _check_qps(target_qps) -> tuple[int, ...]:
    values = list(target_qps) if isinstance(target_qps, (list, tuple)) else [target_qps]
    if not values:
        raise ValueError(f"target_qps [] is not allowed: integers in [{QP_MIN}, {QP_MAX}]")
    for value in values:
        if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral) \
                or not QP_MIN <= value <= QP_MAX:
            raise ValueError(f"target_qps {value!r} is not allowed: integers in "
                             f"[{QP_MIN}, {QP_MAX}]")
    return tuple(int(v) for v in values)


def _choice(name: str, value, allowed: tuple[str, ...]) -> str:
    if value not in allowed:
        raise ValueError(f"{name} {value!r} is not allowed: one of {', '.join(allowed)}")
    return value


def check_options(*, target_kbps: float | Sequence[float] | None = None,
                  target_qps: Sequence[int] | None = None, reward: str = "psnr",
                  reward_scale: float = 1.0, cost: str = "final", encoder: str = "x264",
                  preset: str = "veryfast", lookahead: int = DEFAULT_LOOKAHEAD,
                  reference_qp: int = REFERENCE_QP, keyint: int = 250) -> dict[str, Any]:
    """Return ``RateControlEnv``'s options (its Args) checked and normalised, without a clip.

    A bad value is a ValueError naming it and what is allowed; an unknown name a
    TypeError. Cheap: a sweep or a run checks its env's settings before it starts.
    """
    if target_kbps is not None and target_qps is not None:
        raise ValueError("target_kbps and target_qps are both given: allowed one of them")
    if isinstance(reward_scale, bool) or not isinstance(reward_scale, (int, float)) \
            or not 0 < reward_scale < np.inf:
        raise ValueError(f"reward_scale {reward_scale!r} is not allowed: a number > 0")
    if encoder in _NO_PER_FRAME_QP:
        raise ValueError(f"encoder {encoder!r} is not allowed: it has no per-frame QP control "
                         f"here (FFmpeg's wrapper takes one rate control per stream); use 'x264'")
    return {
        "target_kbps": None if target_kbps is None else _check_kbps(target_kbps),
        "target_qps": None if target_kbps is not None else _check_qps(
            DEFAULT_TARGET_QPS if target_qps is None else target_qps),
        "reward": _choice("reward", reward, REWARDS), "reward_scale": float(reward_scale),
        "cost": _choice("cost", cost, COSTS), "encoder": _choice("encoder", encoder, ENCODERS),
        "preset": _choice("preset", preset, PRESETS),
        "lookahead": count("lookahead", lookahead, 0, MAX_LOOKAHEAD),
        "reference_qp": count("reference_qp", reference_qp, QP_MIN, QP_MAX),
        "keyint": count("keyint", keyint, 1, 100_000)}


def observation_layout(lookahead: int = DEFAULT_LOOKAHEAD) -> FlatLayout:
    """Return the observation layout of an env observing ``lookahead`` next frames."""
    features = len(FEATURE_NAMES)
    scalar = ((1,), np.float64)
    return FlatLayout({
        "frame": ((features,), np.float64),
        "next_frames": ((lookahead, features), np.float64),
        "next_present": ((lookahead,), bool),
        "budget_left": scalar, "frames_left": scalar, "budget_vs_reference": scalar,
        "budget_log_bpp": scalar, "previous_qp": scalar, "previous_bits": scalar,
        "previous_psnr": scalar})


class RateControlEnv:
    """N rate-control envs over a list of clips; see the module docstring.

    Args:
      clips: the clips episodes draw from (``rwrl.video.clip.Clip``), one frame rate.
      num_envs: N, an integer in [1, MAX_NUM_ENVS].
      target_kbps: a bitrate (kbit/s) or a list to draw each episode's from; None
        (default): budgets from ``target_qps``.
      target_qps: constant QPs whose total bits give the budget, one drawn per
        episode (default ``DEFAULT_TARGET_QPS``); not with ``target_kbps``.
      reward: 'psnr' (dB, default) or 'ssim'.
      reward_scale: the reward is the frame's quality times this (> 0; default 1.0:
        dB). ``info['budget']`` keeps the unscaled quality. 0.01 puts PSNR's usual
        20-60 dB near the suite's [0, 1] rewards, which the agents' default critic
        supports and multiplier bounds are made for.
      cost: 'final' (default): the budget flag is judged on the clip's last frame
        only; 'running': on every frame, False wherever the bits so far exceed the
        budget (once over, every later frame violates it: an agent learns of the
        overshoot where it happens, and the episode's cost counts the frames
        coded past the budget). The last frame's flag is the same in both.
      encoder: 'x264' (``ENCODERS``), the only one with per-frame QP control here.
      preset: x264's speed preset (``PRESETS``) of the env's encoders and first passes.
      lookahead: frames of features observed after the current one (>= 0).
      reference_qp: the constant QP of the first pass (``rwrl.video.features``).
      keyint: frames between IDR frames.
      feature_cache_dir: a folder keeping the first-pass features as ``.npz`` files.
    """

    #: no challenge stage applies to this family (the challenges are MuJoCo's).
    facts = None
    constraint_names = ("bitrate",)

    def __init__(self, clips: Sequence[Clip], num_envs: int = 1, *,
                 feature_cache_dir: str | None = None, **options: Any):
        self.clips = _check_clips(clips)
        self.num_envs = count("num_envs", num_envs, 1, MAX_NUM_ENVS)
        for name, value in check_options(**options).items():
            setattr(self, name, value)
        self._cache_dir = feature_cache_dir
        fps = int(self.clips[0].fps)
        self.control_timestep = 1.0 / fps
        self.time_limit = max(clip.num_frames for clip in self.clips)
        self.action_low = np.array([float(QP_MIN)])
        self.action_high = np.array([float(QP_MAX)])
        self.layout = observation_layout(self.lookahead)
        n = self.num_envs
        self.elapsed_steps = np.zeros(n, np.int64)
        self._clip = np.full(n, -1, np.int64)  # -1: never reset
        self._budget = np.zeros(n)
        self._spent = np.zeros(n)
        self._qps = np.full((n, self.time_limit), -1, np.int64)  # QPs coded so far, -1 after
        self._previous = np.zeros((n, 3))  # last frame's QP, bits, PSNR (rows of started envs)
        self._encoders: list[X264Encoder | None] = [None] * n
        self._seeds: list[int | None] = [None] * n
        self._rngs: list[np.random.Generator | None] = [None] * n
        self._fingerprints: dict[int, tuple] = {}
        self._features: dict[int, tuple[ClipFeatures, np.ndarray]] = {}
        self._budgets: dict[tuple[int, int], float] = {}

    # -- clips, features, budgets ----------------------------------------------------
    def _fingerprint(self, clip_index: int) -> tuple:
        if clip_index not in self._fingerprints:
            self._fingerprints[clip_index] = clip_fingerprint(self.clips[clip_index])
        return self._fingerprints[clip_index]

    def features(self, clip_index: int) -> tuple[ClipFeatures, np.ndarray]:
        """Return clip ``clip_index``'s first-pass features and its remaining reference bits.

        The second is (T + 1,): entry t the first pass's bits of frames t .. T-1 (0 at T).
        Both are computed on first use.
        """
        if clip_index not in self._features:
            features = clip_features(self.clips[clip_index], reference_qp=self.reference_qp,
                                     preset=self.preset, keyint=self.keyint,
                                     cache_dir=self._cache_dir,
                                     fingerprint=self._fingerprint(clip_index))
            bits = features.reference.bits.astype(np.float64)
            remaining = np.concatenate([np.cumsum(bits[::-1])[::-1], [0.0]])
            self._features[clip_index] = features, remaining
        return self._features[clip_index]

    def _draw_budget(self, clip_index: int, rng: np.random.Generator) -> float:
        """Return a budget (bits) for an episode of clip ``clip_index``, drawn with ``rng``."""
        clip = self.clips[clip_index]
        if self.target_kbps is not None:
            kbps = self.target_kbps[int(rng.integers(len(self.target_kbps)))]
            return kbps * 1000.0 * clip.num_frames / int(clip.fps)
        qp = self.target_qps[int(rng.integers(len(self.target_qps)))]
        key = (clip_index, qp)
        if key not in self._budgets:
            encode = constant_qp_encode(clip, qp, preset=self.preset, keyint=self.keyint,
                                        fingerprint=self._fingerprint(clip_index))
            self._budgets[key] = float(encode.total_bits)
        return self._budgets[key]

    def _open_encoder(self, clip_index: int) -> X264Encoder:
        clip = self.clips[clip_index]
        return X264Encoder(clip.width, clip.height, fps=int(clip.fps), preset=self.preset,
                           keyint=self.keyint)

    # -- BatchedEnv ----------------------------------------------------------------------
    def reset(self, ids: np.ndarray, seeds: Sequence[int | None]):
        ids = np.asarray(ids, dtype=np.int64)
        for env_id, seed in zip(ids, seeds):
            if seed is not None or self._rngs[env_id] is None:
                self._seeds[env_id] = fresh_seed() if seed is None else int(seed)
                self._rngs[env_id] = env_rng(self._seeds[env_id], "video")
            rng = self._rngs[env_id]
            clip_index = int(rng.integers(len(self.clips)))
            budget = self._draw_budget(clip_index, rng)
            self._start(env_id, clip_index, budget, self._open_encoder(clip_index))
        n = len(ids)
        nan = np.full(n, np.nan)
        info = self._info(ids, np.ones((n, 1), bool), np.zeros(n), nan, nan.copy(), nan.copy(),
                          np.zeros(n, bool))
        return self._observe(ids), info

    def _start(self, env_id: int, clip_index: int, budget: float, encoder: X264Encoder) -> None:
        """Begin env ``env_id``'s episode of clip ``clip_index`` (nothing coded yet)."""
        if self._encoders[env_id] is not None:
            self._encoders[env_id].close()
        self._encoders[env_id] = encoder
        self._clip[env_id] = clip_index
        self._budget[env_id] = budget
        self._spent[env_id] = 0.0
        self._qps[env_id] = -1
        self._previous[env_id] = 0.0
        self.elapsed_steps[env_id] = 0

    def _code(self, env_id: int, qp: int):
        """Code env ``env_id``'s next frame at ``qp``; return the ``FrameResult``."""
        clip = self.clips[self._clip[env_id]]
        t = int(self.elapsed_steps[env_id])
        result = self._encoders[env_id].encode(*clip.frame(t), qp, with_ssim=self.reward == "ssim")
        self._qps[env_id, t] = qp
        self._spent[env_id] += result.bits
        self._previous[env_id] = result.qp, result.bits, result.psnr
        self.elapsed_steps[env_id] = t + 1
        return result

    def step(self, actions: np.ndarray):
        n = self.num_envs
        # round half up to an integer QP; the clip keeps a direct caller in range too
        qps = np.clip(np.floor(np.asarray(actions, np.float64).reshape(n, -1)[:, 0] + 0.5),
                      QP_MIN, QP_MAX).astype(np.int64)
        reward = np.zeros(n)
        ended, terminal = np.zeros(n, bool), np.zeros(n, bool)
        flags = np.ones((n, 1), bool)
        overshoot = np.zeros(n)
        qp_used, psnr, ssim = np.full(n, np.nan), np.full(n, np.nan), np.full(n, np.nan)
        for env_id in range(n):
            clip_index = self._clip[env_id]
            length = self.clips[clip_index].num_frames if clip_index >= 0 else 0
            if self.elapsed_steps[env_id] >= length:  # done (or never reset): nothing to code
                ended[env_id] = True
                continue
            result = self._code(env_id, int(qps[env_id]))
            qp_used[env_id], psnr[env_id], ssim[env_id] = result.qp, result.psnr, result.ssim
            quality = result.ssim if self.reward == "ssim" else result.psnr
            reward[env_id] = quality * self.reward_scale
            excess = self._spent[env_id] - self._budget[env_id]
            if self.cost == "running":
                flags[env_id, 0] = excess <= 0
            if self.elapsed_steps[env_id] == length:  # the clip's last frame: judge the budget
                ended[env_id] = terminal[env_id] = True
                flags[env_id, 0] = excess <= 0
                overshoot[env_id] = max(0.0, excess)
        ids = np.arange(n)
        return (self._observe(ids), reward, ended,
                self._info(ids, flags, overshoot, qp_used, psnr, ssim, terminal))

    def _info(self, ids: np.ndarray, flags: np.ndarray, overshoot: np.ndarray,
              qp: np.ndarray, psnr: np.ndarray, ssim: np.ndarray, terminal: np.ndarray) -> dict:
        budget = self._budget[ids]
        # 0 for an env never reset (no budget yet)
        left = np.divide(budget - self._spent[ids], budget, out=np.zeros(len(ids)),
                         where=budget > 0)
        quality = {"qp": qp, "psnr": psnr, "ssim": ssim} if self.reward == "ssim" else \
            {"qp": qp, "psnr": psnr}
        return {"constraints": flags, "cost": flags.shape[1] - flags.sum(axis=1, dtype=np.float64),
                "budget": {"bits": self._spent[ids].copy(), "budget": budget.copy(),
                           "overshoot": overshoot, **quality, "clip": self._clip[ids].copy()},
                "safety_vars": {"budget_left": left},
                "diverged": np.zeros(len(ids), bool), "terminated": terminal}

    def _observe(self, ids: np.ndarray) -> np.ndarray:
        """Return the (len(ids), D) observations of envs ``ids`` at their current frame."""
        obs = np.zeros((len(ids), self.layout.size))
        for row, env_id in enumerate(ids):
            if self._clip[env_id] >= 0:
                obs[row] = self._observation(int(env_id))
        return obs

    def _observation(self, env_id: int) -> np.ndarray:
        """Return env ``env_id``'s flat observation (the module docstring's entries)."""
        clip = self.clips[self._clip[env_id]]
        features, remaining = self.features(int(self._clip[env_id]))
        table, length = features.table, clip.num_frames
        t = int(self.elapsed_steps[env_id])
        budget, spent = self._budget[env_id], self._spent[env_id]
        upcoming = np.zeros((self.lookahead + 1, table.shape[1]))
        shown = table[t:t + self.lookahead + 1]
        upcoming[:len(shown)] = shown
        present = np.arange(t + 1, t + 1 + self.lookahead) < length
        left = budget - spent
        started = t > 0
        qp, bits, psnr = self._previous[env_id]
        scalars = [left / budget, (length - t) / length,
                   left / remaining[t] if t < length else 0.0,
                   scaled_log_bpp(budget / (length * clip.width * clip.height)),
                   qp / QP_MAX if started else 0.0,
                   bits / (budget / length) if started else 0.0,
                   (psnr - PSNR_CENTRE) / PSNR_SCALE if started else 0.0]
        return np.concatenate([upcoming.ravel(), present, scalars])

    # -- snapshots ---------------------------------------------------------------------
    def env_state(self) -> EnvState:
        """Return copies of everything the next step depends on, as 'video/...' arrays.

        Identities (checked, not written): 'video/clips' (the clip names) and
        'video/settings' (reward, preset, reference QP, keyint, targets). State:
        'video/clip' (N,) (-1: never reset), 'video/budget' and 'video/bits'
        (N,) (bits spent: checked against the re-encode), 'video/elapsed_steps',
        'video/qps' (N, time_limit) (the QPs coded, -1 after), and the seeds and
        generators (``rwrl.core.seeding``).
        """
        state = {
            "clips": np.array([clip.name for clip in self.clips]),
            "settings": np.array([f"reward={self.reward}", f"preset={self.preset}",
                                  f"reference_qp={self.reference_qp}", f"keyint={self.keyint}",
                                  f"target_kbps={self.target_kbps}",
                                  f"target_qps={self.target_qps}"]),
            "clip": self._clip.copy(), "budget": self._budget.copy(),
            "bits": self._spent.copy(), "elapsed_steps": self.elapsed_steps.copy(),
            "qps": self._qps.copy(), "seeds": seeds_array(self._seeds),
            "rngs": generators_array(self._rngs)}
        return {f"video/{key}": value for key, value in state.items()}

    def restore_env_state(self, state: EnvState) -> None:
        """Put every env where ``env_state()`` saw it, coding its QPs again into fresh encoders.

        Raises a ValueError naming the first missing, extra, mis-shaped or
        out-of-range key (or a re-encode that does not give the saved bits)
        before anything changes.
        """
        check_env_state(self.env_state(), state, _SAME)
        given = {key[len("video/"):]: np.array(value) for key, value in state.items()}
        self._check_values(given)
        saved = self._save()
        try:
            for env_id in range(self.num_envs):
                self._replay(env_id, given)
        except BaseException:
            self._load(saved)  # nothing of a failed restore stays
            raise
        for encoder in saved["encoders"]:
            if encoder is not None and encoder not in self._encoders:
                encoder.close()
        self._seeds = seeds_from_array(given["seeds"])
        self._rngs = generators_from_array(given["rngs"])

    def _check_values(self, given: dict[str, np.ndarray]) -> None:
        """Raise a ValueError naming the first snapshot value out of its range."""
        for env_id in range(self.num_envs):
            clip_index = int(given["clip"][env_id])
            if not -1 <= clip_index < len(self.clips):
                raise ValueError(f"env state 'video/clip' (env {env_id}) = {clip_index}: allowed "
                                 f"[-1, {len(self.clips)})")
            length = self.clips[clip_index].num_frames if clip_index >= 0 else 0
            elapsed = int(given["elapsed_steps"][env_id])
            if not 0 <= elapsed <= length:
                raise ValueError(f"env state 'video/elapsed_steps' (env {env_id}) = {elapsed}: "
                                 f"allowed [0, {length}] (its clip's length)")
            qps = given["qps"][env_id]
            if ((qps[:elapsed] < QP_MIN) | (qps[:elapsed] > QP_MAX)).any() \
                    or (qps[elapsed:] != -1).any():
                raise ValueError(f"env state 'video/qps' (env {env_id}): allowed QPs in "
                                 f"[{QP_MIN}, {QP_MAX}] for the {elapsed} frames coded, -1 after")
            budget = float(given["budget"][env_id])
            if clip_index >= 0 and not (math.isfinite(budget) and budget > 0):
                raise ValueError(f"env state 'video/budget' (env {env_id}) = {budget}: allowed "
                                 f"a positive number of bits")

    def _replay(self, env_id: int, given: dict[str, np.ndarray]) -> None:
        """Start env ``env_id`` on the snapshot's clip and budget and code its saved QPs."""
        clip_index = int(given["clip"][env_id])
        self._encoders[env_id] = None  # the old encoder is the caller's to close or put back
        if clip_index < 0:
            self._clip[env_id] = -1
            self._budget[env_id] = self._spent[env_id] = 0.0
            self._qps[env_id] = -1
            self._previous[env_id] = 0.0
            self.elapsed_steps[env_id] = 0
            return
        self._start(env_id, clip_index, float(given["budget"][env_id]),
                    self._open_encoder(clip_index))
        for qp in given["qps"][env_id][:int(given["elapsed_steps"][env_id])]:
            self._code(env_id, int(qp))
        if self._spent[env_id] != given["bits"][env_id]:
            raise ValueError(f"env state 'video/bits' (env {env_id}) = {given['bits'][env_id]}: "
                             f"coding its QPs again gives {self._spent[env_id]} (another clip "
                             f"content or encoder build)")

    def _save(self) -> dict:
        return {"encoders": list(self._encoders), "clip": self._clip.copy(),
                "budget": self._budget.copy(), "spent": self._spent.copy(),
                "qps": self._qps.copy(), "previous": self._previous.copy(),
                "elapsed": self.elapsed_steps.copy()}

    def _load(self, saved: dict) -> None:
        for encoder in self._encoders:
            if encoder is not None and encoder not in saved["encoders"]:
                encoder.close()
        self._encoders = saved["encoders"]
        self._clip, self._budget, self._spent = saved["clip"], saved["budget"], saved["spent"]
        self._qps, self._previous = saved["qps"], saved["previous"]
        self.elapsed_steps[...] = saved["elapsed"]

    def close(self) -> None:
        """Free every env's encoder."""
        for encoder in self._encoders:
            if encoder is not None:
                encoder.close()
        self._encoders = [None] * self.num_envs


__all__ = ["COSTS", "DEFAULT_TARGET_QPS", "PRESETS", "REWARDS", "RateControlEnv", "check_options",
           "observation_layout"]
