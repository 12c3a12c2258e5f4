"""GRPO in rlvr vs TRL's GRPOTrainer at equal budget: held-out accuracy against step and against wall time.

    .venv/bin/python experiments/trl_curve.py --seeds 3             # train and evaluate what is missing
    .venv/bin/python experiments/trl_curve.py --aggregate-only      # numbers and plot from existing runs
    .venv/bin/python experiments/trl_curve.py --steps 2 --eval-every 1 --seeds 1   # smoke test

Both arms train the tiny SFT model (`rlvr tiny build`) on the synthetic arithmetic task with the budget of the
other comparisons (`settings.budget()`: 20 steps x 8 prompts x 8 samples, <= 64 new tokens, temperature 1).

* **rlvr**: the GRPO arm of the other comparisons (`recipes/methods/grpo.yaml`), trained by the harness
  (`rlvr train`, runs cached under $RLVR_EXP_ROOT), with the held-out evaluation every `--eval-every` steps
  and once at the start.
* **TRL**: `trl.GRPOTrainer` in a child process of this script (as `bench/compare_trl.py` runs it: HF-generate
  backend, CPU, fp32). It gets the prompts rlvr's sampler draws for the same seed, in the same order and
  rendered by the same chat template (the worker checks that TRL's token ids equal rlvr's), and its reward
  function calls rlvr's own reward pipeline (`RewardScorer` built from the recipe's `rewards` section). It
  saves the model every `--eval-every` RL steps; each checkpoint is evaluated by the function behind
  `rlvr eval` (`rlvr.commands.eval`: `resolve_settings`, `load_prompts`, `generate_and_score`) with the rlvr
  arm's recipe as the checkpoint's recipe, so the protocol is the training-time one: the first 48 prompts
  of the synthetic test split x 16 samples at temperature 1, <= 64 tokens, sampling seed = the run seed,
  scored by the recipe's reward; avg@16 is reported. Step 0 is the same model for both arms: the rlvr run's
  start-of-run evaluation of that seed is used for both. Once (seed 0) the script also evaluates the
  initial model through the TRL side's evaluation path, to check that it gives the rlvr run's step-0 figure.

Wall time: per RL step, rlvr's `time/step_s` (metrics.jsonl: generate, reward, logprobs, update, sync) and
TRL's optimizer steps of that RL step timed by a TrainerCallback (generate, score, update); neither includes
evaluation, checkpoint writing or start-up. The wall-time panel puts each eval point at the seed-mean
cumulative step time. Both arms run at `nice 15`, one process at a time. Before each training run the
script waits for the 1-minute load average to fall below `--idle-load` (at most `--idle-max-wait` s) and
records the CPU other processes used during the run (`machine.json`, bench/compare_trl.py's monitor; in the
JSON as "other processes' CPU"). The timings follow the machine's load: in the smoke test a TRL step took
0.7 s on an idle machine and 16-21 s while another process kept one of the two cores busy, so the wall-time
panel means something only for runs that the record shows undisturbed.

Hyperparameters: the resolved rlvr recipe, mapped to GRPOConfig (`trl_settings`):

    rlvr recipe                                    TRL GRPOConfig
    learner.lr 2e-5                                learning_rate 2e-5
    lr_schedule constant, warmup_updates 10        rlvr's own multiplier (update k < 10: (k+1)/11, then 1) in
                                                   a LambdaLR (create_scheduler); TRL's constant_with_warmup
                                                   would ramp k/10, i.e. a first update at lr 0
    learner.betas (0.9, 0.999), weight_decay 0     adam_beta1 0.9, adam_beta2 0.999, weight_decay 0,
      (torch AdamW, eps 1e-8)                        optim adamw_torch, adam_epsilon 1e-8
    learner.grad_clip 1.0                          max_grad_norm 1.0
    learner.updates_per_step 2 (mini-batches)      steps_per_generation 2, per_device_train_batch_size 32,
                                                   gradient_accumulation_steps 1, num_iterations 1,
                                                   max_steps = 2 x steps (TRL counts optimizer updates)
    train.prompts_per_step 8, samples 8            generation_batch_size 64, num_generations 8
    rollout max_response_tokens 64, temperature    max_completion_length 64, temperature 1, top_p 1,
      1, top_p 1, top_k 0                            top_k 0
    estimator grpo, norm_by_std (unbiased std)     scale_rewards "group" (unbiased std)
    loss ppo_clip eps_low = eps_high = 0.2,        epsilon 0.2, epsilon_high 0.2, delta None,
      clip_ratio_c null, token-level ratio           importance_sampling_level "token"
    aggregation seq_mean_token_mean                loss_type "grpo" (per-sequence token mean, then mean)
    kl_to_ref k3, coef 0.04, as loss               beta 0.04 (TRL's KL term is k3, added to the loss)
    no dynamic sampling, no overlong shaping       mask_truncated_completions False
    model.dtype float32 on CPU                     bf16 False, use_cpu, float32 weights
    seed s (prompt order, sampling)                seed s; prompts in rlvr's order, shuffle_dataset False

What cannot match: (1) mini-batches: rlvr's two updates take groups 0-3 then 4-7; TRL shuffles the 64
completions and splits them in halves, so a group's samples fall into both. (2) The std's epsilon: rlvr
1e-6, TRL a fixed 1e-4 (rewards are 0/1, a mixed group's std is >= 0.35: < 0.03% of an advantage). (3) rlvr
clamps the log-ratio (+-20) and k3 (+-10); TRL does not (neither is reached at these KLs). (4) Sampling:
rlvr generates with vLLM, TRL with `model.generate`: the same distribution, different random streams, so
the two arms of a seed see the same prompts but not the same samples. (5) rlvr gives no weight decay to 1-D
parameters; TRL (HF) to none of biases and norms: moot at weight decay 0.

Writes experiments/results/trl_curve.json (per seed and mean +- sd at each eval step, step times) and
docs/results/trl_curve.png (held-out avg@16 against step and against cumulative step time).
"""

