"""The typed tensor contract between the learner and the algorithm library.

Shapes: B = responses in the (micro-)batch, T = padded response width. Optional fields are None when the
chosen algorithm does not need them; the function that needs one raises a ValueError naming it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import Tensor


@dataclass
class LossInputs:
    """Everything a policy loss may read.

    Attributes:
        logprobs: [B,T] current-policy token log-probs (carries gradient).
        old_logprobs: [B,T] behaviour-policy log-probs (no gradient).
        advantages: [B,T] per-token advantages (from `compute_advantages`); unused by DRPO.
        response_mask: [B,T] 1 on real response tokens.
        ref_logprobs: [B,T] frozen reference-policy log-probs (KL-to-reference only).
        entropy: [B,T] full-vocabulary entropy, current policy (ERC, entropy bonus).
        old_entropy: [B,T] full-vocabulary entropy under the behaviour policy (ERC).
        group_ids: [B] prompt id per response (DRPO).
        lengths: [B] response lengths, informational for custom losses (built-ins use `response_mask`).
        correct: [B] bool verifier verdict (DRPO, positive-NLL term).
        rewards: [B] shaped scalar rewards (DRPO falls back to them when `correct` is None).
        group_size: responses per prompt, when known (DRPO checks that groups are whole).
    """

    logprobs: Tensor
    old_logprobs: Tensor
    response_mask: Tensor
    advantages: Tensor | None = None
    ref_logprobs: Tensor | None = None
    entropy: Tensor | None = None
    old_entropy: Tensor | None = None
    group_ids: Tensor | None = None
    lengths: Tensor | None = None
    correct: Tensor | None = None
    rewards: Tensor | None = None
    group_size: int | None = None

    def require(self, *names: str, by: str) -> None:
        """Raise a ValueError naming every field in `names` that is None."""
        missing = [n for n in names if getattr(self, n) is None]
        if missing:
            raise ValueError(f"{by} needs LossInputs.{', LossInputs.'.join(missing)}; got None")

    @property
    def mask(self) -> Tensor:
        """Response mask in the dtype of `logprobs`."""
        return self.response_mask.to(self.logprobs.dtype)


@dataclass
class PolicyTerm:
    """What a registered policy loss returns.

    Attributes:
        loss_BT: per-token loss, aggregated later by the spec's aggregation.
        clipped_BT: bool, tokens whose gradient the loss's own clip already removes (Clip-Cov skips them).
        metrics: scalars to log.
        aggregation: an aggregation the method forces whatever the spec says (GSPO), or None.
    """

    loss_BT: Tensor
    clipped_BT: Tensor | None = None
    metrics: dict[str, float | Tensor] = field(default_factory=dict)
    aggregation: str | None = None


@dataclass
class LossOutputs:
    """Result of `compute_policy_loss`.

    Attributes:
        loss: scalar to call `.backward()` on.
        metrics: detached scalars (floats or 0-d tensors), e.g. clip fractions, ERC kept fraction, KL, entropy.
    """

    loss: Tensor
    metrics: dict[str, float | Tensor] = field(default_factory=dict)


def masked_sum(x: Tensor, mask: Tensor) -> Tensor:
    """Sum of `x` over positions where `mask` is 1; NaNs/infs outside the mask are ignored."""
    return torch.where(mask.bool(), x, torch.zeros_like(x)).sum()


def masked_mean(x: Tensor, mask: Tensor) -> Tensor:
    """Mean of `x` over the mask; 0 when the mask is empty."""
    return masked_sum(x, mask) / mask.sum().clamp(min=1)
