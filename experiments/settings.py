"""The budget and arms the comparisons share, so that runs with the same settings are run once.

Every comparison trains the built-in tiny model on the synthetic arithmetic task (all six difficulty levels,
the canonical train split) with the same budget: `STEPS` RL steps of `PROMPTS` prompts x `SAMPLES` samples
of at most 64 tokens, temperature 1.0, no dynamic sampling (every arm generates and trains on the same number
of samples), and a held-out evaluation at the start and at the end of `EVAL_PROMPTS` prompts x
`EVAL_SAMPLES` samples at temperature 1.0 (avg@16 is the sampled accuracy, pass@16 is there for
W-REINFORCE, and the difficulty breakdown for LENS). Checkpoints are skipped except the final one.
"""

from __future__ import annotations

from typing import Any

from harness import Arm

STEPS = 20
PROMPTS = 8
SAMPLES = 8
EVAL_PROMPTS = 48  # the test split cycles through the six levels: 8 prompts per level
EVAL_SAMPLES = 16


def budget(steps: int = STEPS, prompts: int = PROMPTS) -> dict[str, Any]:
    """The recipe keys every arm of a comparison shares (merged before the arm's own overlay)."""
    return {
        "train": {"steps": steps, "prompts_per_step": prompts},
        "rollout": {"samples_per_prompt": SAMPLES, "max_response_tokens": 64, "temperature": 1.0},
        "algorithm": {"dynamic_sampling": {"enabled": False}},
        "eval": {
            "every_steps": steps,
            "at_start": False,  # the same model for every arm: measured once (docs/results.md)
            "samples_per_prompt": EVAL_SAMPLES,
            "temperature": 1.0,
            "max_prompts": EVAL_PROMPTS,
        },
        "checkpoint": {"every_steps": 0, "export_hf": False},
    }


# The project's GRPO recipe (std-normalised advantages, PPO clip 0.2, per-response token mean, k3 KL 0.04),
# the baseline of every comparison but ERC's.
GRPO = Arm("grpo", "recipes/methods/grpo.yaml")