from __future__ import annotations

import argparse
import copy
import hashlib
import json
import math
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from harness import (
    DEFAULT_ROOT,
    PLOTS_DIR,
    REPO,
    Arm,
    _env,
    mean_sd,
    merge,
    paired_diff,
    read_metrics,
    recipe_key,
    resolved_recipe,
    run_arm,
    run_dir_for,
    series,
    wall_seconds,
    write_results,
)
from settings import STEPS, budget

NAME = "trl_curve"
TITLE = "GRPO: rlvr vs TRL GRPOTrainer, same model, prompts and budget (tiny model, arithmetic)"
RLVR_ARM = "rlvr_grpo"
TRL_ARM = "trl_grpo"
EVAL_EVERY = 5
NICE = 15
TRL_MISSING = (
    "experiments/trl_curve.py: TRL is not installed in this environment; install it with "
    "`pip install -e '.[bench]'` (or `pip install 'trl>=1.0'`)"
)


def rlvr_arm(eval_every: int = EVAL_EVERY) -> Arm:
    """The GRPO arm of the other comparisons, evaluated at the start and every `eval_every` steps."""
    return Arm(RLVR_ARM, "recipes/methods/grpo.yaml", {"eval": {"every_steps": eval_every, "at_start": True}})


def eval_steps(steps: int, eval_every: int) -> list[int]:
    """The steps with a held-out evaluation, 0 (the initial model) included."""
    return list(range(0, steps + 1, eval_every))


# ---- the TRL configuration --------------------------------------------------------------------------------


