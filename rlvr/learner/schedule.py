"""Learning-rate schedules as multipliers of the peak lr (pure python; wrapped in torch's LambdaLR)."""

from __future__ import annotations

import math
from collections.abc import Callable

ScheduleFn = Callable[[int, int, int, float], float]


def _constant(step: int, warmup: int, total: int, min_ratio: float) -> float:
    return 1.0


def _linear(step: int, warmup: int, total: int, min_ratio: float) -> float:
    frac = min(1.0, max(0, step - warmup) / max(1, total - warmup))
    return 1.0 - (1.0 - min_ratio) * frac


def _cosine(step: int, warmup: int, total: int, min_ratio: float) -> float:
    frac = min(1.0, max(0, step - warmup) / max(1, total - warmup))
    return min_ratio + (1.0 - min_ratio) * 0.5 * (1.0 + math.cos(math.pi * frac))


SCHEDULES: dict[str, ScheduleFn] = {"constant": _constant, "linear": _linear, "cosine": _cosine}


def lr_multiplier(
    name: str, step: int, *, warmup_steps: int, total_steps: int, min_lr_ratio: float = 0.0
) -> float:
    """Multiplier of the peak lr for optimizer step ``step`` (0-based: the lr used by update ``step+1``).

    Warm-up is linear from ``1/(warmup_steps+1)`` to 1 over ``warmup_steps`` steps; decay then spans
    ``warmup_steps..total_steps`` and holds at ``min_lr_ratio`` afterwards.

    Args:
        name: "constant", "linear" or "cosine".
        step: Optimizer steps already taken.
        warmup_steps: Warm-up length in optimizer steps.
        total_steps: Step at which the decay ends.
        min_lr_ratio: Final multiplier of the decaying schedules.

    Returns:
        A float in ``(0, 1]`` (or ``min_lr_ratio`` at the end of a decay).
    """
    if name not in SCHEDULES:
        raise KeyError(f"unknown lr schedule {name!r}; registered: {sorted(SCHEDULES)}")
    if step < warmup_steps:
        return (step + 1) / (warmup_steps + 1)
    return SCHEDULES[name](step, warmup_steps, total_steps, min_lr_ratio)
