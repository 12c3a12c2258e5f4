"""DRPO vs GRPO with a length penalty: correct-response length and accuracy (plus plain GRPO for reference).

    .venv/bin/python experiments/drpo_length.py --seeds 3            # train what is missing, then aggregate
    .venv/bin/python experiments/drpo_length.py --aggregate-only     # numbers and plot from existing runs

GRPO with a length penalty (`length_penalty.py`: a correct answer of |o| tokens gets -0.5 |o| / 64) is the
usual way to ask for short answers; DRPO (`recipes/methods/drpo.yaml`) weights correct answers towards short
ones instead. The script also shows, on a constructed group with `rlvr.algo`'s own functions, the paper's
argument: the group normalisation gives the longer correct answers negative advantages, DRPO's objective
never pushes a correct answer down.
"""

from __future__ import annotations

import sys

import torch
from harness import PLOTS_DIR, Arm, Comparison, Metric, main
from settings import GRPO, budget

C = 64
ALPHA = 0.5
GRPO_LP = Arm(
    "grpo_lp",
    "recipes/methods/grpo.yaml",
    {
        "rewards": {
            "terms": [
                {"fn": "math"},
                {
                    "fn": "length_penalty.py:length_penalty",
                    "primary": False,
                    "kwargs": {"max_tokens": C, "alpha": ALPHA},
                },
            ]
        }
    },
)
# DRPO's own recipe at the comparison's shared temperature (1.0, not its 0.6) so both arms sample alike.
DRPO = Arm("drpo", "recipes/methods/drpo.yaml")

COMPARISON = Comparison(
    name="drpo_length",
    title="DRPO vs GRPO + length penalty (tiny model, arithmetic)",
    baseline=GRPO,
    methods=(GRPO_LP, DRPO),
    budget=budget(),
    metrics=(
        Metric("correct length, train (last 10 steps)", "response_length/correct_mean", "last_mean:10"),
        Metric("correct length, held-out", "eval/length/correct_mean"),
        Metric("held-out accuracy (avg@16)", "eval/accuracy"),
        Metric("train accuracy (last 10 steps)", "accuracy/mean", "last_mean:10"),
    ),
    curves=(
        ("response_length/correct_mean", "correct-response length (tokens)"),
        ("accuracy/mean", "train accuracy"),
    ),
)


def analytic() -> dict:
    """Advantages of GRPO + length penalty vs DRPO's per-response gradient weight on constructed groups."""
    from rlvr.algo.api import compute_advantages
    from rlvr.algo.contract import LossInputs
    from rlvr.algo.drpo import drpo

    groups = {
        "all correct": ([12, 16, 20, 24, 28, 32, 36, 40], [True] * 8),
        "7 correct, 1 wrong": ([12, 18, 24, 30, 36, 48, 60, 30], [True] * 7 + [False]),
    }
    out = {}
    for label, (lengths, correct) in groups.items():
        n, width = len(lengths), max(lengths)
        mask = torch.tensor([[1.0] * k + [0.0] * (width - k) for k in lengths], dtype=torch.float64)
        verdict = torch.tensor(correct)
        rewards = verdict.double() - ALPHA * verdict.double() * torch.tensor(lengths, dtype=torch.float64) / C
        ids = torch.zeros(n, dtype=torch.long)
        adv = compute_advantages("grpo", rewards, verdict, ids, mask, eps=1e-6)[:, 0]
        # DRPO: d(-loss)/d s_i, s_i a response's mean token log-prob, at pi = pi_old (no KL); every token -1.
        logprobs = torch.full((n, width), -1.0, dtype=torch.float64, requires_grad=True)
        inputs = LossInputs(
            logprobs=logprobs,
            old_logprobs=logprobs.detach().clone(),
            response_mask=mask,
            group_ids=ids,
            correct=verdict,
            group_size=n,
        )
        drpo(inputs, max_tokens=C).loss.backward()
        weight = -(logprobs.grad * mask).sum(-1) + 0.0  # d s_i / d lp_it = 1 / |o_i|: the row sum is d/ds_i
        out[label] = {
            "lengths": lengths,
            "correct": correct,
            "grpo_lp_advantage": [round(float(a), 3) for a in adv],
            "drpo_weight": [round(float(w), 4) for w in weight],
        }
        print(f"[analytic] {label}: lengths {lengths}, correct {[int(c) for c in correct]}")
        print(f"  GRPO + length penalty advantage: {out[label]['grpo_lp_advantage']}")
        print(f"  DRPO weight on the response's mean log-prob: {out[label]['drpo_weight']}")
    plot_analytic(out, PLOTS_DIR / "drpo_length_analytic.png")
    return {"analytic": out}


def plot_analytic(out: dict, path) -> None:
    """Per group: GRPO + length penalty's advantage and DRPO's weight of each response, by length."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(out), figsize=(4.6 * len(out), 3.2), squeeze=False)
    for ax, (label, g) in zip(axes[0], out.items()):
        x = range(len(g["lengths"]))
        ax.bar(
            [i - 0.2 for i in x], g["grpo_lp_advantage"], width=0.4, label="GRPO + length penalty: advantage"
        )
        ax.bar([i + 0.2 for i in x], g["drpo_weight"], width=0.4, label="DRPO: weight on mean log-prob")
        ax.set_xticks(list(x), [f"{n}{'' if c else ' ✗'}" for n, c in zip(g["lengths"], g["correct"])])
        ax.axhline(0, color="black", linewidth=0.6)
        ax.set_title(f"{label} (✗ = wrong)", fontsize=10)
        ax.set_xlabel("response length (tokens)")
        ax.grid(alpha=0.3, axis="y")
    axes[0][0].legend(fontsize=7)
    fig.suptitle("Who gets pushed down: one group of 8, length penalty 0.5 |o| / 64", fontsize=11)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=80)
    plt.close(fig)


if __name__ == "__main__":
    main(COMPARISON, sys.argv[1:], extra=analytic)
