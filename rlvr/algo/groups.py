"""Vectorised per-group statistics over a flat batch (no Python loop over prompts).

A batch of B responses carries `group_ids_B` (any integer ids, in any order). `Groups` maps them to dense
indices 0..Q-1 once; every statistic is then a scatter/gather over that index.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor


@dataclass(frozen=True)
class Groups:
    """Dense group index of a batch.

    Attributes:
        index: [B] long, dense group index of each response.
        counts: [Q] long, responses per group.
        num_groups: Q.
    """

    index: Tensor
    counts: Tensor
    num_groups: int

    @classmethod
    def from_ids(cls, group_ids_B: Tensor) -> Groups:
        """Build from raw ids; ids need not be contiguous or sorted."""
        if group_ids_B.dim() != 1:
            raise ValueError(f"group_ids must be 1-D [B], got shape {tuple(group_ids_B.shape)}")
        _, index, counts = torch.unique(group_ids_B, return_inverse=True, return_counts=True)
        return cls(index=index, counts=counts, num_groups=int(counts.numel()))

    def sum(self, x_B: Tensor) -> Tensor:
        """[Q] per-group sum."""
        return torch.zeros(self.num_groups, dtype=x_B.dtype, device=x_B.device).index_add_(0, self.index, x_B)

    def mean(self, x_B: Tensor) -> Tensor:
        """[Q] per-group mean."""
        return self.sum(x_B) / self.counts.to(x_B.dtype)

    def amax(self, x_B: Tensor) -> Tensor:
        """[Q] per-group max (-inf for a group with no finite entries)."""
        out = torch.full((self.num_groups,), -torch.inf, dtype=x_B.dtype, device=x_B.device)
        return out.scatter_reduce(0, self.index, x_B, reduce="amax", include_self=True)

    def std(self, x_B: Tensor) -> Tensor:
        """[Q] unbiased (G-1) per-group std; 0 for singleton groups (callers decide what a singleton means)."""
        dev = x_B - self.mean(x_B)[self.index]
        denom = (self.counts - 1).clamp(min=1).to(x_B.dtype)
        return (self.sum(dev * dev) / denom).sqrt()

    def broadcast(self, x_Q: Tensor) -> Tensor:
        """[B] value of each response's group."""
        return x_Q[self.index]

    def sorted_within(self, x_B: Tensor) -> tuple[Tensor, Tensor]:
        """Values sorted inside each group.

        Returns:
            (values sorted by (group, value) as [B], start offset of each group in that order as [Q]).
        """
        order = torch.argsort(x_B, stable=True)
        order = order[torch.argsort(self.index[order], stable=True)]
        starts = torch.cumsum(self.counts, 0) - self.counts
        return x_B[order], starts
