"""One DeepSpeed learner rank for RL: score sequences, run the policy update, hand out weights.

``LearnerRank`` is plain Python; ``rlvr.orchestrate.learner_group`` places one per Ray actor. All ranks are
driven in lock-step and receive the same number of micro-batches (empty ones become zero-weight dummy passes),
so every collective of ZeRO-2/3 lines up. The loss math is ``rlvr.algo``; this file only moves tensors.
"""

from __future__ import annotations

import math
import os
import random
from datetime import timedelta
from typing import Any

import torch

from rlvr.algo.api import compute_policy_loss
from rlvr.algo.contract import LossInputs
from rlvr.config.sections import LearnerConfig
from rlvr.learner.rl_tensors import from_padded, logprobs_and_entropy, pad_sequences, to_padded


def lr_lambda(config: LearnerConfig, total_updates: int):
    """LR multiplier per optimizer update: linear warm-up, then constant / linear / cosine decay."""
    sched = config.lr_schedule

    def factor(update: int) -> float:
        if sched.warmup_updates and update < sched.warmup_updates:
            return (update + 1) / sched.warmup_updates
        if sched.type == "constant":
            return 1.0
        span = max(total_updates - sched.warmup_updates, 1)
        progress = min(max(update - sched.warmup_updates, 0) / span, 1.0)
        shape = 1.0 - progress if sched.type == "linear" else 0.5 * (1.0 + math.cos(math.pi * progress))
        return sched.min_lr_ratio + (1.0 - sched.min_lr_ratio) * shape

    return factor


def deepspeed_config(config: LearnerConfig) -> dict[str, Any]:
    """DeepSpeed settings: ZeRO stage from the recipe; the caller owns gradient accumulation (step() = boundary)."""
    ds: dict[str, Any] = {
        "train_micro_batch_size_per_gpu": 1,
        "gradient_accumulation_steps": 1,
        "managed_gradient_accumulation": False,
        "gradient_clipping": config.grad_clip,
        "zero_optimization": {"stage": config.zero_stage},
        "steps_per_print": 10**9,
        "wall_clock_breakdown": False,
    }
    if config.offload_optimizer and config.zero_stage >= 2:
        ds["zero_optimization"]["offload_optimizer"] = {"device": "cpu"}
    if config.dtype == "bfloat16":
        ds["bf16"] = {"enabled": True}
    elif config.dtype == "float16":
        ds["fp16"] = {"enabled": True}
    return ds


