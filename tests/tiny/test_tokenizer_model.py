"""Tokenizer round trips and random-model init (fast, no vLLM)."""

from __future__ import annotations

import time

import pytest
import torch
from safetensors.torch import load_file
from transformers import AutoModelForCausalLM, AutoTokenizer, PreTrainedTokenizerFast

from rlvr.tiny.model import init_random_model
from rlvr.tiny.tokenizer import VOCAB_SIZE, build_tokenizer

TEXT = "<|user|>12+ 3  x\\boxed{15}é\t<|im_end|>\n<|im_start|>assistant\n 7*(3-4)=-7\n\n<|assistant|>"


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    return init_random_model(tmp_path_factory.mktemp("rand"), seed=0)


def test_in_memory_round_trip_is_one_token_per_char():
    tok = build_tokenizer()
    ids = tok("ab 12\n\\boxed{3}")["input_ids"]
    assert len(ids) == len("ab 12\n\\boxed{3}")
    assert tok.decode(ids) == "ab 12\n\\boxed{3}"


def test_auto_tokenizer_keeps_spaces_and_newlines(model_dir):
    auto = AutoTokenizer.from_pretrained(model_dir)
    fast = PreTrainedTokenizerFast.from_pretrained(model_dir)
    ids = auto(TEXT)["input_ids"]
    assert ids == fast(TEXT)["input_ids"]
    assert auto.decode(ids) == TEXT
    assert max(ids) < VOCAB_SIZE


def test_special_tokens_and_chat_template(model_dir):
    tok = AutoTokenizer.from_pretrained(model_dir)
    assert tok.convert_tokens_to_ids("<|im_end|>") == tok.eos_token_id
    assert tok.pad_token_id not in (tok.eos_token_id, None)
    prompt = tok.apply_chat_template(
        [{"role": "user", "content": "1+2"}], tokenize=False, add_generation_prompt=True
    )
    assert prompt == "<|user|>1+2<|im_end|><|assistant|>"
    ids = tok(prompt)["input_ids"]
    assert len(ids) == 6
    assert ids[0] == tok.convert_tokens_to_ids("<|user|>")


def test_init_random_model_is_seeded_fast_and_loadable(tmp_path, model_dir):
    t0 = time.perf_counter()
    again = init_random_model(tmp_path / "a", seed=0)
    assert time.perf_counter() - t0 < 2.0
    other = init_random_model(tmp_path / "b", seed=1)
    ref = load_file(model_dir / "model.safetensors")
    same = load_file(again / "model.safetensors")
    diff = load_file(other / "model.safetensors")
    assert all(torch.equal(ref[k], same[k]) for k in ref)
    assert not torch.equal(ref["model.embed_tokens.weight"], diff["model.embed_tokens.weight"])
    model = AutoModelForCausalLM.from_pretrained(model_dir)
    n_params = sum(p.numel() for p in model.parameters())
    assert 500_000 <= n_params <= 20_000_000
    assert model.config.model_type == "qwen2"
