"""The method comparisons under experiments/: every arm's recipe validates, aggregation and tables are right on
fake run directories, and the DRPO script's analytic demonstration says what docs/results.md reports."""

from __future__ import annotations

import importlib
import json
import shutil
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "experiments"))

import harness  # noqa: E402

SCRIPTS = ["drpo_length", "lens_groups", "cov_entropy", "erc_offpolicy", "w_reinforce_passk"]


@pytest.mark.parametrize("name", SCRIPTS)
def test_every_arm_recipe_validates(name, tmp_path):
    from rlvr.config import load_recipe

    comp = importlib.import_module(name).COMPARISON
    assert comp.budget["train"]["steps"] >= 1 and comp.metrics and comp.curves
    for arm in comp.arms:
        recipe = harness.resolved_recipe(arm, comp.budget, 0)
        folder = tmp_path / arm.name
        folder.mkdir()
        (folder / "arm.yaml").write_text(yaml.safe_dump(recipe))
        for plugin in harness._local_files(recipe):
            shutil.copy(REPO / "experiments" / plugin, folder / plugin)
        loaded, _ = load_recipe(str(folder / "arm.yaml"), [])
        assert loaded.train.steps == comp.budget["train"]["steps"]
        assert loaded.rollout.samples_per_prompt == comp.budget["rollout"]["samples_per_prompt"]


def test_shared_baseline_runs_once():
    """Comparisons with the same GRPO settings point at the same run directory; a changed setting does not."""
    dirs = {
        importlib.import_module(n).COMPARISON.baseline.name: harness.run_dir_for(
            Path("/x"),
            importlib.import_module(n).COMPARISON.baseline,
            importlib.import_module(n).COMPARISON.budget,
            0,
        )
        for n in ("drpo_length", "lens_groups", "cov_entropy", "w_reinforce_passk")
    }
    assert len(set(dirs.values())) == 1
    comp = importlib.import_module("lens_groups").COMPARISON
    other = harness.merge(comp.budget, {"train": {"steps": 7}})
    assert harness.run_dir_for(Path("/x"), comp.baseline, other, 0) != dirs["grpo"]


