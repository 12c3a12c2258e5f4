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
- anything no rule matches is ``unclassified``: :func:`classify_recipe_changes` returns it so
  the trainer can print a warning, but it does not block the resume.

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


# First match wins, so the narrow harmless exceptions come before the broad breaking sections.
RESUME_RULES: tuple[ResumeRule, ...] = (
    # Evaluation-only data settings: which held-out set is scored never touches training state.
    ResumeRule("data.eval", HARMLESS, "held-out evaluation data only"),
    ResumeRule("data.eval.*", HARMLESS, "held-out evaluation data only"),
    ResumeRule("data.eval_*", HARMLESS, "held-out evaluation data only"),
    ResumeRule("data.test", HARMLESS, "held-out evaluation data only"),
    ResumeRule("data.test.*", HARMLESS, "held-out evaluation data only"),
    ResumeRule("data.test_*", HARMLESS, "held-out evaluation data only"),
    # Learner allow-list: how a fixed batch is split into micro-batches and whether activations
    # are recomputed change memory and speed, not the update (up to float summation order).
    ResumeRule("learner.micro_batch_tokens", HARMLESS, "micro-batching only changes memory use"),
    ResumeRule("learner.micro_batch_size", HARMLESS, "micro-batching only changes memory use"),
    ResumeRule("learner.gradient_checkpointing", HARMLESS, "activation recomputation only"),
    ResumeRule("learner.activation_checkpointing", HARMLESS, "activation recomputation only"),
    ResumeRule("learner.timeout_s", HARMLESS, "deadline only"),
    # Bookkeeping.
    ResumeRule("logging", HARMLESS, "logging only"),
    ResumeRule("logging.*", HARMLESS, "logging only"),
    ResumeRule("eval", HARMLESS, "evaluation only"),
    ResumeRule("eval.*", HARMLESS, "evaluation only"),
    ResumeRule("checkpoint.every_steps", HARMLESS, "checkpoint cadence only"),
    ResumeRule("checkpoint.keep_last", HARMLESS, "checkpoint retention only"),
    ResumeRule("checkpoint.resume", HARMLESS, "how this resume was requested"),
    ResumeRule("train.steps", HARMLESS, "extends or shortens the run; the step counter is kept"),
    # Breaking.
    ResumeRule("model", BREAKING, "another policy/tokenizer than the checkpoint's weights"),
    ResumeRule("model.*", BREAKING, "another policy/tokenizer than the checkpoint's weights"),
    ResumeRule("data", BREAKING, "the saved data cursor indexes a different prompt order"),
    ResumeRule("data.*", BREAKING, "the saved data cursor indexes a different prompt order"),
    ResumeRule("rollout.samples_per_prompt", BREAKING, "changes the batch shape and group baselines"),
    ResumeRule("rollout.max_prompt_tokens", BREAKING, "changes which prompts are kept and the batch shape"),
    ResumeRule("rollout.max_response_tokens", BREAKING, "changes the batch shape and length penalties"),
    ResumeRule("train.prompts_per_step", BREAKING, "changes the batch shape and the data cursor stride"),
    ResumeRule("learner", BREAKING, "optimizer/schedule state would not match"),
    ResumeRule("learner.*", BREAKING, "optimizer/schedule state would not match"),
    ResumeRule("algorithm", BREAKING, "changes the objective the optimizer state was built for"),
    ResumeRule("algorithm.*", BREAKING, "changes the objective the optimizer state was built for"),
    ResumeRule("seed", BREAKING, "the restored RNG streams and data order assume the old seed"),
    ResumeRule("*.seed", BREAKING, "the restored RNG streams and data order assume the old seed"),
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
