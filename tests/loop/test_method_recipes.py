"""Every recipe in recipes/methods/ trains for real: 2 RL steps of `rlvr train` on the tiny SFT model.

Each run goes through the whole stack (Ray, vLLM rollout, DeepSpeed learner, verified weight sync) with the
recipe's algorithm unchanged and only its batch shrunk: fewer prompts and samples, shorter responses. Keys that
are defined relative to `rollout.max_response_tokens` (overlong L_max, DRPO's C, Dr. GRPO's constant) follow
the shrunk length, so each method keeps its published meaning. Besides the generic checks (exit 0, two step
records, finite loss, rollout == learner after each sync), each method must show its own signature in the
metrics: the metric the algorithm library reports for it, or the effect of its reward / filter stage.

Run: `.venv/bin/python -m pytest tests/loop/test_method_recipes.py -m slow -s --durations=0`
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

pytestmark = [pytest.mark.integration, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
METHOD_RECIPES = sorted((ROOT / "recipes" / "methods").glob("*.yaml"))
RESPONSE_TOKENS = 56  # the tiny model's answers are up to 47 characters (one token each) plus EOS
TIMEOUT_S = 900
DYNAMIC_SAMPLING_ROUNDS = 10

# The shrunk batch: 4 prompts x 8 samples, 2 optimizer updates of 2 prompts (still off-policy, as ERC needs).
# 8 samples (the quickstart's group size) because the tiny model solves few prompts at T=1: with 4 samples most
# groups would be uniform, starving dynamic sampling and DRPO of mixed groups.
SMALL = [
    "train.steps=2",
    "train.prompts_per_step=4",
    "rollout.samples_per_prompt=8",
    f"rollout.max_response_tokens={RESPONSE_TOKENS}",
    "learner.updates_per_step=2",
    # two steps sit inside the quickstart's warm-up, where the policy barely moves and ERC/clip metrics
    # would have nothing to act on; start at the recipe's lr instead
    "learner.lr_schedule.warmup_updates=0",
    "checkpoint.every_steps=0",
    "eval.every_steps=0",
    "logging.tensorboard=false",
    "logging.progress=false",
]

Record = dict[str, float]


def _finite(record: Record, key: str) -> float:
    assert key in record, f"metric {key} missing; have {sorted(record)}"
    value = record[key]
    assert math.isfinite(value), f"{key} = {value}"
    return value


def _kl_ref(r: Record) -> None:
    assert _finite(r, "learner/kl_ref") >= -1e-6  # k3 >= 0


def _ppo_clip(r: Record) -> None:
    assert 0.0 <= _finite(r, "learner/clip_frac") <= 1.0


def _dual_clip(r: Record) -> None:
    _ppo_clip(r)
    assert 0.0 <= _finite(r, "learner/clip_frac_dual") <= 1.0


def _drpo(r: Record) -> None:
    _finite(r, "learner/drpo_objective")
    assert _finite(r, "learner/drpo_kl_coef") >= 0.0
    assert 0.0 <= _finite(r, "learner/drpo_valid_group_frac") <= 1.0


def _erc(r: Record) -> None:
    assert 0.0 < _finite(r, "learner/erc_kept_frac") <= 1.0


def _erc_acts(records: list[Record]) -> None:
    # The second (off-policy) update of a step moves entropies: ERC must drop some tokens' gradient in at least
    # one of the two steps. Per step it depends on the model: 0.75 in both steps on one build of the tiny model;
    # on another CPU's build (the SFT's float kernels differ) step 1 dropped some and step 2 kept every token.
    assert min(r["learner/erc_kept_frac"] for r in records) < 1.0, "ERC never dropped a token's gradient"


def _clip_cov(r: Record) -> None:
    # At least one token per micro-batch whenever some covariance falls in (lb, ub): measured 1.0 per step.
    assert _finite(r, "learner/cov_clipped") > 0.0
    assert 0.0 <= _finite(r, "learner/cov_clip_frac") <= 1.0


def _kl_cov(r: Record) -> None:
    assert _finite(r, "learner/cov_penalised") >= 1.0  # top-k with k >= 1 in every micro-batch
    assert _finite(r, "learner/abs_log_ratio") >= 0.0


# The method's own metrics, by recipe file stem; a new recipe without an entry gets the generic checks only.
METHOD_CHECKS: dict[str, Callable[[Record], None]] = {
    "grpo": lambda r: (_kl_ref(r), _ppo_clip(r)),
    "dr_grpo": _ppo_clip,
    "dapo": _dual_clip,
    "drpo": _drpo,
    "lens": _ppo_clip,
    "erc": lambda r: (_erc(r), _dual_clip(r)),
    "clip_cov": lambda r: (_clip_cov(r), _ppo_clip(r)),
    "kl_cov": _kl_cov,
    "w_reinforce": _ppo_clip,
}
# Checks over the whole run, for signatures that need not show in every step.
RUN_CHECKS: dict[str, Callable[[list[Record]], None]] = {"erc": _erc_acts}


@pytest.fixture(scope="module")
def tiny_model() -> Path:
    """The project's tiny SFT model, built once into the cache (minutes the first time, instant after)."""
    from rlvr.tiny.build import build_tiny

    return build_tiny()