def _fake_run(run_dir: Path, rows: list[dict], wall: float) -> None:
    run_dir.mkdir(parents=True)
    (run_dir / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (run_dir / "done.json").write_text(json.dumps({"wall_s": wall}))


def test_aggregate_table_and_plot_from_fake_runs(tmp_path, monkeypatch):
    monkeypatch.setattr(harness, "RESULTS_DIR", tmp_path / "results")
    base, method = (
        harness.Arm("base", "recipes/methods/grpo.yaml"),
        harness.Arm("m", "recipes/methods/lens.yaml"),
    )
    budget = {"train": {"steps": 3}}
    comp = harness.Comparison(
        name="fake",
        title="fake",
        baseline=base,
        methods=(method,),
        budget=budget,
        metrics=(
            harness.Metric("final acc", "eval/accuracy"),
            harness.Metric("ent sd", "entropy/mean", "sd"),
            harness.Metric("nonzero", "nz", "mean"),
        ),
        curves=(("entropy/mean", "entropy"),),
        derived=(("nz", lambda r: None if "z" not in r else 1 - r["z"]),),
    )
    for seed, acc in enumerate([0.2, 0.4]):
        rows = [{"step": s, "entropy/mean": e, "z": 0.5} for s, e in zip([1, 2, 3], [1.0, 2.0, 3.0])]
        rows[-1]["eval/accuracy"] = acc
        _fake_run(harness.run_dir_for(tmp_path, base, budget, seed), rows, 60.0)
        rows = [{"step": s, "entropy/mean": 1.0, "z": 0.25} for s in [1, 2, 3]]
        rows[-1]["eval/accuracy"] = 0.5 + acc
        _fake_run(harness.run_dir_for(tmp_path, method, budget, seed), rows, 120.0)
    result = harness.collect(comp, [0, 1, 2], tmp_path)  # seed 2 never ran: left out, not zero
    assert result["arms"]["base"]["seeds"] == [0, 1]
    assert result["arms"]["base"]["summary"]["final acc"]["mean"] == pytest.approx(0.3)
    assert result["arms"]["base"]["summary"]["final acc"]["sd"] == pytest.approx(0.1414, abs=1e-4)
    assert result["arms"]["base"]["summary"]["ent sd"]["mean"] == pytest.approx(1.0)
    assert result["arms"]["m"]["summary"]["nonzero"]["mean"] == pytest.approx(0.75)
    assert result["arms"]["base"]["curves"]["entropy/mean"]["mean"] == [1.0, 2.0, 3.0]
    table = harness.markdown_table(result)
    assert (
        "| m | final acc | 0.300 ± 0.141 | 0.800 ± 0.141 | +0.500 ± 0.000 | 2 / 2 | 3 | 1.0 / 2.0 min |"
        in table
    )
    assert result["arms"]["m"]["paired_diff"]["ent sd"]["per_seed"] == {"0": -1.0, "1": -1.0}
    png = harness.plot(result, comp.curves, tmp_path / "fake.png")
    assert png.stat().st_size > 1000
    written = json.loads(harness.write_results(result).read_text())
    assert written["arms"]["m"]["per_seed"]["final acc"] == {"0": 0.7, "1": 0.9}


def test_drpo_analytic_demonstration(tmp_path, monkeypatch):
    """GRPO + length penalty pushes long correct answers down; DRPO's weight on every correct answer is >= 0."""
    module = importlib.import_module("drpo_length")
    monkeypatch.setattr(module, "PLOTS_DIR", tmp_path)
    out = module.analytic()["analytic"]
    assert (tmp_path / "drpo_length_analytic.png").stat().st_size > 1000
    for group in out.values():
        adv = dict(zip(group["lengths"], group["grpo_lp_advantage"]))
        correct = [length for length, c in zip(group["lengths"], group["correct"]) if c]
        assert adv[max(correct)] < 0 < adv[min(correct)]
        weights = [w for w, c in zip(group["drpo_weight"], group["correct"]) if c]
        assert min(weights) >= 0
    mixed = out["7 correct, 1 wrong"]["drpo_weight"]
    assert mixed[:7] == sorted(mixed[:7], reverse=True)  # shorter correct answers weigh more


def test_trl_curve_settings_and_aggregation(tmp_path):
    """rlvr vs TRL curve: the GRPO recipe maps to GRPOConfig as documented, and per-seed runs aggregate into
    curves against step and cumulative step time (fake run directories, no training)."""
    from rlvr.config import load_recipe

    module = importlib.import_module("trl_curve")
    settings = importlib.import_module("settings")
    arm, budget = module.rlvr_arm(5), settings.budget(10)
    recipe = harness.resolved_recipe(arm, budget, 0)
    (tmp_path / "arm.yaml").write_text(yaml.safe_dump(recipe))
    loaded, _ = load_recipe(str(tmp_path / "arm.yaml"), [])
    assert loaded.eval.every_steps == 5 and loaded.eval.at_start
    cfg = module.trl_settings(recipe, str(tmp_path / "trl"), 5)
    assert cfg["max_steps"] == 10 * loaded.learner.updates_per_step
    assert cfg["per_device_train_batch_size"] * cfg["steps_per_generation"] == 64  # 8 prompts x 8 samples
    assert cfg["save_steps"] == 5 * cfg["steps_per_generation"]
    assert (cfg["learning_rate"], cfg["beta"], cfg["epsilon"], cfg["epsilon_high"]) == (2e-5, 0.04, 0.2, 0.2)
    assert (cfg["loss_type"], cfg["scale_rewards"], cfg["shuffle_dataset"]) == ("grpo", "group", False)
    with pytest.raises(ValueError, match="aggregation"):
        module.trl_settings(harness.merge(recipe, {"algorithm": {"aggregation": "token_mean"}}), "", 5)
    trl = pytest.importorskip("trl")
    assert trl.GRPOConfig(**cfg).generation_batch_size == 64

    # Fake runs of seeds 0 and 1: rlvr evaluates at 0, 5, 10; TRL's checkpoints at 5 and 10.
    for seed in (0, 1):
        rdir = harness.run_dir_for(tmp_path, arm, budget, seed)
        rows = [{"step": s, "time/step_s": 1.0 + seed} for s in range(1, 11)]
        rows.insert(0, {"step": 0, "eval/accuracy": 0.3})
        rows[5]["eval/accuracy"], rows[10]["eval/accuracy"] = 0.35, 0.4 + 0.1 * seed
        _fake_run(rdir, rows, 60.0)
        tdir = module.trl_run_dir(tmp_path, harness.resolved_recipe(arm, budget, seed), 5)
        tdir.mkdir(parents=True)
        (tdir / "done.json").write_text(json.dumps({"wall_s": 100.0}))
        (tdir / "trl.json").write_text(json.dumps({"trl_version": "x", "step_s": [3.0] * 10}))
        for step, acc in ((5, 0.32), (10, 0.36 + 0.1 * seed)):
            (tdir / f"eval-step{step:03d}").mkdir()
            summary = {"accuracy": acc, "process_wall_s": 10.0}
            (tdir / f"eval-step{step:03d}" / "summary.json").write_text(json.dumps(summary))
    assert module.trl_run_dir(tmp_path, recipe, 5) != module.trl_run_dir(
        tmp_path, harness.resolved_recipe(arm, budget, 1), 5
    )
    result = module.collect([0, 1, 2], tmp_path, 10, 5)  # seed 2 never ran
    rlvr, trl_arm = result["arms"][module.RLVR_ARM], result["arms"][module.TRL_ARM]
    assert rlvr["seeds"] == trl_arm["seeds"] == [0, 1]
    assert rlvr["curves"]["eval/accuracy"]["step"] == [0, 5, 10]
    assert rlvr["curves"]["eval/accuracy"]["mean"] == pytest.approx([0.3, 0.35, 0.45])
    assert rlvr["curves"]["eval/accuracy"]["wall_mean"] == pytest.approx([0.0, 7.5, 15.0])
    assert trl_arm["curves"]["eval/accuracy"]["mean"] == pytest.approx([0.3, 0.32, 0.41])  # step 0 shared
    assert trl_arm["curves"]["eval/accuracy"]["wall_mean"] == pytest.approx([0.0, 15.0, 30.0])
    assert trl_arm["wall_s_mean"] == pytest.approx(120.0)  # training plus two evaluations
    diff = trl_arm["paired_diff"]["held-out avg@16, step 10"]
    assert diff["per_seed"] == pytest.approx({"0": -0.04, "1": -0.04}) and diff["n"] == 2
    assert "| 10 | 0.450 ± 0.071 | 0.410 ± 0.071 | 15.0 ± 7.1 | 30.0 ± 0.0 |" in module.curve_table(result)
    assert "| trl_grpo | held-out avg@16, step 10 |" in harness.markdown_table(
        result
    )  # experiments/report.py
    assert module.plot(result, tmp_path / "curve.png").stat().st_size > 1000
