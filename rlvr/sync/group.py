"""The weight group: a private torch.distributed group between learner rank 0 and every rollout engine worker.

Rank 0 of the group is learner rank 0 (the sender); ranks 1.. are the engine workers of every rollout worker
(``tensor_parallel_size`` per rollout worker, all of them receive every tensor and vLLM's loaders take each
worker's shard). The group lives beside each process's own world (DeepSpeed's on the learner, vLLM's in the
engine): it is built from a ``TCPStore`` that learner rank 0 hosts on its node's address and a port the
operating system picks, and a gloo (CPU) or NCCL (CUDA) backend constructed directly, so neither world's global
state is touched. Same code on both devices; only the backend and the buffer device differ.

A push is one metadata broadcast (names, shapes, dtypes, bucket layout) followed by one broadcast per bucket: a
flat byte buffer holding whole *units*, where a unit is the set of tensors vLLM fuses into one parameter
(``q_proj``/``k_proj``/``v_proj`` -> ``qkv_proj``, ``gate_proj``/``up_proj`` -> ``gate_up_proj`` of one layer,
weights and biases),
so the shards of one fused parameter always arrive together. Imports torch only.
"""

from __future__ import annotations

import contextlib
import pickle
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import torch

# HF projections that vLLM packs into one parameter (vLLM's ``packed_modules_mapping`` of Llama/Qwen/Mistral).
_FUSED = {"q_proj": "qkv_proj", "k_proj": "qkv_proj", "v_proj": "qkv_proj"}
_FUSED |= {"gate_proj": "gate_up_proj", "up_proj": "gate_up_proj"}
_PROJ_RE = re.compile(r"\.(" + "|".join(_FUSED) + r")\.")

_ALIGN = 64  # byte alignment of each tensor inside a bucket

BACKENDS = {"cpu": "gloo", "cuda": "nccl"}


def backend_for(device: str) -> str:
    """The collective backend for a device: gloo on CPU, NCCL on CUDA."""
    try:
        return BACKENDS[device]
    except KeyError:
        raise ValueError(
            f"no weight-group backend for device {device!r}; known: {sorted(BACKENDS)}"
        ) from None


def unit_of(name: str) -> str:
    """The fused vLLM module a tensor belongs to (``...layers.0.self_attn.qkv_proj`` for q/k/v weights and
    biases alike), or the tensor's own name when vLLM does not fuse it."""
    match = _PROJ_RE.search(name)
    if match is None:
        return name
    return name[: match.start()] + "." + _FUSED[match.group(1)]


@dataclass(frozen=True)
class TensorMeta:
    """What a receiver needs to rebuild one tensor from a bucket's bytes."""

    name: str
    shape: tuple[int, ...]
    dtype: torch.dtype
    offset: int  # byte offset inside its bucket

    @property
    def num_bytes(self) -> int:
        numel = 1
        for dim in self.shape:
            numel *= dim
        return numel * self.dtype.itemsize


def plan_buckets(named: list[tuple[str, Any]], bucket_bytes: int) -> list[list[TensorMeta]]:
    """Lay tensors out in buckets of at most ``bucket_bytes``, never splitting a fused unit.

    Tensors keep their order; the tensors of one unit must be contiguous in it (the order of ``state_dict()``).
    A unit larger than ``bucket_bytes`` travels alone in a bucket of its own size. Each tensor starts on a
    64-byte boundary (counted in the bucket's size).

    Raises:
        ValueError: A unit's tensors are not contiguous, or ``bucket_bytes`` is not positive.
    """
    if bucket_bytes <= 0:
        raise ValueError(f"bucket_bytes must be positive, got {bucket_bytes}")
    units: list[list[tuple[str, Any]]] = []
    seen: set[str] = set()
    for name, tensor in named:
        unit = unit_of(name)
        if units and unit_of(units[-1][-1][0]) == unit:
            units[-1].append((name, tensor))
            continue
        if unit in seen:
            raise ValueError(
                f"tensor {name!r} of fused parameter {unit!r} is not next to the others; send each fused "
                "parameter's shards together (state_dict order)"
            )
        seen.add(unit)
        units.append([(name, tensor)])
    buckets: list[list[TensorMeta]] = []
    size = 0
    for unit in units:
        unit_bytes = sum(_aligned(t.numel() * t.element_size()) for _, t in unit)
        if not buckets or (size > 0 and size + unit_bytes > bucket_bytes):
            buckets.append([])
            size = 0
        for name, tensor in unit:
            buckets[-1].append(TensorMeta(name, tuple(tensor.shape), tensor.dtype, size))
            size += _aligned(tensor.numel() * tensor.element_size())
    return buckets


