"""The evolution-strategies teacher: per clip and budget, search the QP of every frame.

Mao et al. (2020, arXiv 2012.05339) train their rate-control policy by imitating
"optimal video encoding trajectories obtained through evolution strategies", one
search per video. Their objective, search space and ES settings are not in the
text available to this project (``shared/papers/PAPERS.md``, section 3), so the
choices below are this module's, each with its reason:

* Optimiser: CMA-ES (Hansen and Ostermeier 2001) from Hansen's ``cma`` package,
  the standard ES for a few dozen continuous dimensions. Its samples are drawn
  from a ``numpy.random.Generator`` seeded by ``seed`` (cma's ``randn`` option),
  never from the global ``np.random``, so one seed gives one search. cma's own
  integer handling (``integer_variables``) draws from the global generator, so
  it is not used: candidates are rounded instead (next point).
* Search space: QP offsets around the constant-QP baseline's QP (the lowest
  constant QP within budget, ``baselines.constant_qp_for_budget``), which is
  the ES's start point (mean 0). Frame 0 (the IDR frame, which every later
  frame predicts from) gets its own offset; the other frames share one offset
  per group of ``group_size`` consecutive frames: dimension
  1 + ceil((T - 1) / group_size). Fewer dimensions converge in fewer
  generations (CMA-ES needs O(dimension) generations to learn a scale), and
  neighbouring frames of one shot want nearly the same QP; ``group_size=1`` is
  per-frame control. A candidate's QP of frame t is base + offset rounded to
  the nearest integer and clipped to [QP_MIN, QP_MAX].
* Fitness (maximised): mean luma PSNR over the frames (dB; the mean of the
  per-frame PSNRs, libvpx's "Avg PSNR", not the PSNR of the mean squared
  error, so a cheap near-lossless static stretch counts a lot) minus
  ``penalty * max(0, bits / budget - 1)``: with the default 100, each 1 % of
  overshoot costs 1 dB, about what the search gains over the baseline on most
  clips measured, so candidates a few percent over rank below the feasible
  ones and the search stays near the budget's edge (a soft penalty rather
  than rejection keeps a ranking among infeasible candidates). The penalty
  only ranks candidates for CMA-ES (which uses ranks); what is returned is the
  best *feasible* candidate (highest mean PSNR with bits <= budget), the
  baseline included, so when the baseline fits the teacher is never worse.
* Every candidate is encoded by the real encoder (``encode_frames``); a QP
  sequence seen before is looked up, not encoded again (rounding makes repeats
  common once the search narrows).
* Budget of the search: ``population x generations`` candidates. The defaults
  (10 x 20 = 200, groups of 8 frames: 9 dimensions for 60 frames) take 4 to 10 s
  per 60-frame 176 x 144 clip on this project's 2 shared cores (an encode
  is 0.03-0.05 s at mid QPs). Measured on three such synthetic clips, mean PSNR
  over the constant-QP baseline: +6.63, +0.54, +0.21 dB at the defaults;
  +7.07, +0.57, +0.30 dB at 10 x 50 (17 s); groups of 4 at 12 x 25 gave less
  (+6.66, +0.53, +0.19 dB, 14 s) and groups of 2 less again: the gain per
  evaluation is best with few dimensions. On three clips of ``rwrl.video.corpus``
  (procedural 0, 3, 5: pan, noise, shapes) at four budgets each (0.5 to 2 times
  the bits of constant QP 30): +0.16 to +0.40, +0.09 to +0.51 and +0.65 to
  +1.79 dB, and x264's two-pass (``baselines.two_pass``) below the teacher at
  every budget.

Example::

    result = es_teacher(frames, budget_bits=200_000, seed=0)
    result.qps, result.mean_psnr, result.total_bits <= 200_000, result.history
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from rwrl.video.baselines import CodedClip, ConstantQp, check_budget, check_frames, constant_qp_for_budget
from rwrl.video.x264 import QP_MAX, QP_MIN, FrameResult, Frames, encode_frames

#: dB of fitness lost per unit of relative overshoot (bits / budget - 1): 1 dB per 1 %.
DEFAULT_PENALTY = 100.0


@dataclasses.dataclass(frozen=True)
class TeacherResult(CodedClip):
    """The teacher's QP sequence for one clip and budget, and how the search went."""

    #: one QP per frame: the best feasible candidate (the baseline's if none beat it).
    qps: tuple[int, ...]
    #: one result per frame at ``qps``.
    results: list[FrameResult]
    #: False only when no candidate fitted the budget (even QP_MAX overshoots):
    #: ``qps`` is then the candidate with the best fitness.
    feasible: bool
    #: the constant-QP baseline the search started from.
    baseline: ConstantQp
    #: best fitness (dB) found so far: entry 0 the baseline, then one entry per generation.
    history: tuple[float, ...]
    #: candidates evaluated (population x generations) and distinct encodes among them.
    evaluations: int
    encodes: int