def trl_settings(recipe: dict[str, Any], out_dir: str, eval_every: int) -> dict[str, Any]:
    """GRPOConfig keyword arguments for the resolved rlvr recipe (the mapping in the module docstring).

    Raises:
        ValueError: The recipe uses something this mapping does not translate.
    """
    from rlvr.config import validate_dict

    full, _ = validate_dict(copy.deepcopy(recipe), "trl_settings")  # every default filled in
    recipe = full.model_dump(mode="json")
    algo, learner, rollout = recipe["algorithm"], recipe["learner"], recipe["rollout"]
    est, loss, kl = algo["estimator"], algo["loss"], algo.get("kl_to_ref")
    if est["name"] != "grpo" or loss["name"] != "ppo_clip" or loss["clip_ratio_c"] is not None:
        raise ValueError("trl_settings maps GRPO with the plain PPO clip only")
    if algo["aggregation"] != "seq_mean_token_mean":
        raise ValueError(f"aggregation {algo['aggregation']!r}: only seq_mean_token_mean maps to TRL")
    if kl is not None and (kl["estimator"] != "k3" or kl["as"] != "loss"):
        raise ValueError("TRL's KL term is k3 in the loss")
    if algo["dynamic_sampling"]["enabled"] or algo["overlong"]["enabled"] or algo["entropy_coef"]:
        raise ValueError("dynamic sampling, overlong shaping and the entropy bonus are not mapped to TRL")
    samples = rollout["samples_per_prompt"]
    prompts = recipe["train"]["prompts_per_step"]
    updates = learner["updates_per_step"]
    if prompts % updates:
        raise ValueError("prompts_per_step must split evenly into updates_per_step mini-batches")
    steps = recipe["train"]["steps"]
    return {
        "output_dir": out_dir,
        "max_steps": steps * updates,
        "per_device_train_batch_size": prompts * samples // updates,
        "gradient_accumulation_steps": 1,
        "steps_per_generation": updates,
        "num_iterations": 1,
        "num_generations": samples,
        "max_completion_length": rollout["max_response_tokens"],
        "temperature": rollout["temperature"],
        "top_p": rollout["top_p"],
        "top_k": rollout["top_k"],
        "learning_rate": learner["lr"],
        "lr_scheduler_type": "constant",  # replaced by rlvr's schedule (TRLCurveTrainer.create_scheduler)
        "optim": "adamw_torch",
        "adam_beta1": learner["betas"][0],
        "adam_beta2": learner["betas"][1],
        "adam_epsilon": 1e-8,
        "weight_decay": learner["weight_decay"],
        "max_grad_norm": learner["grad_clip"],
        "beta": kl["coef"] if kl else 0.0,
        "epsilon": loss["eps_low"],
        "epsilon_high": loss["eps_high"],
        "delta": None,
        "importance_sampling_level": "token",
        "loss_type": "grpo",
        "scale_rewards": "group" if est["norm_by_std"] else "none",
        "mask_truncated_completions": False,
        "shuffle_dataset": False,
        "bf16": False,
        "use_cpu": True,
        "seed": recipe["seed"],
        "save_strategy": "steps",
        "save_steps": eval_every * updates,
        "save_only_model": True,
        "eval_strategy": "no",
        "report_to": "none",
        "logging_steps": 1,
        "disable_tqdm": True,
    }


def trl_run_dir(root: Path, recipe: dict[str, Any], eval_every: int) -> Path:
    """Keyed by the rlvr recipe (seed aside) and the TRL settings, like the harness keys its runs."""
    settings = {
        k: v for k, v in trl_settings(recipe, "", eval_every).items() if k not in ("seed", "output_dir")
    }
    blob = json.dumps([recipe_key(recipe), settings], sort_keys=True, default=str).encode()
    return root / f"{TRL_ARM}-{hashlib.sha256(blob).hexdigest()[:8]}" / f"seed{recipe['seed']}"


# ---- running ----------------------------------------------------------------------------------------------


def _child(args: list[str], log: Path) -> tuple[int, float]:
    cmd = ["nice", "-n", str(NICE), sys.executable, str(Path(__file__).resolve()), *args]
    t0 = time.monotonic()
    with log.open("w") as f:
        rc = subprocess.call(cmd, stdout=f, stderr=subprocess.STDOUT, cwd=REPO, env=_env())
    return rc, time.monotonic() - t0


def _fail(what: str, log: Path) -> SystemExit:
    tail = log.read_text().splitlines()[-8:] if log.exists() else []
    return SystemExit(f"[exp] {what} failed; {log}:\n" + "\n".join(tail))


def timed_run(label: str, run_dir: Path, train, idle_load: float, idle_max_wait: float) -> Path:
    """`train()` (which returns the run directory) after waiting for an idle machine, with the CPU time other
    processes used meanwhile recorded in `<run dir>/machine.json` (bench/compare_trl.py's wait and monitor)."""
    if (run_dir / "done.json").exists():
        return train()
    sys.path.insert(0, str(REPO / "bench"))
    from _common import wait_for_idle
    from compare_trl import Monitor

    print(f"[exp] {label}: waiting for load < {idle_load} (at most {idle_max_wait:.0f} s)", flush=True)
    idle = wait_for_idle(lambda: os.getloadavg()[0], idle_load, idle_max_wait)
    with Monitor() as mon:
        out = train()
    machine = {"idle": idle, **mon.report()}
    (out / "machine.json").write_text(json.dumps(machine, indent=1))
    print(f"[exp] {label}: other processes used {machine['other_cpu_cores']:.2f} cores meanwhile", flush=True)
    return out