def _aligned(num_bytes: int) -> int:
    """Round up to ``_ALIGN`` so every tensor of a bucket starts on a boundary its dtype can be viewed at."""
    return -(-num_bytes // _ALIGN) * _ALIGN


def bucket_bytes_of(bucket: list[TensorMeta]) -> int:
    """Size of a bucket's flat buffer."""
    return bucket[-1].offset + bucket[-1].num_bytes if bucket else 0


class WeightGroup:
    """Member of the weight group; rank 0 sends, every other rank receives.

    Args:
        host: Address of learner rank 0's node (the store's host), reachable from every rollout node.
        port: The store's port (0 on rank 0: the operating system picks a free one, read back as ``port``).
        rank: This member's rank (0 = the learner).
        world_size: 1 + the number of engine workers over all rollout workers.
        device: "cpu" (gloo, host buffers) or "cuda" (NCCL, buffers on the current CUDA device).
        timeout_s: Deadline of the rendezvous and of every broadcast.
        local_address: This process's own address, where gloo listens (the node's IP on a multi-node cluster).
    """

    def __init__(
        self,
        host: str,
        port: int,
        rank: int,
        world_size: int,
        device: str,
        timeout_s: float,
        local_address: str | None = None,
    ) -> None:
        from torch.distributed import PrefixStore, TCPStore

        self.rank, self.world_size, self.device = rank, world_size, device
        self.backend_name = backend_for(device)
        timeout = timedelta(seconds=timeout_s)
        self._store = TCPStore(
            host, port, world_size, is_master=rank == 0, timeout=timeout, wait_for_workers=False
        )
        self.host, self.port = host, self._store.port
        self._prefix = PrefixStore("rlvr-weights", self._store)
        self._timeout = timeout
        self._local_address = local_address or host
        self._backend: Any = None

    def connect(self) -> None:
        """Build the backend: blocks until every member has called it (the group's rendezvous)."""
        if self.backend_name == "gloo":
            from torch.distributed import ProcessGroupGloo

            options = ProcessGroupGloo._Options()
            options._timeout = self._timeout
            options._devices = [ProcessGroupGloo.create_device(hostname=self._local_address)]
            self._backend = ProcessGroupGloo(self._prefix, self.rank, self.world_size, options)
        else:
            from torch.distributed import ProcessGroupNCCL

            options = ProcessGroupNCCL.Options()
            options._timeout = self._timeout
            self._backend = ProcessGroupNCCL(self._prefix, self.rank, self.world_size, options)
        self.broadcast(torch.zeros(1, device=self._buffer_device))  # every link up before the first push

    @property
    def _buffer_device(self) -> torch.device:
        return (
            torch.device("cuda", torch.cuda.current_device())
            if self.device == "cuda"
            else torch.device("cpu")
        )

    def broadcast(self, tensor: torch.Tensor) -> None:
        """Broadcast ``tensor`` in place from rank 0."""
        from torch.distributed import BroadcastOptions

        if self._backend is None:
            raise RuntimeError("weight group used before connect()")
        options = BroadcastOptions()
        options.rootRank, options.rootTensor = 0, 0
        options.timeout = self._timeout
        self._backend.broadcast([tensor], options).wait()

    def _broadcast_object(self, obj: Any) -> Any:
        payload = pickle.dumps(obj) if self.rank == 0 else b""
        size = torch.tensor([len(payload)], dtype=torch.int64, device=self._buffer_device)
        self.broadcast(size)
        buf = torch.empty(int(size.item()), dtype=torch.uint8, device=self._buffer_device)
        if self.rank == 0:
            buf.copy_(torch.frombuffer(bytearray(payload), dtype=torch.uint8))
        self.broadcast(buf)
        return pickle.loads(buf.cpu().numpy().tobytes()) if self.rank != 0 else obj

    def send(self, named: Iterable[tuple[str, torch.Tensor]], bucket_bytes: int) -> tuple[int, int]:
        """Rank 0: broadcast every tensor, bucket by bucket. Returns (tensors, bytes) sent."""
        tensors = list(named)
        buckets = plan_buckets(tensors, bucket_bytes)
        self._broadcast_object(buckets)
        by_name = dict(tensors)
        total = 0
        for bucket in buckets:
            buf = torch.empty(bucket_bytes_of(bucket), dtype=torch.uint8, device=self._buffer_device)
            for meta in bucket:
                source = by_name[meta.name].detach().contiguous().reshape(-1).view(torch.uint8)
                buf[meta.offset : meta.offset + meta.num_bytes].copy_(source)
            self.broadcast(buf)
            total += buf.numel()
        return len(tensors), total

    def receive(self) -> Iterator[tuple[str, torch.Tensor]]:
        """Ranks 1..: yield (name, tensor) as the buckets arrive (consume it whole: every bucket is a collective).

        Tensors are views of their bucket's buffer, on this member's device; one bucket is held at a time.
        """
        buckets: list[list[TensorMeta]] = self._broadcast_object(None)
        for bucket in buckets:
            buf = torch.empty(bucket_bytes_of(bucket), dtype=torch.uint8, device=self._buffer_device)
            self.broadcast(buf)
            for meta in bucket:
                raw = buf[meta.offset : meta.offset + meta.num_bytes]
                yield meta.name, raw.view(meta.dtype).view(meta.shape)

    def close(self) -> None:
        """Drop the backend and the store (the other members should close theirs too)."""
        if self._backend is not None and hasattr(self._backend, "shutdown"):
            with contextlib.suppress(RuntimeError):  # a peer already gone
                self._backend.shutdown()
        self._backend = None
        self._store = None
