"""`rlvr eval CHECKPOINT [--data SPEC] ...`: pass@k, avg@k and maj@k of any checkpoint on any dataset.

CHECKPOINT may be a training checkpoint (``runs/NAME/checkpoints/step_000010``, evaluated through its
``hf/`` export), a checkpoint root (its latest complete checkpoint), a run directory (``runs/NAME``) or
a plain Hugging Face model directory. When the checkpoint carries the recipe it was trained with, the
recipe supplies every default (held-out split ``data.eval``, rewards, ``eval.*`` sampling settings,
response budget, seed), so ``rlvr eval runs/quickstart`` re-runs the training-time evaluation: with
greedy decoding and one sample it reproduces the logged ``eval/accuracy``. Flags override the recipe.
Data in another format than the recipe's (or with no recipe) is graded by its format's reward
(``gsm8k`` -> ``gsm8k``, ``math`` / ``aime`` -> ``math``); ``--system-prompt`` and ``--instruction``
set the prompt (docs/rewards.md lists the conventional instructions).

Writes ``eval.json`` and ``eval.md`` into ``<checkpoint>/eval-<data name>`` (or ``--out``) and prints
the markdown table. torch, vLLM and transformers are imported only inside :func:`run`.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rlvr.eval.checkpoints import ResolvedCheckpoint, load_checkpoint_recipe, resolve_checkpoint

DATA_FILE_SUFFIXES = (".jsonl", ".json", ".parquet")


class EvalError(RuntimeError):
    """The evaluation cannot run as asked (no data, prompts too long...); the message says why."""


# ---- settings: flags over recipe over defaults --------------------------------------------------------


@dataclass
class EvalSettings:
    """Everything one evaluation needs, resolved from flags, the checkpoint's recipe and defaults."""

    data: Any  # a rlvr.config.data.DatasetConfig
    data_name: str
    samples_per_prompt: int
    temperature: float
    top_p: float
    max_tokens: int
    limit: int | None
    seed: int
    rewards: Any  # a rlvr.config.reward.RewardsConfig
    rollout: Any  # a rlvr.config.rollout.RolloutConfig (engine settings; sizes are set per run)
    device: str
    base_dir: Path
    out_dir: Path


def resolve_settings(args: argparse.Namespace, ckpt: ResolvedCheckpoint, recipe: Any) -> EvalSettings:
    """Apply the precedence flag > recipe > default to every setting (pure: reads no data, loads no model).

    Raises:
        EvalError: No ``--data`` and no held-out split in the recipe.
    """
    from pydantic import ValidationError

    from rlvr.config import Recipe
    from rlvr.config.reward import RewardTerm

    r = recipe if recipe is not None else Recipe()
    recipe_eval = getattr(r.data, "eval", None) if recipe is not None else None
    if args.data is not None:
        like = recipe_eval or getattr(r.data, "train", None)
        data = dataset_from_spec(args.data, args.format, args.split, like=like)
        default_limit = None
    else:
        if recipe_eval is None:
            where = (
                f"the recipe in {ckpt.recipe_file} has no data.eval" if recipe is not None else "no recipe"
            )
            raise EvalError(f"{where}: pass --data (a jsonl/parquet file, a hub dataset id or 'synthetic')")
        overrides = {k: v for k, v in (("format", args.format), ("split", args.split)) if v is not None}
        data = (
            _validated_dataset({**recipe_eval.model_dump(), **overrides}, "data.eval")
            if overrides
            else recipe_eval
        )
        # The training-time evaluation's prompt cap, so the rerun sees the same prompts.
        default_limit = r.eval.max_prompts
    data = _with_prompt_flags(data, args)
    data_name = dataset_name(data)
    reward_fns = args.reward or _format_reward(data, recipe)
    rewards = r.rewards
    if reward_fns:
        try:
            terms = [RewardTerm(fn=fn) for fn in reward_fns]
        except ValidationError as exc:
            raise EvalError(f"--reward: {exc.errors()[0]['msg']}") from None
        # Only the terms change: scores and sandbox limits stay the recipe's.
        rewards = r.rewards.model_copy(update={"terms": terms})
    out = Path(args.out) if args.out else ckpt.path / f"eval-{data_name}"
    return EvalSettings(
        data=data,
        data_name=data_name,
        samples_per_prompt=_pick(args.samples_per_prompt, r.eval.samples_per_prompt),
        temperature=_pick(args.temperature, r.eval.temperature),
        top_p=_pick(args.top_p, r.eval.top_p),
        max_tokens=_pick(args.max_tokens, r.rollout.max_response_tokens),
        limit=_pick(args.limit, default_limit),
        seed=_pick(args.seed, r.seed),
        rewards=rewards,
        rollout=r.rollout,
        device=_pick(args.device, r.device),
        base_dir=Path(args.base_dir or ".").resolve(),
        out_dir=out,
    )