def method_overrides(recipe_path: Path, run_dir: Path) -> tuple[list[str], object]:
    """SMALL plus the length-relative keys this recipe sets, moved to the shrunk response length."""
    from rlvr.config import load_recipe

    recipe, _ = load_recipe(recipe_path)
    algo = recipe.algorithm
    out = [*SMALL, f"logging.run_dir={run_dir}"]
    if algo.overlong.enabled:
        scale = RESPONSE_TOKENS / recipe.rollout.max_response_tokens
        cache = max(1, round(algo.overlong.cache_tokens * scale))
        out += [
            f"algorithm.overlong.max_tokens={RESPONSE_TOKENS}",
            f"algorithm.overlong.cache_tokens={cache}",
        ]
    if algo.dynamic_sampling.enabled:
        # A 4-prompt step finds few mixed groups per generation round; allow enough rounds to fill it.
        rounds = max(algo.dynamic_sampling.max_gen_batches, DYNAMIC_SAMPLING_ROUNDS)
        out.append(f"algorithm.dynamic_sampling.max_gen_batches={rounds}")
    if algo.loss.name == "drpo" and algo.loss.max_tokens is not None:
        out.append(f"algorithm.loss.max_tokens={RESPONSE_TOKENS}")
    if algo.loss_scale_factor is not None:
        out.append(f"algorithm.loss_scale_factor={RESPONSE_TOKENS}")
    final, _ = load_recipe(recipe_path, out)
    return out, final


def check_rewards(recipe, records: list[Record]) -> None:
    """Rewards are the recipe's correct/wrong scores, plus a non-positive overlong penalty when enabled."""
    good, bad = recipe.rewards.correct_score, recipe.rewards.wrong_score
    for r in records:
        expected = r["accuracy/mean"] * good + (1.0 - r["accuracy/mean"]) * bad
        if recipe.algorithm.overlong.enabled:
            assert r["reward/mean"] <= expected + 1e-6
            assert r["reward/mean"] >= expected - recipe.algorithm.overlong.factor - 1e-6
        else:
            assert r["reward/mean"] == pytest.approx(expected, abs=1e-6)


def check_dynamic_sampling(recipe, records: list[Record]) -> None:
    """drop_uniform trains only on groups with mixed verdicts; the main figures cover every generated group."""
    ds = recipe.algorithm.dynamic_sampling
    if not (ds.enabled and ds.mode == "drop_uniform"):
        return
    for r in records:
        assert 0.0 < r["filter/kept_accuracy_mean"] < 1.0
        assert 0.0 < r["filter/kept_groups_frac"] <= 1.0
        uniform = r["accuracy/all_correct_groups"] + r["accuracy/all_wrong_groups"]
        assert r["filter/kept_groups_frac"] <= 1.0 - uniform + 1e-9  # a uniform group is never kept


@pytest.mark.parametrize("recipe_path", METHOD_RECIPES, ids=[p.stem for p in METHOD_RECIPES])
def test_method_recipe_trains_two_steps(recipe_path: Path, tmp_path: Path, tiny_model: Path) -> None:
    run_dir = tmp_path / "run"
    overrides, recipe = method_overrides(recipe_path, run_dir)
    t0 = time.perf_counter()
    out = subprocess.run(
        [sys.executable, "-m", "rlvr.cli", "train", str(recipe_path), *overrides],
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
        env=dict(os.environ),
        cwd=tmp_path,
    )
    seconds = time.perf_counter() - t0
    print(f"\n[method-recipe] {recipe_path.stem}: rlvr train (2 steps) took {seconds:.1f}s")
    assert out.returncode == 0, out.stderr[-6000:]
    assert "Traceback" not in out.stderr

    records = [
        json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines() if line.strip()
    ]
    assert [r["step"] for r in records] == [1, 2]
    for r in records:
        loss_key = "learner/policy_loss" if "learner/policy_loss" in r else "learner/loss"
        _finite(r, loss_key)
        assert _finite(r, "sync/max_abs_logprob_delta") < 1e-4  # rollout == learner after every sync
        METHOD_CHECKS.get(recipe_path.stem, lambda _: None)(r)
    RUN_CHECKS.get(recipe_path.stem, lambda _: None)(records)
    check_rewards(recipe, records)
    check_dynamic_sampling(recipe, records)
    shown = sorted(k for k in records[-1] if k.startswith("learner/"))
    print(f"[method-recipe] {recipe_path.stem}: learner metrics {shown}")
