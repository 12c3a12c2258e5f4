"""Cross-field checks of the recipe's `algorithm` section: combinations each field's own schema cannot see.

Each check takes the section and `learner.updates_per_step` and returns (level, dotted recipe key, message)
triples, level "error" or "warning"; `AlgorithmConfig.composition_issues` runs them all.
"""

from __future__ import annotations

from typing import Any

# The section's type is rlvr.config.algorithm.AlgorithmConfig, which imports this module.
AlgorithmConfig = Any

# Estimators whose signal comes from all-wrong groups: dropping those groups defeats them.
_DROPS_ALL_WRONG_BREAKS = ("lens", "w_reinforce")
Issues = list[tuple[str, str, str]]
K = "algorithm."


def _check_dynamic_sampling(cfg: AlgorithmConfig, updates: int) -> Issues:
    ds, est = cfg.dynamic_sampling, cfg.estimator.name
    if ds.enabled and ds.mode == "drop_uniform" and est in _DROPS_ALL_WRONG_BREAKS:
        return [
            (
                "error",
                K + "dynamic_sampling.mode",
                f"{est} learns from all-wrong groups, which drop_uniform discards; use mode: keep_all_wrong",
            )
        ]
    if ds.enabled and ds.mode == "keep_all_wrong" and est not in _DROPS_ALL_WRONG_BREAKS:
        return [
            (
                "warning",
                K + "dynamic_sampling.mode",
                f"keep_all_wrong keeps all-wrong groups, whose {est} advantages are 0: they only dilute the loss",
            )
        ]
    return []


def _check_drpo(cfg: AlgorithmConfig, updates: int) -> Issues:
    if cfg.loss.name != "drpo":
        return []
    out: Issues = []
    if cfg.cov is not None:
        out.append(
            ("error", K + "cov", f"DRPO has no per-token advantages; {cfg.cov.name} cannot apply to it")
        )
    if cfg.erc is not None:
        out.append(
            ("error", K + "erc", "DRPO is a whole objective without per-token losses; ERC cannot apply")
        )
    if cfg.modifiers:
        out.append(
            (
                "error",
                K + "modifiers",
                "DRPO is a whole objective without per-token losses; modifiers cannot apply",
            )
        )
    if cfg.estimator.name != "none":
        out.append(
            (
                "warning",
                K + "estimator",
                f"DRPO ignores advantages; {cfg.estimator.name} would be computed and unused (use name: none)",
            )
        )
    if cfg.overlong.enabled:
        out.append(
            (
                "warning",
                K + "overlong",
                "DRPO reads {0,1} correctness and puts length in its weights; overlong reward shaping has no effect",
            )
        )
    if cfg.kl_to_ref is not None and cfg.kl_to_ref.as_ == "reward":
        out.append(
            ("warning", K + "kl_to_ref.as", "DRPO reads no rewards; a KL reward penalty has no effect")
        )
    if cfg.dynamic_sampling.enabled:
        out.append(
            (
                "warning",
                K + "dynamic_sampling.enabled",
                "DRPO already ignores uniform groups but counts them in its denominator; the reference runs it off",
            )
        )
    return out


def _check_erc(cfg: AlgorithmConfig, updates: int) -> Issues:
    if cfg.erc is not None and updates == 1:
        return [
            (
                "warning",
                K + "erc",
                "ERC is a no-op on-policy (updates_per_step == 1): the entropy ratio is ~1 on every token",
            )
        ]
    return []


def _check_gspo(cfg: AlgorithmConfig, updates: int) -> Issues:
    out: Issues = []
    if cfg.loss.name == "gspo" and cfg.aggregation != "seq_mean_token_mean":
        out.append(
            (
                "warning",
                K + "aggregation",
                f"GSPO forces seq_mean_token_mean for its policy term; aggregation={cfg.aggregation} applies "
                "only to KL/entropy terms",
            )
        )
    if cfg.loss.name == "gspo" and updates == 1:
        out.append(
            ("warning", K + "loss", "GSPO only has an effect off-policy; with updates_per_step == 1 r = 1")
        )
    return out


def _check_cov(cfg: AlgorithmConfig, updates: int) -> Issues:
    cov, loss = cfg.cov, cfg.loss
    if cov is None:
        return []
    if cov.name == "clip_cov" and getattr(loss, "clip_ratio_c", None) is not None:
        return [
            (
                "warning",
                K + "loss.clip_ratio_c",
                "the reference Clip-Cov loss has no dual-clip; set clip_ratio_c: null to reproduce it",
            )
        ]
    if cov.name == "kl_cov" and loss.name == "ppo_clip":
        return [
            (
                "warning",
                K + "loss.name",
                "the reference KL-Cov loss has no PPO clip (loss name pg); with ppo_clip both apply",
            )
        ]
    return []


def _check_shaping(cfg: AlgorithmConfig, updates: int) -> Issues:
    out: Issues = []
    est = cfg.estimator
    std_normalised = est.name in ("grpo", "qae") and getattr(est, "norm_by_std", True)
    if cfg.overlong.enabled and std_normalised and not cfg.dynamic_sampling.enabled:
        out.append(
            (
                "warning",
                K + "overlong",
                f"{est.name} divides by the group std, which amplifies small length penalties in otherwise "
                "all-correct groups into large negative advantages; enable dynamic_sampling or use dr_grpo",
            )
        )
    if cfg.kl_to_ref is not None and cfg.kl_to_ref.as_ == "reward":
        if est.name in ("w_reinforce", "lens"):
            out.append(
                (
                    "warning",
                    K + "kl_to_ref.as",
                    f"{est.name} reads verdicts, not rewards; a KL reward has no effect",
                )
            )
        if cfg.kl_to_ref.estimator.endswith("+"):
            out.append(
                (
                    "warning",
                    K + "kl_to_ref.estimator",
                    "a '+' estimator only changes gradients; as a reward it equals the plain estimator",
                )
            )
    if cfg.loss_scale_factor is not None and cfg.aggregation != "seq_mean_token_sum_norm":
        out.append(
            ("warning", K + "loss_scale_factor", "loss_scale_factor is only used by seq_mean_token_sum_norm")
        )
    return out


def _check_updates(cfg: AlgorithmConfig, updates: int) -> Issues:
    if updates < 1:
        return [("error", "learner.updates_per_step", f"updates_per_step must be >= 1, got {updates}")]
    return []


CHECKS = (
    _check_updates,
    _check_dynamic_sampling,
    _check_drpo,
    _check_erc,
    _check_gspo,
    _check_cov,
    _check_shaping,
)
