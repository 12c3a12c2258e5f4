"""A training run's heavy parts, built once: data, reward pool, rollout workers, learner ranks, checkpoints.

`rlvr.loop` calls the small methods here (`rollout_step`, `sync_weights`, `evaluate`, ...); everything that
shards samples across learner ranks or talks to Ray lives here or below, so the loop reads as phases.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import signal
import sys
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import yaml

from rlvr.batch import StepSamples, group_slices, minibatch_counts, plan_micro_batches, split_groups
from rlvr.config import Recipe
from rlvr.devices import apply_runtime_env
from rlvr.metrics_log import MetricsLogger, check_sinks
from rlvr.sampler import PromptSampler, rollout_seed
from rlvr.stages import AlgorithmStages

log = logging.getLogger("rlvr.run")


def resolve_device(requested: str) -> str:
    if requested != "auto":
        return requested
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


class RunError(RuntimeError):
    """The run cannot start or continue (bad data, resume mismatch...); the message says why."""


class Run:
    """Owns every component of one run; use as `with Run.open(recipe) as run:`."""

    def __init__(
        self,
        recipe: Recipe,
        recipe_dir: str | None = None,
        *,
        checkpoints: Any = None,
        transport: Any = None,
    ):
        """`checkpoints` (a CheckpointManager) and `transport` (a WeightTransport) replace the ones the recipe
        implies; tests pass instrumented ones to inject faults (a stall mid-write, a corrupted push)."""
        self.recipe = recipe
        self._checkpoints = checkpoints
        self._transport = transport
        self.recipe_dir = Path(recipe_dir or ".").resolve()
        self.step = 0
        self.reward_rounds: list[tuple[int, dict[str, float]]] = []  # (samples, pool metrics) per round
        self.run_dir = Path(recipe.run_dir)
        self._closers: list[Any] = []
        self.stop_requested = False
        self._pending: Future | None = None

    @classmethod
    @contextlib.contextmanager
    def open(
        cls,
        recipe: Recipe,
        *,
        resume: str | None = None,
        recipe_dir: str | None = None,
        checkpoints: Any = None,
        transport: Any = None,
    ) -> Iterator[Run]:
        run = cls(recipe, recipe_dir, checkpoints=checkpoints, transport=transport)
        previous = _install_stop_handler(run)
        try:
            run.start(resume)
            _install_stop_handler(run)  # ray.init installs its own SIGTERM handler (exit 15): take it back
            yield run
            if run.step > 0 and not run.checkpointed_at(run.step) and recipe.checkpoint.every_steps >= 0:
                run.save_checkpoint()
        finally:
            run.close()
            _restore_stop_handler(previous)

    def request_stop(self) -> None:
        """Finish the current step, write a checkpoint and return (SIGTERM / preemption)."""
        self.stop_requested = True

    # ---- start-up ----------------------------------------------------------------------------------------

    def start(self, resume: str | None) -> None:
        from rlvr.checkpoint.manager import CheckpointManager

        r = self.recipe
        self.device = resolve_device(r.device)
        res = r.resources
        env = apply_runtime_env(self.device, local_cluster=res.ray_address is None, extra=res.env)
        print(env.line(), file=sys.stderr, flush=True)
        check_sinks(tensorboard=r.logging.tensorboard, wandb_cfg=r.logging.wandb)  # before the slow start-up
        self._load_data()  # start-up checks (model, tokenizer, data, prompt lengths), before any actor
        self.algorithm = AlgorithmStages(r)
        self.overlong = self.algorithm.overlong
        self.group_filter = self.algorithm.group_filter
        self.needs_old_entropy = self.algorithm.needs_old_entropy
        self.needs_reference = self.algorithm.needs_reference
        self._start_rewards()
        self.sampler = PromptSampler(len(self.train_rows), r.train.prompts_per_step, r.seed)
        self.ckpt = self._checkpoints or CheckpointManager(
            r.checkpoint.dir or self.run_dir / "checkpoints", keep_last=r.checkpoint.keep_last
        )
        resume_from = self.ckpt.resolve(resume) if resume else None
        if resume and resume != "auto" and resume_from is None:
            raise RunError(f"--resume {resume}: no complete checkpoint there")
        if resume_from is not None:
            self._check_resume_compatible(resume_from)
        self._start_actors()
        self.logger = MetricsLogger(
            self.run_dir,
            jsonl=r.logging.jsonl,
            tensorboard=r.logging.tensorboard,
            wandb_cfg=r.logging.wandb,
            progress=r.logging.progress,
            total_steps=r.train.steps,
            run_name=r.name,
            config=r.model_dump(mode="json"),
        )
        self._closers.append(self.logger.close)
        self._last_checkpoint_step = -1
        if resume_from is not None:
            self.load_checkpoint(resume_from)
        else:
            self.run_dir.mkdir(parents=True, exist_ok=True)
            (self.run_dir / "recipe.yaml").write_text(
                yaml.safe_dump(r.model_dump(mode="json"), sort_keys=False)
            )
            self.sync_weights()  # proves rollout == learner before the first step (catches a bad model load)
        log.info("run dir %s, model %s, device %s", self.run_dir, self.model_path, self.device)

    def _load_data(self) -> None:
        from rlvr.preflight import check_inputs

        inputs = check_inputs(self.recipe, self.recipe_dir)
        self.model_path = inputs.model_path
        self.tokenizer = inputs.tokenizer
        self.train_rows, self.train_prompt_ids = inputs.train_rows, inputs.train_prompt_ids
        self.eval_rows, self.eval_prompt_ids = inputs.eval_rows, inputs.eval_prompt_ids

    def _start_rewards(self) -> None:
        from rlvr.reward.scorer import RewardScorer

        self.scorer = RewardScorer.from_config(self.recipe.rewards, base_dir=self.recipe_dir)
        self._closers.append(self.scorer.close)
        self.scorer.check_contract(self.train_rows)

    def _start_actors(self) -> None:
        from rlvr.orchestrate.cluster import init_ray, shutdown_ray
        from rlvr.orchestrate.group import RolloutGroup
        from rlvr.orchestrate.learner_group import LearnerGroup
        from rlvr.orchestrate.weight_sync import make_transport

        r = self.recipe
        res = r.resources
        init_ray(
            res.ray_address,
            device=self.device,
            num_cpus=res.num_cpus,
            env_vars=res.env,
            log_path=str(self.run_dir / "run.log"),
            log_level=r.logging.log_level,
        )
        self._closers.append(shutdown_ray)
        total_updates = r.train.steps * r.learner.updates_per_step
        self.dtype = r.model.resolved_dtype(self.device)  # one dtype for learner parameters and vLLM
        self.learners = LearnerGroup(
            self.model_path,
            r.learner,
            seed=r.seed,
            device=self.device,
            reference=self.needs_reference,
            num_cpus=res.cpus_per_learner if res.placement == "disaggregated" else 0.0,
            num_gpus=res.gpus_per_learner,
            total_updates=total_updates,
            dtype=self.dtype,
        )
        self._closers.append(self.learners.shutdown)
        self.rollout = RolloutGroup(
            self.model_path,
            r.rollout,
            seed=r.seed,
            device=self.device,
            num_cpus_per_worker=res.cpus_per_rollout_worker,
            num_gpus_per_worker=res.gpus_per_rollout_worker,
            dtype=self.dtype,
        )
        self._closers.append(self.rollout.shutdown)
        self.transport = self._transport or make_transport(self.device)

    def close(self) -> None:
        while self._closers:
            closer = self._closers.pop()
            try:
                closer()
            except Exception as exc:  # shutting down: report, keep closing the rest
                log.warning("error while closing %s: %s", getattr(closer, "__qualname__", closer), exc)

    # ---- phases the loop calls ---------------------------------------------------------------------------

    def next_samples(self) -> StepSamples:
        """This step's samples: the prefetched batch in async mode, else generated now."""
        if self._pending is not None:
            pending, self._pending = self._pending, None
            # No deadline of its own: every rollout call inside has one, and a retry on a restarted worker
            # may take longer than one call's deadline.
            return pending.result()
        return self.rollout_step(self.sampler.next_indices())

    def prefetch_next(self) -> None:
        """One-step-off async: start generating the next step's batch with the current (pre-update) weights.

        Rollout actors run calls in order, so the weight push after this step's update queues behind this
        generation: the batch is exactly one policy version behind, and the learners recompute old logprobs.
        """
        if self.recipe.train.async_mode != "one_step_off" or self.step + 1 >= self.recipe.train.steps:
            return
        if not hasattr(self, "_executor"):
            self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="rlvr-prefetch")
            self._closers.append(lambda: self._executor.shutdown(wait=True, cancel_futures=True))
        indices = self.sampler.next_indices()
        self._pending = self._executor.submit(self.rollout_step, indices, 0, self.step + 1)

    def pending_state(self) -> dict[str, Any] | None:
        """The in-flight prefetched batch, finished and as plain data (saved in checkpoints)."""
        if self._pending is None:
            return None
        samples = self._pending.result()  # bounded by the rollout calls' own deadlines
        return dataclasses.asdict(samples)

    def restore_pending(self, state: dict[str, Any] | None) -> None:
        if state is not None:
            done: Future = Future()
            done.set_result(StepSamples(**state))
            self._pending = done

    def rollout_step(self, indices: list[int], gen_round: int = 0, step: int | None = None) -> StepSamples:
        """Generate for the given training rows; the sampling seed is a function of (seed, step, round)."""
        r = self.recipe
        n = r.rollout.samples_per_prompt
        prompts = [self.train_prompt_ids[i] for i in indices]
        step = self.step if step is None else step
        seed = rollout_seed(r.seed, step, gen_round)
        groups = self.rollout.generate(
            prompts,
            n=n,
            temperature=r.rollout.temperature,
            top_p=r.rollout.top_p,
            top_k=r.rollout.top_k,
            max_tokens=r.rollout.max_response_tokens,
            seed=seed,
        )
        samples = StepSamples([], [], [], [], [], [], [])
        base = gen_round * len(indices)  # group ids stay unique across the rounds of one step
        for q, (row_index, completions) in enumerate(zip(indices, groups)):
            for c in completions:
                samples.group_ids.append(base + q)
                samples.rows.append(self.train_rows[row_index])
                samples.prompt_ids.append(self.train_prompt_ids[row_index])
                samples.response_ids.append(list(c.token_ids))
                samples.rollout_logprobs.append(list(c.logprobs))
                samples.texts.append(c.text)
                samples.truncated.append(bool(c.truncated))
        return samples

    def _rank_shards(self, samples: StepSamples, indices: list[int] | None = None) -> list[list[int]]:
        idx = list(range(len(samples))) if indices is None else indices
        parts = split_groups([samples.group_ids[i] for i in idx], self.learners.world_size)
        return [[idx[i] for i in part] for part in parts]

    def _micro_plan(self, samples: StepSamples, shards: list[list[int]]) -> list[list[list[int]]]:
        tokens = [
            [len(samples.prompt_ids[i]) + len(samples.response_ids[i]) for i in shard] for shard in shards
        ]
        groups = [[samples.group_ids[i] for i in shard] for shard in shards]
        return plan_micro_batches(tokens, self.recipe.learner.micro_batch_tokens, groups)

    def score_on_learners(self, samples: StepSamples, *, entropy: bool, reference: bool):
        shards = self._rank_shards(samples)
        plans = self._micro_plan(samples, shards)
        payload = [
            {
                "prompt_ids": [samples.prompt_ids[i] for i in shard],
                "response_ids": [samples.response_ids[i] for i in shard],
                "micro_batches": plan,
            }
            for shard, plan in zip(shards, plans)
        ]
        outs = self.learners.score(payload, entropy=entropy, reference=reference)
        old_lp: list = [None] * len(samples)
        old_ent: list = [None] * len(samples) if entropy else []
        ref_lp: list = [None] * len(samples) if reference else []
        for shard, out in zip(shards, outs):
            for k, i in enumerate(shard):
                old_lp[i] = out["old_logprobs"][k]
                if entropy:
                    old_ent[i] = out["old_entropy"][k]
                if reference:
                    ref_lp[i] = out["ref_logprobs"][k]
        return old_lp, old_ent, ref_lp

    def update_learners(self, samples: StepSamples) -> dict[str, float]:
        """Split the step into `updates_per_step` mini-batches of whole groups, each across all ranks."""
        r = self.recipe
        groups = group_slices(samples.group_ids)
        updates = r.learner.updates_per_step
        world = self.learners.world_size
        # Whole groups on every rank; with too few groups (dynamic sampling) there are fewer updates.
        per_update = max(len(groups) // updates // world * world, world)
        per_rank: list[list[dict[str, Any]]] = [[] for _ in range(self.learners.world_size)]
        for u in range(0, len(groups), per_update):
            mini = [i for g in groups[u : u + per_update] for i in g]
            shards = self._rank_shards(samples, mini)
            plans = self._micro_plan(samples, shards)
            counts = minibatch_counts(samples, mini)
            for rank, (shard, plan) in enumerate(zip(shards, plans)):
                per_rank[rank].append(self._shard_payload(samples, shard, plan, counts))
        outs = self.learners.update(per_rank, self.algorithm.loss_spec, self.step)
        keys = set().union(*outs)
        return {k: sum(o[k] for o in outs if k in o) / sum(1 for o in outs if k in o) for k in keys}

    def _shard_payload(self, samples: StepSamples, shard, plan, counts: dict[str, int]) -> dict[str, Any]:
        def pick(values):
            return [values[i] for i in shard] if values else []

        return {
            "prompt_ids": pick(samples.prompt_ids),
            "response_ids": pick(samples.response_ids),
            "old_logprobs": pick(samples.old_logprobs),
            "old_entropy": pick(samples.old_entropy),
            "ref_logprobs": pick(samples.ref_logprobs),
            "advantages": pick(samples.advantages),
            "group_ids": pick(samples.group_ids),
            "correct": pick(samples.correct),
            "rewards": pick(samples.rewards),
            "group_size": self.recipe.rollout.samples_per_prompt,
            "micro_batches": plan,
            **counts,
        }

    def rollout_sleep(self) -> None:
        """Colocated placement: vLLM releases its memory while the learners work (a no-op on CPU)."""
        if self.recipe.resources.placement == "colocated":
            self.rollout.sleep()

    def rollout_wake(self) -> None:
        if self.recipe.resources.placement == "colocated":
            self.rollout.wake_up()

    def sync_weights(self) -> dict[str, float]:
        """Learner → every rollout worker, then a logprob probe; a mismatch stops the run (WeightSyncError)."""
        from rlvr.orchestrate.weight_sync import verify_sync

        cfg = self.recipe.rollout.sync  # cfg.timeout_s bounds each phase; the rollout group applies it too
        ref = self.learners.publish_weights(timeout=cfg.timeout_s)
        stats = self.transport.push(self.rollout, ref)
        metrics = {"sync/seconds": stats.seconds, "sync/bytes": float(stats.num_bytes)}
        if cfg.verify:
            prompts, responses = self._probe_sequences(cfg.probe_sequences)
            learner_lp = self.learners.probe(prompts, responses, timeout=cfg.timeout_s)
            deltas = verify_sync(self.rollout, prompts, responses, learner_lp, cfg.tolerance_for(self.dtype))
            metrics["sync/max_abs_logprob_delta"] = max(deltas)
        return metrics

    def _probe_sequences(self, count: int) -> tuple[list[list[int]], list[list[int]]]:
        """Fixed probe: the first training prompts followed by their own first tokens as a 'response'."""
        prompts = self.train_prompt_ids[: max(count, 1)]
        return [p[:-4] or p for p in prompts], [p[-4:] for p in prompts]

    # ---- evaluation and checkpoints ----------------------------------------------------------------------

    def evaluate(self) -> dict[str, float]:
        """Held-out accuracy (and pass@k when sampling several) with the current rollout weights."""
        from rlvr.eval.runner import evaluate_prompts
        from rlvr.progress import progress

        if not self.eval_rows:
            return {}
        e = self.recipe.eval
        report = evaluate_prompts(
            self.rollout,
            self.scorer,
            self.eval_rows,
            self.eval_prompt_ids,
            samples_per_prompt=e.samples_per_prompt,
            temperature=e.temperature,
            top_p=e.top_p,
            max_tokens=self.recipe.rollout.max_response_tokens,
            seed=self.recipe.seed,
            log=progress,
        )
        return {f"eval/{k}": v for k, v in report["summary"].items() if isinstance(v, int | float)}

    def should_checkpoint(self) -> bool:
        every = self.recipe.checkpoint.every_steps
        return bool(every) and self.step % every == 0

    def checkpointed_at(self, step: int) -> bool:
        return self._last_checkpoint_step == step

    def save_checkpoint(self) -> Path:
        from rlvr.run_state import save_run_checkpoint

        path = save_run_checkpoint(
            self.ckpt,
            step=self.step,
            recipe=self.recipe,
            learners=self.learners,
            sampler=self.sampler,
            pending_samples=self.pending_state,
        )
        self._last_checkpoint_step = self.step
        return path

    def load_checkpoint(self, path: Path) -> None:
        from rlvr.run_state import load_run_checkpoint

        self.step, pending = load_run_checkpoint(path, learners=self.learners, sampler=self.sampler)
        self.restore_pending(pending)
        self._last_checkpoint_step = self.step
        dropped = self.logger.truncate_after(self.step)
        if dropped:
            log.warning("resuming at step %d: dropped %d metric records of lost steps", self.step, dropped)
        self.sync_weights()

    def _check_resume_compatible(self, path: Path) -> None:
        """Refuse recipe changes that break the checkpoint; warn about changes of behaviour, list the rest."""
        from rlvr.checkpoint.compat import BREAKING, HARMLESS, classify_recipe_changes, unclassified_warning

        saved = yaml.safe_load((path / "recipe.yaml").read_text())
        changes = classify_recipe_changes(saved, self.recipe.model_dump(mode="json"))
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


def _install_stop_handler(run: Run) -> Any:
    """SIGTERM (a scheduler's preemption notice) asks the loop to checkpoint and stop after this step."""
    try:
        return signal.signal(signal.SIGTERM, lambda *_: run.request_stop())
    except ValueError:  # not the main thread (e.g. inside a test runner thread): no handler
        return None


def _restore_stop_handler(previous: Any) -> None:
    if previous is not None:
        signal.signal(signal.SIGTERM, previous)
