"""Rollout: the vLLM engine wrapper (generate with raw logprobs, score, live weight updates, sleep/wake).

Importing this package does not import vLLM; constructing a ``RolloutEngine`` does.
"""

from rlvr.rollout.engine import Completion, RolloutEngine, UpdateStats, chunk_by_layer

__all__ = ["Completion", "RolloutEngine", "UpdateStats", "chunk_by_layer"]
