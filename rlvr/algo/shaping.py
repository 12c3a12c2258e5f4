"""Reward shaping and group filters (pipeline stages A and B): DAPO overlong penalty, format penalty,
DAPO dynamic sampling. See docs/algorithms.md, "Reward shaping and group filters".
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import Tensor

from rlvr.algo.groups import Groups


def overlong_penalty(lengths_B: Tensor, *, max_tokens: int, cache_tokens: int, factor: float = 1.0) -> Tensor:
    """DAPO soft overlong punishment, eq. 13 (arXiv 2503.14476), scaled by `factor` (verl).

    0 while |y| <= L_max - L_cache, then a linear ramp ((L_max - L_cache) - |y|) / L_cache down to -1 at L_max,
    and -1 beyond. Added to the correctness reward: a correct answer of 18432 tokens with L_max 20480 and
    L_cache 4096 scores 0.5.
    """
    if not 0 < cache_tokens <= max_tokens:
        raise ValueError(f"need 0 < cache_tokens <= max_tokens, got {cache_tokens} and {max_tokens}")
    lengths = lengths_B.to(torch.float64) if not lengths_B.is_floating_point() else lengths_B
    ramp = ((max_tokens - cache_tokens) - lengths) / cache_tokens
    penalty = torch.clamp(ramp, min=-1.0, max=0.0)
    return (penalty * factor).to(lengths.dtype)


def format_penalty(rewards_B: Tensor, format_ok_B: Tensor, *, penalty: float) -> Tensor:
    """Subtract `penalty` from responses whose format check failed (e.g. no `</think>` or no `\\boxed{}`)."""
    return rewards_B - penalty * (~format_ok_B.bool()).to(rewards_B.dtype)


def dynamic_sampling_keep(
    metric_B: Tensor,
    group_ids_B: Tensor,
    *,
    mode: Literal["drop_uniform", "keep_all_wrong"] = "drop_uniform",
    correct_B: Tensor | None = None,
) -> Tensor:
    """[B] bool keep mask of DAPO dynamic sampling (verl `dapo_ray_trainer`).

    A group is kept when its metric (use accuracy, not the shaped score) has non-zero spread or it has a
    single response. "keep_all_wrong" also keeps groups where no response is correct, which LENS and
    W-REINFORCE learn from.

    Args:
        metric_B: per-response metric, normally `correct_B.float()`.
        group_ids_B: prompt id per response.
        mode: "drop_uniform" or "keep_all_wrong".
        correct_B: verdicts; required by "keep_all_wrong".
    """
    groups = Groups.from_ids(group_ids_B)
    metric = metric_B.to(torch.float64)
    spread = groups.amax(metric) > -groups.amax(-metric)
    keep_q = spread | (groups.counts == 1)
    if mode == "keep_all_wrong":
        if correct_B is None:
            raise ValueError("dynamic sampling mode 'keep_all_wrong' needs correct_B")
        keep_q = keep_q | (groups.sum(correct_B.bool().to(torch.float64)) == 0)
    elif mode != "drop_uniform":
        raise ValueError(f"dynamic sampling mode must be 'drop_uniform' or 'keep_all_wrong', got {mode!r}")
    return groups.broadcast(keep_q)
