"""The Ray actor that owns one rollout engine.

The class is plain Python; ``RolloutGroup`` wraps it with ``ray.remote`` when it places workers, so it can also
be constructed directly in a test or a single-process script.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from typing import Any

from rlvr.config.rollout import RolloutConfig
from rlvr.registry import import_plugins
from rlvr.rollout.engine import Completion, RolloutEngine, layer_of

# Scale of the noise `corrupt_one_tensor` adds; far above any sync tolerance, far below anything that makes NaNs.
_CORRUPTION_SCALE = 0.05


def corrupt_one_tensor(named_tensors: list[tuple[str, Any]]) -> tuple[list[tuple[str, Any]], str]:
    """Return a copy of ``named_tensors`` with noise added to one decoder-layer matrix (sync fault injection).

    Used by tests, which push the result into one worker, to prove ``verify_sync`` catches a bad push.
    """
    import torch

    candidates = [i for i, (n, t) in enumerate(named_tensors) if layer_of(n) is not None and t.dim() == 2]
    index = candidates[0] if candidates else 0
    name, tensor = named_tensors[index]
    generator = torch.Generator().manual_seed(0)
    noisy = tensor.detach().clone()
    noisy += _CORRUPTION_SCALE * torch.randn(noisy.shape, generator=generator, dtype=noisy.dtype)
    out = list(named_tensors)
    out[index] = (name, noisy)
    return out, name


class RolloutWorker:
    """One rollout engine behind an actor boundary.

    Args:
        rank: Index of this worker in its group (used in error messages and seeds).
        model_path: HF-format model directory visible to this node.
        config: The recipe's rollout section.
        seed: Engine seed.
        device: "cpu" or "cuda".
        dtype: Engine dtype (the resolved ``model.dtype``); None = the engine's device default.
        plugins: The recipe's plugins (absolute specs), imported before the engine starts.
    """

    def __init__(
        self,
        rank: int,
        model_path: str,
        config: RolloutConfig,
        seed: int,
        device: str,
        dtype: str | None = None,
        plugins: Iterable[str] = (),
    ) -> None:
        import_plugins(plugins)
        self.rank = rank
        self.engine = RolloutEngine(model_path, config, seed=seed, device=device, dtype=dtype)

    def ready(self) -> dict[str, Any]:
        """Return ``health()``; the group calls it once with a deadline after creating the actor."""
        return self.health()

    def health(self) -> dict[str, Any]:
        """Engine status plus this worker's rank."""
        return {"rank": self.rank, **self.engine.health()}

    def generate(self, prompt_token_ids: list[list[int]], **kwargs: Any) -> list[list[Completion]]:
        """See ``RolloutEngine.generate``."""
        return self.engine.generate(prompt_token_ids, **kwargs)

    def score(self, prompt_ids: list[list[int]], response_ids: list[list[int]]) -> list[list[float]]:
        """See ``RolloutEngine.score``."""
        return self.engine.score(prompt_ids, response_ids)

    def update_weights(
        self,
        named_tensors: Iterable[tuple[str, Any]],
        *,
        max_chunk_bytes: int | None = None,
    ) -> dict[str, Any]:
        """Load pushed weights. Ray resolves an ObjectRef argument before this runs (zero-copy on one node).

        Args:
            named_tensors: (hf_name, tensor) pairs.
            max_chunk_bytes: Passed to ``RolloutEngine.update_weights``.

        Returns:
            The engine's ``UpdateStats`` as a dict, plus ``rank`` and ``pid``.
        """
        stats = self.engine.update_weights(named_tensors, max_chunk_bytes=max_chunk_bytes)
        return {**stats.__dict__, "rank": self.rank, "pid": os.getpid()}

    def join_weight_group(
        self, host: str, port: int, rank_offset: int, world_size: int, timeout_s: float
    ) -> list[int]:
        """Join the collective weight group (every engine worker); see ``RolloutEngine.join_weight_group``."""
        import ray

        local_address = ray.util.get_node_ip_address()  # where this node's engine workers listen
        return self.engine.join_weight_group(host, port, rank_offset, world_size, timeout_s, local_address)

    def receive_weights(self) -> dict[str, Any]:
        """Receive one collective push; the engine's ``UpdateStats`` as a dict, plus ``rank`` and ``pid``."""
        stats = self.engine.receive_weights()
        return {**stats.__dict__, "rank": self.rank, "pid": os.getpid()}

    def leave_weight_group(self) -> None:
        """See ``RolloutEngine.leave_weight_group``."""
        self.engine.leave_weight_group()

    def sleep(self) -> None:
        """See ``RolloutEngine.sleep``."""
        self.engine.sleep()

    def wake_up(self) -> None:
        """See ``RolloutEngine.wake_up``."""
        self.engine.wake_up()