def run_trl(recipe: dict[str, Any], root: Path, eval_every: int) -> Path:
    """Train one TRL seed unless its run directory holds a finished run; returns the directory."""
    run_dir = trl_run_dir(root, recipe, eval_every)
    seed = recipe["seed"]
    if (run_dir / "done.json").exists():
        print(f"[exp] {TRL_ARM} seed {seed}: done already ({run_dir})", flush=True)
        return run_dir
    if run_dir.exists():
        shutil.rmtree(run_dir)
    run_dir.mkdir(parents=True)
    import yaml

    (run_dir / "arm.yaml").write_text(yaml.safe_dump(recipe, sort_keys=False))
    spec = {"recipe": str(run_dir / "arm.yaml"), "out_dir": str(run_dir), "eval_every": eval_every}
    (run_dir / "spec.json").write_text(json.dumps(spec, indent=1))
    print(f"[exp] {TRL_ARM} seed {seed}: GRPOTrainer ({run_dir})", flush=True)
    rc, wall = _child(["--trl-worker", str(run_dir / "spec.json")], run_dir / "console.log")
    if rc != 0 or not (run_dir / "trl.json").exists():
        raise _fail(f"{TRL_ARM} seed {seed} (exit {rc})", run_dir / "console.log")
    (run_dir / "done.json").write_text(json.dumps({"wall_s": wall, "arm": TRL_ARM, "seed": seed}))
    print(f"[exp] {TRL_ARM} seed {seed}: {wall:.0f}s", flush=True)
    return run_dir


def evaluate(model_dir: Path, recipe_file: Path, out_dir: Path, step: int) -> dict[str, Any]:
    """rlvr's held-out evaluation of a saved model (cached in `out_dir/summary.json`), in a child process."""
    summary = out_dir / "summary.json"
    if summary.exists():
        return json.loads(summary.read_text())
    out_dir.mkdir(parents=True, exist_ok=True)
    spec = {"model": str(model_dir), "recipe": str(recipe_file), "out_dir": str(out_dir), "step": step}
    (out_dir / "spec.json").write_text(json.dumps(spec, indent=1))
    rc, wall = _child(["--eval-worker", str(out_dir / "spec.json")], out_dir / "console.log")
    if rc != 0 or not summary.exists():
        raise _fail(f"evaluation of {model_dir} (exit {rc})", out_dir / "console.log")
    data = json.loads(summary.read_text())
    data["process_wall_s"] = wall
    summary.write_text(json.dumps(data, indent=1))
    print(
        f"[exp] eval {model_dir.name} (step {step}): avg@16 {data['accuracy']:.3f} in {wall:.0f}s", flush=True
    )
    return data


def evaluate_trl(run_dir: Path, steps: int, eval_every: int) -> None:
    for step in eval_steps(steps, eval_every)[1:]:
        ckpt = run_dir / f"checkpoint-{step * _updates(run_dir)}"
        if not (ckpt / "config.json").exists():
            raise SystemExit(f"[exp] {ckpt} is missing: the TRL run saved no model at step {step}")
        evaluate(ckpt, run_dir / "arm.yaml", run_dir / f"eval-step{step:03d}", step)


def _updates(run_dir: Path) -> int:
    """TRL's optimizer updates per RL step of this run (its checkpoints are numbered in updates)."""
    import yaml

    return trl_settings(yaml.safe_load((run_dir / "arm.yaml").read_text()), "", 1)["steps_per_generation"]


def start_check_dir(root: Path, rlvr_dir: Path) -> Path:
    return root / NAME / f"start-check-{rlvr_dir.parent.name}-{rlvr_dir.name}"


def check_start_eval(rlvr_dir: Path, root: Path) -> dict[str, Any]:
    """The initial model through the TRL side's evaluation path vs the rlvr run's step-0 evaluation."""
    from rlvr.tiny.build import build_tiny

    ours = evaluate(Path(build_tiny()), rlvr_dir / "arm.yaml", start_check_dir(root, rlvr_dir), 0)["accuracy"]
    steps, acc = series(read_metrics(rlvr_dir), "eval/accuracy")
    theirs = dict(zip(steps, acc)).get(0, float("nan"))
    print(f"[exp] step-0 check: rlvr run {theirs:.4f}, rlvr eval path {ours:.4f}", flush=True)
    return {"rlvr_run_step0": theirs, "eval_path_step0": ours, "equal": ours == theirs}


# ---- the TRL worker (child process) -----------------------------------------------------------------------


def rlvr_prompt_order(recipe: Any, train_rows: list[dict[str, Any]]) -> list[int]:
    """The train-row indices rlvr's sampler hands out over the run, step after step."""
    from rlvr.sampler import PromptSampler

    sampler = PromptSampler(len(train_rows), recipe.train.prompts_per_step, recipe.seed)
    return [i for _ in range(recipe.train.steps) for i in sampler.next_indices()]


