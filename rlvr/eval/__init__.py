"""Evaluation metrics (pass@k, avg@n, maj@k, breakdowns) and report writing. Imports no torch."""

from rlvr.eval.metrics import (
    DEFAULT_BREAKDOWN_FIELDS,
    compute_eval_metrics,
    default_ks,
    majority_vote,
    pass_at_k,
    render_markdown,
)
from rlvr.eval.report import read_eval_report, write_eval_report

__all__ = [
    "DEFAULT_BREAKDOWN_FIELDS",
    "compute_eval_metrics",
    "default_ks",
    "majority_vote",
    "pass_at_k",
    "read_eval_report",
    "render_markdown",
    "write_eval_report",
]
