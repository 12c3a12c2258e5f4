"""The one entry point the training loop calls for rewards: combine terms, score in the sandbox, report.

    scorer = RewardScorer.from_config(recipe.rewards, base_dir=recipe_dir)
    scorer.check_contract(dataset_rows[:4])            # before training: fail fast on a broken reward
    results, metrics = scorer.score(completions, rows, response_tokens=lengths)
    rewards_B = [r.score for r in results]; correct_B = [r.correct for r in results]

Each row's reward is `sum(weight * term_score)` over the terms that apply to it (by `data_source`). The
primary term gives the verdict, mapped to `correct_score` / `wrong_score`; errors and timeouts count as
wrong (primary) or 0 (shaping) and are counted in the metrics.
"""

from __future__ import annotations

import inspect
import logging
import math
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from rlvr.config.reward import RewardsConfig
from rlvr.reward.registry import is_shaping, resolve_reward, worker_spec
from rlvr.reward.sandbox import VerifierPool, VerifyItem
from rlvr.reward.types import RewardError, RewardResult

log = logging.getLogger(__name__)


@dataclass
class ScorerTerm:
    """A resolved reward term.

    Attributes:
        fn: spec string or a module-level function (programmatic use).
        weight: multiplier of the term's score in the combined reward.
        kwargs: keyword arguments for every call (must be keyword parameters of the function).
        data_source: the rows (by their `data_source` field) the term applies to; None = all.
        primary: gives the verdict; None = not a registered shaping reward.
    """

    fn: str | Callable[..., object]
    weight: float = 1.0
    kwargs: dict[str, Any] = field(default_factory=dict)
    data_source: list[str] | None = None
    primary: bool | None = None


@dataclass
class _Term:
    label: str
    spec: str
    weight: float
    kwargs: dict[str, Any]
    data_source: frozenset[str] | None
    primary: bool

    def applies(self, row: dict[str, Any]) -> bool:
        return self.data_source is None or row.get("data_source") in self.data_source


def _check_kwargs(fn: Callable[..., object], kwargs: dict[str, Any], label: str) -> None:
    """Term kwargs must be named parameters, so a typo fails here instead of vanishing into **row_fields."""
    try:
        params = inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return
    named = {n for n, p in params.items() if p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD)}
    unknown = sorted(set(kwargs) - named)
    if unknown:
        raise RewardError(
            f"reward {label} has no parameter(s) {unknown}; it accepts: {sorted(named - {'completion'})}"
        )


def _resolve(term: ScorerTerm, index: int, base_dir: str | os.PathLike | None) -> _Term:
    fn = term.fn
    label = (
        fn if isinstance(fn, str) else f"{getattr(fn, '__module__', '?')}:{getattr(fn, '__qualname__', fn)}"
    )
    spec = worker_spec(fn, base_dir)
    func = resolve_reward(fn, base_dir) if isinstance(fn, str) else fn
    _check_kwargs(func, term.kwargs, label)
    primary = term.primary if term.primary is not None else not (isinstance(fn, str) and is_shaping(fn))
    ds = frozenset(term.data_source) if term.data_source is not None else None
    return _Term(label, spec, float(term.weight), dict(term.kwargs), ds, primary)


