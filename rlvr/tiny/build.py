"""Build (or reuse) the project's tiny reasoning model: tokenizer + data + SFT + held-out eval.

``build_tiny()`` writes into ``$RLVR_CACHE`` (default ``~/.cache/rlvr``) under ``tiny-<hash>``,
where the hash covers every build setting, so a changed recipe never reuses a stale build. A build
is assembled in a temp folder and renamed into place, so a killed build is never picked up; a
complete build (its ``build_report.json`` has the current hash) is returned as is.

Layout of a build folder: the HF model files at the top (so the folder is a model path for vLLM,
transformers and the learner), ``data/train.jsonl`` and ``data/test.jsonl`` in the loaders' row
schema, and ``build_report.json`` with timings and held-out accuracy.

CLI (wired by the lead): ``rlvr tiny build [--out DIR] [--force]``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from rlvr.data.synthetic import (
    DATA_SEED,
    HASH_ANSWER_FRACTION,
    LEVELS,
    N_TEST,
    N_TRAIN,
    QUESTION_FRACTION,
    make_splits,
    write_jsonl,
)
from rlvr.models.cache import build_lock, cache_root
from rlvr.progress import duration
from rlvr.tiny.sft import SftSettings

# Bump when the build's code changes in a way the settings below do not capture.
BUILD_FORMAT = 3
SFT = SftSettings()
REPORT = "build_report.json"
# Held-out prompts sampled 8x at temperature 1 for the solve buckets (greedy uses all N_TEST).
EVAL_SAMPLE_ROWS = 240


def build_settings() -> dict[str, Any]:
    """Everything that determines the build's output (hashed into its folder name)."""
    from dataclasses import asdict

    from rlvr.tiny.model import TINY_ARCH
    from rlvr.tiny.tokenizer import CHAT_TEMPLATE, SPECIAL_TOKENS, VOCAB_SIZE

    return {
        "format": BUILD_FORMAT,
        "arch": TINY_ARCH,
        "tokenizer": {"special": SPECIAL_TOKENS, "vocab": VOCAB_SIZE, "template": CHAT_TEMPLATE},
        "data": {
            "n_train": N_TRAIN,
            "n_test": N_TEST,
            "seed": DATA_SEED,
            "levels": {k: asdict(v) for k, v in LEVELS.items()},
            "question_fraction": QUESTION_FRACTION,
            "hash_answer_fraction": HASH_ANSWER_FRACTION,
        },
        "sft": SFT.to_dict(),
        "eval_sample_rows": EVAL_SAMPLE_ROWS,
    }


def version_hash() -> str:
    """Short hash of ``build_settings()``."""
    blob = json.dumps(build_settings(), sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:12]


def is_complete(path: Path) -> bool:
    """True if ``path`` holds a finished build of the current version."""
    report = path / REPORT
    if not report.is_file():
        return False
    try:
        return json.loads(report.read_text()).get("version") == version_hash()
    except (OSError, ValueError):
        return False


def build_tiny(
    out_dir: str | Path | None = None,
    *,
    force: bool = False,
    zero_stage: int = 0,
    log: Callable[[str], None] = print,
) -> Path:
    """Return a complete tiny-model build, building it first if needed.

    Args:
        out_dir: Destination folder; default ``cache_root() / f"tiny-{version_hash()}"``.
        force: Rebuild even if a complete build exists.
        zero_stage: DeepSpeed ZeRO stage for the SFT.
        log: Progress sink.

    Returns:
        The build folder (an HF model folder plus ``data/`` and ``build_report.json``).
    """
    target = Path(out_dir).expanduser() if out_dir else cache_root() / f"tiny-{version_hash()}"
    # Concurrent callers (two test sessions) wait for one build instead of racing.
    with build_lock(target):
        if is_complete(target) and not force:
            return target
        # Holding the lock, any temp folder of this target is a killed build's leftover.
        for stale in target.parent.glob(f".{target.name}.tmp-*"):
            shutil.rmtree(stale, ignore_errors=True)
        tmp = target.parent / f".{target.name}.tmp-{os.getpid()}"
        try:
            report = _build_in_subprocess(tmp, zero_stage=zero_stage)
            if target.exists():
                shutil.rmtree(target)
            os.replace(tmp, target)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    log(
        f"[tiny] built {target} in {report['seconds']['total']:.0f}s: held-out greedy accuracy "
        f"{report['eval']['greedy_accuracy']:.1%}, solve buckets at T=1 {report['eval']['solve_buckets']}"
    )
    return target


