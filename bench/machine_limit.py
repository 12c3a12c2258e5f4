"""The machine limit of one RL step: standalone vLLM generation plus one plain-torch update, no framework.

    .venv/bin/python bench/machine_limit.py --models tiny --repeats 2                   # quick check
    .venv/bin/python bench/machine_limit.py --models tiny,18m,72m                       # the full table
    .venv/bin/python bench/machine_limit.py --models tiny --compare runs/bench_compare/results.json

What one RL step of `bench/compare_trl.py` must do at the least, measured with plain libraries in one process
(no Ray, no rlvr loop), on the same models (`build_model`), prompts (`write_prompts`, through the tokenizer's
chat template exactly as rlvr and TRL render them) and equal-work settings: P prompts x G samples (16 x 8), at
most `--max-new-tokens` new tokens, temperature 1, fp32, AdamW at lr 1e-6.

- generate: `vllm.LLM` built with the kwargs rlvr's CPU rollout engine uses (in-process "uni" executor, fp32,
  eager, no chunked prefill, the KV cache compare_trl gives rlvr, rlvr's CPU runtime environment), sampling
  n=G per prompt with rlvr's sampling params (raw logprobs of the sampled tokens, one seed per prompt);
  `--plain-sampling` drops the logprobs and seeds to show what they cost. Timed over `--repeats` batches of
  different prompts after one untimed warm-up batch.
- update: one HF `AutoModelForCausalLM` (fp32, train mode) forward + backward + grad clip (1.0, rlvr's and
  TRL's default) + AdamW step over exactly the sequences vLLM generated: per-token logprobs of the response
  tokens (cross-entropy on the response positions only) x a dummy +-1 advantage, mean over response tokens.
  Two layouts: one right-padded batch with an attention mask (what TRL does), and micro-batches of at most
  `--micro-batch-tokens` padded tokens, longest first (rlvr's packer; the default is rlvr's
  `learner.micro_batch_tokens`). Timed on each generated batch after one untimed warm-up update.
- step: generate + the better update layout.

With `--compare <results.json>` (a compare_trl output) it prints rlvr's efficiency per phase, limit / rlvr:
generate vs rlvr's generate phase, update vs rlvr's logprobs + update phases, step vs step (medians; 1 means
rlvr runs at the machine limit). Before each timed part the script waits for the 1-minute load average to
fall below `--idle-load` (at most `--idle-max-wait` s) and records the load. Writes `<out>/limit.json`.
"""

from __future__ import annotations

import argparse
import gc
import json
import math
import os
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, NoReturn

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import MAX_PROMPT_TOKENS, fmt_range, kv_cache_mb, parse_models, ratio, step_stats
from compare_trl import _wait_idle, build_model, count_params, write_prompts

PROG = "bench/machine_limit.py"
GRAD_CLIP = 1.0  # rlvr's learner.grad_clip default and TRL's max_grad_norm default


def default_micro_batch_tokens() -> int:
    """rlvr's `learner.micro_batch_tokens` default (the recipe schema is the one source of it)."""
    from rlvr.config.sections import LearnerConfig

    return int(LearnerConfig.model_fields["micro_batch_tokens"].default)


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:  # one line, exit 2 (no usage block)
        self.exit(2, f"{PROG}: error: {message}\n")


