"""Cost of each algorithm (advantage + loss forward + backward) relative to a plain PPO-clip loss.

    .venv/bin/python bench/bench_algo.py --prompts 64 --samples 16 --tokens 512      # quick check
    .venv/bin/python bench/bench_algo.py                                            # 1024 x 16 x 4096

The baseline is `ppo_clip` forward + backward on precomputed advantages; every method is timed end to end
(its advantage estimator, then its loss forward + backward) on the same float32 tensors, and printed as a ratio
to the baseline measured in the same run. Target: every ratio within 3x.

Times are process CPU seconds (best of `--repeats`), with `--threads` torch threads (default 1), because the
machine's cores are shared and wall-clock times swing with other people's jobs.
"""

from __future__ import annotations

import argparse
import time

import torch

from rlvr.algo import LossInputs, compute_advantages, compute_policy_loss

PPO = {"name": "ppo_clip", "kwargs": {}}
DAPO = {"name": "ppo_clip", "kwargs": {"eps_low": 0.2, "eps_high": 0.28, "clip_ratio_c": 10.0}}

# name -> (estimator name, estimator kwargs, loss spec); estimator None = objective without advantages.
METHODS: dict[str, tuple[str | None, dict, dict]] = {
    "grpo": ("grpo", {}, {"loss": PPO}),
    "dr_grpo": ("dr_grpo", {}, {"loss": PPO, "aggregation": "seq_mean_token_sum_norm"}),
    "rloo": ("rloo", {}, {"loss": PPO}),
    "reinforce_pp": ("reinforce_pp", {}, {"loss": PPO}),
    "reinforce_pp_baseline": ("reinforce_pp_baseline", {}, {"loss": PPO}),
    "qae": ("qae", {}, {"loss": PPO}),
    "w_reinforce": ("w_reinforce", {}, {"loss": PPO}),
    "lens": ("lens", {}, {"loss": PPO}),
    "dapo": ("grpo", {}, {"loss": DAPO}),
    "grpo_seq_mean": ("grpo", {}, {"loss": PPO, "aggregation": "seq_mean_token_mean"}),
    "gppo": ("grpo", {}, {"loss": {"name": "gppo"}}),
    "gspo": ("grpo", {}, {"loss": {"name": "gspo"}}),
    "clip_cov": ("grpo", {}, {"loss": PPO, "modifiers": [{"name": "clip_cov"}]}),
    "kl_cov": ("grpo", {}, {"loss": {"name": "pg"}, "modifiers": [{"name": "kl_cov"}]}),
    "erc": ("grpo", {}, {"loss": DAPO, "modifiers": [{"name": "erc"}]}),
    "kl_to_ref_k3": ("grpo", {}, {"loss": PPO, "kl_to_ref": {"estimator": "k3", "coef": 0.04}}),
    "entropy_bonus": ("grpo", {}, {"loss": PPO, "entropy_coef": 1e-3}),
    "drpo": (None, {}, {"loss": {"name": "drpo"}}),
}


def make_batch(prompts: int, samples: int, tokens: int, seed: int = 0) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    b = prompts * samples
    lengths = torch.randint(1, tokens + 1, (b,), generator=g)
    mask = (torch.arange(tokens).unsqueeze(0) < lengths.unsqueeze(1)).float()
    old = -torch.rand(b, tokens, generator=g) * 2
    entropy_old = torch.rand(b, tokens, generator=g) + 0.1
    return {
        "mask": mask,
        "old": old,
        "logprobs": old + torch.randn(b, tokens, generator=g) * 0.05,
        "ref": old - 0.05,
        "old_entropy": entropy_old,
        "entropy": entropy_old * (1 + torch.randn(b, tokens, generator=g) * 0.05),
        "correct": torch.rand(b, generator=g) > 0.5,
        "group_ids": torch.arange(prompts).repeat_interleave(samples),
    }


def run_method(
    t: dict[str, torch.Tensor], estimator: str | None, est_kw: dict, spec: dict, adv=None
) -> float:
    """One timed advantage + loss forward + backward; returns seconds."""
    lp = t["logprobs"].clone().requires_grad_(True)
    start = time.process_time()
    if adv is None:
        rewards = t["correct"].float()
        adv = (
            compute_advantages(
                estimator, rewards, t["correct"], t["group_ids"], t["mask"], t["old"], **est_kw
            )
            if estimator is not None
            else None
        )
    inputs = LossInputs(
        logprobs=lp,
        old_logprobs=t["old"],
        response_mask=t["mask"],
        advantages=adv,
        ref_logprobs=t["ref"],
        entropy=t["entropy"],
        old_entropy=t["old_entropy"],
        group_ids=t["group_ids"],
        correct=t["correct"],
    )
    out = compute_policy_loss(spec, inputs, generator=torch.Generator().manual_seed(0))
    out.loss.backward()
    return time.process_time() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prompts", type=int, default=1024)
    parser.add_argument("--samples", type=int, default=16)
    parser.add_argument("--tokens", type=int, default=4096)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--methods", nargs="*", default=list(METHODS), choices=list(METHODS))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    t = make_batch(args.prompts, args.samples, args.tokens)
    b = args.prompts * args.samples
    print(
        f"batch: {args.prompts} prompts x {args.samples} samples = {b} rows x {args.tokens} tokens, float32"
    )
    fixed_adv = torch.randn(b, 1) * t["mask"]
    jobs = {"baseline ppo_clip (loss only)": lambda: run_method(t, None, {}, {"loss": PPO}, adv=fixed_adv)}
    for name in args.methods:
        estimator, est_kw, spec = METHODS[name]
        jobs[name] = lambda e=estimator, k=est_kw, s=spec: run_method(t, e, k, s)
    # Round-robin repeats (after one warm-up each) so drifting machine load hits every method alike.
    best = {name: (job(), float("inf"))[1] for name, job in jobs.items()}
    for _ in range(args.repeats):
        for name, job in jobs.items():
            best[name] = min(best[name], job())
    base = best.pop("baseline ppo_clip (loss only)")
    print(f"{'baseline ppo_clip (loss only)':<32} {base * 1e3:10.1f} ms   1.00x")
    worst = 0.0
    for name, secs in best.items():
        ratio = secs / base
        worst = max(worst, ratio)
        flag = "" if ratio <= 3.0 else "   > 3x target"
        print(f"{name:<32} {secs * 1e3:10.1f} ms {ratio:6.2f}x{flag}")
    print(f"worst ratio {worst:.2f}x (target <= 3x)")


if __name__ == "__main__":
    main()
