"""One learner rank for RL: score sequences, run the policy update, hand out weights and state.

``LearnerRank`` wraps the DeepSpeed ``Learner`` (``rlvr.learner.engine``) with the RL-specific parts: sample
shards in, ``rlvr.algo`` loss per micro-batch, ragged lists out. ``rlvr.orchestrate.learner_group`` places one
per Ray actor. All ranks are driven in lock-step and receive the same number of micro-batches (empty ones run
as zero-weight dummy passes), so every collective of ZeRO-2/3 lines up.
"""

from __future__ import annotations

import os
import random
from typing import Any

import torch

from rlvr.algo.api import compute_policy_loss
from rlvr.algo.contract import LossInputs, LossOutputs
from rlvr.config.sections import LearnerConfig
from rlvr.learner.engine import Learner
from rlvr.learner.rl_tensors import from_padded, gather_response, pad_sequences, to_padded
from rlvr.learner.settings import LearnerSettings


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


def plan_normalisers(plan: dict[str, Any], world_size: int) -> dict[str, float]:
    """`compute_policy_loss` normalisers for one rank's shard of a mini-batch: global counts / world size.

    A rank sums its micro-batch gradients and DeepSpeed averages over ranks, so dividing each call by
    global / world makes the update that of one call over the whole mini-batch (docs/algorithms.md, "Layout
    invariance"). A plan without a count (an older payload) leaves that normaliser to the call's own count.
    """
    keys = (
        ("token_normaliser", "global_tokens"),
        ("seq_normaliser", "global_sequences"),
        ("question_normaliser", "global_questions"),
        ("positive_token_normaliser", "global_correct_tokens"),
    )
    return {arg: plan[key] / world_size for arg, key in keys if plan.get(key) is not None}


def micro_batch(plan: dict[str, Any], idx: list[int], pad_id: int) -> dict[str, Any]:
    """A `Learner.train_step` micro-batch: padded sequences plus the plan indices they came from."""
    p = [plan["prompt_ids"][i] for i in idx]
    r = [plan["response_ids"][i] for i in idx]
    input_ids, attention, prompt_lens, response_mask = pad_sequences(p, r, pad_id)
    full_mask = torch.zeros_like(attention)
    for b, (pi, ri) in enumerate(zip(p, r)):
        full_mask[b, len(pi) : len(pi) + len(ri)] = 1
    return {
        "input_ids": input_ids,
        "attention_mask": attention,
        "response_mask": full_mask,
        "prompt_lens": prompt_lens,
        "response_width": response_mask.shape[1],
        "indices": idx,
    }


def loss_inputs(
    plan: dict[str, Any], mb: dict[str, Any], logprobs_BL: torch.Tensor, entropy_BL: torch.Tensor | None
) -> LossInputs:
    """The loss contract of one micro-batch from the model's sequence-aligned [B,L] logprobs / entropy."""
    idx, width = mb["indices"], mb["response_width"]
    dev = logprobs_BL.device
    prompt_lens = mb["prompt_lens"].to(dev)
    mask = to_padded([[1.0] * len(plan["response_ids"][i]) for i in idx], width).to(dev)

    def padded(key):
        rows = plan.get(key) or []
        return to_padded([rows[i] for i in idx], width).to(dev) if rows else None

    def per_sample(key, dtype):
        rows = plan.get(key) or []
        return torch.tensor([rows[i] for i in idx], dtype=dtype, device=dev) if rows else None

    return LossInputs(
        logprobs=gather_response(logprobs_BL, prompt_lens, width),
        old_logprobs=padded("old_logprobs"),
        response_mask=mask,
        advantages=padded("advantages"),
        ref_logprobs=padded("ref_logprobs"),
        entropy=gather_response(entropy_BL, prompt_lens, width) if entropy_BL is not None else None,
        old_entropy=padded("old_entropy"),
        group_ids=per_sample("group_ids", torch.long),
        correct=per_sample("correct", torch.bool),
        rewards=per_sample("rewards", torch.float32),
        group_size=plan.get("group_size"),
    )


