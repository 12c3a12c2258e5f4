"""What a training run is made of, built once at start-up: data, algorithm stages, reward pool, prompt sampler,
checkpoints, Ray, learner ranks, rollout workers, weight transport and metric sinks.

`build_parts` runs the start-up checks before anything slow starts, registers every part's shutdown on the
caller's exit stack (closed in reverse order, each failure logged and the rest still closed), and returns the
parts as plain attributes for `rlvr.loop.train` to drive. Tests build fake parts instead (same attributes).
"""

from __future__ import annotations

import contextlib
import logging
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from rlvr.config import Recipe
from rlvr.devices import apply_runtime_env, resolve_device
from rlvr.lifecycle import close_quietly
from rlvr.metrics_log import MetricsLogger, check_sinks
from rlvr.sampler import PromptSampler
from rlvr.stages import AlgorithmStages

log = logging.getLogger("rlvr.parts")


class RunError(RuntimeError):
    """The run cannot start or continue (bad data, resume mismatch...); the message says why."""


@dataclass
class RunParts:
    """One run's components. Sizes and names as in the recipe; `resume_from` is the checkpoint to load."""

    recipe: Recipe
    run_dir: Path
    device: str
    dtype: str
    model_path: str
    train_rows: list[dict[str, Any]]
    train_prompt_ids: list[list[int]]
    eval_rows: list[dict[str, Any]]
    eval_prompt_ids: list[list[int]]
    stages: AlgorithmStages
    scorer: Any
    sampler: PromptSampler
    checkpoints: Any
    learners: Any
    rollout: Any
    transport: Any
    logger: Any
    resume_from: Path | None = None


def build_parts(
    recipe: Recipe,
    stack: contextlib.ExitStack,
    *,
    resume: str | None = None,
    recipe_dir: str | None = None,
    checkpoints: Any = None,
    transport: Any = None,
) -> RunParts:
    """Start every part of the run (cheap checks first); their shutdown goes on `stack`.

    `checkpoints` (a CheckpointManager) and `transport` (a WeightTransport) replace the ones the recipe
    implies; tests pass instrumented ones to inject faults (a stall mid-write, a corrupted push).
    """
    from rlvr.checkpoint.manager import CheckpointManager
    from rlvr.preflight import check_inputs

    r = recipe
    run_dir = Path(r.run_dir)
    device = resolve_device(r.device)
    res = r.resources
    env = apply_runtime_env(device, local_cluster=res.ray_address is None, extra=res.env)
    print(env.line(), file=sys.stderr, flush=True)
    check_sinks(tensorboard=r.logging.tensorboard, wandb_cfg=r.logging.wandb)  # before the slow start-up
    # Start-up checks (model, tokenizer, data, prompt lengths, plugins), before any actor.
    base_dir = Path(recipe_dir or ".").resolve()  # relative model, data and reward paths start here
    inputs = check_inputs(r, base_dir)
    stages = AlgorithmStages(r)
    scorer = _start_rewards(r, stack, base_dir, inputs.train_rows)
    sampler = PromptSampler(len(inputs.train_rows), r.train.prompts_per_step, r.seed)
    ckpt = checkpoints or CheckpointManager(
        r.checkpoint.dir or run_dir / "checkpoints", keep_last=r.checkpoint.keep_last
    )
    resume_from = ckpt.resolve(resume) if resume else None
    if resume and resume != "auto" and resume_from is None:
        raise RunError(f"--resume {resume}: no complete checkpoint there")
    if resume_from is not None:
        check_resume_compatible(resume_from, r)
    dtype = r.model.resolved_dtype(device)  # one dtype for learner parameters and vLLM
    learners, rollout = _start_actors(r, stack, inputs.model_path, device, dtype, stages, run_dir)
    if transport is None:
        from rlvr.orchestrate.weight_sync import make_transport

        transport = make_transport(device, r.rollout.sync.transport)
    transport.connect(rollout, learners, timeout=r.rollout.sync.timeout_s)  # the collective group forms here
    logger = MetricsLogger(
        run_dir,
        jsonl=r.logging.jsonl,
        tensorboard=r.logging.tensorboard,
        wandb_cfg=r.logging.wandb,
        progress=r.logging.progress,
        total_steps=r.train.steps,
        run_name=r.name,
        config=r.model_dump(mode="json"),
    )
    close_quietly(stack, logger.close)
    if resume_from is None:
        run_dir.mkdir(parents=True, exist_ok=True)
        (run_dir / "recipe.yaml").write_text(yaml.safe_dump(r.model_dump(mode="json"), sort_keys=False))
    log.info("run dir %s, model %s, device %s", run_dir, inputs.model_path, device)
    return RunParts(
        recipe=r,
        run_dir=run_dir,
        device=device,
        dtype=dtype,
        model_path=str(inputs.model_path),
        train_rows=inputs.train_rows,
        train_prompt_ids=inputs.train_prompt_ids,
        eval_rows=inputs.eval_rows,
        eval_prompt_ids=inputs.eval_prompt_ids,
        stages=stages,
        scorer=scorer,
        sampler=sampler,
        checkpoints=ckpt,
        learners=learners,
        rollout=rollout,
        transport=transport,
        logger=logger,
        resume_from=resume_from,
    )


