"""One learner rank for RL: score sequences, run the policy update, hand out weights and state.

``LearnerRank`` wraps the DeepSpeed ``Learner`` (``rlvr.learner.engine``) with the RL-specific parts: packed
``LearnerBatch`` shards in (``rlvr.learner.work``), ``rlvr.algo`` loss per micro-batch, packed tensors out. ``rlvr.orchestrate.learner_group`` places one
per Ray actor. All ranks are driven in lock-step and receive the same number of micro-batches (empty ones run
as zero-weight dummy passes), so every collective of ZeRO-2/3 lines up.
"""

from __future__ import annotations

import os
import random
import time
from typing import Any

import torch
from torch import Tensor

from rlvr.algo.api import PolicyLoss
from rlvr.algo.contract import LossInputs, LossOutputs
from rlvr.config.sections import LearnerConfig
from rlvr.learner.engine import Learner
from rlvr.learner.logprobs import token_outputs
from rlvr.learner.rl_tensors import gather_response
from rlvr.learner.settings import LearnerSettings
from rlvr.learner.work import LearnerBatch, MicroBatch, ScoredTokens, UpdateResult


def learner_settings(
    config: LearnerConfig, *, seed: int, total_updates: int, dtype: str = "float32"
) -> LearnerSettings:
    """The recipe's learner section as engine settings (the LR schedule counts optimizer updates).

    ``dtype`` is the resolved ``model.dtype`` (one key for the learner and the rollout engine).
    """
    return LearnerSettings(
        zero_stage=config.zero_stage,
        lr=config.lr,
        weight_decay=config.weight_decay,
        betas=tuple(config.betas),
        grad_clip=config.grad_clip,
        lr_schedule=config.lr_schedule.type,
        warmup_steps=config.lr_schedule.warmup_updates,
        total_steps=max(total_updates, 1),
        min_lr_ratio=config.lr_schedule.min_lr_ratio,
        dtype=dtype,
        seed=seed,
        dist_timeout_s=config.collective_timeout_s,
        gradient_checkpointing=config.gradient_checkpointing,
    )


def plan_normalisers(counts: dict[str, int], world_size: int) -> dict[str, float]:
    """`compute_policy_loss` normalisers for one rank's shard of a mini-batch: global counts / world size.

    A rank sums its micro-batch gradients and DeepSpeed averages over ranks, so dividing each call by
    global / world makes the update that of one call over the whole mini-batch (docs/algorithms.md, "Layout
    invariance"). A count that is absent leaves that normaliser to the call's own count.
    """
    keys = (
        ("token_normaliser", "global_tokens"),
        ("seq_normaliser", "global_sequences"),
        ("question_normaliser", "global_questions"),
        ("positive_token_normaliser", "global_correct_tokens"),
    )
    return {arg: counts[key] / world_size for arg, key in keys if counts.get(key) is not None}


def loss_inputs(
    batch: LearnerBatch, mb: MicroBatch, logprobs_BL: torch.Tensor, entropy_BL: torch.Tensor | None
) -> LossInputs:
    """The loss contract of one micro-batch from the model's sequence-aligned [B,L] logprobs / entropy."""
    dev = logprobs_BL.device
    prompt_lens = mb.prompt_lens_B.to(dev)

    def padded(name):
        values = batch.padded(name, mb)
        return None if values is None else values.to(dev)

    def per_sample(name):
        values = batch.per_sample(name, mb)
        return None if values is None else values.to(dev)

    logprobs = gather_response(logprobs_BL, prompt_lens, mb.width)
    # On-policy (one update on what the current weights sampled): this forward's logprobs are the old ones.
    old_logprobs = logprobs.detach() if batch.on_policy else padded("old_logprobs")
    if old_logprobs is None:
        raise ValueError("a learner batch needs old_logprobs unless it is on_policy")
    return LossInputs(
        logprobs=logprobs,
        old_logprobs=old_logprobs,
        response_mask=mb.response_mask_BT.to(dev),
        advantages=padded("advantages"),
        ref_logprobs=padded("ref_logprobs"),
        entropy=gather_response(entropy_BL, prompt_lens, mb.width) if entropy_BL is not None else None,
        old_entropy=padded("old_entropy"),
        group_ids=per_sample("group_ids"),
        correct=per_sample("correct"),
        rewards=per_sample("rewards"),
        group_size=batch.group_size,
    )


def micro_batch_loss(
    loss: PolicyLoss,
    batch: LearnerBatch,
    mb: MicroBatch,
    logprobs_BL: torch.Tensor,
    entropy_BL: torch.Tensor | None,
    world_size: int,
    generator: torch.Generator | None = None,
) -> tuple[LossInputs, LossOutputs]:
    """The loss one rank backpropagates for one micro-batch of its shard (`batch`) of a mini-batch, with the
    inputs it was computed from."""
    inputs = loss_inputs(batch, mb, logprobs_BL, entropy_BL)
    return inputs, loss(inputs, generator=generator, **plan_normalisers(batch.counts, world_size))


