"""The contract between the driver and a learner rank: packed tensors plus offsets, in and out.

A ``LearnerBatch`` holds N samples. Token fields are the samples' tokens concatenated (no padding): sample i's
response tokens are ``response_ids_R[response_offsets_N1[i]:response_offsets_N1[i + 1]]`` and every per-token
field (``old_logprobs_R``, ``advantages_R``, ...) is aligned with ``response_ids_R``. Per-sample fields have N
rows. ``micro_batches`` lists, per micro-batch, indices into the N samples (the same count on every rank; an
empty one is a zero-weight dummy pass). ``counts`` are the global counts of the whole mini-batch (all ranks,
all micro-batches) that the loss normalisers divide by.

Size suffixes name the unit: ``P`` prompt tokens, ``R`` response tokens, ``N`` samples, ``N1`` N + 1 offsets,
``B``/``T``/``L`` the padded micro-batch (rows, response width, prompt + response width).

An ``on_policy`` batch carries no ``old_logprobs_R``: the current weights sampled it and it gets exactly one
optimizer update, so the update's own forward pass, detached, gives the old logprobs (the ratio is exactly 1
and no separate scoring pass is needed); the rank returns them in ``UpdateResult.old_logprobs_R``.

``ScoredTokens`` is what scoring returns: per-token tensors aligned with the batch's ``response_ids_R``.
Padding happens in one place, ``LearnerBatch.micro``, right before a forward pass.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass, field

import torch
from torch import Tensor

TOKEN_FIELDS = ("old_logprobs", "advantages", "ref_logprobs", "old_entropy", "rollout_logprobs")


def offsets(lengths: Sequence[int]) -> Tensor:
    """[N+1] int64 start offsets of N concatenated rows of these lengths."""
    out = torch.zeros(len(lengths) + 1, dtype=torch.long)
    if lengths:
        out[1:] = torch.cumsum(torch.tensor(list(lengths), dtype=torch.long), 0)
    return out


def pack(rows: Sequence[Sequence[float]], dtype: torch.dtype) -> Tensor:
    """Ragged rows concatenated into one 1-D tensor."""
    flat = [v for row in rows for v in row]
    return torch.tensor(flat, dtype=dtype)


def unpack(values: Tensor, offsets_N1: Tensor) -> list[list[float]]:
    """A 1-D packed tensor back to ragged float lists (float64 values, exact for float32 input)."""
    flat = values.detach().to("cpu", torch.float64).tolist()
    bounds = offsets_N1.tolist()
    return [flat[a:b] for a, b in itertools.pairwise(bounds)]


@dataclass
class MicroBatch:
    """One padded micro-batch: prompt + response right-padded to L, responses also gathered to width T.

    Attributes:
        input_ids_BL, attention_BL: Token ids and 1 for real tokens.
        score_mask_BL: 1 at response tokens (the positions whose logprob is needed).
        prompt_lens_B: Prompt length of each row (response token j of row b sits at prompt_lens_B[b] + j).
        response_mask_BT: 1 for real response tokens, response-aligned.
        indices: The batch samples of the rows (into the ``LearnerBatch``).
        dummy: A zero-weight pass (ranks must run the same number of micro-batches).
    """

    input_ids_BL: Tensor
    attention_BL: Tensor
    score_mask_BL: Tensor
    prompt_lens_B: Tensor
    response_mask_BT: Tensor
    indices: list[int]
    dummy: bool = False

    @property
    def width(self) -> int:
        return self.response_mask_BT.shape[1]


@dataclass
class LearnerBatch:
    """N samples for one learner rank (see the module docstring for the layout)."""

    prompt_ids_P: Tensor
    prompt_offsets_N1: Tensor
    response_ids_R: Tensor
    response_offsets_N1: Tensor
    group_ids_N: Tensor | None = None
    rewards_N: Tensor | None = None
    correct_N: Tensor | None = None
    old_logprobs_R: Tensor | None = None
    advantages_R: Tensor | None = None
    ref_logprobs_R: Tensor | None = None
    old_entropy_R: Tensor | None = None
    rollout_logprobs_R: Tensor | None = None
    micro_batches: list[list[int]] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)
    group_size: int | None = None
    on_policy: bool = False

    @classmethod
    def build(
        cls,
        prompt_ids: Sequence[Sequence[int]],
        response_ids: Sequence[Sequence[int]],
        *,
        micro_batches: list[list[int]],
        per_token: dict[str, Sequence[Sequence[float]]] | None = None,
        group_ids: Sequence[int] | None = None,
        rewards: Sequence[float] | None = None,
        correct: Sequence[bool] | None = None,
        counts: dict[str, int] | None = None,
        group_size: int | None = None,
        on_policy: bool = False,
    ) -> LearnerBatch:
        """Pack ragged rows. `per_token` maps names of `TOKEN_FIELDS` to rows aligned with `response_ids`."""
        tokens = {}
        for name, rows in (per_token or {}).items():
            if name not in TOKEN_FIELDS:
                raise KeyError(f"unknown per-token field {name!r}; known: {', '.join(TOKEN_FIELDS)}")
            if rows:
                tokens[f"{name}_R"] = pack(rows, torch.float32)
        return cls(
            prompt_ids_P=pack(prompt_ids, torch.long),
            prompt_offsets_N1=offsets([len(p) for p in prompt_ids]),
            response_ids_R=pack(response_ids, torch.long),
            response_offsets_N1=offsets([len(r) for r in response_ids]),
            group_ids_N=torch.tensor(list(group_ids), dtype=torch.long) if group_ids else None,
            rewards_N=torch.tensor(list(rewards), dtype=torch.float32) if rewards else None,
            correct_N=torch.tensor(list(correct), dtype=torch.bool) if correct else None,
            micro_batches=micro_batches,
            counts=dict(counts or {}),
            group_size=group_size,
            on_policy=on_policy,
            **tokens,
        )

    def __len__(self) -> int:
        return len(self.response_offsets_N1) - 1

    def response_lengths(self, idx: Sequence[int] | None = None) -> list[int]:
        lengths = (self.response_offsets_N1[1:] - self.response_offsets_N1[:-1]).tolist()
        return lengths if idx is None else [lengths[i] for i in idx]

    def _rows(self, values: Tensor, offs: Tensor, idx: Sequence[int]) -> list[Tensor]:
        return [values[offs[i] : offs[i + 1]] for i in idx]

    def micro(self, idx: Sequence[int], pad_id: int) -> MicroBatch:
        """The padded micro-batch of samples `idx` (an empty `idx` gives a one-row dummy of sample 0)."""
        dummy = not idx
        rows = list(idx) or [0]
        if len(self) == 0:  # a rank without samples still runs the pass: one pad prompt, one pad response
            prompts, responses = [torch.tensor([pad_id, pad_id])], [torch.tensor([pad_id])]
        else:
            prompts = self._rows(self.prompt_ids_P, self.prompt_offsets_N1, rows)
            responses = self._rows(self.response_ids_R, self.response_offsets_N1, rows)
        width_l = max(len(p) + len(r) for p, r in zip(prompts, responses))
        width_t = max(max(len(r) for r in responses), 1)
        batch = len(rows)
        input_ids = torch.full((batch, width_l), pad_id, dtype=torch.long)
        attention = torch.zeros((batch, width_l), dtype=torch.long)
        score = torch.zeros((batch, width_l), dtype=torch.long)
        response_mask = torch.zeros((batch, width_t), dtype=torch.float32)
        for b, (p, r) in enumerate(zip(prompts, responses)):
            n_p, n_r = len(p), len(r)
            input_ids[b, :n_p] = p
            input_ids[b, n_p : n_p + n_r] = r
            attention[b, : n_p + n_r] = 1
            score[b, n_p : n_p + n_r] = 1
            response_mask[b, :n_r] = 1.0
        prompt_lens = torch.tensor([len(p) for p in prompts], dtype=torch.long)
        return MicroBatch(input_ids, attention, score, prompt_lens, response_mask, list(rows), dummy)

    def padded(self, name: str, mb: MicroBatch) -> Tensor | None:
        """Per-token field `name` (e.g. "advantages") of the micro-batch's rows as [B, T] float32, 0-padded."""
        values = getattr(self, f"{name}_R")
        if values is None:
            return None
        out = torch.zeros((len(mb.indices), mb.width), dtype=torch.float32)
        if len(self) == 0:
            return out
        for b, row in enumerate(self._rows(values, self.response_offsets_N1, mb.indices)):
            out[b, : len(row)] = row
        return out

    def place(self, out_R: Tensor, values_BT: Tensor, mb: MicroBatch) -> None:
        """Write the real response tokens' values of a response-aligned [B, T] tensor into packed `out_R`."""
        offs = self.response_offsets_N1
        for b, i in enumerate(mb.indices):
            n = int(offs[i + 1] - offs[i])
            out_R[offs[i] : offs[i + 1]] = values_BT[b, :n].detach().to(out_R.dtype).cpu()

    def per_sample(self, name: str, mb: MicroBatch) -> Tensor | None:
        """Per-sample field `name` ("group_ids", "rewards", "correct") of the micro-batch's rows, [B]."""
        values = getattr(self, f"{name}_N")
        return None if values is None or len(self) == 0 else values[mb.indices]


@dataclass
class ScoredTokens:
    """Per-token results of scoring a batch, packed like its `response_ids_R` (None: not requested)."""

    old_logprobs_R: Tensor | None
    old_entropy_R: Tensor | None = None
    ref_logprobs_R: Tensor | None = None


@dataclass
class UpdateResult:
    """What one rank's update returns: its metrics and, for an ``on_policy`` batch, the old logprobs its
    forward pass gave (packed like the batch's ``response_ids_R``; None otherwise)."""

    metrics: dict[str, float]
    old_logprobs_R: Tensor | None = None
