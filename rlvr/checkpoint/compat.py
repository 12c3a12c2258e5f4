"""Which recipe changes a resumed run may carry, and which would silently corrupt it.

A checkpoint stores the resolved recipe it was trained with. On resume the new resolved recipe
is compared key by key (nested dicts flattened to dotted keys; lists compared whole). Each
changed key is classified by the first matching rule in :data:`RESUME_RULES` (``fnmatch``
patterns over dotted keys, so ``data.*`` also matches ``data.eval.path``):

- ``breaking``: the checkpoint's weights, optimizer state, data cursor or RNG no longer mean
  what the new recipe assumes (another model, another dataset order, another batch shape,
  another objective, another seed). :func:`resume_incompatibilities` reports these.
- ``harmless``: bookkeeping that may change between segments of one run (logging, evaluation,
  checkpoint cadence and retention, extending ``train.steps``).
- anything no rule matches is ``unclassified``: the checkpoint stays valid but the run will behave
  differently from the segment that wrote it (another sampling temperature, another reward term).
  :func:`unclassified_warning` words the warning the trainer logs at resume; it does not block.

Rules are data: add a row, with the reason, rather than code.
"""

from __future__ import annotations

from collections.abc import Mapping
from fnmatch import fnmatchcase
from typing import Any, NamedTuple

BREAKING = "breaking"
HARMLESS = "harmless"
UNCLASSIFIED = "unclassified"


class ResumeRule(NamedTuple):
    """One classification rule: dotted-key glob, verdict, and why."""

    pattern: str
    verdict: str
    reason: str


# First match wins, so the narrow exceptions come before the broad sections. Every pattern names a real key
# of the recipe schema (tests/checkpoint/test_compat.py checks it). Keys left unclassified on purpose, because
# they change what the run does without invalidating the checkpoint: rollout.temperature / top_p / top_k (the
# sampling distribution), rewards.terms / correct_score / wrong_score and the sandbox's timeout_s, memory_mb,
# max_error_fraction, block_side_effects (what a completion is worth), train.async_mode (batch staleness).
RESUME_RULES: tuple[ResumeRule, ...] = (
    ResumeRule("name", HARMLESS, "labels the run; the checkpoint was already found"),
    # Evaluation-only data: which held-out set is scored never touches training state.
    ResumeRule("data.eval", HARMLESS, "held-out evaluation data only"),
    ResumeRule("data.eval.*", HARMLESS, "held-out evaluation data only"),
    # Learner: how a fixed batch is split into micro-batches and whether activations are recomputed change
    # memory and speed, not the update (up to float summation order); a deadline changes nothing.
    ResumeRule("learner.micro_batch_tokens", HARMLESS, "micro-batching only changes memory use"),
    ResumeRule("learner.gradient_checkpointing", HARMLESS, "activation recomputation only"),
    ResumeRule("learner.collective_timeout_s", HARMLESS, "deadline only"),
    # Rollout engine: resources, deadlines and checks; per-prompt seeds make samples independent of the
    # worker count.
    ResumeRule(
        "rollout.num_workers", HARMLESS, "per-prompt seeds: samples do not depend on the worker count"
    ),
    ResumeRule("rollout.kv_cache_memory_mb", HARMLESS, "engine memory only"),
    ResumeRule("rollout.gpu_memory_utilization", HARMLESS, "engine memory only"),
    ResumeRule("rollout.max_num_seqs", HARMLESS, "engine batching only"),
    ResumeRule("rollout.enforce_eager", HARMLESS, "engine execution mode only"),
    ResumeRule("rollout.tensor_parallel_size", HARMLESS, "engine sharding only"),
    ResumeRule("rollout.call_timeout_s", HARMLESS, "deadline only"),
    ResumeRule("rollout.sync.*", HARMLESS, "weight-sync check and deadline only"),
    ResumeRule("rewards.sandbox.workers", HARMLESS, "verifier parallelism only"),
    ResumeRule("rewards.sandbox.start_timeout_s", HARMLESS, "deadline only"),
    ResumeRule("rewards.contract_check_rows", HARMLESS, "a pre-training check only"),
    # Bookkeeping and placement.
    ResumeRule("logging.*", HARMLESS, "logging only"),
    ResumeRule("eval.*", HARMLESS, "evaluation only"),
    ResumeRule("checkpoint.*", HARMLESS, "checkpoint cadence, place and export only"),
    ResumeRule("resources.*", HARMLESS, "where actors run, not what they compute"),
    ResumeRule("train.steps", HARMLESS, "extends or shortens the run; the step counter is kept"),
    # Breaking.
    ResumeRule("seed", BREAKING, "the restored RNG streams and data order assume the old seed"),
    ResumeRule("*.seed", BREAKING, "the restored RNG streams and data order assume the old seed"),
    ResumeRule("device", BREAKING, "RNG and optimizer state were saved for another device"),
    ResumeRule("model.*", BREAKING, "another policy, tokenizer or dtype than the checkpoint's weights"),
    ResumeRule("data.*", BREAKING, "the saved data cursor indexes a different prompt order"),
    ResumeRule("rollout.samples_per_prompt", BREAKING, "changes the batch shape and group baselines"),
    ResumeRule("rollout.max_prompt_tokens", BREAKING, "changes which prompts are kept and the batch shape"),
    ResumeRule("rollout.max_response_tokens", BREAKING, "changes the batch shape and length penalties"),
    ResumeRule("train.prompts_per_step", BREAKING, "changes the batch shape and the data cursor stride"),
    ResumeRule("learner.*", BREAKING, "optimizer, schedule or sharded state would not match"),
    ResumeRule("algorithm.*", BREAKING, "changes the objective the optimizer state was built for"),
)