# Metrics that are this call's share of a mini-batch total (they carry the global normalisers): summed over
# a rank's micro-batches, then the ranks' mean is the mini-batch value. All others are per-call means.
ADDITIVE_METRICS = frozenset({"loss", "policy_loss", "drpo_objective", "drpo_true_loss"})


def call_metrics(metrics: dict[str, Any], real: int) -> dict[str, float]:
    """One call's metrics as the terms `Learner.train_step` sums over a rank's `real` micro-batches."""
    return {k: float(v) * (1.0 if k in ADDITIVE_METRICS else 1.0 / real) for k, v in metrics.items()}


class LearnerRank:
    """The RL side of one DeepSpeed rank, plus an optional frozen reference model."""

    def __init__(
        self,
        *,
        rank: int,
        world_size: int,
        master_addr: str,
        master_port: int,
        model_path: str,
        config: LearnerConfig,
        seed: int,
        device: str,
        reference: bool = False,
        total_updates: int = 1,
        dtype: str = "float32",
    ) -> None:
        os.environ.update(
            RANK=str(rank),
            LOCAL_RANK="0" if device == "cpu" else str(rank % max(torch.cuda.device_count(), 1)),
            WORLD_SIZE=str(world_size),
            MASTER_ADDR=master_addr,
            MASTER_PORT=str(master_port),
        )
        self.rank, self.world_size, self.config = rank, world_size, config
        self._loss_key: str | None = None  # the spec the cached PolicyLoss was built from
        self._loss: PolicyLoss | None = None
        overrides = {}
        if config.offload_optimizer and config.zero_stage >= 2:
            overrides = {"zero_optimization": {"offload_optimizer": {"device": "cpu"}}}
        self.learner = Learner(
            model_path,
            learner_settings(config, seed=seed, total_updates=total_updates, dtype=dtype),
            ds_config_overrides=overrides,
        )
        random.seed(seed + rank)
        self.generator = torch.Generator().manual_seed(seed + 1000 + rank)
        tok = self.learner.tokenizer
        self.pad_id = tok.pad_token_id if tok is not None and tok.pad_token_id is not None else 0
        self.reference = None
        if reference:
            from transformers import AutoModelForCausalLM

            ref = AutoModelForCausalLM.from_pretrained(model_path, dtype=self.learner.engine.module.dtype)
            self.reference = ref.to(self.learner.device).eval().requires_grad_(False)

    def ready(self) -> dict[str, Any]:
        return {"rank": self.rank, "params": sum(p.numel() for p in self.learner.engine.module.parameters())}

    # ---- forward passes ---------------------------------------------------------------------------------

    def _forward(self, mb: MicroBatch, *, with_entropy: bool, model: Any = None):
        """Response-aligned [B,T] float32 logprobs (and entropy) of a micro-batch, under the policy or `model`."""
        dev = self.learner.device
        if model is None:
            out = self.learner.token_logprobs_and_entropy(
                mb.input_ids_BL, mb.attention_BL, mb.score_mask_BL, entropy_grad=with_entropy
            )
        else:  # the frozen reference model, through the same chunked routine
            out = token_outputs(
                model,
                mb.input_ids_BL.to(dev),
                mb.attention_BL.to(dev),
                mb.score_mask_BL.to(dev),
                chunk_tokens=self.learner.settings.logprob_chunk_tokens,
            )
        prompt_lens = mb.prompt_lens_B.to(dev)
        logprobs = gather_response(out.logprobs, prompt_lens, mb.width)
        entropy = gather_response(out.entropy, prompt_lens, mb.width) if with_entropy else None
        return logprobs, entropy

    @torch.no_grad()
    def score(
        self, batch: LearnerBatch, *, entropy: bool, reference: bool, policy: bool = True
    ) -> ScoredTokens:
        """Old logprobs (+ entropy, + reference logprobs) of this rank's samples, packed like the responses.

        `batch.micro_batches` (the same count on every rank) is the plan; an empty one is a dummy pass.
        `policy=False` skips the policy's forward (an on-policy update computes the old logprobs itself) and
        scores the reference model only.
        """
        n_tokens = len(batch.response_ids_R)
        out = ScoredTokens(
            old_logprobs_R=torch.zeros(n_tokens) if policy else None,
            old_entropy_R=torch.zeros(n_tokens) if policy and entropy else None,
            ref_logprobs_R=torch.zeros(n_tokens) if reference else None,
        )
        self.learner.engine.eval()
        for idx in batch.micro_batches:
            mb = batch.micro(idx, self.pad_id)
            lp, ent = self._forward(mb, with_entropy=entropy) if policy else (None, None)
            ref_lp = self._forward(mb, with_entropy=False, model=self.reference)[0] if reference else None
            if mb.dummy:
                continue
            if lp is not None:
                batch.place(out.old_logprobs_R, lp, mb)
            if ent is not None:
                batch.place(out.old_entropy_R, ent, mb)
            if ref_lp is not None:
                batch.place(out.ref_logprobs_R, ref_lp, mb)
        self.learner.engine.train()
        return out

    @torch.no_grad()
    def probe(self, prompt_ids: list[list[int]], response_ids: list[list[int]]) -> list[list[float]]:
        """Logprobs of fixed probe sequences under the current weights (every rank runs it)."""
        batch = LearnerBatch.build(prompt_ids, response_ids, micro_batches=[list(range(len(prompt_ids)))])
        self.learner.engine.eval()
        lp, _ = self._forward(batch.micro(batch.micro_batches[0], self.pad_id), with_entropy=False)
        self.learner.engine.train()
        return [row[:n] for row, n in zip(lp.double().cpu().tolist(), batch.response_lengths())]

    # ---- the policy update --------------------------------------------------------------------------------

    def update(self, batches: list[LearnerBatch], *, spec: dict[str, Any], step: int) -> UpdateResult:
        """One optimizer update per batch (this rank's shard of one mini-batch, with its micro-batches).

        Each batch carries its mini-batch's global counts (`plan_normalisers`), so every mode normalises by the
        whole mini-batch across ranks: the per-rank normaliser is global / world, and DeepSpeed's gradient
        averaging over ranks completes the sum. An empty micro-batch (ranks must run the same count) is a
        zero-weight pass over one real sample. An `on_policy` batch takes its old logprobs from this forward
        pass and returns them (the driver logs the rollout/learner mismatch from them). `time/learner_compute_s` is
        the time spent in the engine's steps: the driver's update phase minus it is planning, padding and
        transport.
        """
        entropy_grad = bool(spec.get("entropy_coef"))
        policy_loss = self._policy_loss(spec)
        sums: dict[str, float] = {}
        scored: Tensor | None = None
        compute_s = 0.0
        for batch in batches:
            real = max(sum(1 for b in batch.micro_batches if b), 1)
            if batch.on_policy:
                scored = torch.zeros(len(batch.response_ids_R))

            def loss_fn(mb, outputs, batch=batch, real=real, scored=scored):
                micro = mb["micro"]
                inputs, out = micro_batch_loss(
                    policy_loss,
                    batch,
                    micro,
                    outputs.logprobs,
                    outputs.entropy,
                    self.world_size,
                    self.generator,
                )
                if micro.dummy:
                    return out.loss * 0.0, {}
                if batch.on_policy:
                    batch.place(scored, inputs.old_logprobs, micro)
                return out.loss, call_metrics(out.metrics, real)

            micro = []
            for idx in batch.micro_batches:
                mb = batch.micro(idx, self.pad_id)
                micro.append(
                    {
                        "input_ids": mb.input_ids_BL,
                        "attention_mask": mb.attention_BL,
                        "response_mask": mb.score_mask_BL,
                        "micro": mb,
                    }
                )
            started = time.perf_counter()
            result = self.learner.train_step(micro, loss_fn, normalizer=1.0, entropy_grad=entropy_grad)
            compute_s += time.perf_counter() - started
            for key, value in result.items():
                if key != "loss":
                    sums[key] = sums.get(key, 0.0) + float(value) / len(batches)
        metrics = {f"learner/{k}": v for k, v in sums.items()}
        metrics["time/learner_compute_s"] = compute_s  # a timing, so resume comparisons skip it like time/*
        return UpdateResult(metrics, scored)

    def _policy_loss(self, spec: dict[str, Any]) -> PolicyLoss:
        """The loss, resolved once per spec (registry lookups and kwargs), not on every micro-batch."""
        key = repr(spec)
        if self._loss_key != key:
            self._loss_key, self._loss = key, PolicyLoss(spec)
        return self._loss

    # ---- weights and state -------------------------------------------------------------------------------

    def named_weights(self) -> list[tuple[str, torch.Tensor]]:
        """Full HF-named CPU tensors, tied ones under every name (collective under ZeRO-3).

        vLLM reloads `lm_head.weight` by that name even when it is tied to the embedding, and
        `named_parameters()` lists a tied tensor only once.
        """
        module = self.learner.engine.module
        gathered = {name: t.detach().to("cpu", copy=True).float() for name, t in self.learner.named_weights()}
        out = []
        tied = getattr(module.config, "tie_word_embeddings", False)
        for name in module.state_dict(keep_vars=True):
            if name in gathered:
                out.append((name, gathered[name]))
            elif tied and name.endswith("lm_head.weight"):
                out.append((name, gathered[name.replace("lm_head", "model.embed_tokens")]))
        return out

    def save(self, directory: str) -> None:
        """DeepSpeed checkpoint of model + optimizer + LR scheduler (every rank writes its shard)."""
        self.learner.save_checkpoint(directory, tag="learner")

    def load(self, directory: str) -> None:
        self.learner.load_checkpoint(directory, tag="learner")

    def export_hf(self, directory: str) -> None:
        """HF-format export (safetensors + config + tokenizer), written atomically by rank 0."""
        self.learner.save_hf(directory)

    def rng_state(self) -> dict[str, Any]:
        return {
            "python": random.getstate(),
            "torch": torch.get_rng_state(),
            "generator": self.generator.get_state(),
        }

    def set_rng_state(self, state: dict[str, Any]) -> None:
        random.setstate(state["python"])
        torch.set_rng_state(state["torch"])
        self.generator.set_state(state["generator"])
