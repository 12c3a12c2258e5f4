"""Reward machinery: registry of reward functions, the sandboxed verifier pool, and the scorer.

The reward functions themselves live in the top-level `rewards` package. Nothing here imports torch.
"""

from rlvr.reward.registry import list_rewards, register_reward, resolve_reward
from rlvr.reward.types import RewardError, RewardResult

__all__ = ["RewardError", "RewardResult", "list_rewards", "register_reward", "resolve_reward"]
