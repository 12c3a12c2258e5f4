"""Deterministic prompt sampling by epoch, with a resumable cursor, and the rollouts' sampling seeds.

The order of epoch ``e`` is a permutation seeded by ``(seed, e)``, so the data order after a resume is
exactly the order an uninterrupted run would have used: the state is just ``(epoch, cursor)``. Sampling
seeds are a function of ``(seed, step, generation round)`` only, for the same reason.
"""

from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass


@dataclass
class SamplerState:
    epoch: int = 0
    cursor: int = 0


class PromptSampler:
    """Hands out `prompts_per_step` row indices per step, crossing epoch boundaries seamlessly."""

    def __init__(self, num_rows: int, prompts_per_step: int, seed: int, shuffle: bool = True):
        if num_rows < 1:
            raise ValueError("the training dataset is empty")
        self.num_rows = num_rows
        self.prompts_per_step = prompts_per_step
        self.seed = seed
        self.shuffle = shuffle
        self.state = SamplerState()
        self._order_epoch = -1
        self._order: list[int] = []

    def _epoch_order(self, epoch: int) -> list[int]:
        if epoch != self._order_epoch:
            order = list(range(self.num_rows))
            if self.shuffle:
                random.Random(f"{self.seed}:{epoch}").shuffle(order)
            self._order, self._order_epoch = order, epoch
        return self._order

    def next_indices(self, count: int | None = None) -> list[int]:
        """The next `count` (default prompts_per_step) row indices; advances the cursor."""
        count = self.prompts_per_step if count is None else count
        out: list[int] = []
        while len(out) < count:
            order = self._epoch_order(self.state.epoch)
            take = min(count - len(out), self.num_rows - self.state.cursor)
            out.extend(order[self.state.cursor : self.state.cursor + take])
            self.state.cursor += take
            if self.state.cursor >= self.num_rows:
                self.state = SamplerState(self.state.epoch + 1, 0)
        return out

    def state_dict(self) -> dict[str, int]:
        return {"epoch": self.state.epoch, "cursor": self.state.cursor, "num_rows": self.num_rows}

    def load_state_dict(self, state: dict[str, int]) -> None:
        if state.get("num_rows", self.num_rows) != self.num_rows:
            raise ValueError(
                f"the training set has {self.num_rows} rows but the checkpoint was taken with {state['num_rows']}"
            )
        self.state = SamplerState(int(state["epoch"]), int(state["cursor"]))


def rollout_seed(run_seed: int, step: int, gen_round: int = 0) -> int:
    """Base sampling seed of one generation round of one step; sample ``k`` of the round uses ``base + k``.

    Round 0 (every step's batch) keeps the layout ``run_seed * 1000003 + step * 7919``. Dynamic sampling's
    top-up rounds (``gen_round >= 1``) each draw their base from a hash of ``(run_seed, step, gen_round)``,
    so a round never replays another round's streams (a base of ``round 0 + gen_round`` did, shifted by one
    sample). Only the inputs decide the seed, so a resumed run draws the same samples.
    """
    if gen_round == 0:
        return (run_seed * 1_000_003 + step * 7919) % 2**31
    digest = hashlib.blake2b(f"{run_seed}:{step}:{gen_round}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") % 2**31
