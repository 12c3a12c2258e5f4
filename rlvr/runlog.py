"""Where a run's output goes: everything into ``<run_dir>/run.log``; the console gets step lines and real warnings.

The driver and every Ray actor of a run (rollout workers, learner ranks) route their Python logging and their
raw stdout/stderr (vLLM, DeepSpeed, gloo and Ray chatter, C-level prints) into the run's log file. Records at
WARNING and above, minus the known-harmless vendor warnings below, also reach the console: the driver's own on
stderr, an actor's through its original stderr, which Ray forwards to the driver's console with the actor's
name. Errors raised in actors reach the driver as exceptions and are reported there.
"""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path

LOG_NAME = "run.log"
FORMAT = "%(asctime)s %(process)d %(name)s %(levelname)s %(message)s"

# (logger name prefix, message prefix) of vendor warnings that are expected and harmless. Each entry says why.
HARMLESS_WARNINGS: tuple[tuple[str, str], ...] = (
    # vLLM's layerwise weight reload (every weight sync) warns for each layer that received no weights. The
    # rotary embedding's only tensor is `cos_sin_cache`, a non-persistent buffer computed from the config
    # (vllm/model_executor/layers/rotary_embedding/base.py: register_buffer(..., persistent=False)); it is in
    # no checkpoint and no sync, and the reload puts the unchanged buffer back (reload/layerwise.py,
    # finalize_layerwise_processing: `_place_kernel_tensors`). The sync probe checks the result anyway.
    ("vllm", "RotaryEmbedding: Failed to load weights"),
    # Engine start-up notices about settings rlvr chooses on purpose (rlvr/rollout/engine.py, rlvr/devices.py):
    # the in-process engine (VLLM_ENABLE_V1_MULTIPROCESSING=0; rlvr passes a seed with every request, so the
    # process-wide seed does not matter in a process that only runs the engine), chunked prefill off (it
    # would discard the token sampled for a partial prompt), eager mode, no Triton on the CPU stack, and the
    # OMP thread settings; the LD_PRELOAD notes are speed hints. None changes a result.
    ("vllm", "The global random seed is set to"),
    ("vllm", "This model does not officially support disabling chunked prefill"),
    ("vllm", "Enforce eager set"),
    ("vllm", "Inductor compilation was disabled by user settings"),
    ("vllm", "Triton is not installed"),
    ("vllm", "Model Runner V2 requires Triton"),
    ("vllm", "Reset SSM cache type"),  # mamba-only setting; rlvr's models have no SSM layers
    ("vllm", "libtcmalloc is not found in LD_PRELOAD"),
    ("vllm", "libiomp is not found in LD_PRELOAD"),
    ("vllm", "OMP_NUM_THREADS="),
    ("vllm", "CPU backend doesn't allow to use `torch.set_num_threads`"),
)
# Deprecation notices raised inside a vendor package's own code: nothing a user of rlvr can act on.
VENDOR_DEPRECATIONS = ("FutureWarning", "DeprecationWarning")
VENDOR_PACKAGES = ("site-packages/vllm/", "site-packages/ray/", "site-packages/deepspeed/")

# Vendor loggers that install their own console handler at import; they are made to propagate to ours.
VENDOR_LOGGERS = ("ray", "vllm")


class ConsoleFilter(logging.Filter):
    """Drops the harmless vendor warnings (``HARMLESS_WARNINGS``, vendor deprecations) from the console."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if record.name == "py.warnings":
            head = message.split("\n", 1)[0]
            return not (
                any(p in head for p in VENDOR_PACKAGES) and any(w in head for w in VENDOR_DEPRECATIONS)
            )
        return not any(
            record.name.startswith(name) and message.startswith(prefix) for name, prefix in HARMLESS_WARNINGS
        )


def _console_handler(stream) -> logging.Handler:
    handler = logging.StreamHandler(stream)
    handler.setLevel(logging.WARNING)
    handler.addFilter(ConsoleFilter())
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    return handler


def adopt_vendor_loggers() -> None:
    """Make vendor loggers that configured their own console handler propagate to the root logger instead."""
    for name in VENDOR_LOGGERS:
        logger = logging.getLogger(name)
        for handler in list(logger.handlers):
            logger.removeHandler(handler)
        logger.propagate = True


def setup_driver_logging(run_dir: str | Path, level: str | int = "INFO") -> Path:
    """Driver: every record at ``level`` and above to ``<run_dir>/run.log``, WARNING+ also to stderr.

    Returns:
        The log file's path (the caller tells the user where it is).
    """
    path = Path(run_dir) / LOG_NAME
    path.parent.mkdir(parents=True, exist_ok=True)
    root = logging.getLogger()
    for handler in list(root.handlers):
        root.removeHandler(handler)
        handler.close()
    file_handler = logging.FileHandler(path, encoding="utf-8")
    file_handler.setFormatter(logging.Formatter(FORMAT))
    root.addHandler(file_handler)
    root.addHandler(_console_handler(sys.stderr))
    root.setLevel(level)
    adopt_vendor_loggers()
    logging.captureWarnings(True)
    return path


def route_worker_output(log_path: str | Path, level: str | int = "INFO") -> None:
    """Ray actor process: stdout/stderr into the run's log file; WARNING+ records also to the console.

    Runs once per worker process (Ray's ``worker_process_setup_hook``), before any actor is created in it.
    The process's original stderr is kept for the console records: Ray forwards it to the driver.
    """
    console = os.fdopen(os.dup(2), "w", buffering=1, encoding="utf-8", errors="replace")
    sys.stdout.flush()
    sys.stderr.flush()
    fd = os.open(str(log_path), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    os.close(fd)
    root = logging.getLogger()
    for handler in list(root.handlers):
        root.removeHandler(handler)
    file_handler = logging.StreamHandler(sys.stderr)
    file_handler.setFormatter(logging.Formatter(FORMAT))
    root.addHandler(file_handler)
    root.addHandler(_console_handler(console))
    root.setLevel(level)
    adopt_vendor_loggers()
    logging.captureWarnings(True)