def trl_worker(spec_path: str) -> int:
    """One GRPOTrainer run on rlvr's prompts and reward; step times to out_dir/trl.json, models every k steps."""
    try:
        import trl
        from trl import GRPOConfig, GRPOTrainer
    except ImportError:
        print(TRL_MISSING, file=sys.stderr)
        return 2
    import datasets
    import torch
    import yaml
    from transformers import AutoModelForCausalLM, TrainerCallback

    from rlvr.config import validate_dict
    from rlvr.learner.schedule import lr_multiplier
    from rlvr.preflight import check_inputs
    from rlvr.reward.scorer import RewardScorer

    spec = json.loads(Path(spec_path).read_text())
    raw = yaml.safe_load(Path(spec["recipe"]).read_text())
    recipe, _ = validate_dict(raw, spec["recipe"])
    inputs = check_inputs(recipe, REPO)
    order = rlvr_prompt_order(recipe, inputs.train_rows)
    tok = inputs.tokenizer
    for i in set(order):  # TRL tokenizes the rendered prompt itself: it must see rlvr's token ids
        if tok(inputs.train_rows[i]["prompt"])["input_ids"] != inputs.train_prompt_ids[i]:
            raise SystemExit(f"TRL would tokenize train row {i} differently from rlvr")
    dataset = datasets.Dataset.from_list(
        [{"prompt": inputs.train_rows[i]["prompt"], "row": i} for i in order]
    )
    scorer = RewardScorer.from_config(recipe.rewards, base_dir=REPO)

    def reward(completions, completion_ids, row, **_):
        rows = [inputs.train_rows[i] for i in row]
        results, _metrics = scorer.score(list(completions), rows, [len(c) for c in completion_ids])
        return [r.score for r in results]

    updates = recipe.learner.updates_per_step
    lr = recipe.learner.lr_schedule

    class TRLCurveTrainer(GRPOTrainer):
        """GRPOTrainer with rlvr's learning-rate schedule (its warm-up starts at 1/(w+1), not 0)."""

        def create_scheduler(self, num_training_steps, optimizer=None):
            if self.lr_scheduler is None:
                self.lr_scheduler = torch.optim.lr_scheduler.LambdaLR(
                    optimizer or self.optimizer,
                    lambda k: lr_multiplier(
                        lr.type,
                        k,
                        warmup_steps=lr.warmup_updates,
                        total_steps=max(num_training_steps, 1),
                        min_lr_ratio=lr.min_lr_ratio,
                    ),
                )
            return self.lr_scheduler

    update_s: list[float] = []
    update_lr: list[float] = []

    class StepTimer(TrainerCallback):
        def on_step_begin(self, _args, state, control, **kw):
            update_lr.append(trainer.lr_scheduler.get_last_lr()[0])  # the lr of this update
            self.t0 = time.perf_counter()

        def on_step_end(self, _args, state, control, **kw):
            update_s.append(time.perf_counter() - self.t0)
            if len(update_s) % updates == 0:
                print(f"step {len(update_s) // updates}: {sum(update_s[-updates:]):.2f} s", flush=True)

    config = GRPOConfig(**trl_settings(raw, spec["out_dir"], spec["eval_every"]))
    model = AutoModelForCausalLM.from_pretrained(inputs.model_path, dtype=torch.float32)
    trainer = TRLCurveTrainer(
        model=model,
        reward_funcs=reward,
        args=config,
        train_dataset=dataset,
        processing_class=tok,
        callbacks=[StepTimer()],
    )
    print(
        f"trl {trl.__version__}: {config.max_steps} updates, {len(order)} prompts in rlvr's order", flush=True
    )
    t0 = time.perf_counter()
    try:
        trainer.train()
    finally:
        scorer.close()
    step_s = [sum(update_s[k : k + updates]) for k in range(0, len(update_s), updates)]
    result = {
        "trl_version": trl.__version__,
        "train_s": time.perf_counter() - t0,
        "step_s": step_s,
        "update_s": update_s,
        "update_lr": update_lr,
        "prompt_rows": order,
        "log_history": trainer.state.log_history,
    }
    Path(spec["out_dir"], "trl.json").write_text(json.dumps(result, indent=1))
    return 0


