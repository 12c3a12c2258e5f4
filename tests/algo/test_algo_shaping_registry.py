"""Shaping and filters (vectors T13 overlong, T14 dynamic sampling), the registry / import-path resolver, and the no-heavy-imports guarantee."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest
import torch
from conftest import assert_close, shared_batch, t64

from rlvr.algo import (
    ESTIMATORS,
    POLICY_LOSSES,
    PolicyTerm,
    compute_advantages,
    compute_policy_loss,
    dynamic_sampling_keep,
    format_penalty,
    overlong_penalty,
    register_estimator,
    register_policy_loss,
)
from rlvr.algo.registry import Registry


def test_t13_overlong_penalty():
    lengths = torch.tensor([1000, 16384, 16385, 18432, 20000, 20480, 30000])
    out = overlong_penalty(lengths, max_tokens=20480, cache_tokens=4096)
    assert_close(out, [0, 0, -0.0002441, -0.5, -0.8828125, -1, -1])
    assert_close(1.0 + out[3], 0.5)
    assert_close(overlong_penalty(lengths[3:4], max_tokens=20480, cache_tokens=4096, factor=0.5), [-0.25])
    with pytest.raises(ValueError, match="cache_tokens"):
        overlong_penalty(lengths, max_tokens=100, cache_tokens=200)


def test_t14_dynamic_sampling():
    metric = t64([1, 1, 1, 1, 0, 0, 0, 0, 1, 0, 0, 0, 1, 1, 0, 1, 0.5, 0.5, 0.5, 0.5])
    ids = torch.arange(5).repeat_interleave(4)
    keep = dynamic_sampling_keep(metric, ids)
    assert keep.tolist() == [False] * 8 + [True] * 8 + [False] * 4
    keep = dynamic_sampling_keep(metric, ids, mode="keep_all_wrong", correct_B=metric == 1)
    # q2 is all-wrong (kept); q5 has no correct answer either (its 0.5 scores are not verdicts), so kept.
    assert keep.tolist() == [False] * 4 + [True] * 16
    assert dynamic_sampling_keep(t64([1.0]), torch.tensor([9])).tolist() == [True]
    with pytest.raises(ValueError, match="correct_B"):
        dynamic_sampling_keep(metric, ids, mode="keep_all_wrong")


def test_format_penalty():
    assert_close(
        format_penalty(t64([1, 0, 1]), torch.tensor([True, False, False]), penalty=0.5), [1, -0.5, 0.5]
    )


def test_registry_rules():
    reg = Registry("thing")
    with pytest.raises(ValueError, match="snake_case"):
        reg.register("Bad-Name")
    reg.register("ok")(len)
    with pytest.raises(ValueError, match="already registered"):
        reg.register("ok")(max)
    with pytest.raises(KeyError, match="registered things: ok"):
        reg.get("missing")
    assert reg.get("os.path:join").__name__ == "join"
    with pytest.raises(KeyError, match="'nope' not found"):
        reg.get("os.path:nope")


def test_user_registered_estimator_and_loss_are_used():
    @register_estimator("test_constant_two")
    def constant_two(inp, *, scale: float = 1.0):
        return inp.broadcast(torch.full_like(inp.rewards_B, 2.0 * scale))

    @register_policy_loss("test_neg_logprob")
    def neg_logprob(inputs, *, generator=None):
        return PolicyTerm(loss_BT=-inputs.advantages * inputs.logprobs)

    try:
        a = compute_advantages(
            "test_constant_two",
            t64([1, 0]),
            torch.tensor([1, 0]),
            torch.tensor([0, 0]),
            torch.ones(2, 3, dtype=torch.float64),
            scale=0.5,
        )
        assert_close(a, torch.ones(2, 3))
        inputs = shared_batch()
        out = compute_policy_loss({"loss": {"name": "test_neg_logprob"}}, inputs)
        expected = -(inputs.advantages * inputs.logprobs.detach() * inputs.response_mask).sum() / 13
        assert_close(out.loss, expected)
    finally:
        ESTIMATORS._table.pop("test_constant_two")
        POLICY_LOSSES._table.pop("test_neg_logprob")


def test_import_path_estimator():
    out = compute_advantages(
        "rlvr.algo.advantages:w_reinforce",
        t64([1, 0]),
        torch.tensor([True, False]),
        torch.tensor([0, 0]),
        torch.ones(2, 1, dtype=torch.float64),
        mode="nsr",
    )
    assert_close(out[:, 0], [0, -1])


def test_algo_imports_with_ray_vllm_deepspeed_blocked():
    code = textwrap.dedent(
        """
        import sys
        BLOCKED = ("ray", "vllm", "deepspeed", "transformers", "pydantic")
        class Block:
            def find_spec(self, name, path=None, target=None):
                if name.split(".")[0] in BLOCKED:
                    raise ImportError("blocked: " + name)
                return None
        sys.meta_path.insert(0, Block())
        import torch
        import rlvr.algo as algo
        from rlvr.algo import LossInputs, compute_policy_loss
        m = torch.ones(2, 3)
        lp = torch.zeros(2, 3, requires_grad=True)
        out = compute_policy_loss({}, LossInputs(lp, torch.zeros(2, 3), m, advantages=m))
        out.loss.backward()
        assert not [k for k in sys.modules if k.split(".")[0] in BLOCKED], "heavy module imported"
        print("ok", sorted(algo.ESTIMATORS.names())[0])
        """
    )
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == "ok dr_grpo"


@pytest.mark.parametrize(
    ("length", "penalty"),
    [
        (1000, 0.0),
        (16384, 0.0),
        (16385, -0.0002441),
        (18432, -0.5),
        (20000, -0.8828125),
        (20480, -1.0),
        (30000, -1.0),
    ],
)
def test_overlong_dapo_eq13_vectors(length: int, penalty: float) -> None:
    """DAPO overlong shaping (docs/algorithms.md, "Overlong shaping"): L_max=20480, L_cache=4096, factor 1."""
    got = overlong_penalty(torch.tensor([length]), max_tokens=20480, cache_tokens=4096)
    assert float(got[0]) == pytest.approx(penalty, abs=1e-7)


def test_overlong_validates_sizes() -> None:
    with pytest.raises(ValueError, match="cache_tokens"):
        overlong_penalty(torch.tensor([10]), max_tokens=100, cache_tokens=0)
