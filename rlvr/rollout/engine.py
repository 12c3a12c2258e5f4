"""The rollout engine: a thin, typed wrapper around ``vllm.LLM`` for RL sampling, scoring and live weight pushes.

One ``RolloutEngine`` owns one vLLM engine. The same code runs on CPU (in-process engine, fp32, eager, KV
cache sized from the config; docs/cpu.md says why) and on GPU (vLLM's own executor, sleep mode on).

Logprob convention: the engine is built with ``logprobs_mode="raw_logprobs"``, so the logprob returned for a
sampled token is ``log_softmax(logits)`` of the *unmodified* model distribution, i.e. before temperature,
top-k/top-p and logit processors. That is exactly what the learner recomputes with a plain forward pass, so
rollout and learner logprobs are comparable at any sampling temperature (the importance ratio of the policy
loss and the sync probe both rely on it). ``processed_logprobs`` would instead return the distribution that was
sampled from, which differs from the learner's whenever temperature != 1 or top-k/top-p truncate.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from rlvr.config.rollout import RolloutConfig
from rlvr.devices import apply_runtime_env

# vLLM's worker_extension_cls: a dotted name, imported inside vLLM's worker processes.
WEIGHT_RECEIVER = "rlvr.sync.vllm_receiver.WeightReceiverExtension"

# Tensors named "<prefix>layers.<i>.<...>" belong to decoder layer i. Fused vLLM parameters (qkv_proj,
# gate_up_proj) are built from several HF tensors of one layer, so a chunk boundary may only fall between
# layers: splitting q/k/v across two reload calls left NaN weights in the engine (measured on vLLM 0.32).
_LAYER_RE = re.compile(r"(?:^|\.)layers\.(\d+)\.")


@dataclass
class Completion:
    """One sampled response.

    Attributes:
        token_ids: Generated token ids (EOS included when the model stopped on it).
        logprobs: Raw-model logprob of each token in ``token_ids`` (same length).
        text: Detokenized response.
        finish_reason: vLLM's reason: "stop" (EOS/stop string) or "length".
        truncated: True when the response hit the token budget without EOS.
    """

    token_ids: list[int]
    logprobs: list[float]
    text: str
    finish_reason: str
    truncated: bool


@dataclass
class UpdateStats:
    """What one ``update_weights`` call moved into the engine."""

    num_tensors: int
    num_bytes: int
    num_chunks: int
    seconds: float
    version: int


@dataclass
class _EngineState:
    start_seconds: float = 0.0
    weight_version: int = 0
    num_generate_calls: int = 0
    generated_tokens: int = 0
    last_update: dict[str, Any] = field(default_factory=dict)


def layer_of(name: str) -> int | None:
    """Decoder-layer index of an HF parameter name, or None for embeddings/final norm/lm_head."""
    match = _LAYER_RE.search(name)
    return int(match.group(1)) if match else None


def chunk_by_layer(named_tensors: Iterable[tuple[str, Any]], max_chunk_bytes: int | None) -> Iterator[list]:
    """Group (name, tensor) pairs into chunks that never split a decoder layer.

    Args:
        named_tensors: HF-named tensors in any order that keeps each layer's tensors contiguous (the order of
            ``state_dict()`` / ``named_parameters()``). A layer seen again after another layer is an error,
            since its fused shards could then land in different chunks.
        max_chunk_bytes: Close a chunk at the first layer boundary after it holds this many bytes; None sends
            everything in one chunk.

    Yields:
        Lists of (name, tensor).
    """
    chunk: list = []
    chunk_bytes = 0
    current: int | None = None
    finished: set[int | None] = set()
    for name, tensor in named_tensors:
        layer = layer_of(name)
        if layer != current:
            if layer is not None and layer in finished:
                raise ValueError(
                    f"tensor {name!r} of layer {layer} arrived after that layer was closed; send each "
                    "layer's tensors contiguously so fused shards (qkv, gate_up) stay in one reload"
                )
            finished.add(current)
            if max_chunk_bytes is not None and chunk and chunk_bytes >= max_chunk_bytes:
                yield chunk
                chunk, chunk_bytes = [], 0
            current = layer
        chunk.append((name, tensor))
        chunk_bytes += tensor.numel() * tensor.element_size()
    if chunk:
        yield chunk


class RolloutEngine:
    """A vLLM engine for RL: sample with raw logprobs, score fixed sequences, take new weights.

    Args:
        model_path: HF-format model directory.
        config: The recipe's rollout section.
        seed: Engine seed (default sampling stream; per-request seeds override it).
        device: "cpu" or "cuda".
        dtype: Weight/activation dtype. fp32 on CPU (bf16 is slower without AMX); bf16 on GPU.
    """

    def __init__(
        self,
        model_path: str | os.PathLike,
        config: RolloutConfig,
        seed: int = 0,
        device: str = "cpu",
        dtype: str | None = None,
    ) -> None:
        if device not in ("cpu", "cuda"):
            raise ValueError(f"device must be 'cpu' or 'cuda', got {device!r}")
        apply_runtime_env(device)
        t0 = time.perf_counter()
        from vllm import LLM  # deferred: importing vLLM costs ~5 s and must follow the env setup

        self.config = config
        self.device = device
        self.model_path = str(model_path)
        self.seed = seed
        kwargs: dict[str, Any] = {
            "model": self.model_path,
            "seed": seed,
            "max_model_len": config.max_model_len,
            "max_num_seqs": config.max_num_seqs,
            "enforce_eager": config.enforce_eager,
            "logprobs_mode": "raw_logprobs",
            "tensor_parallel_size": config.tensor_parallel_size,
            # Methods the collective weight transport calls in every engine worker (rlvr.sync).
            "worker_extension_cls": WEIGHT_RECEIVER,
        }
        if device == "cpu":
            # In-process engine: ~2 s start instead of ~18 s, 2x throughput on 2 cores, and tensors can be
            # handed to the worker directly. vLLM's CPU memory probe misreads this VM, so size the KV cache.
            kwargs |= {
                "dtype": dtype or "float32",
                "distributed_executor_backend": "uni",
                "kv_cache_memory_bytes": _kv_cache_bytes(self.model_path, config, dtype or "float32"),
                # A chunked prefill discards the token sampled for the partial prompt and rewinds the request's
                # generator, which a CPU torch.Generator cannot do: a seeded batch whose prompts exceed the step
                # token budget crashed with "CPU Generator does not use offset" (vLLM 0.32, reproduced).
                "enable_chunked_prefill": False,
            }
        else:
            kwargs |= {
                "dtype": dtype or "bfloat16",
                "gpu_memory_utilization": config.gpu_memory_utilization,
                "enable_sleep_mode": True,
            }
        self.llm = _build_llm(LLM, kwargs, device)
        self._state = _EngineState(start_seconds=time.perf_counter() - t0)
        self._eos_ids = self._find_eos_ids()

    def _find_eos_ids(self) -> set[int]:
        tok = self.llm.get_tokenizer()
        ids = {tok.eos_token_id} if tok.eos_token_id is not None else set()
        gen_cfg = self.llm.llm_engine.model_config.try_get_generation_config() or {}
        extra = gen_cfg.get("eos_token_id")
        if isinstance(extra, int):
            ids.add(extra)
        elif isinstance(extra, list):
            ids.update(extra)
        return ids

    @property
    def start_seconds(self) -> float:
        """Wall time of engine construction, including the vLLM import."""
        return self._state.start_seconds

    @property
    def weight_version(self) -> int:
        """Number of successful ``update_weights`` calls (0 = weights from ``model_path``)."""
        return self._state.weight_version

    def generate(
        self,
        prompt_token_ids: list[list[int]],
        *,
        n: int,
        temperature: float,
        top_p: float = 1.0,
        max_tokens: int,
        top_k: int = 0,
        seed: int | None = None,
    ) -> list[list[Completion]]:
        """Sample ``n`` responses per prompt.

        Args:
            prompt_token_ids: One list of token ids per prompt.
            n: Responses per prompt.
            temperature: Sampling temperature; 0 means greedy.
            top_p: Nucleus mass.
            max_tokens: Response token budget.
            top_k: Top-k cut-off; 0 or -1 disables it.
            seed: When set, prompt ``i`` is sampled with seed ``seed + i * n`` (vLLM gives its ``n`` children
                ``+0..n-1``), so every sample has its own stream and results do not depend on batching.

        Returns:
            ``out[i][j]`` is response ``j`` of prompt ``i``, with raw-model logprobs of its tokens.
        """
        from vllm import SamplingParams
        from vllm.inputs import TokensPrompt

        params = [
            SamplingParams(
                n=n,
                temperature=temperature,
                top_p=top_p,
                top_k=top_k if top_k > 0 else 0,
                max_tokens=max_tokens,
                logprobs=0,
                seed=None if seed is None else seed + i * n,
            )
            for i in range(len(prompt_token_ids))
        ]
        prompts = [TokensPrompt(prompt_token_ids=list(p)) for p in prompt_token_ids]
        outputs = self.llm.generate(prompts, params, use_tqdm=False)
        result = [[self._completion(c) for c in out.outputs] for out in outputs]
        self._state.num_generate_calls += 1
        self._state.generated_tokens += sum(len(c.token_ids) for group in result for c in group)
        return result

    def _completion(self, out: Any) -> Completion:
        token_ids = list(out.token_ids)
        if out.logprobs is None or len(out.logprobs) != len(token_ids):
            raise RuntimeError(
                f"vLLM returned {0 if out.logprobs is None else len(out.logprobs)} logprobs for "
                f"{len(token_ids)} tokens"
            )
        logprobs = [float(step[tok].logprob) for tok, step in zip(token_ids, out.logprobs)]
        ended_on_eos = bool(token_ids) and token_ids[-1] in self._eos_ids
        truncated = out.finish_reason == "length" and not ended_on_eos
        return Completion(token_ids, logprobs, out.text, str(out.finish_reason), truncated)

    def score(self, prompt_ids: list[list[int]], response_ids: list[list[int]]) -> list[list[float]]:
        """Raw-model logprob of every response token given its prompt (teacher forcing, no sampling).

        Args:
            prompt_ids: One non-empty prompt per sequence.
            response_ids: The fixed response tokens to score, paired with ``prompt_ids``.

        Returns:
            ``out[i][t] = log p(response_ids[i][t] | prompt_ids[i] + response_ids[i][:t])``.
        """
        from vllm import SamplingParams
        from vllm.inputs import TokensPrompt

        if len(prompt_ids) != len(response_ids):
            raise ValueError(f"{len(prompt_ids)} prompts but {len(response_ids)} responses")
        if any(len(p) == 0 for p in prompt_ids):
            raise ValueError("every prompt needs at least one token (the first position has no logprob)")
        # prompt_logprobs are computed from the un-processed logits (vLLM never applies sampling processors
        # to prompt positions), and requests asking for them bypass prefix-cache hits so every position is
        # actually computed.
        params = SamplingParams(max_tokens=1, temperature=1.0, prompt_logprobs=0, detokenize=False)
        prompts = [TokensPrompt(prompt_token_ids=list(p) + list(r)) for p, r in zip(prompt_ids, response_ids)]
        outputs = self.llm.generate(prompts, params, use_tqdm=False)
        scores = []
        for p, r, out in zip(prompt_ids, response_ids, outputs):
            positions = out.prompt_logprobs[len(p) : len(p) + len(r)]
            scores.append([float(step[tok].logprob) for tok, step in zip(r, positions)])
        return scores

    def update_weights(
        self, named_tensors: Iterable[tuple[str, Any]], *, max_chunk_bytes: int | None = None
    ) -> UpdateStats:
        """Load new weights (HF names, full unsharded tensors) into the live engine.

        Partial updates are allowed: parameters not sent keep their values. Tensors are grouped by decoder
        layer so fused vLLM parameters always receive all their shards in one reload call.

        Args:
            named_tensors: (hf_name, tensor) pairs, each layer's tensors contiguous.
            max_chunk_bytes: Bound the size of one reload call (None: a single call).

        Returns:
            Counts and timing of the update.
        """
        t0 = time.perf_counter()
        num_tensors = num_bytes = num_chunks = 0
        for chunk in chunk_by_layer(named_tensors, max_chunk_bytes):
            self._reload(chunk)
            num_chunks += 1
            num_tensors += len(chunk)
            num_bytes += sum(t.numel() * t.element_size() for _, t in chunk)
        if num_chunks == 0:
            raise ValueError("update_weights got no tensors")
        # Cached prefixes hold KV computed with the old weights.
        self.llm.reset_prefix_cache()
        self._state.weight_version += 1
        stats = UpdateStats(
            num_tensors, num_bytes, num_chunks, time.perf_counter() - t0, self._state.weight_version
        )
        self._state.last_update = stats.__dict__.copy()
        return stats

    def _reload(self, chunk: list) -> None:
        # vLLM's in-place reload restores the layers, loads the checkpoint-format tensors (fusing q/k/v and
        # gate/up) and re-runs the backend's post-load repacking; model.load_weights alone breaks on CPU.
        executor = self.llm.llm_engine.model_executor
        driver = getattr(executor, "driver_worker", None)
        if driver is None:
            raise NotImplementedError(
                "object-store pushes need an in-process engine (VLLM_ENABLE_V1_MULTIPROCESSING=0); with a "
                "multiprocess engine use rollout.sync.transport: collective"
            )
        driver.worker.reload_weights(weights_iterator=iter(chunk), is_checkpoint_format=True)

    def join_weight_group(
        self, host: str, port: int, rank_offset: int, world_size: int, timeout_s: float, local_address: str
    ) -> list[int]:
        """Every engine worker joins the collective weight group (``rlvr.sync``); returns their group ranks.

        Worker ``i`` of this engine (its tensor-parallel rank) becomes group rank ``rank_offset + i``.
        """
        kwargs = {
            "host": host,
            "port": port,
            "rank_offset": rank_offset,
            "world_size": world_size,
            "device": self.device,
            "timeout_s": timeout_s,
            "local_address": local_address,
        }
        return self.llm.collective_rpc("rlvr_join_weight_group", kwargs=kwargs)

    def receive_weights(self) -> UpdateStats:
        """Receive one push of the collective weight group into every engine worker and load it."""
        t0 = time.perf_counter()
        per_worker = self.llm.collective_rpc("rlvr_receive_weights")
        self.llm.reset_prefix_cache()  # cached prefixes hold KV computed with the old weights
        self._state.weight_version += 1
        first = per_worker[0]
        stats = UpdateStats(
            first["num_tensors"], first["num_bytes"], 1, time.perf_counter() - t0, self._state.weight_version
        )
        self._state.last_update = stats.__dict__.copy()
        return stats

    def leave_weight_group(self) -> None:
        """Every engine worker leaves the collective weight group."""
        self.llm.collective_rpc("rlvr_leave_weight_group")

    def sleep(self) -> None:
        """Free accelerator memory for the learner (GPU). A no-op on CPU, where vLLM has no sleep mode."""
        if self.device == "cuda":
            self.llm.sleep(level=1)

    def wake_up(self) -> None:
        """Undo ``sleep``. A no-op on CPU."""
        if self.device == "cuda":
            self.llm.wake_up()

    def health(self) -> dict[str, Any]:
        """A cheap status report: identity, weight version, counters and resident memory."""
        return {
            "ok": True,
            "pid": os.getpid(),
            "device": self.device,
            "model_path": self.model_path,
            "weight_version": self._state.weight_version,
            "engine_start_s": round(self._state.start_seconds, 3),
            "generate_calls": self._state.num_generate_calls,
            "generated_tokens": self._state.generated_tokens,
            "last_update": dict(self._state.last_update),
            "rss_mb": _rss_mb(),
        }


def _kv_cache_bytes(model_path: str, config: RolloutConfig, dtype: str) -> int:
    """`rollout.kv_cache_memory_mb`, or (None) sized from the model and `max_num_seqs` (rlvr.rollout.kv_cache)."""
    if config.kv_cache_memory_mb is not None:
        return config.kv_cache_memory_mb * 2**20
    from transformers import AutoConfig

    from rlvr.rollout.kv_cache import kv_cache_bytes

    hf = AutoConfig.from_pretrained(model_path)
    return kv_cache_bytes(hf, dtype, max_num_seqs=config.max_num_seqs, max_model_len=config.max_model_len)


def _build_llm(llm_cls: Any, kwargs: dict[str, Any], device: str) -> Any:
    """Construct ``vllm.LLM``; on CPU make the config's KV-cache size win over the environment.

    vLLM's CPU platform lets the legacy ``VLLM_CPU_KVCACHE_SPACE`` (whole GiB, if the environment sets it)
    override ``kv_cache_memory_bytes``; hidden for the construction only, so the recipe value is used.
    """
    saved = os.environ.pop("VLLM_CPU_KVCACHE_SPACE", None) if device == "cpu" else None
    try:
        return llm_cls(**kwargs)
    finally:
        if saved is not None:
            os.environ["VLLM_CPU_KVCACHE_SPACE"] = saved


def _rss_mb() -> float:
    try:
        with open("/proc/self/statm") as f:
            pages = int(f.read().split()[1])
        return round(pages * os.sysconf("SC_PAGE_SIZE") / 2**20, 1)
    except OSError:
        return -1.0