def _start_rewards(recipe: Recipe, stack: contextlib.ExitStack, base_dir: Path, rows: list) -> Any:
    from rlvr.reward.scorer import RewardScorer

    scorer = RewardScorer.from_config(recipe.rewards, base_dir=base_dir)
    close_quietly(stack, scorer.close)
    scorer.check_contract(rows)
    return scorer


def _start_actors(
    r: Recipe,
    stack: contextlib.ExitStack,
    model_path: Any,
    device: str,
    dtype: str,
    stages: AlgorithmStages,
    run_dir: Path,
) -> tuple[Any, Any]:
    """Ray, then the learner ranks and the rollout workers, starting in parallel (their shutdown on `stack`)."""
    from rlvr.orchestrate.cluster import init_ray, shutdown_ray
    from rlvr.orchestrate.group import RolloutGroup
    from rlvr.orchestrate.learner_group import LearnerGroup

    res = r.resources
    init_ray(
        res.ray_address,
        device=device,
        num_cpus=res.num_cpus,
        env_vars=res.env,
        log_path=str(run_dir / "run.log"),
        log_level=r.logging.log_level,
    )
    close_quietly(stack, shutdown_ray)
    learners = LearnerGroup(
        model_path,
        r.learner,
        seed=r.seed,
        device=device,
        reference=stages.needs_reference,
        num_cpus=res.cpus_per_learner if res.placement == "disaggregated" else 0.0,
        num_gpus=res.gpus_per_learner,
        total_updates=r.train.steps * r.learner.updates_per_step,
        dtype=dtype,
        resources=res.learner_node_resources,
        wait=False,  # the ranks build their engines while the rollout workers start
    )
    close_quietly(stack, learners.shutdown)
    rollout = RolloutGroup(
        model_path,
        r.rollout,
        seed=r.seed,
        device=device,
        num_cpus_per_worker=res.cpus_per_rollout_worker,
        num_gpus_per_worker=res.gpus_per_rollout_worker,
        dtype=dtype,
        resources=res.rollout_node_resources,
    )
    close_quietly(stack, rollout.shutdown)
    learners.wait_ready()
    return learners, rollout


def check_resume_compatible(path: Path, recipe: Recipe) -> None:
    """Refuse recipe changes that break the checkpoint; warn about changes of behaviour, list the rest."""
    from rlvr.checkpoint.compat import BREAKING, HARMLESS, classify_recipe_changes, unclassified_warning

    saved = yaml.safe_load((path / "recipe.yaml").read_text())
    changes = classify_recipe_changes(saved, recipe.model_dump(mode="json"))
    if changes[BREAKING]:
        raise RunError(
            f"cannot resume from {path}: the recipe changed in ways that break resume: "
            + "; ".join(changes[BREAKING])
        )
    warning = unclassified_warning(changes)
    if warning:
        log.warning(warning)
    if changes[HARMLESS]:
        log.info("resuming with harmless recipe changes: %s", "; ".join(changes[HARMLESS]))
