"""rlvr vs TRL's GRPOTrainer at equal work on this machine: step time, phase split, generated tokens/s.

    pip install -e '.[bench]'          # TRL (never a runtime dependency of rlvr)
    .venv/bin/python bench/compare_trl.py --models tiny --steps 4        # quick: a few minutes
    .venv/bin/python bench/compare_trl.py --models tiny,18m,72m       # the full table (docs/performance.md)
    .venv/bin/python bench/compare_trl.py --models 18m --max-new-tokens 256

TRL install: `trl>=1.0` resolves on top of rlvr's CPU stack without changing torch or transformers (checked
with `pip install --dry-run 'trl>=1.0'`: only `trl` itself is added); install it into the same venv.

Both frameworks get the same weights and tokenizer, the same prompts (rows of the tiny model's training set)
through the same chat template, and the same work per step: P prompts x G samples (16 x 8), at most
`--max-new-tokens` new tokens at temperature 1, one optimizer update on all P*G completions, fp32, lr 1e-6, no
KL, one learner rank, no eval or checkpoints. Models: the tiny SFT model (rlvr.tiny, ~1 M parameters) and
random-init Qwen2 of 18 M and 72 M parameters on the tiny tokenizer, built once under $RLVR_CACHE.

rlvr runs through its real CLI (`rlvr train` on a generated recipe; phases from metrics.jsonl's `time/*`).
TRL runs in a child process of this script (its default HF-generate backend); a TrainerCallback times each
step, and wrappers time generation (`_generate`) and the whole generate+score phase, so TRL's split is
generation / scoring / update (= step - generate+score). The reported step time is the median (and range) of
steps 2..N. Before each timed run the script waits for the 1-minute load average to fall below
`--idle-load` (at most `--idle-max-wait` s) and records the CPU seconds other processes used during the run.
Writes `<out>/results.json` (every number, per step) and, with matplotlib, `<out>/step_times.png`.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import (
    MAX_PROMPT_TOKENS,
    RANDOM_ARCHS,
    fmt_range,
    kv_cache_mb,
    other_cpu,
    parse_models,
    phase_stats,
    ratio,
    rlvr_recipe,
    rlvr_steps,
    step_stats,
    wait_for_idle,
)

TRL_MISSING = (
    "bench/compare_trl.py: TRL is not installed in this environment; install it with "
    "`pip install -e '.[bench]'` (or `pip install 'trl>=1.0'`), or run with --frameworks rlvr"
)


def _args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--models", default="tiny", help="comma list of tiny,18m,72m")
    p.add_argument("--steps", type=int, default=8, help="RL steps per run; the median is over steps 2..N")
    p.add_argument("--max-new-tokens", type=int, default=64, help="response cap (256 for the reasoning case)")
    p.add_argument("--prompts", type=int, default=16, help="prompts per step (P)")
    p.add_argument("--samples", type=int, default=8, help="samples per prompt (G)")
    p.add_argument(
        "--async-mode",
        default="off",
        choices=("off", "one_step_off"),
        help="rlvr's train.async_mode (TRL has no such mode: run with --frameworks rlvr to compare the two)",
    )
    p.add_argument("--frameworks", default="trl,rlvr", help="which to run: trl,rlvr")
    p.add_argument("--out", default="runs/bench_compare", help="output folder (results.json, logs, plot)")
    p.add_argument("--idle-load", type=float, default=0.5, help="start a run when the 1-min load is below")
    p.add_argument("--idle-max-wait", type=float, default=300.0, help="longest wait for an idle machine (s)")
    p.add_argument("--trl-worker", default=None, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.steps < 1 or args.prompts < 1 or args.samples < 2 or args.max_new_tokens < 1:
        p.error("--steps, --prompts and --max-new-tokens must be >= 1 and --samples >= 2")
    try:
        args.model_list = parse_models(args.models)
    except ValueError as e:
        p.error(str(e))
    args.framework_list = [f.strip() for f in args.frameworks.split(",") if f.strip()]
    if not args.framework_list or set(args.framework_list) - {"trl", "rlvr"}:
        p.error(f"--frameworks: expected a comma list of trl,rlvr, got {args.frameworks!r}")
    return args


# ---- models and prompts ------------------------------------------------------------------------------------


def build_model(name: str) -> tuple[Path, dict[str, Any]]:
    """The model folder for `name` (built once) and its architecture (config.json's fields)."""
    if name == "tiny":
        from rlvr.tiny.build import build_tiny

        path = build_tiny()
    else:
        path = _build_random(name)
    arch = json.loads((path / "config.json").read_text())
    return path, arch


def _build_random(name: str) -> Path:
    import hashlib

    from rlvr.models.cache import cache_root
    from rlvr.tiny.model import init_random_model

    arch = RANDOM_ARCHS[name]
    tag = hashlib.sha256(json.dumps(arch, sort_keys=True).encode()).hexdigest()[:10]
    path = cache_root() / f"bench-qwen2-{name}-{tag}"
    if (path / "model.safetensors").exists():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".bench-{name}-", dir=path.parent))
    init_random_model(tmp, seed=0, **arch)
    tmp.rename(path)
    return path


