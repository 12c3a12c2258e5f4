"""A user's plugin file: an estimator, a loss modifier and a reward, registered by decorator.

A recipe lists this file under `plugins:` and names the three by registry name; `rlvr train` imports it in the
driver and in every learner and rollout actor. The modifier leaves the loss unchanged and logs
`mine/touched: 1.0`, so the run's metrics.jsonl shows it ran inside the learner actors.
"""

from __future__ import annotations

import dataclasses

from rlvr.algo import register_estimator, register_loss_modifier
from rlvr.reward import register_reward


@register_estimator("mine_centered")
def mine_centered(inp, *, scale: float = 1.0):
    """Reward minus its group mean, times `scale` (no std division)."""
    groups = inp.groups
    adv = inp.rewards_B - groups.broadcast(groups.mean(inp.rewards_B))
    return inp.broadcast(adv * scale)


@register_loss_modifier("mine_touch")
def mine_touch(inputs, term, *, generator=None, value: float = 1.0):
    """Leaves the per-token loss as it is and records that it ran."""
    return dataclasses.replace(term, metrics={**term.metrics, "mine/touched": value})


@register_reward("mine_digits")
def mine_digits(completion, *, answer, **row):
    """Fraction of characters that are digits: a dense, non-uniform signal for a random model."""
    return sum(ch.isdigit() for ch in completion) / max(len(completion), 1)