class RewardScorer:
    """Scores completions with weighted reward terms in a sandboxed `VerifierPool`.

    Args:
        terms: the reward terms.
        correct_score: reward of a correct verdict of the primary term (1.0).
        wrong_score: reward of a wrong verdict, an error or a timeout of the primary term (0.0; −1 for DAPO).
        pool: an existing pool to use (not closed by the scorer); else one is started from `pool_kwargs`.
        base_dir: directory that relative `file.py:fn` specs are resolved against.
        contract_check_rows: rows used by `check_contract`.
        **pool_kwargs: `VerifierPool` arguments (workers, timeout_s, memory_mb, max_error_fraction, ...).
    """

    def __init__(
        self,
        terms: Sequence[ScorerTerm],
        *,
        correct_score: float = 1.0,
        wrong_score: float = 0.0,
        pool: VerifierPool | None = None,
        base_dir: str | os.PathLike | None = None,
        contract_check_rows: int = 4,
        **pool_kwargs: Any,
    ) -> None:
        if not terms:
            raise RewardError("RewardScorer needs at least one reward term")
        self.terms = [_resolve(t, i, base_dir) for i, t in enumerate(terms)]
        self._check_primaries()
        self.correct_score = float(correct_score)
        self.wrong_score = float(wrong_score)
        self.contract_check_rows = contract_check_rows
        self._owns_pool = pool is None
        preload = tuple(dict.fromkeys(t.spec for t in self.terms))
        self.pool = VerifierPool(preload=preload, base_dir=base_dir, **pool_kwargs) if pool is None else pool

    @classmethod
    def from_config(
        cls, cfg: RewardsConfig, base_dir: str | os.PathLike | None = None, pool: VerifierPool | None = None
    ) -> RewardScorer:
        """Build the scorer from a recipe's `rewards` section.

        Args:
            cfg: the `rewards` section.
            base_dir: the recipe's directory (relative `file.py:fn` specs are looked up there first).
            pool: share an existing pool (its sandbox settings win); by default one is started from
                `cfg.sandbox` and closed by `close()`.
        """
        terms = [ScorerTerm(t.fn, t.weight, t.kwargs, t.data_source, t.primary) for t in cfg.terms]
        sb = cfg.sandbox
        return cls(
            terms,
            correct_score=cfg.correct_score,
            wrong_score=cfg.wrong_score,
            base_dir=base_dir,
            contract_check_rows=cfg.contract_check_rows,
            pool=pool,
            workers=sb.workers,
            timeout_s=sb.timeout_s,
            memory_mb=sb.memory_mb,
            max_error_fraction=sb.max_error_fraction,
            block_side_effects=sb.block_side_effects,
            start_timeout_s=sb.start_timeout_s,
        )

    def _check_primaries(self) -> None:
        primaries = [t for t in self.terms if t.primary]
        if not primaries:
            raise RewardError(
                f"no primary (correctness) reward among {[t.label for t in self.terms]}; "
                "add a verifier such as 'math' or set primary: true on a term"
            )
        for i, a in enumerate(primaries):
            for b in primaries[i + 1 :]:
                if a.data_source is None or b.data_source is None or a.data_source & b.data_source:
                    raise RewardError(
                        f"rewards {a.label} and {b.label} are both primary for the same rows; "
                        "give them disjoint data_source lists or set primary: false on one"
                    )

    def close(self) -> None:
        """Stop the worker pool if this scorer started it."""
        if self._owns_pool:
            self.pool.close()

    def __enter__(self) -> RewardScorer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ---- scoring ----

    def _plan(
        self,
        completions: Sequence[str],
        rows: Sequence[dict[str, Any]],
        response_tokens: Sequence[int] | None,
    ):
        if len(completions) != len(rows):
            raise RewardError(f"{len(completions)} completions but {len(rows)} rows")
        if response_tokens is not None and len(response_tokens) != len(rows):
            raise RewardError(f"{len(response_tokens)} response_tokens but {len(rows)} rows")
        items, plan = [], []
        for i, (completion, row) in enumerate(zip(completions, rows)):
            if "answer" not in row:
                raise RewardError(f"row {i} has no 'answer' field (fields: {sorted(row)})")
            terms = [t for t in self.terms if t.applies(row)]
            if not any(t.primary for t in terms):
                raise RewardError(
                    f"no primary reward applies to row {i} (data_source={row.get('data_source')!r}); "
                    f"terms: {[(t.label, sorted(t.data_source) if t.data_source else 'all') for t in self.terms]}"
                )
            fields = {k: v for k, v in row.items() if k != "answer"}
            if response_tokens is not None:
                fields["response_tokens"] = int(response_tokens[i])
            for term in terms:
                plan.append((i, term))
                items.append(VerifyItem(completion, row["answer"], term.spec, {**fields, **term.kwargs}))
        return items, plan

    def score(
        self,
        completions: Sequence[str],
        rows: Sequence[dict[str, Any]],
        response_tokens: Sequence[int] | None = None,
    ) -> tuple[list[RewardResult], dict[str, float]]:
        """Score a batch: one combined RewardResult per completion, plus metrics.

        Args:
            completions: response texts, one per row.
            rows: dataset rows (dicts with an `answer` field; other fields reach rewards as kwargs).
            response_tokens: response lengths in tokens (passed to terms as the `response_tokens` row field).

        Returns:
            (results, metrics). `results[i].score` is the combined reward, `.correct` the primary verdict.
            Metrics: reward/mean, reward/accuracy, reward/errors, reward/timeouts (wall-clock kills),
            reward/verify_timeouts (Math-Verify's own timeout decided the verdict), reward/filtered
            (answer refused before symbolic parsing), reward/format_error_rate and reward/term/<label>
            (mean term score).

        Raises:
            RewardError: malformed rows, no primary reward for a row, or too many failed items.
        """
        items, plan = self._plan(completions, rows, response_tokens)
        raw = self.pool.score(items)
        per_row: list[list[tuple[_Term, RewardResult]]] = [[] for _ in rows]
        for (i, term), result in zip(plan, raw):
            per_row[i].append((term, result))
        results = [self._combine(parts) for parts in per_row]
        return results, self._metrics(results, plan, raw)

    def _combine(self, parts: list[tuple[_Term, RewardResult]]) -> RewardResult:
        total, verdict, extracted = 0.0, False, None
        for term, r in parts:
            if term.primary:
                verdict = r.correct and not r.failed
                extracted = r.extracted
                total += term.weight * (self.correct_score if verdict else self.wrong_score)
            elif not r.failed:
                total += term.weight * r.score
        errors = [r.error for _, r in parts if r.error]
        return RewardResult(
            score=total,
            correct=verdict,
            extracted=extracted,
            error=errors[0] if errors else None,
            timed_out=any(r.timed_out for _, r in parts),
            format_ok=all(r.format_ok for _, r in parts),
            guard=next((r.guard for term, r in parts if term.primary and r.guard), None),
        )

    def _metrics(self, results: list[RewardResult], plan: list, raw: list[RewardResult]) -> dict[str, float]:
        n = max(len(results), 1)
        metrics = {
            "reward/mean": sum(r.score for r in results) / n,
            "reward/accuracy": sum(r.correct for r in results) / n,
            "reward/errors": float(sum(r.error is not None and not r.timed_out for r in raw)),
            "reward/timeouts": float(sum(r.timed_out for r in raw)),
            "reward/verify_timeouts": float(sum(r.guard == "verify_timeout" for r in raw)),
            "reward/filtered": float(sum(r.guard == "filter" for r in raw)),
            "reward/format_error_rate": sum(not r.format_ok for r in results) / n,
        }
        sums: dict[str, list[float]] = {}
        for (_, term), r in zip(plan, raw):
            if not r.failed:
                sums.setdefault(term.label, []).append(r.score)
        for label, values in sums.items():
            metrics[f"reward/term/{label}"] = sum(values) / len(values)
        return metrics

    # ---- contract ----

    def check_contract(self, rows: Sequence[dict[str, Any]]) -> None:
        """Run every term on the first `contract_check_rows` rows before training, in the worker pool.

        The completion is the row's own gold answer in a `<think>...</think> ... \\boxed{}` response.
        Each term must return a finite float or a RewardResult, one per sample, without raising, and be
        importable by the workers. A primary reward that scores its own gold wrong on every row gets a
        warning (a likely format mismatch), not an error.

        Raises:
            RewardError: naming the reward function and the problem.
        """
        rows = list(rows[: self.contract_check_rows])
        if not rows:
            return
        for i, row in enumerate(rows):
            if not isinstance(row, dict) or "answer" not in row:
                raise RewardError(
                    f"contract check: row {i} is not a dict with an 'answer' field: {row!r:.200}"
                )
        completions = [self._gold_completion(row["answer"]) for row in rows]
        items, plan = self._plan(completions, rows, [len(c) for c in completions])
        raw = self.pool.score(items, check_errors=False)
        if len(raw) != len(items):
            raise RewardError(f"contract check: {len(items)} items gave {len(raw)} results")
        for (i, term), r in zip(plan, raw):
            if r.failed:
                raise RewardError(f"reward {term.label} failed the contract check on row {i}: {r.error}")
            if not math.isfinite(r.score):
                raise RewardError(f"reward {term.label} returned a non-finite score on row {i}")
        primaries = [(term, r) for (_, term), r in zip(plan, raw) if term.primary]
        if primaries and not any(r.correct for _, r in primaries):
            log.warning(
                "contract check: the primary reward scored the gold answer itself as wrong on all %d rows; "
                "check the answer format the reward expects",
                len(rows),
            )

    @staticmethod
    def _gold_completion(answer: object) -> str:
        gold = answer[0] if isinstance(answer, (list, tuple)) and answer else answer
        text = str(gold)
        if "####" in text:
            text = text.rsplit("####", 1)[1].strip()
        return f"<think>contract check</think>\nThe final answer is \\boxed{{{text}}}."
