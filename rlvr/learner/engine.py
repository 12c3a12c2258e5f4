"""One learner rank: a Hugging Face causal LM inside a DeepSpeed engine.

The RL learner extends this class; the tiny model's SFT uses it as is. What it offers:

* ``token_logprobs_and_entropy``: per-token logprobs of given tokens and full-vocabulary entropy,
  float32, computed from the logits in chunks.
* ``train_step(micro_batches, loss_fn)``: one backward per micro-batch and one optimizer step;
  the loss is normalised by a count over the WHOLE mini-batch (token-mean by default), so
  gradient accumulation gives the same update as one big batch.
* ``named_weights``: full HF-named tensors (gathered under ZeRO-3) for weight sync.
* ``save_hf`` and DeepSpeed ``save_checkpoint`` / ``load_checkpoint``.

Gradient accumulation uses DeepSpeed's unmanaged mode (``managed_gradient_accumulation: false``):
``backward`` only accumulates and ``step`` is the boundary, so the number of micro-batches can vary
per step (token-budget packing) without touching the engine's configured batch sizes.
"""

from __future__ import annotations

import os
import random
import shutil
import tempfile
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import torch

from rlvr.learner.dist import init_distributed
from rlvr.learner.logprobs import TokenOutputs, token_outputs
from rlvr.learner.schedule import lr_multiplier
from rlvr.learner.settings import LearnerSettings

_CLIENT_KEY = "rlvr_client_state"
_DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


# loss_fn(micro_batch, outputs) -> (loss summed over the micro-batch's units, metric sums)
LossFn = Callable[[Mapping[str, torch.Tensor], TokenOutputs], tuple[torch.Tensor, Mapping[str, Any]]]


def seed_everything(seed: int) -> None:
    """Seed python, numpy and torch RNGs."""
    import numpy as np

    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


