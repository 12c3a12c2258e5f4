"""Training–inference mismatch: how far the rollout engine's logprobs are from the learner's on the same tokens.

The rollout engine (vLLM) returns the logprob of every token it sampled; the learner recomputes the same
tokens' logprobs ("old" logprobs) before the update. In exact arithmetic with the same weights they are equal;
kernels, dtypes and batch shapes make them differ, and that gap biases a PPO ratio built on either side.

Both sides must describe the same distribution: the engine returns raw-model logprobs
(``logprobs_mode="raw_logprobs"``, before temperature, top-k/top-p) and the learner scores at temperature 1,
so this compares the model's own distribution whatever the sampling temperature.
"""

from __future__ import annotations

import torch
from torch import Tensor

from rlvr.algo.kl import kl_k3


def logprob_mismatch(rollout_BT: Tensor, learner_BT: Tensor, mask_BT: Tensor) -> dict[str, float]:
    """Mismatch metrics over the response tokens selected by ``mask_BT``.

    Args:
        rollout_BT: [B, T] logprobs of the sampled tokens as the rollout engine reported them.
        learner_BT: [B, T] the learner's logprobs of the same tokens.
        mask_BT: [B, T] 1 on response tokens, 0 on padding.

    Returns:
        ``mismatch/logprob_abs_mean`` and ``mismatch/logprob_abs_max``: mean and max |rollout - learner|;
        ``mismatch/kl_k3``: the k3 estimate of KL(rollout || learner) (tokens are sampled from the rollout
        side: ``exp(d) - d - 1`` with ``d = learner - rollout``), averaged over tokens. All 0 without tokens.
    """
    mask = mask_BT.to(torch.bool)
    if not bool(mask.any()):
        return {"mismatch/logprob_abs_mean": 0.0, "mismatch/logprob_abs_max": 0.0, "mismatch/kl_k3": 0.0}
    rollout = rollout_BT.to(torch.float64)[mask]
    learner = learner_BT.to(torch.float64)[mask]
    delta = (rollout - learner).abs()
    return {
        "mismatch/logprob_abs_mean": float(delta.mean()),
        "mismatch/logprob_abs_max": float(delta.max()),
        "mismatch/kl_k3": float(kl_k3(rollout, learner).mean()),
    }