def eval_worker(spec_path: str) -> int:
    """`rlvr eval` of a plain model directory with a given recipe as the checkpoint's recipe."""
    from rlvr.commands import eval as rlvr_eval
    from rlvr.devices import apply_runtime_env, resolve_device
    from rlvr.eval.checkpoints import ResolvedCheckpoint, load_checkpoint_recipe
    from rlvr.eval.report import write_eval_report

    spec = json.loads(Path(spec_path).read_text())
    model = Path(spec["model"])
    parser = argparse.ArgumentParser()
    rlvr_eval.add_arguments(parser)
    args = parser.parse_args([str(model), "--out", spec["out_dir"]])  # every setting from the recipe
    ckpt = ResolvedCheckpoint(model, model, Path(spec["recipe"]), spec["step"])
    s = rlvr_eval.resolve_settings(args, ckpt, load_checkpoint_recipe(ckpt))
    device = resolve_device(s.device)
    apply_runtime_env(device)
    t0 = time.perf_counter()
    rows, prompt_ids = rlvr_eval.load_prompts(s, model)
    report = rlvr_eval.generate_and_score(s, model, rows, prompt_ids, device)
    meta = {
        "model": str(model),
        "recipe": spec["recipe"],
        "step": spec["step"],
        "data": s.data_name,
        "prompts": len(rows),
        "samples_per_prompt": s.samples_per_prompt,
        "temperature": s.temperature,
        "top_p": s.top_p,
        "max_tokens": s.max_tokens,
        "seed": s.seed,
        "rewards": [t.fn for t in s.rewards.terms],
        "seconds": round(time.perf_counter() - t0, 2),
    }
    write_eval_report(s.out_dir, report["result"], meta, title=f"Evaluation of {model.name}")
    summary = {"accuracy": report["summary"]["accuracy"], "summary": report["summary"], **meta}
    Path(s.out_dir, "summary.json").write_text(json.dumps(summary, indent=1))
    print(f"avg@{s.samples_per_prompt} {summary['accuracy']:.4f} ({len(rows)} prompts)", flush=True)
    return 0


# ---- aggregation ------------------------------------------------------------------------------------------


def rlvr_seed(run_dir: Path) -> dict[str, Any]:
    """One rlvr run: held-out accuracy per eval step and the time of every step."""
    rows = read_metrics(run_dir)
    steps, acc = series(rows, "eval/accuracy")
    return {
        "eval": dict(zip(steps, acc)),
        "step_s": series(rows, "time/step_s")[1],
        "wall_s": wall_seconds(run_dir),
        "other_cpu_cores": _other_cpu(run_dir),
    }


def _other_cpu(run_dir: Path) -> float:
    """Cores other processes used on average while the run trained (machine.json), NaN if not recorded."""
    path = run_dir / "machine.json"
    return float(json.loads(path.read_text())["other_cpu_cores"]) if path.exists() else float("nan")


def trl_seed(run_dir: Path, steps: int, eval_every: int, step0: float) -> dict[str, Any]:
    """One TRL run: accuracy of each saved model (step 0: the rlvr run's evaluation of the same model)."""
    trl_out = json.loads((run_dir / "trl.json").read_text())
    evals, eval_wall = {0: step0}, 0.0
    for step in eval_steps(steps, eval_every)[1:]:
        path = run_dir / f"eval-step{step:03d}" / "summary.json"
        if path.exists():
            data = json.loads(path.read_text())
            evals[step] = data["accuracy"]
            eval_wall += data.get("process_wall_s", 0.0)
    return {
        "eval": evals,
        "step_s": trl_out["step_s"],
        "wall_s": wall_seconds(run_dir) + eval_wall,  # training process plus its evaluation processes
        "other_cpu_cores": _other_cpu(run_dir),
        "trl_version": trl_out.get("trl_version"),
    }


def cumulative(step_s: list[float], step: int) -> float:
    return sum(step_s[:step]) if len(step_s) >= step else float("nan")


