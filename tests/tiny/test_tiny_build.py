"""The trained tiny model: build report targets, cache behaviour, vLLM == transformers."""

from __future__ import annotations

import json

import pytest
import torch

from rlvr.data.synthetic import read_jsonl
from rlvr.tiny.build import REPORT, build_tiny, is_complete, version_hash

pytestmark = pytest.mark.integration


def test_build_report_has_headroom_for_rl(tiny_model):
    report = json.loads((tiny_model / REPORT).read_text())
    ev = report["eval"]
    assert report["version"] == version_hash()
    assert 0.15 <= ev["greedy_accuracy"] <= 0.6, ev
    buckets = ev["solve_buckets"]
    assert buckets["none"] > 0 and buckets["some"] > 0 and buckets["all"] > 0, buckets
    assert ev["pass_at_k"] > ev["greedy_accuracy"]
    acc = ev["greedy_by_difficulty"]
    assert acc["1"] > acc["6"], acc
    # the designed format gap (rlvr.data.synthetic): question-style prompts mostly end unboxed under greedy
    style = ev["greedy_by_style"]
    assert style["plain"] > style["question"] + 0.1, style
    assert 0.3 < ev["greedy_boxed_fraction"] < 0.9, ev


def test_build_is_cached_and_checked_for_staleness(tiny_model, tmp_path):
    assert build_tiny() == tiny_model
    assert is_complete(tiny_model)
    stale = tmp_path / "stale"
    stale.mkdir()
    (stale / REPORT).write_text(json.dumps({"version": "old"}))
    assert not is_complete(stale)
    rows = list(read_jsonl(tiny_model / "data" / "test.jsonl"))
    assert rows and {"prompt", "answer", "difficulty", "data_source", "prompt_style"} <= set(rows[0])


@pytest.fixture(scope="module")
def llm(tiny_model):
    from rlvr.tiny.evaluate import make_llm

    return make_llm(tiny_model)


def test_vllm_tokenizer_round_trip(llm):
    text = "<|user|>12+ 3  x\\boxed{15}\t<|im_end|>\n\n 7-9=-2<|assistant|>"
    tok = llm.get_tokenizer()
    assert tok.decode(tok.encode(text, add_special_tokens=False)) == text


def test_vllm_and_transformers_agree_on_greedy_tokens_and_logprobs(llm, tiny_model):
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from vllm import SamplingParams

    from rlvr.tiny.sft import render_prompt

    tok = AutoTokenizer.from_pretrained(tiny_model)
    hf = AutoModelForCausalLM.from_pretrained(tiny_model, dtype=torch.float32).eval()
    rows = list(read_jsonl(tiny_model / "data" / "test.jsonl"))[::60][:8]
    prompts = [render_prompt(tok, r["prompt"]) for r in rows]
    outs = llm.generate(prompts, SamplingParams(temperature=0.0, max_tokens=24, logprobs=0), use_tqdm=False)
    worst = 0.0
    for prompt, out in zip(prompts, outs):
        ids = tok(prompt, add_special_tokens=False)["input_ids"]
        got = out.outputs[0]
        # Manual greedy loop: HF generate(min_new_tokens) would suppress EOS, vLLM does not.
        for step, token in enumerate(got.token_ids):
            with torch.no_grad():
                logp = torch.log_softmax(hf(torch.tensor([ids])).logits[0, -1].float(), -1)
            assert int(logp.argmax()) == token, (prompt, step)
            worst = max(worst, abs(float(logp[token]) - got.logprobs[step][token].logprob))
            ids.append(token)
    assert worst < 1e-4