class LearnerRank:
    """A DeepSpeed engine over an HF causal LM, plus an optional frozen reference copy."""

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
    ) -> None:
        os.environ.update(
            RANK=str(rank),
            LOCAL_RANK="0" if device == "cpu" else str(rank % max(torch.cuda.device_count(), 1)),
            WORLD_SIZE=str(world_size),
            MASTER_ADDR=master_addr,
            MASTER_PORT=str(master_port),
        )
        import deepspeed
        from transformers import AutoModelForCausalLM, AutoTokenizer

        self.rank, self.world_size, self.config, self.device = rank, world_size, config, device
        random.seed(seed + rank)
        torch.manual_seed(seed)  # identical initial parameters and dropout streams on every rank
        self.generator = torch.Generator().manual_seed(seed + 1000 + rank)
        deepspeed.init_distributed(
            dist_backend="gloo" if device == "cpu" else "nccl",
            timeout=timedelta(seconds=config.collective_timeout_s),
        )
        dtype = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}[config.dtype]
        model = AutoModelForCausalLM.from_pretrained(model_path, dtype=dtype)
        if config.gradient_checkpointing:
            model.gradient_checkpointing_enable()
        tokenizer = AutoTokenizer.from_pretrained(model_path)
        self.pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
        optimizer = torch.optim.AdamW(
            model.parameters(), lr=config.lr, betas=tuple(config.betas), weight_decay=config.weight_decay
        )
        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_lambda(config, total_updates))
        self.engine, self.optimizer, _, self.scheduler = deepspeed.initialize(
            model=model, optimizer=optimizer, lr_scheduler=scheduler, config=deepspeed_config(config)
        )
        self.reference = None
        if reference:
            ref = AutoModelForCausalLM.from_pretrained(model_path, dtype=dtype)
            self.reference = ref.to(self.engine.device).eval().requires_grad_(False)

    def ready(self) -> dict[str, Any]:
        return {"rank": self.rank, "params": sum(p.numel() for p in self.engine.module.parameters())}

    # ---- forward passes ---------------------------------------------------------------------------------

    def _forward(self, model, prompt_ids, response_ids, *, with_entropy: bool):
        input_ids, attention, prompt_lens, response_mask = pad_sequences(prompt_ids, response_ids, self.pad_id)
        dev = self.engine.device
        logits = model(input_ids=input_ids.to(dev), attention_mask=attention.to(dev)).logits
        logprobs, entropy = logprobs_and_entropy(
            logits, input_ids.to(dev), prompt_lens.to(dev), response_mask.shape[1], with_entropy=with_entropy
        )
        return logprobs, entropy, response_mask.to(dev)

    @torch.no_grad()
    def score(self, shard: dict[str, Any], *, entropy: bool, reference: bool) -> dict[str, Any]:
        """Old logprobs (+ entropy, + reference logprobs) of this rank's samples, as ragged lists.

        Micro-batched by the token budget; `shard["micro_batches"]` (equal count on every rank) gives the plan.
        """
        prompts, responses = shard["prompt_ids"], shard["response_ids"]
        out: dict[str, list] = {"old_logprobs": [None] * len(prompts), "old_entropy": [], "ref_logprobs": []}
        if entropy:
            out["old_entropy"] = [None] * len(prompts)
        if reference:
            out["ref_logprobs"] = [None] * len(prompts)
        self.engine.eval()
        for batch in shard["micro_batches"]:
            idx = batch or [0]  # an empty micro-batch still runs (ZeRO-3 gathers inside forward)
            p = [prompts[i] for i in idx] if prompts else [[self.pad_id]]
            r = [responses[i] for i in idx] if prompts else [[self.pad_id]]
            lp, ent, _ = self._forward(self.engine, p, r, with_entropy=entropy)
            ref_lp = self._forward(self.reference, p, r, with_entropy=False)[0] if reference else None
            for k, i in enumerate(batch):
                n = len(responses[i])
                out["old_logprobs"][i] = from_padded(lp[k : k + 1], [n])[0]
                if entropy:
                    out["old_entropy"][i] = from_padded(ent[k : k + 1], [n])[0]
                if reference:
                    out["ref_logprobs"][i] = from_padded(ref_lp[k : k + 1], [n])[0]
        self.engine.train()
        return out

    def probe(self, prompt_ids: list[list[int]], response_ids: list[list[int]]) -> list[list[float]]:
        """Logprobs of fixed probe sequences under the current weights (every rank runs it)."""
        with torch.no_grad():
            self.engine.eval()
            lp, _, _ = self._forward(self.engine, prompt_ids, response_ids, with_entropy=False)
            self.engine.train()
        return from_padded(lp, [len(r) for r in response_ids])

    # ---- the policy update --------------------------------------------------------------------------------

    def _loss_inputs(self, shard: dict[str, Any], idx: list[int], spec: dict[str, Any]):
        p = [shard["prompt_ids"][i] for i in idx]
        r = [shard["response_ids"][i] for i in idx]
        needs_entropy = bool(spec.get("entropy_coef")) or any(
            m.get("name") == "erc" for m in spec.get("modifiers") or []
        )
        logprobs, entropy, mask = self._forward(self.engine, p, r, with_entropy=needs_entropy)
        width = mask.shape[1]
        dev = mask.device

        def padded(key):
            rows = shard.get(key) or []
            return to_padded([rows[i] for i in idx], width).to(dev) if rows else None

        def per_sample(key, dtype):
            rows = shard.get(key) or []
            return torch.tensor([rows[i] for i in idx], dtype=dtype, device=dev) if rows else None

        return LossInputs(
            logprobs=logprobs,
            old_logprobs=padded("old_logprobs"),
            response_mask=mask,
            advantages=padded("advantages"),
            ref_logprobs=padded("ref_logprobs"),
            entropy=entropy,
            old_entropy=padded("old_entropy"),
            group_ids=per_sample("group_ids", torch.long),
            correct=per_sample("correct", torch.bool),
            rewards=per_sample("rewards", torch.float32),
            group_size=shard.get("group_size"),
        )

    def update(self, plans: list[dict[str, Any]], *, spec: dict[str, Any], step: int) -> dict[str, float]:
        """Run one optimizer update per plan; a plan holds this rank's shard and its micro-batches.

        Each plan carries the global token / sequence counts of its mini-batch, so token-mean (and the seq
        modes) normalise by the whole mini-batch across ranks: the per-rank normaliser is global / world, and
        DeepSpeed's gradient averaging over ranks completes the sum.
        """
        sums: dict[str, float] = {}
        counts: dict[str, int] = {}
        for plan in plans:
            token_norm = plan["global_tokens"] / self.world_size
            seq_norm = plan["global_sequences"] / self.world_size
            for batch in plan["micro_batches"]:
                dummy = not batch
                inputs = self._loss_inputs(plan, batch or [0], spec)
                out = compute_policy_loss(
                    spec, inputs, token_normaliser=token_norm, generator=self.generator, seq_normaliser=seq_norm
                )
                loss = out.loss * 0.0 if dummy else out.loss
                self.engine.backward(loss)
                if not dummy:
                    for key, value in out.metrics.items():
                        sums[key] = sums.get(key, 0.0) + float(value)
                        counts[key] = counts.get(key, 0) + 1
            self.engine.step()
            grad_norm = self.engine.get_global_grad_norm()
            if grad_norm is not None:
                sums["grad_norm"] = sums.get("grad_norm", 0.0) + float(grad_norm)
                counts["grad_norm"] = counts.get("grad_norm", 0) + 1
        metrics = {f"learner/{k}": sums[k] / counts[k] for k in sums}
        metrics["learner/lr"] = float(self.scheduler.get_last_lr()[0])
        return metrics

    # ---- weights and state -------------------------------------------------------------------------------

    def named_weights(self) -> list[tuple[str, torch.Tensor]]:
        """Full HF-named tensors, tied ones under every name (gathered under ZeRO-3; all ranks must call).

        Tied weights matter: vLLM reloads `lm_head.weight` by that name even when it is tied to the
        embedding, and `named_parameters()` lists a tied tensor only once.
        """
        module = self.engine.module
        if self.config.zero_stage == 3:
            import deepspeed

            gathered = {}
            for name, param in module.named_parameters():
                with deepspeed.zero.GatheredParameters([param], modifier_rank=None):
                    gathered[name] = param.detach().to("cpu", copy=True).float()
        else:
            gathered = {name: p.detach().to("cpu", copy=True).float() for name, p in module.named_parameters()}
        out = []
        for name, tensor in module.state_dict(keep_vars=True).items():
            if name in gathered:
                out.append((name, gathered[name]))
            elif getattr(module.config, "tie_word_embeddings", False) and name.endswith("lm_head.weight"):
                out.append((name, gathered[name.replace("lm_head", "model.embed_tokens")]))
        return out

    def save(self, directory: str) -> None:
        """DeepSpeed checkpoint of model + optimizer + LR scheduler (all ranks write their shards)."""
        self.engine.save_checkpoint(directory, tag="learner", client_state={}, save_latest=False)

    def load(self, directory: str) -> None:
        self.engine.load_checkpoint(directory, tag="learner", load_optimizer_states=True, load_lr_scheduler_states=True)

    def export_hf(self, directory: str) -> None:
        """HF-format export (safetensors + config + tokenizer) of the current policy, written by rank 0."""
        weights = dict(self.named_weights())
        if self.rank == 0:
            from transformers import AutoTokenizer

            module = self.engine.module
            module.save_pretrained(directory, state_dict=weights, safe_serialization=True)
            AutoTokenizer.from_pretrained(module.config.name_or_path).save_pretrained(directory)

    def rng_state(self) -> dict[str, Any]:
        return {"python": random.getstate(), "torch": torch.get_rng_state(), "generator": self.generator.get_state()}

    def set_rng_state(self, state: dict[str, Any]) -> None:
        random.setstate(state["python"])
        torch.set_rng_state(state["torch"])
        self.generator.set_state(state["generator"])