def write_prompts(tiny_path: Path, count: int, out: Path) -> Path:
    """The first `count` rows of the tiny training set as ``{prompt, answer}`` lines (read by both sides)."""
    rows = []
    with (tiny_path / "data" / "train.jsonl").open() as f:
        for line in f:
            row = json.loads(line)
            rows.append({"prompt": row["prompt"], "answer": str(row["answer"])})
            if len(rows) == count:
                break
    out.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return out


def count_params(arch: dict[str, Any]) -> int:
    """Parameters of a Qwen2 config (tied embeddings when the config says so)."""
    h, i, n = arch["hidden_size"], arch["intermediate_size"], arch["num_hidden_layers"]
    kv = arch["num_key_value_heads"] * (h // arch["num_attention_heads"])
    layer = (
        2 * h * h + 2 * h * kv + (h + 2 * kv) + 3 * h * i + 2 * h
    )  # q,o,k,v weights; qkv biases; mlp; norms
    emb = arch["vocab_size"] * h * (1 if arch.get("tie_word_embeddings", True) else 2)
    return n * layer + emb + h


# ---- machine state -----------------------------------------------------------------------------------------


class Monitor:
    """Samples every process once a second: CPU seconds of processes outside this benchmark's tree, and the
    peak summed RSS of the tree (this script and every descendant: the rlvr driver, Ray, vLLM, TRL)."""

    def __init__(self, period_s: float = 1.0):
        import psutil

        self._psutil = psutil
        self.period_s = period_s
        self.other_cpu_s = 0.0
        self.by_name: dict[str, float] = {}
        self.peak_rss_mb = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def _snapshot(self) -> tuple[dict[int, tuple[str, float, float]], set[int], float]:
        me = self._psutil.Process()
        ours = {me.pid}
        rss = me.memory_info().rss
        for child in me.children(recursive=True):
            ours.add(child.pid)
            with contextlib.suppress(self._psutil.NoSuchProcess, self._psutil.AccessDenied):
                rss += child.memory_info().rss
        snap: dict[int, tuple[str, float, float]] = {}
        for proc in self._psutil.process_iter(["name", "create_time", "cpu_times"]):
            times, started = proc.info.get("cpu_times"), proc.info.get("create_time")
            if times is not None and started is not None:
                snap[proc.pid] = (proc.info.get("name") or "?", started, times.user + times.system)
        return snap, ours, rss / 2**20

    def _loop(self) -> None:
        before, _, _ = self._snapshot()
        while not self._stop.wait(self.period_s):
            after, ours, rss_mb = self._snapshot()
            used = other_cpu(before, after, ours, top=50)
            self.other_cpu_s += used["cpu_s"]
            for item in used["top"]:
                self.by_name[item["name"]] = self.by_name.get(item["name"], 0.0) + item["cpu_s"]
            self.peak_rss_mb = max(self.peak_rss_mb, rss_mb)
            before = after

    def __enter__(self) -> Monitor:
        self._t0 = time.perf_counter()
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self.wall_s = time.perf_counter() - self._t0

    def report(self) -> dict[str, Any]:
        busiest = sorted(self.by_name.items(), key=lambda kv: -kv[1])[:5]
        return {
            "wall_s": self.wall_s,
            "other_cpu_s": round(self.other_cpu_s, 2),
            "other_cpu_cores": round(self.other_cpu_s / max(self.wall_s, 1e-9), 3),
            "other_busiest": [{"name": n, "cpu_s": round(s, 2)} for n, s in busiest],
            "peak_rss_mb": round(self.peak_rss_mb, 1),
        }


def _wait_idle(args: argparse.Namespace, label: str) -> dict[str, Any]:
    print(
        f"[{label}] waiting for load < {args.idle_load} (at most {args.idle_max_wait:.0f} s) ...", flush=True
    )
    idle = wait_for_idle(lambda: os.getloadavg()[0], args.idle_load, args.idle_max_wait)
    if not idle["idle"]:
        print(
            f"[{label}] machine still busy (load {idle['load']:.2f}): this run's timings are not idle figures"
        )
    return idle


# ---- rlvr --------------------------------------------------------------------------------------------------


def run_rlvr(args, name: str, model: Path, arch: dict[str, Any], prompts: Path, out: Path) -> dict[str, Any]:
    """`rlvr train` on a generated recipe; per-step times and generated tokens from its metrics.jsonl."""
    import yaml

    run_dir = out / f"rlvr-{name}"
    kv = kv_cache_mb(arch, args.prompts * args.samples, MAX_PROMPT_TOKENS + args.max_new_tokens)
    recipe = rlvr_recipe(
        name=f"bench-{name}",
        model_path=str(model),
        prompts_file=str(prompts.resolve()),
        run_dir=str(run_dir.resolve()),
        steps=args.steps,
        prompts_per_step=args.prompts,
        samples_per_prompt=args.samples,
        max_new_tokens=args.max_new_tokens,
        kv_cache_memory_mb=kv,
        async_mode=args.async_mode,
    )
    recipe_path = out / f"rlvr-{name}.yaml"
    recipe_path.write_text(yaml.safe_dump(recipe, sort_keys=False))
    if run_dir.exists():
        import shutil

        shutil.rmtree(run_dir)
    rlvr_bin = Path(sys.executable).with_name("rlvr")
    cmd = [str(rlvr_bin), "train", str(recipe_path)]
    idle = _wait_idle(args, f"rlvr {name}")
    log = out / f"rlvr-{name}.log"
    print(f"[rlvr {name}] {' '.join(cmd)}  (log: {log})", flush=True)
    with Monitor() as mon, log.open("w") as f:
        rc = subprocess.run(cmd, stdout=f, stderr=subprocess.STDOUT).returncode
    if rc != 0:
        raise RuntimeError(f"rlvr train exited with {rc}; see {log}")
    records = [
        json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines() if line.strip()
    ]
    steps = rlvr_steps(records, args.prompts * args.samples)
    return {
        "idle": idle,
        "machine": mon.report(),
        "steps": steps,
        "recipe": str(recipe_path),
        "kv_cache_mb": kv,
    }


# ---- TRL ---------------------------------------------------------------------------------------------------


def run_trl(args, name: str, model: Path, prompts: Path, out: Path) -> dict[str, Any]:
    """TRL's GRPOTrainer in a child process (`--trl-worker`), timed per step."""
    spec = {
        "model": str(model),
        "prompts": str(prompts.resolve()),
        "out_dir": str((out / f"trl-{name}").resolve()),
        "steps": args.steps,
        "prompts_per_step": args.prompts,
        "samples": args.samples,
        "max_new_tokens": args.max_new_tokens,
        "result": str((out / f"trl-{name}.json").resolve()),
    }
    spec_path = out / f"trl-{name}.spec.json"
    spec_path.write_text(json.dumps(spec, indent=1))
    idle = _wait_idle(args, f"trl {name}")
    log = out / f"trl-{name}.log"
    print(f"[trl {name}] GRPOTrainer  (log: {log})", flush=True)
    cmd = [sys.executable, str(Path(__file__).resolve()), "--trl-worker", str(spec_path)]
    with Monitor() as mon, log.open("w") as f:
        rc = subprocess.run(cmd, stdout=f, stderr=subprocess.STDOUT).returncode
    if rc != 0:
        raise RuntimeError(f"the TRL run exited with {rc}; see {log}")
    steps = json.loads(Path(spec["result"]).read_text())["steps"]
    return {"idle": idle, "machine": mon.report(), "steps": steps}


def trl_worker(spec_path: str) -> int:
    """Child-process entry: one GRPOTrainer run as the spec says; per-step timings go to spec['result']."""
    try:
        import trl
        from trl import GRPOConfig, GRPOTrainer
    except ImportError:
        print(TRL_MISSING, file=sys.stderr)
        return 2
    import datasets
    from transformers import AutoModelForCausalLM, AutoTokenizer, TrainerCallback

    from rewards.math import math_reward

    spec = json.loads(Path(spec_path).read_text())
    rows = [json.loads(line) for line in Path(spec["prompts"]).read_text().splitlines() if line.strip()]
    dataset = datasets.Dataset.from_list(
        [{"prompt": [{"role": "user", "content": r["prompt"]}], "answer": r["answer"]} for r in rows]
    )

    def reward(completions, answer, **_):
        texts = [c[-1]["content"] if isinstance(c, list) else c for c in completions]
        return [float(math_reward(t, answer=a).score) for t, a in zip(texts, answer)]

    class Timed(GRPOTrainer):
        """GRPOTrainer with generation and generate+score timed (TRL logs no per-phase wall time)."""

        gen_s = 0.0
        prepare_s = 0.0
        tokens = 0

        def _generate(self, *a, **kw):
            t0 = time.perf_counter()
            out = super()._generate(*a, **kw)
            self.gen_s += time.perf_counter() - t0
            return out

        def _generate_and_score_completions(self, *a, **kw):
            t0 = time.perf_counter()
            out = super()._generate_and_score_completions(*a, **kw)
            self.prepare_s += time.perf_counter() - t0
            self.tokens += int(out["completion_mask"].sum())
            return out

    steps: list[dict[str, Any]] = []

    class StepTimer(TrainerCallback):
        def on_step_begin(self, _args, state, control, **kw):
            trainer.gen_s = trainer.prepare_s = 0.0
            trainer.tokens = 0
            self.t0 = time.perf_counter()

        def on_step_end(self, _args, state, control, **kw):
            step_s = time.perf_counter() - self.t0
            phases = {
                "generate": trainer.gen_s,
                "score": trainer.prepare_s - trainer.gen_s,
                "update": step_s - trainer.prepare_s,
            }
            steps.append({"step_s": step_s, "tokens": trainer.tokens, "phases": phases})
            print(f"step {len(steps)}: {step_s:.2f} s {phases}", flush=True)

    n = spec["prompts_per_step"] * spec["samples"]
    config = GRPOConfig(
        output_dir=spec["out_dir"],
        max_steps=spec["steps"],
        per_device_train_batch_size=n,
        gradient_accumulation_steps=1,
        steps_per_generation=1,
        num_iterations=1,
        num_generations=spec["samples"],
        max_completion_length=spec["max_new_tokens"],
        temperature=1.0,
        learning_rate=1e-6,
        lr_scheduler_type="constant",
        beta=0.0,
        bf16=False,
        use_cpu=True,
        shuffle_dataset=False,
        save_strategy="no",
        eval_strategy="no",
        report_to="none",
        logging_steps=1,
        seed=0,
    )
    model = AutoModelForCausalLM.from_pretrained(spec["model"], dtype="float32")
    tok = AutoTokenizer.from_pretrained(spec["model"])
    trainer = Timed(
        model=model,
        reward_funcs=reward,
        args=config,
        train_dataset=dataset,
        processing_class=tok,
        callbacks=[StepTimer()],
    )
    print(f"trl {trl.__version__}: {spec['steps']} steps of {n} completions", flush=True)
    trainer.train()
    Path(spec["result"]).write_text(json.dumps({"trl_version": trl.__version__, "steps": steps}))
    return 0


# ---- report ------------------------------------------------------------------------------------------------


def summarize(run: dict[str, Any]) -> dict[str, Any]:
    """Median/range of the step time, tokens per step, tokens/s and every phase over steps 2..N."""
    steps = run["steps"]
    step = step_stats([s["step_s"] for s in steps])
    tokens = step_stats([s["tokens"] for s in steps])
    tps = step_stats([s["tokens"] / s["step_s"] for s in steps if s["step_s"] > 0])
    phases = phase_stats([s["phases"] for s in steps])
    outside = run["machine"]["wall_s"] - sum(s["step_s"] for s in steps)  # start-up, teardown, final save
    startup = next((s["startup_s"] for s in steps if "startup_s" in s), None)  # rlvr logs its own
    return {
        "startup_s": startup,
        "step_s": step,
        "tokens_per_step": tokens,
        "tokens_per_s": tps,
        "phases": phases,
        "outside_steps_s": outside,
    }


def print_model(name: str, params: int, result: dict[str, Any]) -> None:
    print(f"\n== {name} ({params / 1e6:.1f} M parameters) ==")
    for fw in ("trl", "rlvr"):
        if fw not in result:
            continue
        s, m = result[fw]["summary"], result[fw]["machine"]
        split = " / ".join(f"{k} {v['median']:.2f}" for k, v in s["phases"].items())
        idle = "idle" if result[fw]["idle"]["idle"] else f"BUSY (load {result[fw]['idle']['load']:.2f})"
        print(
            f"{fw:>5}: step {fmt_range(s['step_s'])}; {s['tokens_per_step']['median']:.0f} tokens/step, "
            f"{s['tokens_per_s']['median']:.0f} tokens/s; split: {split}"
        )
        startup = f" (start-up to the first step {s['startup_s']:.1f} s)" if s.get("startup_s") else ""
        print(
            f"       {s['outside_steps_s']:.1f} s outside the steps (start-up, teardown){startup}; machine {idle}; "
            f"others used {m['other_cpu_cores']:.2f} cores; peak RSS {m['peak_rss_mb']:.0f} MiB"
        )
    if "ratio_trl_over_rlvr" in result:
        print(f"TRL ÷ rlvr (step time): {result['ratio_trl_over_rlvr']:.2f}")


def plot(results: dict[str, Any], path: Path) -> None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return
    names = list(results["models"])
    fig, axes = plt.subplots(1, len(names), figsize=(4 * len(names), 3.5), squeeze=False)
    for ax, name in zip(axes[0], names):
        for fw, res in results["models"][name].items():
            if isinstance(res, dict) and "steps" in res:
                ax.plot(range(1, len(res["steps"]) + 1), [s["step_s"] for s in res["steps"]], "o-", label=fw)
        ax.set_title(name)
        ax.set_xlabel("step")
        ax.set_ylabel("step time (s)")
        ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    args = _args(argv)
    if args.trl_worker:
        return trl_worker(args.trl_worker)
    if "trl" in args.framework_list:
        try:
            import trl  # noqa: F401
        except ImportError:
            print(TRL_MISSING, file=sys.stderr)
            return 2
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    tiny_path, _ = build_model("tiny")
    prompts = write_prompts(tiny_path, args.prompts * args.steps, out / "prompts.jsonl")
    results: dict[str, Any] = {
        "settings": {k: v for k, v in vars(args).items() if k != "trl_worker"},
        "models": {},
    }
    for name in args.model_list:
        model, arch = build_model(name)
        limit = arch.get("max_position_embeddings", 0)
        if MAX_PROMPT_TOKENS + args.max_new_tokens > limit:
            print(
                f"--max-new-tokens {args.max_new_tokens}: model {name} holds {limit} positions; skipped",
                file=sys.stderr,
            )
            continue
        result: dict[str, Any] = {"path": str(model), "params": count_params(arch)}
        for fw in args.framework_list:
            try:
                if fw == "trl":
                    run = run_trl(args, name, model, prompts, out)
                else:
                    run = run_rlvr(args, name, model, arch, prompts, out)
            except RuntimeError as e:  # the failed run's log holds the cause; one line here
                print(f"bench/compare_trl.py: {e}", file=sys.stderr)
                return 2
            run["summary"] = summarize(run)
            result[fw] = run
        if "trl" in result and "rlvr" in result:
            result["ratio_trl_over_rlvr"] = ratio(
                result["trl"]["summary"]["step_s"]["median"], result["rlvr"]["summary"]["step_s"]["median"]
            )
        results["models"][name] = result
        print_model(name, result["params"], result)
        (out / "results.json").write_text(json.dumps(results, indent=1))
    plot(results, out / "step_times.png")
    print(f"\nresults: {out / 'results.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