def _args(argv: list[str] | None = None) -> argparse.Namespace:
    p = _Parser(prog=PROG, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--models", default="tiny", help="comma list of tiny,18m,72m")
    p.add_argument("--prompts", type=int, default=16, help="prompts per step (P)")
    p.add_argument("--samples", type=int, default=8, help="samples per prompt (G)")
    p.add_argument("--max-new-tokens", type=int, default=64, help="response cap")
    p.add_argument("--repeats", type=int, default=5, help="timed batches per part (after one warm-up)")
    p.add_argument(
        "--micro-batch-tokens",
        type=int,
        default=None,
        help="padded-token budget of one micro-batch (default: rlvr's learner.micro_batch_tokens)",
    )
    p.add_argument(
        "--plain-sampling", action="store_true", help="no sampled-token logprobs, no per-prompt seeds"
    )
    p.add_argument("--compare", default=None, help="a compare_trl results.json: print rlvr's efficiency")
    p.add_argument("--out", default="runs/bench_limit", help="output folder (limit.json, prompts)")
    p.add_argument(
        "--idle-load", type=float, default=0.5, help="start a timed part when the 1-min load is below"
    )
    p.add_argument("--idle-max-wait", type=float, default=300.0, help="longest wait for an idle machine (s)")
    p.add_argument("--seed", type=int, default=0, help="sampling and advantage seed")
    args = p.parse_args(argv)
    if args.micro_batch_tokens is None:
        args.micro_batch_tokens = default_micro_batch_tokens()
    for flag in ("prompts", "samples", "max_new_tokens", "repeats", "micro_batch_tokens"):
        if getattr(args, flag) < 1:
            p.error(f"--{flag.replace('_', '-')} must be >= 1, got {getattr(args, flag)}")
    if args.idle_max_wait < 0:
        p.error(f"--idle-max-wait must be >= 0, got {args.idle_max_wait}")
    try:
        args.model_list = parse_models(args.models)
    except ValueError as e:
        p.error(str(e))
    return args


# ---- pure parts --------------------------------------------------------------------------------------------


def micro_batches(lengths: Sequence[int], budget: int) -> list[list[int]]:
    """Indices of `lengths` in micro-batches of at most `budget` padded tokens: rlvr's packer, longest first
    (similar lengths share a micro-batch, so padding stays small; an over-long sequence goes alone)."""
    from rlvr.batch import pack_micro_batches

    if budget < 1:
        raise ValueError(f"--micro-batch-tokens: the budget must be >= 1, got {budget}")
    return pack_micro_batches(list(lengths), budget, longest_first=True)


def padded_tokens(lengths: Sequence[int], batches: Sequence[Sequence[int]]) -> int:
    """Tokens the forward pass computes: sum over micro-batches of rows x longest row."""
    return sum(len(b) * max(lengths[i] for i in b) for b in batches if b)


def load_compare(path: str | Path) -> dict[str, Any]:
    """A compare_trl results.json; ValueError (one line) when it cannot be used."""
    try:
        results = json.loads(Path(path).read_text())
    except OSError as e:
        raise ValueError(f"--compare {path}: cannot read it ({e.strerror or e})") from None
    except ValueError as e:
        raise ValueError(f"--compare {path}: not JSON ({e})") from None
    if not isinstance(results, dict) or not isinstance(results.get("models"), dict):
        raise ValueError(
            f"--compare {path}: no 'models' table (expected a bench/compare_trl.py results.json)"
        )
    return results


def rlvr_figures(results: Mapping[str, Any], name: str) -> dict[str, float] | None:
    """rlvr's medians for model `name`: generate, update (= logprobs + update phases) and step; None if absent.

    A phase missing from the file is NaN, except `logprobs` (rlvr may not time a separate old-logprob pass),
    which then counts as 0.
    """
    run = results.get("models", {}).get(name, {}).get("rlvr")
    if not isinstance(run, dict) or "summary" not in run:
        return None
    summary = run["summary"]
    phases = summary.get("phases", {})

    def median(phase: str, missing: float = math.nan) -> float:
        return float(phases[phase]["median"]) if phase in phases else missing

    return {
        "generate": median("generate"),
        "update": median("logprobs", 0.0) + median("update"),
        "step": float(summary.get("step_s", {}).get("median", math.nan)),
    }


def efficiency(limit: Mapping[str, float], rlvr: Mapping[str, float]) -> dict[str, float]:
    """limit / rlvr per phase (generate, update, step): 1 = rlvr at the machine limit; NaN where unknown."""
    return {k: ratio(limit[k], rlvr[k]) for k in ("generate", "update", "step")}


def settings_mismatch(args: argparse.Namespace, results: Mapping[str, Any]) -> list[str]:
    """The equal-work settings in which `results` (a compare_trl run) differs from this run."""
    theirs = results.get("settings", {})
    return [
        f"{k} {theirs[k]} there, {getattr(args, k)} here"
        for k in ("prompts", "samples", "max_new_tokens")
        if k in theirs and theirs[k] != getattr(args, k)
    ]


# ---- generation --------------------------------------------------------------------------------------------


def runtime_env() -> dict[str, str]:
    """rlvr's CPU runtime defaults (in-process vLLM, no thread pinning, all cores), set where unset."""
    from rlvr.devices import CPU_DEFAULTS

    for key, value in CPU_DEFAULTS.items():
        os.environ.setdefault(key, value)
    return {k: os.environ[k] for k in CPU_DEFAULTS}


def chat_prompt_ids(tok: Any, question: str) -> list[int]:
    """The prompt as both frameworks feed it: the user turn through the chat template, then tokenized."""
    text = tok.apply_chat_template(
        [{"role": "user", "content": question}], tokenize=False, add_generation_prompt=True
    )
    return list(tok(text, add_special_tokens=False)["input_ids"])[-MAX_PROMPT_TOKENS:]


def make_llm(path: Path, arch: Mapping[str, Any], args: argparse.Namespace) -> tuple[Any, int]:
    """`vllm.LLM` with rlvr's CPU engine kwargs; returns it and its KV-cache size in MiB."""
    from vllm import LLM

    kv = kv_cache_mb(arch, args.prompts * args.samples, MAX_PROMPT_TOKENS + args.max_new_tokens)
    kwargs = {
        "model": str(path),
        "seed": args.seed,
        "max_model_len": MAX_PROMPT_TOKENS + args.max_new_tokens,
        "max_num_seqs": 256,
        "enforce_eager": True,
        "logprobs_mode": "raw_logprobs",
        "tensor_parallel_size": 1,
        "dtype": "float32",
        "distributed_executor_backend": "uni",
        "kv_cache_memory_bytes": kv * 2**20,
        "enable_chunked_prefill": False,
    }
    saved = os.environ.pop("VLLM_CPU_KVCACHE_SPACE", None)  # would override kv_cache_memory_bytes
    try:
        return LLM(**kwargs), kv
    finally:
        if saved is not None:
            os.environ["VLLM_CPU_KVCACHE_SPACE"] = saved


def generate(llm: Any, prompts: list[list[int]], args: argparse.Namespace, seed: int) -> list[list[int]]:
    """G samples per prompt; returns the P*G responses' token ids (prompt-major)."""
    from vllm import SamplingParams
    from vllm.inputs import TokensPrompt

    params = [
        SamplingParams(
            n=args.samples,
            temperature=1.0,
            top_p=1.0,
            top_k=0,
            max_tokens=args.max_new_tokens,
            logprobs=None if args.plain_sampling else 0,
            seed=None if args.plain_sampling else seed + i * args.samples,
        )
        for i in range(len(prompts))
    ]
    outs = llm.generate([TokensPrompt(prompt_token_ids=p) for p in prompts], params, use_tqdm=False)
    return [list(c.token_ids) for out in outs for c in out.outputs]


# ---- update ------------------------------------------------------------------------------------------------


def pg_loss_sum(model: Any, rows: list[tuple[list[int], list[int], float]], pad_id: int) -> Any:
    """-(sum over response tokens of logprob x advantage) for one right-padded micro-batch."""
    import torch
    import torch.nn.functional as F

    width = max(len(p) + len(r) for p, r, _ in rows)
    ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    attn = torch.zeros((len(rows), width), dtype=torch.long)
    resp = torch.zeros((len(rows), width), dtype=torch.bool)
    adv = torch.tensor([a for _, _, a in rows], dtype=torch.float32)
    for i, (p, r, _) in enumerate(rows):
        ids[i, : len(p) + len(r)] = torch.tensor(p + r)
        attn[i, : len(p) + len(r)] = 1
        resp[i, len(p) : len(p) + len(r)] = True
    hidden = model.base_model(input_ids=ids, attention_mask=attn).last_hidden_state
    pos = resp[:, 1:]  # position t predicts token t+1: only response tokens are scored
    logits = model.get_output_embeddings()(hidden[:, :-1][pos])
    logp = -F.cross_entropy(logits.float(), ids[:, 1:][pos], reduction="none")
    return -(logp * adv[:, None].expand_as(pos)[pos]).sum()


def update(
    model: Any,
    opt: Any,
    samples: list[tuple[list[int], list[int], float]],
    layout: list[list[int]],
    pad_id: int,
) -> float:
    """One optimizer update over `samples` in `layout`'s micro-batches; returns its wall time."""
    import torch

    t0 = time.perf_counter()
    n_tokens = max(sum(len(r) for _, r, _ in samples), 1)
    opt.zero_grad(set_to_none=True)
    for mb in layout:
        (pg_loss_sum(model, [samples[i] for i in mb], pad_id) / n_tokens).backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), GRAD_CLIP)
    opt.step()
    return time.perf_counter() - t0