def arm_result(runs: dict[int, dict[str, Any]], points: list[int], steps: int, recipe: str) -> dict[str, Any]:
    """Per-seed values, mean +- sd per eval step (accuracy and cumulative step time), in the harness layout."""
    per_seed: dict[str, dict[str, float]] = {}

    def put(label: str, seed: int, value: float) -> None:
        per_seed.setdefault(label, {})[str(seed)] = value

    for seed, run in runs.items():
        for p in points:
            put(f"held-out avg@16, step {p}", seed, run["eval"].get(p, float("nan")))
        put(
            "step time, median (s)", seed, statistics.median(run["step_s"]) if run["step_s"] else float("nan")
        )
        put(f"step time to step {steps} (s)", seed, cumulative(run["step_s"], steps))
        put("other processes' CPU during training (cores)", seed, run.get("other_cpu_cores", float("nan")))
    curve: dict[str, list[float]] = {"step": [], "mean": [], "sd": [], "wall_mean": [], "wall_sd": []}
    for p in points:
        acc = [run["eval"].get(p, float("nan")) for run in runs.values()]
        wall = [cumulative(run["step_s"], p) for run in runs.values()]
        if not any(math.isfinite(a) for a in acc):
            continue
        m, s = mean_sd(acc)
        wm, ws = mean_sd(wall)
        for key, value in zip(curve, (p, m, s, wm, ws)):
            curve[key].append(value)
    walls = [run["wall_s"] for run in runs.values()]
    return {
        "recipe": recipe,
        "overlay": {},
        "seeds": sorted(runs),
        "per_seed": per_seed,
        "summary": {
            label: dict(zip(("mean", "sd"), mean_sd(list(v.values())))) for label, v in per_seed.items()
        },
        "curves": {"eval/accuracy": curve},
        "step_s": {str(seed): run["step_s"] for seed, run in runs.items()},
        "wall_s_mean": sum(walls) / len(walls),
    }


def collect(seeds: list[int], root: Path, steps: int, eval_every: int) -> dict[str, Any]:
    arm = rlvr_arm(eval_every)
    bud = budget(steps)
    points = eval_steps(steps, eval_every)
    rlvr_runs, trl_runs, trl_version = {}, {}, None
    for seed in seeds:
        rdir = run_dir_for(root, arm, bud, seed)
        if not (rdir / "done.json").exists():
            continue
        rlvr_runs[seed] = rlvr_seed(rdir)
        tdir = trl_run_dir(root, resolved_recipe(arm, bud, seed), eval_every)
        if (tdir / "done.json").exists():
            trl_runs[seed] = trl_seed(tdir, steps, eval_every, rlvr_runs[seed]["eval"].get(0, float("nan")))
            trl_version = trl_runs[seed]["trl_version"]
    out: dict[str, Any] = {
        "comparison": NAME,
        "title": TITLE,
        "baseline": RLVR_ARM,
        "steps": steps,
        "eval_every": eval_every,
        "budget": merge(bud, arm.overlay),
        "trl_version": trl_version,
        "trl_settings": {
            k: v
            for k, v in trl_settings(resolved_recipe(arm, bud, 0), "", eval_every).items()
            if k not in ("output_dir", "seed")
        },
        "arms": {},
    }
    if rlvr_runs:
        out["arms"][RLVR_ARM] = arm_result(rlvr_runs, points, steps, arm.recipe)
    if trl_runs:
        out["arms"][TRL_ARM] = arm_result(trl_runs, points, steps, "trl.GRPOTrainer (trl_settings)")
        if RLVR_ARM in out["arms"]:
            base = out["arms"][RLVR_ARM]["per_seed"]
            out["arms"][TRL_ARM]["paired_diff"] = paired_diff(base, out["arms"][TRL_ARM]["per_seed"])
    return out


def plot(result: dict[str, Any], path: Path) -> Path:
    """Held-out avg@16 against step and against cumulative step time, mean over seeds with a +-1 sd band."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(9.0, 3.4))
    labels = {RLVR_ARM: "rlvr GRPO", TRL_ARM: f"TRL GRPOTrainer {result.get('trl_version') or ''}".rstrip()}
    for name, arm in result["arms"].items():
        c = arm["curves"]["eval/accuracy"]
        lo = [m - s for m, s in zip(c["mean"], c["sd"])]
        hi = [m + s for m, s in zip(c["mean"], c["sd"])]
        label = f"{labels.get(name, name)} (n={len(arm['seeds'])})"
        for ax, x in zip(axes, (c["step"], c["wall_mean"])):
            (line,) = ax.plot(x, c["mean"], marker="o", label=label)
            ax.fill_between(x, lo, hi, color=line.get_color(), alpha=0.2, linewidth=0)
    axes[0].set_xlabel("RL step")
    axes[1].set_xlabel("cumulative step time (s, mean over seeds)")
    for ax in axes:
        ax.set_ylabel("held-out avg@16")
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8)
    fig.suptitle(result["title"], fontsize=10)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=80)
    plt.close(fig)
    return path


def curve_table(result: dict[str, Any]) -> str:
    """Markdown: per eval step, each arm's avg@16 and cumulative step time (mean +- sd)."""
    arms = result["arms"]
    head = ["step"] + [f"{n} avg@16" for n in arms] + [f"{n} step time (s)" for n in arms]
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join("---" for _ in head) + "|"]
    steps = sorted({s for a in arms.values() for s in a["curves"]["eval/accuracy"]["step"]})
    for step in steps:
        acc, wall = [], []
        for arm in arms.values():
            c = arm["curves"]["eval/accuracy"]
            k = c["step"].index(step) if step in c["step"] else None
            acc.append("n/a" if k is None else f"{c['mean'][k]:.3f} ± {c['sd'][k]:.3f}")
            wall.append("n/a" if k is None else f"{c['wall_mean'][k]:.1f} ± {c['wall_sd'][k]:.1f}")
        lines.append("| " + " | ".join([str(step), *acc, *wall]) + " |")
    return "\n".join(lines)