def es_teacher(frames: Frames, budget_bits: float, *, population: int = 10,
               generations: int = 20, group_size: int = 8, sigma0: float = 2.0,
               penalty: float = DEFAULT_PENALTY, seed: int = 0, fps: int = 30,
               preset: str = "veryfast", keyint: int = 250) -> TeacherResult:
    """Search per-frame QPs that maximise mean PSNR within ``budget_bits`` by CMA-ES.

    Args:
      frames: the clip, a sequence of (y, u, v) uint8 planes.
      budget_bits: the most bits the whole clip may take (> 0).
      population: candidates per generation (>= 2).
      generations: CMA-ES generations (>= 1).
      group_size: consecutive frames after the first that share one QP offset (>= 1).
      sigma0: initial step size of the offsets, in QP units (> 0).
      penalty: dB of fitness per unit of relative overshoot (>= 0).
      seed: seeds the search's generator.
      fps, preset, keyint: the encoder's settings (``encode_frames``).

    Returns:
      A TeacherResult (module docstring: what it holds and why).
    """
    import cma  # imported here: only the teacher needs it

    budget = check_budget(budget_bits)
    check_frames(frames)
    _check_search(population, generations, group_size, sigma0, penalty)
    settings = dict(fps=fps, preset=preset, keyint=keyint)
    baseline = constant_qp_for_budget(frames, budget, **settings)
    groups = _frame_groups(len(frames), group_size)
    cache: dict[tuple[int, ...], tuple[float, float, list[FrameResult]]] = {}

    def evaluate(qps: tuple[int, ...]) -> tuple[float, float, list[FrameResult]]:
        """Return (fitness, mean PSNR, results) of one QP sequence, encoding it if new."""
        if qps not in cache:
            results = encode_frames(frames, qps, **settings)
            bits = sum(r.bits for r in results)
            mean_psnr = sum(r.psnr for r in results) / len(results)
            cache[qps] = (mean_psnr - penalty * max(0.0, bits / budget - 1.0), mean_psnr, results)
        return cache[qps]

    base_qps = (baseline.qp,) * len(frames)
    cache[base_qps] = (baseline.mean_psnr
                       - penalty * max(0.0, baseline.total_bits / budget - 1.0),
                       baseline.mean_psnr, baseline.results)
    rng = np.random.default_rng(seed)
    # the loop runs `generations` generations whatever cma's stopping rules say
    options = {"popsize": population, "seed": math.nan,
               "randn": lambda rows, cols: rng.standard_normal((rows, cols)),
               "verbose": -9, "verb_log": 0, "verb_disp": 0}
    es = cma.CMAEvolutionStrategy(np.zeros(groups.max() + 1), sigma0, options)
    history = [cache[base_qps][0]]
    for _ in range(generations):
        offsets = es.ask()
        candidates = [_qps(baseline.qp, x, groups) for x in offsets]
        es.tell(offsets, [-evaluate(qps)[0] for qps in candidates])
        history.append(max(history[-1], max(cache[qps][0] for qps in candidates)))
    return _best(cache, budget, baseline, history, population * generations)


def _check_search(population: int, generations: int, group_size: int, sigma0: float,
                  penalty: float) -> None:
    """Raise a ValueError naming the first search setting out of its range."""
    for name, value, low in (("population", population, 2), ("generations", generations, 1),
                             ("group_size", group_size, 1)):
        if isinstance(value, bool) or int(value) != value or value < low:
            raise ValueError(f"{name} {value!r} is not allowed: an integer >= {low}")
    if not math.isfinite(sigma0) or not sigma0 > 0:
        raise ValueError(f"sigma0 {sigma0!r} is not allowed: a positive number of QP steps")
    if not math.isfinite(penalty) or penalty < 0:
        raise ValueError(f"penalty {penalty!r} is not allowed: a number >= 0 (dB per overshoot)")


def _frame_groups(num_frames: int, group_size: int) -> np.ndarray:
    """Return the offset index of every frame: frame 0 alone, then groups of ``group_size``."""
    index = np.zeros(num_frames, dtype=np.int64)
    index[1:] = 1 + np.arange(num_frames - 1) // int(group_size)
    return index


def _qps(base_qp: int, offsets: np.ndarray, groups: np.ndarray) -> tuple[int, ...]:
    """Return the QP sequence of one candidate: base + its group's offset, rounded, clipped."""
    qps = np.clip(np.rint(base_qp + np.asarray(offsets)[groups]), QP_MIN, QP_MAX)
    return tuple(int(q) for q in qps)


def _best(cache: dict, budget: float, baseline: ConstantQp, history: list[float],
          evaluations: int) -> TeacherResult:
    """Return the best feasible candidate seen (or the fittest one if none fits)."""
    def bits(qps):
        return sum(r.bits for r in cache[qps][2])

    feasible = [qps for qps in cache if bits(qps) <= budget]
    # ties in PSNR go to fewer bits, then to the lexicographically smallest QPs: deterministic
    if feasible:
        best = max(feasible, key=lambda qps: (cache[qps][1], -bits(qps), tuple(-q for q in qps)))
    else:
        best = max(cache, key=lambda qps: (cache[qps][0], tuple(-q for q in qps)))
    return TeacherResult(qps=best, results=cache[best][2], feasible=bool(feasible),
                         baseline=baseline, history=tuple(history), evaluations=evaluations,
                         encodes=len(cache) - 1 + baseline.encodes)
