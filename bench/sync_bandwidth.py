"""Weight-sync throughput: the collective transport and the object store, against this machine's memcpy.

    .venv/bin/python bench/sync_bandwidth.py                              # tiny and smollm2-135m
    .venv/bin/python bench/sync_bandwidth.py --models tiny --repeats 5

For each model: one DeepSpeed learner rank and one vLLM rollout worker as Ray actors on a local cluster, then
``--repeats`` timed pushes per transport after one warm-up, each push the whole model (learner gather, transfer,
vLLM in-place reload), the last one verified by the logprob probe. The memcpy baseline is a torch tensor copy
of the same number of bytes in this process, measured in the same run (best of 10). Prints GB/s of each
transport (bytes delivered / push wall time) and its fraction of memcpy, plus where the time goes.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time


def _args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--models", default="tiny,smollm2-135m", help="comma-separated model.path values")
    p.add_argument("--repeats", type=int, default=3, help="timed pushes per transport (after one warm-up)")
    p.add_argument("--bucket-mb", type=int, default=256, help="collective transport bucket size")
    return p.parse_args()


def memcpy_gbps(num_bytes: int, repeats: int = 10) -> float:
    """Best-of-``repeats`` GB/s of a torch copy of ``num_bytes`` between two host tensors."""
    import torch

    src = torch.ones(num_bytes, dtype=torch.uint8)
    dst = torch.empty_like(src)
    dst.copy_(src)  # fault the pages in
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        dst.copy_(src)
        best = min(best, time.perf_counter() - t0)
    return num_bytes / best / 1e9


def bench_model(name: str, args: argparse.Namespace) -> list[dict]:
    from rlvr.config.rollout import RolloutConfig
    from rlvr.config.sections import LearnerConfig
    from rlvr.models import is_builtin, resolve_builtin
    from rlvr.orchestrate import CollectiveTransport, ObjectStoreTransport, RolloutGroup, verify_sync
    from rlvr.orchestrate.learner_group import LearnerGroup

    path = resolve_builtin(name) if is_builtin(name) else name
    learners = LearnerGroup(path, LearnerConfig(zero_stage=0), seed=0, device="cpu", num_cpus=1)
    cfg = RolloutConfig(max_prompt_tokens=32, max_response_tokens=16, kv_cache_memory_mb=64)
    rollout = RolloutGroup(path, cfg, seed=0, device="cpu", start_timeout_s=900, dtype="float32")
    probe = ([[1, 5, 9, 14, 3], [7, 7, 2]], [[4, 8, 15, 16], [23, 42]])
    rows = []
    base = None
    try:
        transports = {
            "collective": CollectiveTransport("cpu", bucket_bytes=args.bucket_mb * 2**20),
            "object_store": ObjectStoreTransport(),
        }
        for label, transport in transports.items():
            transport.connect(rollout, learners)
            transport.push(rollout, learners)  # warm-up
            runs = [transport.push(rollout, learners) for _ in range(args.repeats)]
            delta = max(verify_sync(rollout, *probe, learners.probe(*probe), 1e-4))
            seconds = statistics.median(s.seconds for s in runs)
            num_bytes = runs[0].num_bytes
            base = base or memcpy_gbps(num_bytes)  # once per model, same bytes
            gbps = num_bytes / seconds / 1e9
            rows.append(
                {
                    "model": name,
                    "transport": label,
                    "MB": num_bytes / 1e6,
                    "push_s": seconds,
                    "learner_s": statistics.median(s.put_seconds for s in runs),
                    "engine_s": statistics.median(s.worker_seconds[0] for s in runs),
                    "GB/s": gbps,
                    "memcpy GB/s": base,
                    "of memcpy": gbps / base,
                    "probe": delta,
                }
            )
            print(_row(rows[-1]), flush=True)
    finally:
        rollout.shutdown()
        learners.shutdown()
    return rows


def _row(r: dict) -> str:
    return (
        f"{r['model']:>14} {r['transport']:>12} {r['MB']:8.1f} MB  push {r['push_s']:7.3f} s "
        f"(learner {r['learner_s']:6.3f} s, engine {r['engine_s']:6.3f} s)  {r['GB/s']:6.3f} GB/s = "
        f"{100 * r['of memcpy']:5.2f}% of memcpy {r['memcpy GB/s']:5.2f} GB/s  probe {r['probe']:.1e}"
    )


def main() -> None:
    args = _args()
    # In-process engines, so both transports reach them (the collective one reaches multiprocess ones too).
    os.environ.setdefault("VLLM_ENABLE_V1_MULTIPROCESSING", "0")
    from rlvr.orchestrate import init_ray, shutdown_ray

    init_ray(device="cpu", num_cpus=2)
    try:
        for name in [m.strip() for m in args.models.split(",") if m.strip()]:
            bench_model(name, args)
    finally:
        shutdown_ray()


if __name__ == "__main__":
    main()