class Learner:
    """A single-rank-process wrapper around a DeepSpeed engine holding a causal LM.

    Args:
        model_path: Local HF model folder (or hub id on a cluster).
        settings: Optimiser, schedule, ZeRO stage, dtype and seed.
        ds_config_overrides: Extra DeepSpeed config keys merged over the generated config (e.g.
            ``{"zero_optimization": {"offload_optimizer": {"device": "cpu"}}}``).
    """

    def __init__(
        self,
        model_path: str | Path,
        settings: LearnerSettings | None = None,
        *,
        ds_config_overrides: Mapping[str, Any] | None = None,
    ) -> None:
        import deepspeed
        from transformers import AutoModelForCausalLM

        self.settings = settings or LearnerSettings()
        self.model_path = str(model_path)
        self.rank, self.world_size = init_distributed(self.settings.dist_timeout_s)
        seed_everything(self.settings.seed)

        model = AutoModelForCausalLM.from_pretrained(self.model_path, dtype=_DTYPES[self.settings.dtype])
        if self.settings.gradient_checkpointing:
            model.gradient_checkpointing_enable()
        model.config.use_cache = False
        self.tokenizer = self._load_tokenizer()

        optimizer = torch.optim.AdamW(
            _param_groups(model, self.settings.weight_decay),
            lr=self.settings.lr,
            betas=self.settings.betas,
            eps=self.settings.eps,
        )
        s = self.settings
        scheduler = torch.optim.lr_scheduler.LambdaLR(
            optimizer,
            lambda step: lr_multiplier(
                s.lr_schedule,
                step,
                warmup_steps=s.warmup_steps,
                total_steps=s.total_steps,
                min_lr_ratio=s.min_lr_ratio,
            ),
        )
        self.ds_config = _merge(self._ds_config(), ds_config_overrides or {})
        self.engine, self.optimizer, _, self.scheduler = deepspeed.initialize(
            model=model, optimizer=optimizer, lr_scheduler=scheduler, config=self.ds_config
        )
        self.engine.train()
        self._record_stage0_grad_norm()

    # ----------------------------------------------------------------- setup helpers
    def _ds_config(self) -> dict[str, Any]:
        s = self.settings
        return {
            "train_micro_batch_size_per_gpu": 1,
            "gradient_accumulation_steps": 1,
            "managed_gradient_accumulation": False,
            "gradient_clipping": s.grad_clip,
            "zero_optimization": {"stage": s.zero_stage},
            "bf16": {"enabled": s.dtype == "bfloat16"},
            "fp16": {"enabled": s.dtype == "float16"},
            # A client torch AdamW avoids DeepSpeed's JIT-built fused/cpu Adam (40+ s per machine).
            "zero_allow_untested_optimizer": True,
            "steps_per_print": 2**31 - 1,
            "wall_clock_breakdown": False,
        }

    def _record_stage0_grad_norm(self) -> None:
        """Keep the grad norm DeepSpeed computes (and drops) when clipping fp32 grads without ZeRO."""
        from deepspeed.runtime.utils import clip_grad_norm_

        engine = self.engine

        def clip_and_record() -> None:
            engine._global_grad_norm = float(
                clip_grad_norm_(
                    parameters=engine.module.parameters(), max_norm=engine.gradient_clipping(), mpu=engine.mpu
                )
            )

        engine.clip_fp32_gradients = clip_and_record

    def _load_tokenizer(self):
        from transformers import AutoTokenizer

        try:
            return AutoTokenizer.from_pretrained(self.model_path)
        except (OSError, ValueError):
            return None

    # ----------------------------------------------------------------- properties
    @property
    def device(self) -> torch.device:
        """Device of the engine's compute."""
        return self.engine.device

    @property
    def global_step(self) -> int:
        """Optimizer steps taken (restored by ``load_checkpoint``)."""
        return int(self.engine.global_steps)

    @property
    def lr(self) -> float:
        """Learning rate the next optimizer step will use."""
        return float(self.optimizer.param_groups[0]["lr"])

    # ----------------------------------------------------------------- forward
    def token_logprobs_and_entropy(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        response_mask: torch.Tensor | None = None,
        *,
        temperature: float = 1.0,
        entropy_grad: bool = False,
    ) -> TokenOutputs:
        """Per-token logprobs of ``input_ids`` and full-vocabulary entropy.

        Runs with autograd if it is enabled (wrap in ``torch.no_grad()`` to score only). Under
        ZeRO-3 every rank must call this the same number of times (the forward gathers weights).

        Args:
            input_ids: ``[B, T]`` token ids (any padding side).
            attention_mask: ``[B, T]`` 1 for real tokens; position ids follow it.
            response_mask: ``[B, T]`` positions to score (e.g. response tokens); default: all
                real tokens. Only these positions are converted to float32.
            temperature: Logits are divided by it (score as a sampler at this temperature).
            entropy_grad: Keep the entropy in the autograd graph (for entropy losses).

        Returns:
            ``TokenOutputs`` with ``[B, T]`` float32 logprobs, entropy and the scored mask.
        """
        return token_outputs(
            self.engine,
            input_ids.to(self.device),
            attention_mask.to(self.device),
            None if response_mask is None else response_mask.to(self.device),
            temperature=temperature,
            chunk_tokens=self.settings.logprob_chunk_tokens,
            entropy_grad=entropy_grad,
        )

    # ----------------------------------------------------------------- training
    def train_step(
        self,
        micro_batches: Sequence[Mapping[str, torch.Tensor]],
        loss_fn: LossFn,
        *,
        normalizer: float | None = None,
        temperature: float = 1.0,
        entropy_grad: bool = False,
    ) -> dict[str, float]:
        """One optimizer step over a mini-batch given as micro-batches (gradient accumulation).

        Each micro-batch holds ``input_ids`` and ``attention_mask`` (``[B, T]``), optionally
        ``response_mask`` and any fields ``loss_fn`` needs. ``loss_fn(mb, outputs)`` returns the
        loss SUMMED over the micro-batch's units (tokens by default) and metric sums; both are
        divided by ``normalizer`` before backward, so the update equals that of one batch.

        Args:
            micro_batches: The mini-batch (e.g. from ``packing.make_micro_batches``).
            loss_fn: Loss contract described above.
            normalizer: Units in the whole mini-batch (a data-parallel run passes the global count
                divided by world size, since DeepSpeed averages gradients over ranks). Default: the
                number of scored tokens over all micro-batches (token-mean).
            temperature: Passed to ``token_logprobs_and_entropy``.
            entropy_grad: Passed to ``token_logprobs_and_entropy``.

        Returns:
            ``loss``, ``grad_norm``, ``lr`` (the one used by this step) and the normalised metrics.
        """
        if not micro_batches:
            raise ValueError("train_step needs at least one micro-batch")
        if normalizer is None:
            normalizer = float(sum(_scored_tokens(mb) for mb in micro_batches))
        if normalizer <= 0:
            raise ValueError("train_step: normalizer is 0 (no scored tokens in the mini-batch)")
        lr_used = self.lr
        total_loss = 0.0
        metric_sums: dict[str, float] = {}
        for mb in micro_batches:
            out = self.token_logprobs_and_entropy(
                mb["input_ids"],
                mb["attention_mask"],
                mb.get("response_mask"),
                temperature=temperature,
                entropy_grad=entropy_grad,
            )
            device_mb = {k: v.to(self.device) if torch.is_tensor(v) else v for k, v in mb.items()}
            loss_sum, metrics = loss_fn(device_mb, out)
            loss = loss_sum / normalizer
            self.engine.backward(loss, scale_wrt_gas=False)
            total_loss += float(loss.detach())
            for key, value in metrics.items():
                metric_sums[key] = metric_sums.get(key, 0.0) + float(value)
        self.engine.step()
        grad_norm = self.engine.get_global_grad_norm()
        result = {
            "loss": total_loss,
            "grad_norm": float(grad_norm) if grad_norm is not None else float("nan"),
        }
        result["lr"] = lr_used
        result.update({k: v / normalizer for k, v in metric_sums.items()})
        return result

    # ----------------------------------------------------------------- weights out
    def named_weights(self) -> Iterator[tuple[str, torch.Tensor]]:
        """Yield ``(hf_name, full_tensor)`` for every parameter (tied weights once).

        Under ZeRO-3 each parameter is gathered and a copy yielded, and EVERY rank must consume the
        whole iterator (the gather is a collective). At stages 0-2 the tensors are live views of the
        weights: copy them if they must survive the next ``train_step``.
        """
        import deepspeed

        for name, param in self.engine.module.named_parameters():
            if hasattr(param, "ds_id"):
                with deepspeed.zero.GatheredParameters([param], modifier_rank=None):
                    full = param.data.detach().clone()
                yield name, full
            else:
                yield name, param.detach()

    def state_dict_full(self) -> dict[str, torch.Tensor]:
        """All weights as an HF state dict of CPU tensors (collective under ZeRO-3)."""
        return {name: t.detach().to("cpu", copy=True) for name, t in self.named_weights()}

    def save_hf(self, out_dir: str | Path) -> Path:
        """Write an HF model folder (safetensors + config + tokenizer), atomically.

        Collective under ZeRO-3 (all ranks call it); rank 0 writes into a temp folder next to
        ``out_dir`` and renames it into place, so a crash never leaves a half-written model.
        """
        state = self.state_dict_full()
        out = Path(out_dir)
        if self.rank == 0:
            out.parent.mkdir(parents=True, exist_ok=True)
            tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-", dir=out.parent))
            self.engine.module.save_pretrained(tmp, state_dict=state, safe_serialization=True)
            gen_cfg = Path(self.model_path) / "generation_config.json"
            if gen_cfg.is_file() and not (tmp / "generation_config.json").exists():
                shutil.copy(gen_cfg, tmp)
            if self.tokenizer is not None:
                self.tokenizer.save_pretrained(tmp)
                _pin_tokenizer_class(tmp, Path(self.model_path))
            if out.exists():
                shutil.rmtree(out)
            os.replace(tmp, out)
        return out

    # ----------------------------------------------------------------- checkpoints
    def save_checkpoint(
        self, ckpt_dir: str | Path, tag: str | None = None, client_state: dict | None = None
    ) -> None:
        """DeepSpeed checkpoint (weights, optimizer, lr scheduler, step counters); all ranks call it."""
        # Nested under one key: DeepSpeed returns every unknown top-level key of the checkpoint as
        # "client state" (optimizer state included at stage 0), so ours must be found by name.
        self.engine.save_checkpoint(str(ckpt_dir), tag=tag, client_state={_CLIENT_KEY: client_state or {}})

    def load_checkpoint(
        self,
        ckpt_dir: str | Path,
        tag: str | None = None,
        *,
        load_optimizer_states: bool = True,
        load_lr_scheduler_states: bool = True,
    ) -> dict:
        """Restore a DeepSpeed checkpoint; returns its ``client_state`` (raises if none was found)."""
        path, client_state = self.engine.load_checkpoint(
            str(ckpt_dir),
            tag=tag,
            load_optimizer_states=load_optimizer_states,
            load_lr_scheduler_states=load_lr_scheduler_states,
        )
        if path is None:
            raise FileNotFoundError(f"no DeepSpeed checkpoint found in {ckpt_dir} (tag={tag})")
        return (client_state or {}).get(_CLIENT_KEY, {})


