"""Rollout throughput: RolloutEngine.generate (vLLM) vs HF ``generate`` on the same prompts, same run.

    .venv/bin/python bench/bench_rollout.py                      # tiny random model, small sizes
    .venv/bin/python bench/bench_rollout.py --prompts 64 --n 8 --max-tokens 64 --hidden 512 --layers 8

Both sides sample at temperature 1 without top-k. vLLM may stop at EOS (rare for a random model) and counts
the tokens it actually generated; HF is held to full length with ``min_new_tokens``. So tokens/s compares the
same work. Prints engine start time, weight-push time and the vLLM/HF tokens/s ratio.
"""

from __future__ import annotations

import argparse
import tempfile
import time


def _args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default=None, help="HF model dir (default: a fresh tiny random model)")
    p.add_argument("--hidden", type=int, default=256, help="hidden size of the tiny model")
    p.add_argument("--layers", type=int, default=4, help="decoder layers of the tiny model")
    p.add_argument("--prompts", type=int, default=8)
    p.add_argument("--n", type=int, default=4, help="samples per prompt")
    p.add_argument("--max-tokens", type=int, default=32)
    p.add_argument("--repeats", type=int, default=1, help="timed repeats (after one warm-up)")
    return p.parse_args()


def _prompts(tok, count: int) -> list[list[int]]:
    return [tok(f"Question {i}: what is {i} + {2 * i}?")["input_ids"] for i in range(count)]


def _bench_vllm(path: str, prompts: list[list[int]], args: argparse.Namespace) -> tuple[float, float, float]:
    from rlvr.config.rollout import RolloutConfig
    from rlvr.rollout.engine import RolloutEngine

    longest = max(len(p) for p in prompts)
    cfg = RolloutConfig(
        max_prompt_tokens=longest, max_response_tokens=args.max_tokens, kv_cache_memory_mb=128
    )
    t0 = time.perf_counter()
    engine = RolloutEngine(path, cfg, seed=0, device="cpu")
    start_s = time.perf_counter() - t0
    kw = {"n": args.n, "temperature": 1.0, "max_tokens": args.max_tokens}
    engine.generate(prompts, seed=0, **kw)  # warm-up
    tokens, seconds = 0, 0.0
    for r in range(args.repeats):
        t0 = time.perf_counter()
        out = engine.generate(prompts, seed=r + 1, **kw)
        seconds += time.perf_counter() - t0
        tokens += sum(len(c.token_ids) for g in out for c in g)

    import torch
    from transformers import AutoModelForCausalLM

    weights = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32).state_dict()
    t0 = time.perf_counter()
    stats = engine.update_weights(weights.items())
    push_s = time.perf_counter() - t0
    print(
        f"vLLM: engine start {start_s:.1f} s; weight push {push_s * 1e3:.0f} ms "
        f"({stats.num_bytes / 2**20:.1f} MiB, {stats.num_chunks} call)"
    )
    return tokens / seconds, start_s, push_s


def _bench_hf(path: str, prompts: list[list[int]], args: argparse.Namespace) -> float:
    import torch
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32).eval()
    pad = model.config.pad_token_id if model.config.pad_token_id is not None else 0
    longest = max(len(p) for p in prompts)
    # left padding so every row continues from its last prompt token
    ids = torch.tensor([[pad] * (longest - len(p)) + p for p in prompts])
    mask = torch.tensor([[0] * (longest - len(p)) + [1] * len(p) for p in prompts])
    kw = {
        "do_sample": True,
        "top_k": 0,
        "num_return_sequences": args.n,
        "max_new_tokens": args.max_tokens,
        "min_new_tokens": args.max_tokens,
        "pad_token_id": pad,
    }
    with torch.no_grad():
        model.generate(input_ids=ids, attention_mask=mask, **kw)  # warm-up
        tokens, seconds = 0, 0.0
        for _ in range(args.repeats):
            t0 = time.perf_counter()
            out = model.generate(input_ids=ids, attention_mask=mask, **kw)
            seconds += time.perf_counter() - t0
            tokens += (out.shape[1] - longest) * out.shape[0]
    return tokens / seconds


def main() -> None:
    args = _args()
    from rlvr.devices import apply_runtime_env

    apply_runtime_env("cpu")
    from transformers import AutoTokenizer

    path = args.model
    if path is None:
        from rlvr.tiny.model import init_random_model

        heads = max(args.hidden // 64, 1)
        path = str(
            init_random_model(
                tempfile.mkdtemp(prefix="bench_rollout_"),
                seed=0,
                hidden_size=args.hidden,
                num_hidden_layers=args.layers,
                num_attention_heads=heads,
                num_key_value_heads=max(heads // 2, 1),
                intermediate_size=4 * args.hidden,
            )
        )
    prompts = _prompts(AutoTokenizer.from_pretrained(path), args.prompts)
    print(
        f"model {path}; {args.prompts} prompts x n={args.n} x {args.max_tokens} tokens, {args.repeats} repeats"
    )
    vllm_tps, _, _ = _bench_vllm(path, prompts, args)
    hf_tps = _bench_hf(path, prompts, args)
    print(f"tokens/s  vLLM {vllm_tps:,.0f}  HF {hf_tps:,.0f}  ratio vLLM/HF {vllm_tps / hf_tps:.2f}x")


if __name__ == "__main__":
    main()