_ABSENT = "<absent>"


def _flatten(tree: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in tree.items():
        dotted = f"{prefix}{key}"
        if isinstance(value, Mapping) and value:
            flat.update(_flatten(value, dotted + "."))
        else:
            flat[dotted] = value
    return flat


def classify_key(key: str, rules: tuple[ResumeRule, ...] = RESUME_RULES) -> ResumeRule | None:
    """The first rule matching a dotted recipe key, or None."""
    for rule in rules:
        if fnmatchcase(key, rule.pattern):
            return rule
    return None


def classify_recipe_changes(
    old_recipe: Mapping[str, Any], new_recipe: Mapping[str, Any], rules: tuple[ResumeRule, ...] = RESUME_RULES
) -> dict[str, list[str]]:
    """Every changed dotted key, grouped by verdict.

    Args:
        old_recipe: Resolved recipe stored in the checkpoint (nested dict).
        new_recipe: Resolved recipe of the run that wants to resume.
        rules: Classification rules, first match wins.

    Returns:
        ``{"breaking": [...], "harmless": [...], "unclassified": [...]}``; each entry reads
        ``"key: old -> new (reason)"``, sorted by key.
    """
    old_flat, new_flat = _flatten(old_recipe), _flatten(new_recipe)
    changes: dict[str, list[str]] = {BREAKING: [], HARMLESS: [], UNCLASSIFIED: []}
    for key in sorted(old_flat.keys() | new_flat.keys()):
        old, new = old_flat.get(key, _ABSENT), new_flat.get(key, _ABSENT)
        if old == new:
            continue
        rule = classify_key(key, rules)
        verdict = rule.verdict if rule else UNCLASSIFIED
        reason = f" ({rule.reason})" if rule else ""
        changes[verdict].append(f"{key}: {old!r} -> {new!r}{reason}")
    return changes


def resume_incompatibilities(old_recipe: Mapping[str, Any], new_recipe: Mapping[str, Any]) -> list[str]:
    """Changes between two resolved recipes that make resuming unsafe.

    Args:
        old_recipe: Resolved recipe stored in the checkpoint.
        new_recipe: Resolved recipe of the run that wants to resume.

    Returns:
        One human-readable line per breaking change; empty when the resume is safe.
    """
    return classify_recipe_changes(old_recipe, new_recipe)[BREAKING]


def unclassified_warning(changes: Mapping[str, list[str]]) -> str | None:
    """The resume warning for changes no rule classifies (None when there are none).

    Args:
        changes: :func:`classify_recipe_changes` output.
    """
    keys = changes.get(UNCLASSIFIED) or []
    if not keys:
        return None
    return (
        f"resuming with {len(keys)} recipe change(s) that keep the checkpoint valid but change what the run "
        "does from here on: " + "; ".join(keys)
    )