# ---- command line -----------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=TITLE)
    p.add_argument("--seeds", type=int, default=3, help="seeds per arm (0..N-1)")
    p.add_argument("--steps", type=int, default=STEPS, help="RL steps per run")
    p.add_argument("--eval-every", type=int, default=EVAL_EVERY, help="held-out evaluation every N steps")
    p.add_argument("--root", type=Path, default=DEFAULT_ROOT, help="where run directories live")
    p.add_argument(
        "--aggregate-only", action="store_true", help="do not train: numbers and plot from the runs"
    )
    p.add_argument(
        "--idle-load", type=float, default=0.5, help="start a training run when the 1-min load is below"
    )
    p.add_argument("--idle-max-wait", type=float, default=120.0, help="longest wait for an idle machine (s)")
    p.add_argument("--dry-run", action="store_true", help="print the rlvr recipe and TRL settings of seed 0")
    p.add_argument("--trl-worker", default=None, help=argparse.SUPPRESS)
    p.add_argument("--eval-worker", default=None, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.steps < 1 or args.eval_every < 1 or args.steps % args.eval_every:
        p.error("--steps and --eval-every must be >= 1, and --steps a multiple of --eval-every")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.trl_worker:
        return trl_worker(args.trl_worker)
    if args.eval_worker:
        return eval_worker(args.eval_worker)
    seeds = list(range(args.seeds))
    arm, bud = rlvr_arm(args.eval_every), budget(args.steps)
    if args.dry_run:
        import yaml

        recipe = resolved_recipe(arm, bud, 0)
        print(f"# {RLVR_ARM} -> {run_dir_for(args.root, arm, bud, 0)}")
        print(yaml.safe_dump(recipe, sort_keys=False))
        print(f"# {TRL_ARM} -> {trl_run_dir(args.root, recipe, args.eval_every)}")
        print(yaml.safe_dump(trl_settings(recipe, "<run dir>", args.eval_every), sort_keys=False))
        return 0
    extra: dict[str, Any] = {}
    if not args.aggregate_only:
        try:
            import trl  # noqa: F401
        except ImportError:
            print(TRL_MISSING, file=sys.stderr)
            return 2
        wait = (args.idle_load, args.idle_max_wait)
        for seed in seeds:  # one training process at a time: rlvr, then TRL, then TRL's evaluations
            rdir = timed_run(
                f"{RLVR_ARM} seed {seed}",
                run_dir_for(args.root, arm, bud, seed),
                lambda seed=seed: run_arm(arm, bud, seed, args.root, nice=NICE),
                *wait,
            )
            if seed == 0:
                extra["start_eval_check"] = check_start_eval(rdir, args.root)
            recipe = resolved_recipe(arm, bud, seed)
            tdir = timed_run(
                f"{TRL_ARM} seed {seed}",
                trl_run_dir(args.root, recipe, args.eval_every),
                lambda recipe=recipe: run_trl(recipe, args.root, args.eval_every),
                *wait,
            )
            evaluate_trl(tdir, args.steps, args.eval_every)
    result = collect(seeds, args.root, args.steps, args.eval_every)
    check = start_check_dir(args.root, run_dir_for(args.root, arm, bud, 0))
    if "start_eval_check" not in extra and (check / "summary.json").exists():
        rlvr0 = result["arms"].get(RLVR_ARM, {}).get("per_seed", {}).get("held-out avg@16, step 0", {})
        ours = json.loads((check / "summary.json").read_text())["accuracy"]
        theirs = rlvr0.get("0", float("nan"))
        extra["start_eval_check"] = {
            "rlvr_run_step0": theirs,
            "eval_path_step0": ours,
            "equal": ours == theirs,
        }
    path = write_results(result, extra)
    png = plot(result, PLOTS_DIR / f"{NAME}.png")
    print(curve_table(result))
    print(f"[exp] wrote {path.relative_to(REPO)} and {png.relative_to(REPO)}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