def _pick(flag: Any, default: Any) -> Any:
    return default if flag is None else flag


# The reward that grades a data format's answers when no recipe decides (see `_format_reward`).
FORMAT_REWARDS = {"gsm8k": "gsm8k", "math": "math", "aime": "math"}
# Conventional answer-format instructions, usable by name with --instruction (docs/rewards.md).
INSTRUCTIONS = {
    "boxed": "Please reason step by step, and put your final answer within \\boxed{}.",
    "gsm8k": 'Solve the problem step by step. At the end, write the final answer after "####".',
}


def _format_reward(data: Any, recipe: Any) -> list[str] | None:
    """The reward of the data's format, unless the checkpoint's recipe was trained on this format.

    A recipe's rewards were chosen for its own data: they apply when the evaluated data has the
    format of the recipe's train or eval data. Otherwise (a plain model, or another format) the
    format's reward grades it: `gsm8k` -> `gsm8k` (`#### 42`, boxed or `Answer:`), `math` / `aime`
    -> `math`. Formats without an entry keep the recipe's (or the default) rewards.
    """
    reward = FORMAT_REWARDS.get(data.format)
    if reward is None:
        return None
    if recipe is not None:
        recipe_formats = {getattr(d, "format", None) for d in (recipe.data.train, recipe.data.eval)}
        if data.format in recipe_formats:
            return None
    return [reward]


def _with_prompt_flags(data: Any, args: argparse.Namespace) -> Any:
    """Apply --system-prompt / --instruction (a text, or a name from INSTRUCTIONS) to the data config."""
    overrides = {}
    if getattr(args, "system_prompt", None) is not None:
        overrides["system_prompt"] = args.system_prompt or None
    instruction = getattr(args, "instruction", None)
    if instruction is not None:
        overrides["instruction"] = INSTRUCTIONS.get(instruction, instruction) or None
    if not overrides:
        return data
    return _validated_dataset({**data.model_dump(), **overrides}, "--system-prompt/--instruction")


# Prompt-formatting fields of a dataset config that `--data` inherits from the recipe's datasets, so a
# checkpoint sees the prompt layout it was trained on; schema fields (keys, split) belong to the new data.
INHERITED_DATA_FIELDS = ("template", "system_prompt", "instruction")
DEFAULT_EVAL_SPLIT = "test"


def dataset_from_spec(spec: str, fmt: str | None = None, split: str | None = None, like: Any = None) -> Any:
    """A ``DatasetConfig`` for a ``--data`` spec.

    Args:
        spec: Local jsonl/json/parquet path, hub dataset id or ``synthetic``.
        fmt: Row schema (``--format``); None keeps the data config's default (``synthetic``).
        split: Split of a hub or synthetic dataset; default ``test`` (held-out). Files have none.
        like: The recipe's dataset config whose prompt formatting (``INHERITED_DATA_FIELDS``) to keep.

    Raises:
        EvalError: The spec/format combination is invalid (the config's own message).
    """
    fields: dict[str, Any] = {"source": spec, "split": split or DEFAULT_EVAL_SPLIT}
    if like is not None:
        fields |= {k: getattr(like, k) for k in INHERITED_DATA_FIELDS if k in type(like).model_fields}
    if fmt is not None:
        fields["format"] = fmt
    return _validated_dataset(fields, f"--data {spec!r}")


def _validated_dataset(fields: dict[str, Any], what: str) -> Any:
    from pydantic import ValidationError

    from rlvr.config.data import DatasetConfig

    try:
        return DatasetConfig.model_validate(fields)
    except ValidationError as exc:  # a typo in a flag: a message, not a traceback
        problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'data'}: {e['msg']}" for e in exc.errors())
        raise EvalError(f"{what}: {problems}") from None