def _build_in_subprocess(tmp: Path, *, zero_stage: int) -> dict[str, Any]:
    """Run ``_build_into`` in a fresh interpreter and return its report.

    The build starts a DeepSpeed learner and then an in-process vLLM engine; both keep process-wide
    ``torch.distributed`` state. In a caller that has its own (a test session, a driver about to start
    engines), mixing them failed with "process group not initialized/registered" errors, so the build
    never runs in the caller's process. Its progress lines (``[sft] ...``, ``[tiny] ...``) reach the caller's
    stdout; everything else it prints (DeepSpeed and vLLM start-up chatter) goes to ``build.log`` beside the
    build folder, whose tail is shown if the build fails.
    """
    cmd = [sys.executable, "-m", "rlvr.tiny.build", "--into", str(tmp), "--zero-stage", str(zero_stage)]
    log_path = tmp.parent / f"{tmp.name.split('.tmp-')[0].lstrip('.')}.build.log"
    with open(log_path, "w") as log_file:
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        assert proc.stdout is not None
        for line in proc.stdout:
            log_file.write(line)
            if line.startswith(("[sft]", "[tiny]")):
                print(line, end="", flush=True)
        returncode = proc.wait()
    if returncode != 0:
        tail = "".join(log_path.read_text().splitlines(keepends=True)[-20:])
        raise RuntimeError(f"tiny build failed (exit {returncode}); its output is in {log_path}:\n{tail}")
    return json.loads((tmp / REPORT).read_text())


def _build_into(tmp: Path, *, zero_stage: int, log: Callable[[str], None]) -> dict[str, Any]:
    from rlvr.tiny.evaluate import evaluate_tiny
    from rlvr.tiny.model import init_random_model
    from rlvr.tiny.sft import run_sft

    t0 = time.perf_counter()
    seconds: dict[str, float] = {}
    train, test = make_splits(N_TRAIN, N_TEST, seed=DATA_SEED)
    write_jsonl((p.row() for p in train), tmp / "data" / "train.jsonl")
    write_jsonl((p.row() for p in test), tmp / "data" / "test.jsonl")
    init_dir = init_random_model(tmp / "init", seed=SFT.seed)
    seconds["data_and_init"] = time.perf_counter() - t0

    t1 = time.perf_counter()
    log(f"[tiny] SFT of a random-init model: {SFT.steps} steps on {len(train)} problems")
    sft = run_sft(init_dir, tmp / "hf", [p.row() for p in train], SFT, zero_stage=zero_stage, log=log)
    for item in (tmp / "hf").iterdir():
        os.replace(item, tmp / item.name)
    shutil.rmtree(tmp / "hf")
    shutil.rmtree(init_dir)
    seconds["sft"] = time.perf_counter() - t1

    t2 = time.perf_counter()
    log(f"[tiny] evaluating: {len(test)} held-out prompts greedy, {EVAL_SAMPLE_ROWS} of them sampled 8x")
    metrics = evaluate_tiny(tmp, [p.row() for p in test], sample_rows=EVAL_SAMPLE_ROWS, seed=DATA_SEED)
    seconds["eval"] = time.perf_counter() - t2
    log(f"[tiny] evaluation done in {duration(seconds['eval'])}")
    seconds["total"] = time.perf_counter() - t0
    report = {
        "version": version_hash(),
        "settings": build_settings(),
        "sft": sft,
        "eval": metrics,
        "seconds": seconds,
        "cpu_count": os.cpu_count(),
        "load_average_at_end": os.getloadavg(),
    }
    (tmp / REPORT).write_text(json.dumps(report, indent=2, default=str) + "\n")
    return report


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``rlvr tiny build``."""
    parser.add_argument("--out", default=None, help="build folder (default: $RLVR_CACHE/tiny-<hash>)")
    parser.add_argument("--force", action="store_true", help="rebuild even if a complete build exists")
    parser.add_argument(
        "--zero-stage", type=int, default=0, choices=[0, 1, 2, 3], help="DeepSpeed ZeRO stage"
    )


def run(args: argparse.Namespace) -> int:
    """Entry point of ``rlvr tiny build``; prints the folder and held-out accuracy."""
    path = build_tiny(args.out, force=args.force, zero_stage=args.zero_stage)
    report = json.loads((path / REPORT).read_text())
    ev = report["eval"]
    styles = ", ".join(f"{k} {v:.1%}" for k, v in ev.get("greedy_by_style", {}).items())
    buckets = ", ".join(f"{k} {v:.1%}" for k, v in ev["solve_buckets"].items())
    print(
        f"{path}\nheld-out greedy accuracy: {ev['greedy_accuracy']:.1%} ({styles}; "
        f"boxed {ev.get('greedy_boxed_fraction', 0):.1%})\n"
        f"temperature-1 solve buckets over {ev['samples_per_prompt']} samples: {buckets}"
    )
    return 0


if __name__ == "__main__":
    _parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_arguments(_parser)
    _parser.add_argument("--into", default=None, help=argparse.SUPPRESS)  # build_tiny's child process
    _args = _parser.parse_args()
    if _args.into:
        _build_into(Path(_args.into), zero_stage=_args.zero_stage, log=print)
        raise SystemExit(0)
    raise SystemExit(run(_args))