# ---- one model ---------------------------------------------------------------------------------------------


def _load() -> float:
    return os.getloadavg()[0]


def timed_part(
    idle: Mapping[str, Any], per_batch: list[dict[str, Any]], keys: Sequence[str]
) -> dict[str, Any]:
    """One timed part's record: the idle wait before it, the load after it, every batch and the statistics
    (median, range over all batches) of each of `keys`."""
    stats = {key: step_stats([x[key] for x in per_batch], 0) for key in keys}
    return {"idle": idle, "load_after": _load(), "batches": per_batch, **stats}


def run_model(name: str, args: argparse.Namespace, rows: list[dict[str, Any]]) -> dict[str, Any]:
    import random

    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    path, arch = build_model(name)
    tok = AutoTokenizer.from_pretrained(path)
    P = args.prompts
    batches = [
        [chat_prompt_ids(tok, r["prompt"]) for r in rows[b * P : (b + 1) * P]]
        for b in range(args.repeats + 1)
    ]
    result: dict[str, Any] = {"path": str(path), "params": count_params(arch)}

    # generate: one warm-up batch, then `repeats` timed batches of different prompts
    t0 = time.perf_counter()
    llm, kv = make_llm(path, arch, args)
    result["engine_start_s"] = time.perf_counter() - t0
    result["kv_cache_mb"] = kv
    responses = [generate(llm, batches[0], args, args.seed)]
    idle = _wait_idle(args, f"limit {name} generate")
    per_batch = []
    for b in range(1, args.repeats + 1):
        t0 = time.perf_counter()
        out = generate(llm, batches[b], args, args.seed + 100_003 * b)
        seconds = time.perf_counter() - t0
        responses.append(out)
        tokens = sum(len(r) for r in out)
        per_batch.append(
            {"s": seconds, "tokens": tokens, "sequences": len(out), "tokens_per_s": tokens / seconds}
        )
        print(f"[limit {name}] generate batch {b}: {seconds:.2f} s, {tokens} tokens", flush=True)
    result["generate"] = timed_part(idle, per_batch, ("s", "tokens", "tokens_per_s"))
    del llm
    gc.collect()

    # update: the generated sequences (prompt + response ids) with a dummy +-1 advantage per sample
    rng = random.Random(args.seed)
    data = [
        [(batches[b][i // args.samples], r, rng.choice((-1.0, 1.0))) for i, r in enumerate(responses[b])]
        for b in range(args.repeats + 1)
    ]
    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", os.cpu_count() or 1)))
    torch.manual_seed(args.seed)
    model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32)
    model.train()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-6, betas=(0.9, 0.999), weight_decay=0.0)
    pad_id = tok.pad_token_id if tok.pad_token_id is not None else 0
    result["torch_threads"] = torch.get_num_threads()
    result["update"] = {}
    layouts = {
        "padded": lambda lengths: [list(range(len(lengths)))],
        "micro": lambda lengths: micro_batches(lengths, args.micro_batch_tokens),
    }
    for layout_name, plan in layouts.items():
        lengths0 = [len(p) + len(r) for p, r, _ in data[0]]
        update(model, opt, data[0], plan(lengths0), pad_id)  # warm-up
        idle = _wait_idle(args, f"limit {name} update {layout_name}")
        per_batch = []
        for b in range(1, args.repeats + 1):
            lengths = [len(p) + len(r) for p, r, _ in data[b]]
            layout = plan(lengths)
            seconds = update(model, opt, data[b], layout, pad_id)
            per_batch.append(
                {
                    "s": seconds,
                    "micro_batches": len(layout),
                    "padded_tokens": padded_tokens(lengths, layout),
                    "tokens": sum(lengths),
                    "response_tokens": sum(len(r) for _, r, _ in data[b]),
                }
            )
            print(
                f"[limit {name}] update {layout_name} batch {b}: {seconds:.2f} s, {len(layout)} micro-batches",
                flush=True,
            )
        result["update"][layout_name] = timed_part(idle, per_batch, ("s", "micro_batches", "padded_tokens"))
    del model, opt
    gc.collect()

    best = min(result["update"], key=lambda k: result["update"][k]["s"]["median"])
    gen_s = result["generate"]["s"]["median"]
    upd_s = result["update"][best]["s"]["median"]
    result["limit"] = {"generate": gen_s, "update": upd_s, "update_layout": best, "step": gen_s + upd_s}
    return result


# ---- report ------------------------------------------------------------------------------------------------


def _idle_word(idle: Mapping[str, Any]) -> str:
    return f"load {idle['load']:.2f}" + ("" if idle["idle"] else " BUSY")


def print_model(name: str, res: Mapping[str, Any]) -> None:
    g, lim = res["generate"], res["limit"]
    print(f"\n== {name} ({res['params'] / 1e6:.1f} M parameters) ==")
    print(
        f"limit generate: {fmt_range(g['s'])}; {g['tokens']['median']:.0f} tokens/batch, "
        f"{g['tokens_per_s']['median']:.0f} tokens/s  [{_idle_word(g['idle'])}]"
    )
    for layout, u in res["update"].items():
        print(
            f"limit update ({layout:>6}): {fmt_range(u['s'])}; {u['micro_batches']['median']:.0f} micro-batch(es), "
            f"{u['padded_tokens']['median']:.0f} padded tokens  [{_idle_word(u['idle'])}]"
        )
    print(f"limit step: {lim['step']:.2f} s (generate {lim['generate']:.2f} + {lim['update_layout']} update)")
    if "rlvr" in res:
        r, e = res["rlvr"], res["efficiency"]
        print(
            f"rlvr: generate {r['generate']:.2f} s, logprobs+update {r['update']:.2f} s, step {r['step']:.2f} s"
        )
        print(
            f"rlvr efficiency (limit / rlvr): generate {e['generate']:.2f}, update {e['update']:.2f}, "
            f"step {e['step']:.2f}"
        )


def main(argv: list[str] | None = None) -> int:
    args = _args(argv)
    compare = None
    if args.compare:
        try:
            compare = load_compare(args.compare)
        except ValueError as e:
            print(f"{PROG}: error: {e}", file=sys.stderr)
            return 2
        for line in settings_mismatch(args, compare):
            print(f"{PROG}: warning: --compare file differs in {line}", file=sys.stderr)
    env = runtime_env()  # before torch or vLLM are imported
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    tiny_path, _ = build_model("tiny")
    prompts = write_prompts(tiny_path, args.prompts * (args.repeats + 1), out / "prompts.jsonl")
    rows = [json.loads(line) for line in prompts.read_text().splitlines() if line.strip()]
    if len(rows) < args.prompts * (args.repeats + 1):
        print(f"{PROG}: error: the tiny training set holds only {len(rows)} prompts", file=sys.stderr)
        return 2
    import torch
    import vllm

    settings = {k: v for k, v in vars(args).items() if k != "model_list"}
    results: dict[str, Any] = {
        "settings": settings,
        "env": env,
        "versions": {"torch": torch.__version__, "vllm": vllm.__version__},
        "models": {},
    }
    for name in args.model_list:
        _, arch = build_model(name)
        limit = arch.get("max_position_embeddings", 0)
        if MAX_PROMPT_TOKENS + args.max_new_tokens > limit:
            print(f"--max-new-tokens {args.max_new_tokens}: model {name} holds {limit} positions; skipped")
            continue
        res = run_model(name, args, rows)
        if compare is not None:
            rlvr = rlvr_figures(compare, name)
            if rlvr is None:
                print(f"[limit {name}] {args.compare} has no rlvr figures for {name}")
            else:
                res["rlvr"] = rlvr
                res["efficiency"] = efficiency(res["limit"], rlvr)
        results["models"][name] = res
        print_model(name, res)
        (out / "limit.json").write_text(json.dumps(results, indent=1))
    print(f"\nresults: {out / 'limit.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
