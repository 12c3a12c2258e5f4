"""Where per-step metrics go: a JSONL file, TensorBoard, wandb (offline without network), the console."""

from __future__ import annotations

import importlib
import json
import math
import os
import sys
import time
from pathlib import Path
from typing import Any

CONSOLE_KEYS = (
    ("reward/mean", "reward", "{:.3f}"),
    ("accuracy/mean", "acc", "{:.3f}"),
    ("eval/accuracy", "eval_acc", "{:.3f}"),
    ("response_length/mean", "len", "{:.1f}"),
    ("entropy/mean", "ent", "{:.3f}"),
    ("learner/policy_loss", "loss", "{:.4f}"),
    ("sync/max_abs_logprob_delta", "sync_dlp", "{:.1e}"),
    ("time/step_s", "s/step", "{:.1f}"),
)


class MetricsSinkError(RuntimeError):
    """A configured metrics sink cannot work here (its package is missing); the message says what to do."""


def check_sinks(*, tensorboard: bool = False, wandb_cfg: Any = None) -> None:
    """Fail before a run starts when a sink the recipe enables has no package to write with."""
    if tensorboard and not _importable("tensorboard"):
        raise MetricsSinkError(
            "logging.tensorboard is true but the tensorboard package is not installed: "
            "pip install tensorboard (rlvr's cpu and gpu extras include it), or set logging.tensorboard: false"
        )
    if wandb_cfg is not None and getattr(wandb_cfg, "enabled", False) and not _importable("wandb"):
        raise MetricsSinkError(
            "logging.wandb.enabled is true but the wandb package is not installed: pip install wandb "
            "(rlvr's cpu and gpu extras include it), or set logging.wandb.enabled: false"
        )


def _importable(module: str) -> bool:
    try:
        importlib.import_module(module)
    except ImportError:
        return False
    return True


def _plain(value: Any) -> Any:
    if hasattr(value, "item"):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    return value


class MetricsLogger:
    """Writes one record per step to every configured sink. `log` is the only method the loop calls."""

    def __init__(
        self,
        run_dir: str | Path,
        *,
        jsonl: bool = True,
        tensorboard: bool = False,
        wandb_cfg: Any = None,
        progress: bool = True,
        total_steps: int | None = None,
        run_name: str = "run",
        config: dict | None = None,
    ):
        self.run_dir = Path(run_dir)
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.total_steps = total_steps
        self.progress = progress and os.environ.get("RLVR_PROGRESS", "1") != "0"
        self._jsonl = open(self.run_dir / "metrics.jsonl", "a") if jsonl else None  # noqa: SIM115
        check_sinks(tensorboard=tensorboard, wandb_cfg=wandb_cfg)
        self._tb = None
        if tensorboard:
            from torch.utils.tensorboard import SummaryWriter

            self._tb = SummaryWriter(str(self.run_dir / "tensorboard"))
        self._wandb = None
        if wandb_cfg is not None and getattr(wandb_cfg, "enabled", False):
            import wandb

            self._wandb = wandb.init(
                project=wandb_cfg.project,
                name=run_name,
                mode=wandb_cfg.mode,
                dir=str(self.run_dir),
                config=config,
            )
        self._t0 = time.time()

    def truncate_after(self, step: int) -> int:
        """Drop records of steps after `step` (lost with a crash, about to be redone); returns how many."""
        path = self.run_dir / "metrics.jsonl"
        if self._jsonl is None or not path.exists():
            return 0
        self._jsonl.close()
        kept, dropped = [], 0
        for line in path.read_text().splitlines():
            try:
                record_step = json.loads(line).get("step", 0)
            except json.JSONDecodeError:  # a torn last line from a killed writer
                dropped += 1
                continue
            if record_step > step:
                dropped += 1
            else:
                kept.append(line)
        tmp = path.with_suffix(".jsonl.tmp")
        tmp.write_text("".join(line + "\n" for line in kept))
        os.replace(tmp, path)
        self._jsonl = open(path, "a")  # noqa: SIM115
        return dropped

    def log(self, step: int, metrics: dict[str, Any]) -> None:
        record = {"step": step, "time": round(time.time() - self._t0, 3)}
        record.update({k: _plain(v) for k, v in sorted(metrics.items())})
        if self._jsonl is not None:
            self._jsonl.write(json.dumps(record) + "\n")
            self._jsonl.flush()
        numeric = {k: v for k, v in record.items() if isinstance(v, int | float) and k not in ("step",)}
        if self._tb is not None:
            for key, value in numeric.items():
                self._tb.add_scalar(key, value, step)
            self._tb.flush()
        if self._wandb is not None:
            self._wandb.log(numeric, step=step)
        if self.progress:
            self._console(step, record)

    def _console(self, step: int, record: dict[str, Any]) -> None:
        total = f"/{self.total_steps}" if self.total_steps else ""
        parts = [f"step {step}{total}"]
        for key, short, fmt in CONSOLE_KEYS:
            if isinstance(record.get(key), int | float):
                parts.append(f"{short} {fmt.format(record[key])}")
        print(" | ".join(parts), file=sys.stderr, flush=True)

    def close(self) -> None:
        if self._jsonl is not None:
            self._jsonl.close()
            self._jsonl = None
        if self._tb is not None:
            self._tb.close()
            self._tb = None
        if self._wandb is not None:
            self._wandb.finish()
            self._wandb = None
