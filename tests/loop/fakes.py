"""Fake parts for unit tests of `rlvr.loop.train`: no Ray, vLLM or DeepSpeed, a run in well under a second.

Every fake appends what it was asked to do to one shared `calls` list, so a test can read the order of the
loop's calls. Row r's prompt is ``[r]``; its completions are all right when r % 3 == 0, all wrong when 1, and
one of each when 2 (with 2 samples per prompt). The real `CheckpointManager`, `MetricsLogger`,
`PromptSampler` and `AlgorithmStages` are used, so checkpoints and metrics.jsonl are real files.
"""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import torch

from rlvr.checkpoint.manager import CheckpointManager
from rlvr.config import Recipe
from rlvr.learner.work import ScoredTokens, UpdateResult
from rlvr.metrics_log import MetricsLogger
from rlvr.orchestrate.weight_sync import SyncStats
from rlvr.parts import RunParts
from rlvr.sampler import PromptSampler
from rlvr.stages import AlgorithmStages

ROWS = 60


class FakeRollout:
    def __init__(self, calls: list):
        self.calls = calls
        self.seeds: list[tuple[int, int]] = []  # (first, last + 1) sample seed of each generate call
        self.version = 0

    def generate(self, prompts, *, n, seed, submitted=None, **_):
        self.calls.append(("generate", self.version, tuple(p[0] for p in prompts)))
        self.seeds.append((seed, seed + len(prompts) * n))
        if submitted is not None:
            submitted.set()
        out = []
        for (row,) in prompts:
            kind = row % 3
            texts = ["right"] * n if kind == 0 else ["wrong"] * n if kind == 1 else ["right", "wrong"][:n]
            out.append([SimpleNamespace(token_ids=[1] * (3 + j), logprobs=[-0.5] * (3 + j), text=t, truncated=False)
                        for j, t in enumerate(texts)])  # fmt: skip
        return out

    def score_on_every_worker(self, prompts, responses):
        return [[[-0.5] * len(r) for r in responses]]

    def sleep(self):
        self.calls.append(("sleep",))

    def wake_up(self):
        self.calls.append(("wake",))


class FakeScorer:
    """Correct iff the text is "right"; reports one reward error per call (a count to be summed)."""

    def score(self, texts, rows, lengths):
        results = [
            SimpleNamespace(score=float(t == "right"), correct=t == "right", extracted=t) for t in texts
        ]
        acc = sum(r.correct for r in results) / len(results)
        return results, {"reward/mean": acc, "reward/accuracy": acc, "reward/errors": 1.0}


class FakeLearners:
    """One rank; old logprobs equal the rollout's (-0.5 per token) plus `drift`; `on_update(step)` is called
    by every update (a test sends itself SIGTERM from there)."""

    world_size = 1

    def __init__(self, calls: list, on_update=None, drift: float = 0.0):
        self.calls = calls
        self.on_update = on_update
        self.drift = drift
        self.version = 0
        self.rng = 0

    def score(self, work, *, entropy, reference, policy=True):
        self.calls.append(("score", self.version, policy))
        n = len(work[0].response_ids_R)
        return [
            ScoredTokens(
                old_logprobs_R=torch.full((n,), -0.5 + self.drift) if policy else None,
                old_entropy_R=torch.ones(n) if policy and entropy else None,
                ref_logprobs_R=torch.full((n,), -0.5) if reference else None,
            )
        ]

    def update(self, work, spec, step):
        batches = work[0]
        self.calls.append(("update", step, len(batches)))
        if not batches[0].on_policy:
            assert all(b.old_logprobs_R is not None for b in batches), (
                "an off-policy update without old logprobs"
            )
        self.version += 1
        if self.on_update is not None:
            self.on_update(step)
        metrics = {"learner/grad_norm": 1.0, "learner/samples": float(sum(len(b) for b in batches))}
        n = len(batches[0].response_ids_R)
        scored = torch.full((n,), -0.5 + self.drift) if batches[0].on_policy else None
        return [UpdateResult(metrics, scored)]

    def publish_weights(self, timeout=None):
        self.calls.append(("publish", self.version))
        return self.version

    def probe(self, prompts, responses, timeout=None):
        return [[-0.5] * len(r) for r in responses]

    def save(self, directory):
        Path(directory).mkdir(parents=True, exist_ok=True)
        (Path(directory) / "weights.json").write_text(json.dumps({"version": self.version}))

    def load(self, directory):
        self.version = json.loads((Path(directory) / "weights.json").read_text())["version"]

    def export_hf(self, directory):
        Path(directory).mkdir(parents=True, exist_ok=True)

    def rng_states(self):
        return [self.rng]

    def set_rng_states(self, states):
        self.rng = states[0]