def dataset_name(cfg: Any) -> str:
    """Short directory-safe name of a dataset config: source (file stem / hub id) plus split."""
    source = getattr(cfg, "source", cfg)
    if isinstance(source, list | tuple):
        source = source[0] if source else "data"
    name = spec_name(str(source))
    split = getattr(cfg, "split", None)
    is_file = Path(str(source)).suffix in DATA_FILE_SUFFIXES  # a file is its own split
    return f"{name}-{spec_name(str(split))}" if split and not is_file else name


def spec_name(spec: str) -> str:
    """A directory-safe short name for a ``--data`` spec: file stem, hub id or ``synthetic``."""
    path = Path(spec)
    base = path.stem if path.suffix in DATA_FILE_SUFFIXES else spec
    return re.sub(r"[^A-Za-z0-9_.\-]+", "_", base).strip("_.") or "data"


# ---- the run ------------------------------------------------------------------------------------------


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``rlvr eval``; every sampling flag defaults to the checkpoint's recipe."""
    parser.add_argument(
        "checkpoint", help="step_* checkpoint, checkpoint root, run directory or HF model dir"
    )
    parser.add_argument(
        "--data",
        default=None,
        help="jsonl/parquet file, hub dataset id or 'synthetic' (default: recipe data.eval)",
    )
    parser.add_argument(
        "--format", default=None, help="row schema, e.g. gsm8k, math, aime, generic, synthetic"
    )
    parser.add_argument("--split", default=None, help="hub/synthetic split (default: test, or the recipe's)")
    parser.add_argument(
        "--samples-per-prompt", "-k", type=_positive_int, default=None, help="samples per prompt"
    )
    parser.add_argument("--temperature", type=_non_negative_float, default=None, help="0 = greedy")
    parser.add_argument("--top-p", type=_probability, default=None, help="nucleus mass, in (0, 1]")
    parser.add_argument("--max-tokens", type=_positive_int, default=None, help="response token budget")
    parser.add_argument("--limit", type=_positive_int, default=None, help="evaluate only the first N prompts")
    parser.add_argument("--seed", type=int, default=None, help="sampling seed (default: recipe seed)")
    parser.add_argument("--out", default=None, help="output directory (default: <checkpoint>/eval-<data>)")
    parser.add_argument(
        "--reward",
        action="append",
        default=None,
        metavar="FN",
        help="reward fn (registered name, pkg.mod:fn or file.py:fn); repeatable; default: recipe rewards",
    )
    parser.add_argument(
        "--system-prompt",
        default=None,
        help="system message (chat) or preamble (plain) of every prompt; '' removes the recipe's",
    )
    parser.add_argument(
        "--instruction",
        default=None,
        help="text appended to every problem, e.g. the answer format; the names "
        f"{', '.join(INSTRUCTIONS)} give the conventional ones (docs/rewards.md); '' removes the recipe's",
    )
    parser.add_argument(
        "--device", choices=("auto", "cpu", "cuda"), default=None, help="default: recipe device"
    )
    parser.add_argument(
        "--base-dir",
        default=None,
        help="directory relative data/reward paths are resolved against (default: cwd)",
    )


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def _non_negative_float(text: str) -> float:
    value = float(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {value}")
    return value


def _probability(text: str) -> float:
    value = float(text)
    if not 0 < value <= 1:
        raise argparse.ArgumentTypeError(f"must be in (0, 1], got {value}")
    return value


def run(args: argparse.Namespace) -> int:
    """Entry point of ``rlvr eval``: generate, verify, write ``eval.json`` / ``eval.md``, print the table."""
    ckpt = resolve_checkpoint(args.checkpoint)
    s = resolve_settings(args, ckpt, load_checkpoint_recipe(ckpt))
    from rlvr.devices import apply_runtime_env, resolve_device

    device = resolve_device(s.device)
    apply_runtime_env(device)  # before vLLM is imported (in-process engine on CPU, sized KV cache)
    print(f"rewards: {', '.join(t.fn for t in s.rewards.terms)}", file=sys.stderr)
    plain_model = ckpt.recipe_file is None
    if plain_model and not (s.data.instruction or s.data.system_prompt) and s.data.format in FORMAT_REWARDS:
        print(
            "note: the prompts say nothing about the answer format; a model that answers in prose "
            "scores 0. Pass --instruction boxed (or your own text) if it does not box its answer.",
            file=sys.stderr,
        )
    t0 = time.perf_counter()
    rows, prompt_ids = load_prompts(s, ckpt.hf_dir)
    report = generate_and_score(s, ckpt.hf_dir, rows, prompt_ids, device)
    seconds = time.perf_counter() - t0
    meta = {
        "checkpoint": str(ckpt.path),
        "model": str(ckpt.hf_dir),
        "step": ckpt.step,
        "data": s.data_name,
        "prompts": len(rows),
        "samples_per_prompt": s.samples_per_prompt,
        "temperature": s.temperature,
        "top_p": s.top_p,
        "max_tokens": s.max_tokens,
        "seed": s.seed,
        "rewards": [t.fn for t in s.rewards.terms],
        "system_prompt": s.data.system_prompt,
        "instruction": s.data.instruction,
        "reward_errors": report["summary"].get("reward_errors", 0.0),
        "seconds": round(seconds, 2),
    }
    from rlvr.eval.report import write_eval_report

    title = f"Evaluation of {ckpt.path.name} on {s.data_name}"
    json_path, md_path = write_eval_report(s.out_dir, report["result"], meta, title=title)
    print(md_path.read_text().rstrip())
    print(f"\nwrote {json_path} and {md_path}", file=sys.stderr)
    return 0


def load_prompts(s: EvalSettings, hf_dir: Path) -> tuple[list[dict[str, Any]], list[list[int]]]:
    """Dataset rows (first ``limit``) and their prompt token ids under the checkpoint's tokenizer."""
    from transformers import AutoTokenizer

    from rlvr.data.loaders import load_dataset_rows
    from rlvr.data.prompts import local_dataset, prompt_token_ids

    tokenizer = AutoTokenizer.from_pretrained(str(hf_dir))
    rows = load_dataset_rows(local_dataset(s.data, Path(s.base_dir)), tokenizer=tokenizer)
    if s.limit is not None:
        rows = rows[: s.limit]
    if not rows:
        raise EvalError(f"dataset {s.data_name} has no rows to evaluate")
    return rows, [prompt_token_ids(tokenizer, row) for row in rows]


def generate_and_score(
    s: EvalSettings, hf_dir: Path, rows: list[dict[str, Any]], prompt_ids: list[list[int]], device: str
) -> dict[str, Any]:
    """Start the reward pool and a vLLM engine sized for these prompts, then run the eval runner."""
    from rlvr.eval.runner import evaluate_prompts
    from rlvr.reward.scorer import RewardScorer
    from rlvr.rollout.engine import RolloutEngine

    longest = max(len(p) for p in prompt_ids)
    _check_context(hf_dir, longest, s.max_tokens)
    # Sized to this data set instead of the training limits: eval data may have longer prompts, and
    # the budget below changes nothing in what greedy decoding or a seeded sample produces.
    rollout = s.rollout.model_copy(update={"max_prompt_tokens": longest, "max_response_tokens": s.max_tokens})
    scorer = RewardScorer.from_config(s.rewards, base_dir=s.base_dir)
    try:
        scorer.check_contract(rows)
        engine = RolloutEngine(str(hf_dir), rollout, seed=s.seed, device=device)
        return evaluate_prompts(
            engine,
            scorer,
            rows,
            prompt_ids,
            samples_per_prompt=s.samples_per_prompt,
            temperature=s.temperature,
            top_p=s.top_p,
            max_tokens=s.max_tokens,
            seed=s.seed,
        )
    finally:
        scorer.close()


def _check_context(hf_dir: Path, longest_prompt: int, max_tokens: int) -> None:
    try:
        limit = json.loads((hf_dir / "config.json").read_text()).get("max_position_embeddings")
    except (OSError, ValueError):
        return
    if isinstance(limit, int) and longest_prompt + max_tokens > limit:
        raise EvalError(
            f"longest prompt ({longest_prompt} tokens) + --max-tokens {max_tokens} exceeds the model's "
            f"context of {limit} tokens; lower --max-tokens or filter the data"
        )
