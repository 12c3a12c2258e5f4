"""The weight group without any actor: bucket layout (fused shards together, size bound) and a real gloo push
between three processes on loopback."""

from __future__ import annotations

import multiprocessing as mp

import pytest
import torch

from rlvr.sync.group import WeightGroup, backend_for, bucket_bytes_of, plan_buckets, unit_of

MiB = 2**20


def llama_layer(i: int, hidden: int = 64, inter: int = 128) -> list[tuple[str, torch.Tensor]]:
    """One decoder layer's tensors in state_dict order (Qwen2's q/k/v biases interleave with the weights)."""
    p = f"model.layers.{i}."
    return [
        (p + "self_attn.q_proj.weight", torch.randn(hidden, hidden)),
        (p + "self_attn.q_proj.bias", torch.randn(hidden)),
        (p + "self_attn.k_proj.weight", torch.randn(hidden // 4, hidden)),
        (p + "self_attn.k_proj.bias", torch.randn(hidden // 4)),
        (p + "self_attn.v_proj.weight", torch.randn(hidden // 4, hidden)),
        (p + "self_attn.o_proj.weight", torch.randn(hidden, hidden)),
        (p + "mlp.gate_proj.weight", torch.randn(inter, hidden)),
        (p + "mlp.up_proj.weight", torch.randn(inter, hidden)),
        (p + "mlp.down_proj.weight", torch.randn(hidden, inter)),
        (p + "input_layernorm.weight", torch.randn(hidden)),
    ]


def test_unit_names_follow_vllm_fusion() -> None:
    assert unit_of("model.layers.3.self_attn.k_proj.weight") == "model.layers.3.self_attn.qkv_proj"
    assert unit_of("model.layers.3.self_attn.v_proj.bias") == "model.layers.3.self_attn.qkv_proj"
    assert unit_of("model.layers.3.mlp.up_proj.weight") == "model.layers.3.mlp.gate_up_proj"
    assert unit_of("model.layers.3.mlp.down_proj.weight") == "model.layers.3.mlp.down_proj.weight"
    assert unit_of("lm_head.weight") == "lm_head.weight"


@pytest.mark.parametrize("bucket_bytes", [1, 40_000, 70_000, 200_000, 10 * MiB])
def test_buckets_keep_fused_shards_together_and_respect_the_bound(bucket_bytes: int) -> None:
    named = [("model.embed_tokens.weight", torch.randn(100, 64))]
    named += [t for i in range(3) for t in llama_layer(i)] + [("model.norm.weight", torch.randn(64))]
    buckets = plan_buckets(named, bucket_bytes)
    flat = [m.name for b in buckets for m in b]
    assert flat == [n for n, _ in named]  # every tensor once, in order
    where = {m.name: i for i, b in enumerate(buckets) for m in b}
    for name, _ in named:  # shards of one fused parameter share a bucket
        assert all(where[n] == where[name] for n, _ in named if unit_of(n) == unit_of(name))
    sizes = {n: t.numel() * t.element_size() for n, t in named}
    for bucket in buckets:
        units = {unit_of(m.name) for m in bucket}
        if len(units) > 1:  # only a lone oversize unit may exceed the bound
            assert bucket_bytes_of(bucket) <= bucket_bytes
        assert all(m.offset % 64 == 0 for m in bucket)
        assert sum(sizes[m.name] for m in bucket) <= bucket_bytes_of(bucket)
    if bucket_bytes == 1:  # one bucket per fused unit
        assert len(buckets) == len({unit_of(n) for n, _ in named})
    if bucket_bytes == 10 * MiB:
        assert len(buckets) == 1


def test_split_fused_parameter_is_refused() -> None:
    named = llama_layer(0)
    named.insert(1, named.pop(7))  # up_proj between q_proj and k_proj
    with pytest.raises(ValueError, match="qkv_proj"):
        plan_buckets(named, MiB)


def test_backend_follows_the_device() -> None:
    assert backend_for("cpu") == "gloo" and backend_for("cuda") == "nccl"
    with pytest.raises(ValueError, match="tpu"):
        backend_for("tpu")


def _receive(port: int, rank: int, queue) -> None:
    group = WeightGroup("127.0.0.1", port, rank, 3, "cpu", 60)
    group.connect()
    queue.put((rank, [(n, t.clone()) for n, t in group.receive()]))
    group.close()


def test_gloo_push_reaches_every_receiver_bit_exact() -> None:
    named = [
        *llama_layer(0),
        ("model.norm.weight", torch.randn(64).to(torch.bfloat16)),
        ("step", torch.tensor(7)),
    ]
    ctx = mp.get_context("forkserver")
    sender = WeightGroup("127.0.0.1", 0, 0, 3, "cpu", 60)
    queue = ctx.Queue()
    procs = [ctx.Process(target=_receive, args=(sender.port, r, queue)) for r in (1, 2)]
    for proc in procs:
        proc.start()
    try:
        sender.connect()
        num_tensors, num_bytes = sender.send(named, bucket_bytes=20_000)
        assert num_tensors == len(named)
        assert num_bytes >= sum(t.numel() * t.element_size() for _, t in named)
        got = dict(queue.get(timeout=60) for _ in procs)
    finally:
        for proc in procs:
            proc.join(timeout=60)
        sender.close()
    assert sorted(got) == [1, 2]
    for received in got.values():
        assert [n for n, _ in received] == [n for n, _ in named]
        for (_, want), (_, have) in zip(named, received):
            assert have.dtype == want.dtype and have.shape == want.shape and torch.equal(have, want)
