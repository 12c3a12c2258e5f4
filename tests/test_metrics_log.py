"""Metrics sinks: the wandb sink works offline (no network) and a missing sink package is one clear error."""

from __future__ import annotations

import json
import sys
from types import SimpleNamespace

import pytest

from rlvr.metrics_log import MetricsLogger, MetricsSinkError


def test_wandb_offline_writes_into_the_run_dir(tmp_path, monkeypatch):
    pytest.importorskip("wandb")
    monkeypatch.setenv("WANDB_SILENT", "true")
    cfg = SimpleNamespace(enabled=True, project="rlvr-test", mode="offline")
    logger = MetricsLogger(tmp_path, wandb_cfg=cfg, progress=False, run_name="t", config={"seed": 0})
    logger.log(1, {"reward/mean": 0.5})
    logger.close()
    assert json.loads((tmp_path / "metrics.jsonl").read_text())["reward/mean"] == 0.5
    assert list((tmp_path / "wandb").glob("offline-run-*/*.wandb")), "no offline wandb run written"


def test_missing_wandb_is_one_clear_error(tmp_path, monkeypatch):
    monkeypatch.setitem(
        sys.modules, "wandb", None
    )  # the package is absent: `import wandb` raises ImportError
    cfg = SimpleNamespace(enabled=True, project="p", mode="offline")
    with pytest.raises(MetricsSinkError, match=r"logging\.wandb\.enabled .* pip install wandb"):
        MetricsLogger(tmp_path, wandb_cfg=cfg, progress=False)