class FakeTransport:
    def __init__(self, calls: list):
        self.calls = calls

    def connect(self, rollout, learners, timeout=None):
        pass

    def push(self, rollout, learners, timeout=None, full=True):
        weights = learners.publish_weights(timeout=timeout)
        rollout.version = weights
        self.calls.append(("push", weights))
        return SyncStats("fake", 0.0, 0.0, 8, 1)


def recipe(tmp_path: Path, **sections: Any) -> Recipe:
    """A recipe for the fakes: 6 prompts x 2 samples per step, one rank, checkpoints without HF export."""
    base: dict[str, Any] = {
        "name": "fake",
        "train": {"prompts_per_step": 6, "steps": 4},
        "rollout": {"samples_per_prompt": 2},
        "checkpoint": {"every_steps": 0, "export_hf": False},
        "eval": {"every_steps": 0},
        "logging": {"progress": False, "run_dir": str(tmp_path / "run")},
    }
    for key, value in sections.items():
        base[key] = {**base.get(key, {}), **value}
    return Recipe.model_validate(base)


class FakeBuild:
    """`build=` for `rlvr.loop.train`: fake rollout, scorer, learners and transport; everything else real."""

    def __init__(self, on_update=None, drift: float = 0.0):
        self.calls: list = []
        self.on_update = on_update
        self.drift = drift
        self.parts: RunParts | None = None

    def __call__(self, recipe, stack, *, resume=None, recipe_dir=None, checkpoints=None, transport=None):
        run_dir = Path(recipe.run_dir)
        run_dir.mkdir(parents=True, exist_ok=True)
        ckpt = checkpoints or CheckpointManager(run_dir / "checkpoints")
        logger = MetricsLogger(run_dir, jsonl=True, progress=False, total_steps=recipe.train.steps)
        stack.callback(logger.close)
        self.parts = RunParts(
            recipe=recipe,
            run_dir=run_dir,
            device="cpu",
            dtype="float32",
            model_path="fake",
            train_rows=[{"id": r} for r in range(ROWS)],
            train_prompt_ids=[[r] for r in range(ROWS)],
            eval_rows=[],
            eval_prompt_ids=[],
            stages=AlgorithmStages(recipe),
            scorer=FakeScorer(),
            sampler=PromptSampler(ROWS, recipe.train.prompts_per_step, recipe.seed, shuffle=False),
            checkpoints=ckpt,
            learners=FakeLearners(self.calls, self.on_update, self.drift),
            rollout=FakeRollout(self.calls),
            transport=transport or FakeTransport(self.calls),
            logger=logger,
            resume_from=ckpt.resolve(resume) if resume else None,
        )
        return self.parts


def sigterm_at(stop_step: int):
    """An `on_update` that sends this process SIGTERM during the update of step `stop_step` (0-based)."""

    def hook(step: int) -> None:
        if step == stop_step:
            os.kill(os.getpid(), signal.SIGTERM)

    return hook


def metrics(run_dir: Path) -> list[dict[str, Any]]:
    path = Path(run_dir) / "metrics.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
