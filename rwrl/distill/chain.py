"""A chain of policy distillations: teacher -> assistant ... -> student (TAKD's ladder, for policies).

``sizes = (256, 64, 16)`` distils the teacher into a 256-wide policy, that
one into a 64-wide one, that into a 16-wide one; ``(16,)`` is direct. A
width ``w`` keeps the teacher's depth with every hidden layer ``w`` wide.
Widths must not grow along the chain (each link at most as wide as the widest
layer of the one before). Each link is written to ``OUT/student-<k>-<w>/`` as
an ``rwrl run`` directory (``rwrl.distill.runs``) and measured against the
original teacher: the action error on held-out teacher states (episodes of
their own seeds; for a Gaussian teacher, between the acted actions, the clipped
means) and the return over a few evaluation episodes, through ``load_policy``
as any other policy is evaluated.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np

from rwrl.distill.policy import Env, FitSettings, StateSettings, distil
from rwrl.distill.runs import DistillError, PolicyRun, load_teacher, new_student, with_policy_params, write_student


def parse_sizes(text: str) -> tuple[int, ...]:
    """Return the widths of ``"256,64,16"``; an empty or non-integer list is a DistillError."""
    parts = [p.strip() for p in text.split(",") if p.strip()]
    if not parts:
        raise DistillError(f"sizes {text!r} is empty: give widths such as 64,16")
    try:
        sizes = tuple(int(p) for p in parts)
    except ValueError:
        raise DistillError(f"sizes {text!r}: each must be an integer >= 1, e.g. 64,16") from None
    if min(sizes) < 1:
        raise DistillError(f"sizes {text!r}: each must be an integer >= 1, e.g. 64,16")
    return sizes


def check_chain(teacher_sizes: tuple[int, ...], sizes: tuple[int, ...]) -> None:
    """Raise a one-line DistillError unless ``sizes`` is non-empty and never wider than the link before."""
    if not sizes:
        raise DistillError("no student size given: give widths such as 64,16")
    previous = max(teacher_sizes)
    for k, width in enumerate(sizes):
        if width > previous:
            before = "the teacher" if k == 0 else f"student {k} ({previous} wide)"
            raise DistillError(f"student {k + 1} of width {width} is wider than {before} "
                               f"(widest layer {previous}): sizes must shrink along the chain")
        previous = width


def distil_chain(path: Path, sizes: tuple[int, ...], out: Path, states: StateSettings = StateSettings(),
                 fitting: FitSettings = FitSettings(), held_out_episodes: int = 2,
                 eval_episodes: int = 4) -> dict[str, Any]:
    """Distil the teacher at ``path`` along ``sizes``; write the students into ``out``; return the report.

    Each row: width, hidden sizes, the directory, its teacher (the previous link's
    directory, or the teacher checkpoint), the held-out action error against the
    original teacher and against its own teacher, its return (mean over
    ``eval_episodes``), distillation seconds (fit and state collection, not evaluation).
    """
    from rwrl.datasets.behaviour_policies import evaluate_policy, load_policy

    teacher = load_teacher(path)
    check_chain(teacher.hidden_sizes, sizes)
    env = Env(teacher.env_id, teacher.env_kwargs, teacher.low, teacher.high, teacher.obs_size)
    held_out = env.states(teacher.unit_policy(), states.seed, "distill-held-out", 0, held_out_episodes)
    original = teacher.unit_policy()(held_out)
    teacher_return = evaluate_policy(load_policy(teacher.checkpoint), env.env_id, env.env_kwargs,
                                     eval_episodes, states.seed)
    rows, link = [], teacher
    for k, width in enumerate(sizes, start=1):
        start = time.perf_counter()
        student = new_student(link, (width,) * len(teacher.hidden_sizes), states.seed + k)
        params, pool = distil(link.network_fn(), student.agent.networks.policy.apply,
                              student.policy_params, env, states, fitting, link.head)
        student = write_student(with_policy_params(student, params), Path(out) / f"student-{k}-{width}")
        seconds = time.perf_counter() - start
        acts = student.unit_policy()(held_out)
        returns = evaluate_policy(load_policy(student.checkpoint), env.env_id, env.env_kwargs,
                                  eval_episodes, states.seed)
        rows.append({"width": width, "hidden_sizes": list(student.hidden_sizes),
                     "directory": str(student.checkpoint.parent.parent), "teacher": _name(link),
                     "action_error": _mse(acts, original),
                     "action_error_to_own_teacher": _mse(acts, link.unit_policy()(held_out)),
                     "return": float(np.mean(returns)), "states": len(pool), "seconds": seconds})
        link = student
    return {"teacher": str(teacher.checkpoint), "teacher_hidden_sizes": list(teacher.hidden_sizes),
            "teacher_return": float(np.mean(teacher_return)), "held_out_states": len(held_out),
            "source": states.source, "loss": teacher.head.name, "students": rows}


def _name(run: PolicyRun) -> str:
    return str(run.checkpoint) if run.config.get("distill") is None else str(run.checkpoint.parent.parent)


def _mse(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.mean(np.square(np.asarray(a) - np.asarray(b))))


def format_table(report: dict[str, Any]) -> str:
    """Return the report as text: the teacher, then one line per student."""
    lines = [f"teacher {report['teacher']} (policy {report['teacher_hidden_sizes']}, return "
             f"{report['teacher_return']:.1f}); states: {report['source']}",
             f"{'width':>6s} {'hidden':>12s} {'act err':>9s} {'return':>8s} {'teacher ret':>11s} "
             f"{'states':>7s} {'seconds':>8s}  from"]
    for r in report["students"]:
        lines.append(f"{r['width']:>6d} {str(r['hidden_sizes']):>12s} {r['action_error']:>9.5f} "
                     f"{r['return']:>8.1f} {report['teacher_return']:>11.1f} {r['states']:>7d} "
                     f"{r['seconds']:>8.1f}  {r['teacher']}")
    return "\n".join(lines)


__all__ = ["check_chain", "distil_chain", "format_table", "parse_sizes"]
