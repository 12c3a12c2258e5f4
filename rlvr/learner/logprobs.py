"""Per-token logprobs and full-vocabulary entropy from logits, in float32 chunks (pure torch).

A ``[N, V]`` float32 copy of the logits for a long batch and a 150 k vocabulary is many GB, so rows
are converted a chunk at a time; only the ``[N]`` results are kept.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch


def compute_token_logprobs_and_entropy(
    logits_NV: torch.Tensor,
    targets_N: torch.Tensor,
    *,
    temperature: float = 1.0,
    chunk_tokens: int = 4096,
    entropy_grad: bool = True,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Log-probability of each target token and the entropy of its predictive distribution.

    Args:
        logits_NV: Next-token logits for N positions (any float dtype).
        targets_N: The token actually observed at each position.
        temperature: Logits are divided by it first, to score tokens exactly as a sampler at this
            temperature produced them.
        chunk_tokens: Rows converted to float32 at a time.
        entropy_grad: If False the entropy is computed without autograd (saves memory when it is
            only a metric).

    Returns:
        ``(logprobs_N, entropy_N)`` in float32; entropy ``H = logZ - sum_v p_v * z_v``.
    """
    if temperature <= 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")
    logprobs, entropies = [], []
    for start in range(0, logits_NV.shape[0], max(1, chunk_tokens)):
        z = logits_NV[start : start + chunk_tokens].float()
        if temperature != 1.0:
            z = z / temperature
        log_z = torch.logsumexp(z, dim=-1)
        tgt = targets_N[start : start + chunk_tokens].unsqueeze(-1)
        logprobs.append(z.gather(-1, tgt).squeeze(-1) - log_z)
        with torch.set_grad_enabled(entropy_grad and torch.is_grad_enabled()):
            probs = torch.softmax(z, dim=-1)
            entropies.append(log_z - (probs * z).sum(-1))
    if not logprobs:
        empty = logits_NV.new_zeros((0,), dtype=torch.float32)
        return empty, empty.clone()
    return torch.cat(logprobs), torch.cat(entropies)


def scatter_to_BT(values_N: torch.Tensor, mask_BT: torch.Tensor) -> torch.Tensor:
    """Place N values at the True positions of a ``[B, T]`` mask; 0 elsewhere (keeps autograd)."""
    out = values_N.new_zeros(mask_BT.shape)
    return out.masked_scatter(mask_BT, values_N)


@dataclass
class TokenOutputs:
    """Per-token outputs aligned with ``input_ids`` (``[B, T]``).

    ``logprobs[b, t] = log p(input_ids[b, t] | input_ids[b, :t])`` and ``entropy[b, t]`` is the
    entropy of that predictive distribution, at positions where ``mask`` is True, and 0 elsewhere.
    Position 0 is never predicted, so it is always False in ``mask``.
    """

    logprobs: torch.Tensor
    entropy: torch.Tensor
    mask: torch.Tensor


def token_outputs(
    model: Any,
    input_ids: torch.Tensor,
    attention_mask: torch.Tensor,
    score_mask: torch.Tensor | None = None,
    *,
    temperature: float = 1.0,
    chunk_tokens: int = 4096,
    entropy_grad: bool = False,
) -> TokenOutputs:
    """Per-token logprobs and entropy of ``input_ids`` under a causal LM (the policy or a reference model).

    Only the positions of ``score_mask`` (default: every real token) are converted to float32, a chunk at a
    time (``compute_token_logprobs_and_entropy``); position ids follow the attention mask. Runs with autograd
    if it is enabled.
    """
    score = (attention_mask if score_mask is None else score_mask).bool() & attention_mask.bool()
    score[:, 0] = False
    position_ids = (attention_mask.long().cumsum(-1) - 1).clamp(min=0)
    logits = model(
        input_ids=input_ids, attention_mask=attention_mask, position_ids=position_ids, use_cache=False
    ).logits
    shifted = score[:, 1:]
    lp_N, ent_N = compute_token_logprobs_and_entropy(
        logits[:, :-1][shifted],
        input_ids[:, 1:][shifted],
        temperature=temperature,
        chunk_tokens=chunk_tokens,
        entropy_grad=entropy_grad,
    )
    zeros = torch.zeros_like(score, dtype=torch.float32)
    return TokenOutputs(
        logprobs=zeros.masked_scatter(score, lp_N), entropy=zeros.masked_scatter(score, ent_N), mask=score
    )
