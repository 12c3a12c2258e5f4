"""The recipe's `algorithm:` section: parsing, strictness, to_spec <-> library agreement, composition_issues."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch
from conftest import ENTROPY, OLD_ENTROPY, shared_batch, t64
from pydantic import ValidationError

from rlvr.algo import (
    ESTIMATORS,
    LOSS_MODIFIERS,
    OBJECTIVES,
    POLICY_LOSSES,
    compute_advantages,
    compute_policy_loss,
)
from rlvr.config.algorithm import _ESTIMATORS, _LOSSES, AlgorithmConfig


def issues(cfg: dict, updates: int = 4) -> list[tuple[str, str, str]]:
    return AlgorithmConfig.model_validate(cfg).composition_issues(updates_per_step=updates)


def keys(found, level):
    return {k for lvl, k, _ in found if lvl == level}


def test_default_is_grpo_ppo_clip_token_mean():
    spec = AlgorithmConfig().to_spec()
    assert spec["estimator"]["name"] == "grpo"
    assert spec["loss"] == {
        "name": "ppo_clip",
        "kwargs": {"eps_low": 0.2, "eps_high": 0.2, "clip_ratio_c": None, "log_ratio_clamp": 20.0},
    }
    assert spec["aggregation"] == "token_mean" and spec["modifiers"] == []
    assert AlgorithmConfig().composition_issues(updates_per_step=1) == []


def test_parsing_variants_shorthand_and_plugins():
    cfg = AlgorithmConfig.model_validate(
        {
            "estimator": "qae",
            "loss": {"name": "ppo_clip", "eps_high": 0.28, "clip_ratio_c": 10},
            "cov": {"name": "kl_cov", "ratio": 0.002},
            "erc": {},
            "kl_to_ref": {"estimator": "k3+", "coef": 0.04, "as": "reward"},
        }
    )
    spec = cfg.to_spec()
    assert spec["estimator"] == {
        "name": "qae",
        "kwargs": {"k": 0.4, "quantile_mode": "right_continuous", "eps": 1e-6},
    }
    assert [m["name"] for m in spec["modifiers"]] == ["kl_cov", "erc"]
    assert spec["kl_to_ref"] == {"estimator": "k3+", "coef": 0.04, "as": "reward"}
    plugin = AlgorithmConfig.model_validate({"loss": {"name": "my.mod:loss", "kwargs": {"x": 1}}})
    assert plugin.to_spec()["loss"] == {"name": "my.mod:loss", "kwargs": {"x": 1}}


@pytest.mark.parametrize(
    "bad",
    [
        {"estimatr": "grpo"},
        {"estimator": {"name": "grpo", "epsilon": 1e-6}},
        {"estimator": {"name": "qae", "k": 1.5}},
        {"loss": {"name": "ppo_clip", "clip_ratio_c": 0.5}},
        {"loss": {"name": "drpo", "lambda": 0.1}},
        {"loss": {"name": "not valid"}},
        {"estimator": {"name": "custom_thing", "eps": 1}},
        {"cov": {"name": "clip_cov", "lb": 5, "ub": 1}},
        {"cov": {"name": "other"}},
        {"kl_to_ref": {"as_": "loss"}},
        {"aggregation": "token-mean"},
        {"dynamic_sampling": {"enabled": True, "mode": "drop_all"}},
        {"overlong": {"enabled": True}},
        {"overlong": {"enabled": True, "max_tokens": 100, "cache_tokens": 200}},
    ],
)
def test_invalid_sections_rejected(bad):
    with pytest.raises(ValidationError):
        AlgorithmConfig.model_validate(bad)


def test_config_and_library_names_agree():
    assert set(_ESTIMATORS) <= set(ESTIMATORS.names())
    assert set(_LOSSES) <= set(POLICY_LOSSES.names()) | set(OBJECTIVES.names())
    assert {"clip_cov", "kl_cov", "erc"} <= set(LOSS_MODIFIERS.names())


@pytest.mark.parametrize("estimator", sorted(_ESTIMATORS))
def test_every_estimator_spec_runs(estimator):
    spec = AlgorithmConfig.model_validate({"estimator": estimator}).to_spec()["estimator"]
    inputs = shared_batch()
    out = compute_advantages(
        spec["name"],
        t64([1, 0, 0, 1]),
        torch.tensor([True, False, False, True]),
        torch.tensor([0, 0, 1, 1]),
        inputs.response_mask,
        inputs.old_logprobs,
        **spec["kwargs"],
    )
    assert out.shape == (4, 4) and torch.isfinite(out).all()


@pytest.mark.parametrize("loss", sorted(_LOSSES))
@pytest.mark.parametrize("extra", [{}, {"cov": {"name": "clip_cov"}}, {"cov": {"name": "kl_cov"}, "erc": {}}])
def test_every_loss_spec_runs(loss, extra):
    cfg = AlgorithmConfig.model_validate(
        {"loss": {"name": loss}, "kl_to_ref": {"coef": 0.01}, "entropy_coef": 1e-3, **extra}
    )
    inputs = shared_batch(
        ref_logprobs=t64([[-0.6] * 4] * 4),
        entropy=t64(ENTROPY),
        old_entropy=t64(OLD_ENTROPY),
        group_ids=torch.tensor([0, 0, 1, 1]),
        correct=torch.tensor([True, False, True, False]),
    )
    if loss == "drpo" and extra:
        assert keys(cfg.composition_issues(updates_per_step=2), "error")
        with pytest.raises(ValueError, match="whole objective"):
            compute_policy_loss(cfg.to_spec(), inputs)
        return
    out = compute_policy_loss(cfg.to_spec(), inputs, generator=torch.Generator().manual_seed(0))
    out.loss.backward()
    assert torch.isfinite(out.loss) and torch.isfinite(inputs.logprobs.grad).all()
    assert "kl_ref" in out.metrics and "entropy" in out.metrics


def test_issue_lens_wreinforce_with_dropping_dynamic_sampling():
    for est in ("lens", "w_reinforce"):
        found = issues({"estimator": est, "dynamic_sampling": {"enabled": True}})
        assert "algorithm.dynamic_sampling.mode" in keys(found, "error")
        assert any("keep_all_wrong" in m for _, _, m in found)
        ok = issues({"estimator": est, "dynamic_sampling": {"enabled": True, "mode": "keep_all_wrong"}})
        assert not keys(ok, "error")
    assert not keys(issues({"estimator": "lens"}), "error")  # filter off: fine


def test_issue_drpo_compositions():
    drpo = {"loss": {"name": "drpo"}, "estimator": "none"}
    assert issues(drpo) == []
    assert "algorithm.cov" in keys(issues({**drpo, "cov": {"name": "clip_cov"}}), "error")
    assert "algorithm.cov" in keys(issues({**drpo, "cov": {"name": "kl_cov"}}), "error")
    assert "algorithm.erc" in keys(issues({**drpo, "erc": {}}), "error")
    assert "algorithm.estimator" in keys(issues({"loss": {"name": "drpo"}}), "warning")


def test_issue_erc_on_policy_and_gspo_aggregation():
    assert "algorithm.erc" in keys(issues({"erc": {}}, updates=1), "warning")
    assert issues({"erc": {}}, updates=8) == []
    found = issues({"loss": {"name": "gspo"}})
    assert "algorithm.aggregation" in keys(found, "warning")
    assert issues({"loss": {"name": "gspo"}, "aggregation": "seq_mean_token_mean"}) == []


def test_issue_other_spec_flags():
    assert "algorithm.overlong" in keys(
        issues({"overlong": {"enabled": True, "max_tokens": 512, "cache_tokens": 64}}), "warning"
    )
    assert "algorithm.loss.clip_ratio_c" in keys(
        issues({"loss": {"clip_ratio_c": 3}, "cov": {"name": "clip_cov"}}), "warning"
    )
    assert "algorithm.loss.name" in keys(issues({"cov": {"name": "kl_cov"}}), "warning")
    assert issues({"loss": {"name": "pg"}, "cov": {"name": "kl_cov"}}) == []
    # Unknown names are the start-up checks' job, after the plugins are imported (tests/plugins).
    assert issues({"estimator": {"name": "gpro"}}) == []
    assert "learner.updates_per_step" in keys(issues({}, updates=0), "error")


def test_config_imports_without_torch():
    code = "import sys; import rlvr.config.algorithm; assert 'torch' not in sys.modules, 'torch imported'"
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stderr