def micro_batch_loss(
    spec: dict[str, Any],
    plan: dict[str, Any],
    mb: dict[str, Any],
    logprobs_BL: torch.Tensor,
    entropy_BL: torch.Tensor | None,
    world_size: int,
    generator: torch.Generator | None = None,
) -> LossOutputs:
    """The loss one rank backpropagates for one micro-batch of its shard (`plan`) of a mini-batch."""
    inputs = loss_inputs(plan, mb, logprobs_BL, entropy_BL)
    return compute_policy_loss(spec, inputs, generator=generator, **plan_normalisers(plan, world_size))


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

    def _forward(self, prompt_ids, response_ids, *, with_entropy: bool, model=None):
        """Response-aligned [B,T] logprobs and entropy (float32) and the [B,T] response mask."""
        input_ids, attention, prompt_lens, response_mask = pad_sequences(
            prompt_ids, response_ids, self.pad_id
        )
        dev = self.learner.device
        if model is None:
            full_mask = torch.zeros_like(attention)
            for b, (p, r) in enumerate(zip(prompt_ids, response_ids)):
                full_mask[b, len(p) : len(p) + len(r)] = 1
            out = self.learner.token_logprobs_and_entropy(
                input_ids, attention, full_mask, entropy_grad=with_entropy
            )
            logprobs_BL, entropy_BL = out.logprobs, out.entropy
        else:
            logits = model(input_ids=input_ids.to(dev), attention_mask=attention.to(dev)).logits.float()
            logp = torch.log_softmax(logits[:, :-1], dim=-1)
            logprobs_BL = torch.nn.functional.pad(
                torch.gather(logp, -1, input_ids[:, 1:].to(dev).unsqueeze(-1)).squeeze(-1), (1, 0)
            )
            entropy_BL = None
        width = response_mask.shape[1]
        logprobs = gather_response(logprobs_BL, prompt_lens.to(dev), width)
        entropy = gather_response(entropy_BL, prompt_lens.to(dev), width) if with_entropy else None
        return logprobs, entropy, response_mask.to(dev)

    @torch.no_grad()
    def score(self, shard: dict[str, Any], *, entropy: bool, reference: bool) -> dict[str, Any]:
        """Old logprobs (+ entropy, + reference logprobs) of this rank's samples, as ragged lists.

        `shard["micro_batches"]` (the same count on every rank) is the plan; an empty one is a dummy pass.
        """
        prompts, responses = shard["prompt_ids"], shard["response_ids"]
        out: dict[str, list] = {
            "old_logprobs": [None] * len(prompts),
            "old_entropy": [None] * len(prompts) if entropy else [],
            "ref_logprobs": [None] * len(prompts) if reference else [],
        }
        self.learner.engine.eval()
        for batch in shard["micro_batches"]:
            idx = batch or [0]
            p = [prompts[i] for i in idx] if prompts else [[self.pad_id, self.pad_id]]
            r = [responses[i] for i in idx] if prompts else [[self.pad_id]]
            lp, ent, _ = self._forward(p, r, with_entropy=entropy)
            ref_lp = self._forward(p, r, with_entropy=False, model=self.reference)[0] if reference else None
            for k, i in enumerate(batch):
                n = len(responses[i])
                out["old_logprobs"][i] = from_padded(lp[k : k + 1], [n])[0]
                if entropy:
                    out["old_entropy"][i] = from_padded(ent[k : k + 1], [n])[0]
                if reference:
                    out["ref_logprobs"][i] = from_padded(ref_lp[k : k + 1], [n])[0]
        self.learner.engine.train()
        return out

    @torch.no_grad()
    def probe(self, prompt_ids: list[list[int]], response_ids: list[list[int]]) -> list[list[float]]:
        """Logprobs of fixed probe sequences under the current weights (every rank runs it)."""
        self.learner.engine.eval()
        lp, _, _ = self._forward(prompt_ids, response_ids, with_entropy=False)
        self.learner.engine.train()
        return from_padded(lp, [len(r) for r in response_ids])

    # ---- the policy update --------------------------------------------------------------------------------

    def update(self, plans: list[dict[str, Any]], *, spec: dict[str, Any], step: int) -> dict[str, float]:
        """One optimizer update per plan (this rank's shard of one mini-batch, with its micro-batches).

        Each plan carries its mini-batch's global counts (`plan_normalisers`), so every mode normalises by the
        whole mini-batch across ranks: the per-rank normaliser is global / world, and DeepSpeed's gradient
        averaging over ranks completes the sum. An empty micro-batch (ranks must run
        the same count) is a zero-weight pass over one real sample.
        """
        entropy_grad = bool(spec.get("entropy_coef"))
        sums: dict[str, float] = {}
        for plan in plans:
            real = max(sum(1 for b in plan["micro_batches"] if b), 1)

            def loss_fn(mb, outputs, plan=plan, real=real):
                out = micro_batch_loss(
                    spec, plan, mb, outputs.logprobs, outputs.entropy, self.world_size, self.generator
                )
                if mb["dummy"]:
                    return out.loss * 0.0, {}
                return out.loss, call_metrics(out.metrics, real)

            micro = [
                {**micro_batch(plan, batch or [0], self.pad_id), "dummy": not batch}
                for batch in plan["micro_batches"]
            ]
            result = self.learner.train_step(micro, loss_fn, normalizer=1.0, entropy_grad=entropy_grad)
            for key, value in result.items():
                if key != "loss":
                    sums[key] = sums.get(key, 0.0) + float(value) / len(plans)
        return {f"learner/{k}": v for k, v in sums.items()}

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