def _scored_tokens(mb: Mapping[str, torch.Tensor]) -> int:
    mask = mb.get("response_mask")
    mask = mb["attention_mask"] if mask is None else mask.bool() & mb["attention_mask"].bool()
    return int(mask[:, 1:].sum())


def _param_groups(model: torch.nn.Module, weight_decay: float) -> list[dict[str, Any]]:
    """No weight decay on norms and biases (1-D parameters), the usual AdamW practice."""
    decay, no_decay = [], []
    for param in model.parameters():
        if param.requires_grad:
            (decay if param.dim() >= 2 else no_decay).append(param)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


def _merge(base: dict[str, Any], extra: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in extra.items():
        out[key] = (
            _merge(out[key], value)
            if isinstance(value, Mapping) and isinstance(out.get(key), dict)
            else value
        )
    return out


def _pin_tokenizer_class(out: Path, src: Path) -> None:
    """Keep the source folder's pinned ``tokenizer_class`` (save_pretrained may rewrite it)."""
    import json

    src_cfg, dst_cfg = src / "tokenizer_config.json", out / "tokenizer_config.json"
    if src_cfg.is_file() and dst_cfg.is_file():
        pinned = json.loads(src_cfg.read_text()).get("tokenizer_class")
        cfg = json.loads(dst_cfg.read_text())
        if pinned and cfg.get("tokenizer_class") != pinned:
            cfg["tokenizer_class"] = pinned
            dst_cfg.write_text(json.dumps(cfg, indent=2, sort_keys=True) + "\n")
