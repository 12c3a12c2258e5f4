"""Supervised warm start of the tiny model on the synthetic task, with the project's DeepSpeed learner.

Loss is the token-mean negative log-likelihood of the reference response (and the closing
``<|im_end|>``), prompts rendered with the chat template. Deterministic for a given seed.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from rlvr.learner.packing import make_micro_batches
from rlvr.learner.settings import LearnerSettings
from rlvr.progress import duration, eta

# A progress line (loss, elapsed, ETA) every this many SFT steps: about every 30 s on 2 cores.
LOG_EVERY = 100


@dataclass(frozen=True)
class SftSettings:
    """SFT hyper-parameters (part of the build's version hash).

    Attributes:
        steps: Optimizer steps.
        sequences_per_step: Training sequences per optimizer step.
        micro_batch_tokens: Padded-token budget per micro-batch.
        lr: Peak learning rate (cosine decay after ``warmup_steps``).
        warmup_steps: Linear warm-up steps.
        weight_decay: AdamW weight decay.
        grad_clip: Max grad norm.
        seed: Seeds the learner and the batch order.
        torch_threads: Intra-op threads during SFT. 1 by default: with 2+ OpenMP threads on a
            busy 2-core machine, spin-waiting made steps 4-10x slower (measured), while 1 thread
            loses at most ~40% on an idle one.
    """

    steps: int = 900
    sequences_per_step: int = 32
    micro_batch_tokens: int = 4096
    lr: float = 3e-3
    warmup_steps: int = 40
    weight_decay: float = 0.0
    grad_clip: float = 1.0
    seed: int = 0
    torch_threads: int = 1

    def to_dict(self) -> dict[str, Any]:
        """Plain dict."""
        return asdict(self)


def render_prompt(tokenizer, prompt: str) -> str:
    """The chat-formatted prompt the tiny model is trained and evaluated with."""
    return tokenizer.apply_chat_template(
        [{"role": "user", "content": prompt}], tokenize=False, add_generation_prompt=True
    )


def encode_example(tokenizer, prompt: str, response: str) -> dict[str, list[int]]:
    """Token ids of prompt + response + eos, with a mask selecting the response and eos."""
    prompt_ids = tokenizer(render_prompt(tokenizer, prompt), add_special_tokens=False)["input_ids"]
    response_ids = tokenizer(response, add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id]
    return {
        "input_ids": prompt_ids + response_ids,
        "response_mask": [0] * len(prompt_ids) + [1] * len(response_ids),
    }


def _nll_loss(mb, out):
    return -(out.logprobs * out.mask).sum(), {}


def run_sft(
    init_dir: str | Path,
    out_dir: str | Path,
    rows: Sequence[dict[str, Any]],
    settings: SftSettings,
    *,
    zero_stage: int = 0,
    log: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Train the model in ``init_dir`` on ``rows`` (with ``prompt`` and ``response``) and save it.

    Args:
        init_dir: HF model folder to start from (e.g. ``init_random_model``'s output).
        out_dir: Where the trained HF model is written.
        rows: Training rows.
        settings: Hyper-parameters.
        zero_stage: DeepSpeed ZeRO stage of the learner.
        log: Progress sink.

    Returns:
        Summary: final loss, seconds, tokens seen.
    """
    import torch

    threads_before = torch.get_num_threads()
    torch.set_num_threads(settings.torch_threads)
    try:
        return _train(init_dir, out_dir, rows, settings, zero_stage=zero_stage, log=log)
    finally:
        torch.set_num_threads(threads_before)


def _train(init_dir, out_dir, rows, settings: SftSettings, *, zero_stage: int, log) -> dict[str, Any]:
    from rlvr.learner.engine import Learner

    learner = Learner(
        init_dir,
        LearnerSettings(
            zero_stage=zero_stage,
            lr=settings.lr,
            weight_decay=settings.weight_decay,
            betas=(0.9, 0.98),
            grad_clip=settings.grad_clip,
            lr_schedule="cosine",
            warmup_steps=settings.warmup_steps,
            total_steps=settings.steps,
            min_lr_ratio=0.05,
            seed=settings.seed,
        ),
    )
    tok = learner.tokenizer
    examples = [encode_example(tok, r["prompt"], r["response"]) for r in rows]
    rng = random.Random(settings.seed)
    order: list[int] = []
    t0 = time.perf_counter()
    tokens = 0
    stats: dict[str, float] = {}
    for step in range(settings.steps):
        if len(order) < settings.sequences_per_step:
            fresh = list(range(len(examples)))
            rng.shuffle(fresh)
            order.extend(fresh)
        batch = [examples[i] for i in order[: settings.sequences_per_step]]
        del order[: settings.sequences_per_step]
        micro = make_micro_batches(batch, settings.micro_batch_tokens, tok.pad_token_id)
        tokens += sum(len(e["input_ids"]) for e in batch)
        stats = learner.train_step(micro, _nll_loss)
        if step % LOG_EVERY == 0 or step == settings.steps - 1:
            elapsed = time.perf_counter() - t0
            log(
                f"[sft] step {step + 1}/{settings.steps} loss {stats['loss']:.4f} "
                f"grad_norm {stats['grad_norm']:.3f} lr {stats['lr']:.2e} {duration(elapsed)}, "
                + eta(step + 1, settings.steps, elapsed)
            )
    learner.save_hf(out_dir)
    return {"final_loss": stats.get("loss"), "seconds": time.perf_counter() - t0, "tokens": tokens}
