"""Driver-side algorithm stages between reward and update: overlong shaping (A), the dynamic-sampling
decisions (B: which groups to keep, whether to generate more, what to train on; the loop runs the rounds),
advantages (C), and the loss spec the learners apply (D/E). Thin adapters from `StepSamples` to `rlvr.algo`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import torch

from rlvr.algo.api import compute_advantages
from rlvr.algo.kl import kl_reward_penalty
from rlvr.algo.registry import ESTIMATORS, LOSS_MODIFIERS, OBJECTIVES, POLICY_LOSSES
from rlvr.algo.shaping import dynamic_sampling_keep, overlong_penalty
from rlvr.batch import StepSamples
from rlvr.learner.rl_tensors import from_padded, to_padded

if TYPE_CHECKING:
    from rlvr.config import Recipe


class DynamicSamplingError(RuntimeError):
    """Dynamic sampling could not fill a batch within `max_gen_batches` generation rounds."""


class AlgorithmStages:
    """The recipe's algorithm as callables over one step's samples."""

    def __init__(self, recipe: Recipe):
        self.spec: dict[str, Any] = recipe.algorithm.to_spec()
        self.max_response_tokens = recipe.rollout.max_response_tokens
        self.prompts_per_step = recipe.train.prompts_per_step
        self.updates_per_step = recipe.learner.updates_per_step
        estimator = self.spec.get("estimator") or {"name": "grpo", "kwargs": {}}
        self.estimator_name = estimator["name"]
        self.estimator_kwargs = dict(estimator.get("kwargs") or {})
        loss = self.spec.get("loss") or {"name": "ppo_clip"}
        self.is_objective = loss["name"] in OBJECTIVES
        loss_registry = OBJECTIVES if self.is_objective else POLICY_LOSSES
        budget_kwarg = loss_registry.meta(loss["name"], "budget_kwarg", None)
        if budget_kwarg and (loss.get("kwargs") or {}).get(budget_kwarg) is None:
            # E.g. DRPO's length reward 1 - |o|/C uses the generation budget (the reference pads to it), not the
            # padded width of whichever micro-batch a response lands in.
            loss.setdefault("kwargs", {})[budget_kwarg] = recipe.rollout.max_response_tokens
        agg_c = self.spec.get("loss_scale_factor")
        if self.spec.get("aggregation") == "seq_mean_token_sum_norm" and agg_c is None:
            # Dr. GRPO's constant C is the generation budget; the padded width differs between micro-batches.
            self.spec["loss_scale_factor"] = recipe.rollout.max_response_tokens
        # What a method needs is registered with it (`@register_loss_modifier("erc", needs_old_entropy=True)`).
        methods = [
            (ESTIMATORS, estimator["name"]),
            (loss_registry, loss["name"]),
            *((LOSS_MODIFIERS, m["name"]) for m in self.spec.get("modifiers") or []),
        ]
        self.needs_old_entropy = any(reg.meta(name, "needs_old_entropy", False) for reg, name in methods)
        kl = self.spec.get("kl_to_ref") or {}
        kl_on = bool(kl) and float(kl.get("coef", 0.0)) != 0.0
        self.kl_in_loss = kl_on and kl.get("as", "loss") == "loss"
        # as: reward -> -coef * KL per token, folded into the rewards before the advantage (`_kl_token_rewards`).
        self.kl_in_reward = kl_on and not self.kl_in_loss
        # A method registered with needs_reference=True reads LossInputs.ref_logprobs without a KL term.
        self.needs_reference = kl_on or any(reg.meta(name, "needs_reference", False) for reg, name in methods)
        self._kl = kl
        # One synchronous update on what the current weights sampled is exactly on-policy: the update's own
        # forward gives the old logprobs, unless something reads them (or the old entropy) before the update.
        self.update_gives_old_logprobs = (
            recipe.train.async_mode == "off"
            and self.updates_per_step == 1
            and not self.needs_old_entropy
            and not self.kl_in_reward
            and not any(reg.meta(name, "needs_old_logprobs", False) for reg, name in methods)
        )
        self.loss_spec = {k: v for k, v in self.spec.items() if k not in ("dynamic_sampling", "overlong")}
        overlong_cfg = self.spec.get("overlong") or {}
        self.overlong = self._overlong if overlong_cfg.get("enabled") else None
        self._overlong_cfg = overlong_cfg
        ds = self.spec.get("dynamic_sampling") or {}
        self.dynamic_sampling = bool(ds.get("enabled"))
        self._ds = ds
        self.metrics: dict[str, float] = {}

    def _overlong(self, rewards: list[float], lengths: list[int]) -> list[float]:
        cfg = self._overlong_cfg
        penalty = overlong_penalty(
            torch.tensor(lengths),
            max_tokens=int(cfg.get("max_tokens") or self.max_response_tokens),
            cache_tokens=int(cfg["cache_tokens"]),
            factor=float(cfg.get("factor", 1.0)),
        )
        self.metrics["reward/overlong_penalty_mean"] = float(penalty.mean()) if len(lengths) else 0.0
        return [r + float(p) for r, p in zip(rewards, penalty.tolist())]

    def keep(self, samples: StepSamples) -> list[int]:
        """Indices of the samples whose group carries signal (DAPO: not all-correct, not all-wrong)."""
        correct = torch.tensor(samples.correct, dtype=torch.bool)
        keep = dynamic_sampling_keep(
            correct.float(),
            torch.tensor(samples.group_ids),
            mode=self._ds.get("mode", "drop_uniform"),
            correct_B=correct,
        )
        return [i for i, k in enumerate(keep.tolist()) if k]

    def wants_more(self, kept: StepSamples, rounds: int) -> bool:
        """Whether to generate another round: the step is not full and `max_gen_batches` allows it.

        Raises:
            DynamicSamplingError: The last allowed round is done and no group at all was kept.
        """
        if len(set(kept.group_ids)) >= self.prompts_per_step:
            return False
        max_rounds = int(self._ds.get("max_gen_batches", 0) or 0)
        if max_rounds and rounds >= max_rounds:
            if not kept.group_ids:
                raise DynamicSamplingError(
                    f"dynamic sampling kept no group in {rounds} generation rounds "
                    "(every group was all-correct or all-wrong); raise max_gen_batches or disable it"
                )
            return False
        return True

    def trim(self, kept: StepSamples, rounds: int, ranks: int) -> StepSamples:
        """The kept samples to train on: at most `prompts_per_step` whole groups, in a count the mini-batches
        and the `ranks` learner ranks can split evenly."""
        groups_kept = list(dict.fromkeys(kept.group_ids))[: self.prompts_per_step]
        usable = usable_groups(len(groups_kept), self.updates_per_step, ranks)
        if usable == 0:
            raise DynamicSamplingError(
                f"dynamic sampling kept {len(groups_kept)} groups, fewer than the {ranks} "
                "learner ranks need; raise max_gen_batches or prompts_per_step"
            )
        allowed = set(groups_kept[:usable])
        self.metrics["filter/generation_rounds"] = float(rounds)
        self.metrics["filter/kept_groups"] = float(len(allowed))
        return kept.select([i for i, g in enumerate(kept.group_ids) if g in allowed])

    def advantages(self, samples: StepSamples) -> list[list[float]]:
        lengths = samples.lengths
        width = max(max(lengths, default=1), 1)
        mask = to_padded([[1.0] * n for n in lengths], width, torch.float64)
        old = to_padded(samples.old_logprobs, width, torch.float64) if samples.old_logprobs else None
        adv = compute_advantages(
            self.estimator_name,
            torch.tensor(samples.rewards, dtype=torch.float64),
            torch.tensor(samples.correct, dtype=torch.bool),
            torch.tensor(samples.group_ids),
            mask,
            old,
            token_rewards_BT=self._kl_token_rewards(samples, old, mask),
            **self.estimator_kwargs,
        )
        per_sample = adv.sum(-1) / mask.sum(-1).clamp(min=1)
        self.metrics["advantage/mean"] = float(per_sample.mean())
        self.metrics["advantage/abs_mean"] = float(per_sample.abs().mean())
        self.metrics["advantage/zero_frac"] = float((per_sample == 0).double().mean())
        return from_padded(adv, lengths)

    def _kl_token_rewards(self, samples: StepSamples, old: torch.Tensor | None, mask: torch.Tensor):
        """`algorithm.kl_to_ref.as: reward`: [B,T] per-token -coef * KL(old || ref), else None."""
        if not self.kl_in_reward:
            return None
        if old is None or not samples.ref_logprobs:
            raise RuntimeError(
                "kl_to_ref as reward needs old and reference logprobs scored before advantages"
            )
        ref = to_padded(samples.ref_logprobs, mask.shape[1], torch.float64)
        penalty = kl_reward_penalty(
            old, ref, mask, coef=float(self._kl["coef"]), estimator=self._kl.get("estimator", "k1")
        )
        self.metrics["kl/reward_penalty_mean"] = float(penalty.sum(-1).mean()) if len(mask) else 0.0
        return penalty


def usable_groups(n: int, updates: int, ranks: int) -> int:
    """How many of `n` kept groups to train on: a multiple of updates x ranks when there are enough, else a
    multiple of ranks (fewer, smaller updates), so every rank always gets whole groups."""
    if n >= updates * ranks:
        return n // (updates * ranks) * (updates * ranks)
    return n // ranks * ranks
