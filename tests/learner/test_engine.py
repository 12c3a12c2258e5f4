"""The DeepSpeed learner on the tiny random model (1 rank, gloo)."""

from __future__ import annotations

import os

import pytest
import torch
from safetensors.torch import load_file
from transformers import AutoModelForCausalLM

from rlvr.learner.packing import make_micro_batches
from rlvr.learner.settings import LearnerSettings
from rlvr.tiny.model import init_random_model

pytestmark = pytest.mark.integration

TEXTS = ["12+34=46\n\\boxed{46}", "7-3=4", "99+1=100\n\\boxed{100}", "5*6=30", "1+1=2\n\\boxed{2}"]


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    return init_random_model(tmp_path_factory.mktemp("learner_model"), seed=0)


def _samples(tok):
    out = []
    for text in TEXTS:
        ids = tok(text)["input_ids"]
        out.append({"input_ids": ids, "response_mask": [0] * 3 + [1] * (len(ids) - 3)})
    return out


def _nll(mb, out):
    return -(out.logprobs * out.mask).sum(), {"tokens": out.mask.sum()}


def _learner(model_dir, **kw):
    from rlvr.learner.engine import Learner

    return Learner(model_dir, LearnerSettings(lr=1e-3, seed=0, dist_timeout_s=120, **kw))


def test_logprobs_entropy_match_plain_hf_and_training_reduces_loss(model_dir, tmp_path):
    learner = _learner(model_dir, zero_stage=0)
    tok = learner.tokenizer
    mb = make_micro_batches(_samples(tok), 10_000, tok.pad_token_id)[0]
    with torch.no_grad():
        out = learner.token_logprobs_and_entropy(mb["input_ids"], mb["attention_mask"], mb["response_mask"])
        hf = AutoModelForCausalLM.from_pretrained(model_dir)
        logp = torch.log_softmax(
            hf(input_ids=mb["input_ids"], attention_mask=mb["attention_mask"]).logits.float(), -1
        )
    ref_lp = logp[:, :-1].gather(-1, mb["input_ids"][:, 1:, None]).squeeze(-1)
    ref_ent = -(logp.exp() * logp).sum(-1)[:, :-1]
    m = out.mask[:, 1:]
    assert m.sum() == sum(sum(s["response_mask"][1:]) for s in _samples(tok))
    assert torch.allclose(out.logprobs[:, 1:][m], ref_lp[m], atol=1e-5)
    assert torch.allclose(out.entropy[:, 1:][m], ref_ent[m], atol=1e-5)
    assert (out.logprobs[~out.mask] == 0).all()

    micro = make_micro_batches(_samples(tok), 48, tok.pad_token_id)
    assert len(micro) > 1
    losses = [learner.train_step(micro, _nll)["loss"] for _ in range(6)]
    assert losses[-1] < losses[0] - 0.5
    learner.save_hf(tmp_path / "hf")
    saved = load_file(tmp_path / "hf" / "model.safetensors")
    live = dict(learner.named_weights())
    assert torch.equal(saved["model.norm.weight"], live["model.norm.weight"])
    assert (tmp_path / "hf" / "tokenizer.json").is_file()


def test_gradient_accumulation_equals_one_big_batch(model_dir):
    """Token-mean over the whole mini-batch: 1 micro-batch and 3 give the same update.

    A huge AdamW eps makes the first update proportional to the gradient (Adam's first step is
    otherwise ~sign(grad), which amplifies float noise on near-zero gradients).
    """
    from rlvr.learner.engine import Learner

    init = load_file(model_dir / "model.safetensors")
    deltas = []
    for budget in (10_000, 40):
        learner = Learner(model_dir, LearnerSettings(zero_stage=1, lr=1.0, eps=100.0, grad_clip=0.0))
        micro = make_micro_batches(_samples(learner.tokenizer), budget, learner.tokenizer.pad_token_id)
        learner.train_step(micro, _nll)
        deltas.append((len(micro), {k: v - init[k] for k, v in learner.state_dict_full().items()}))
    (n1, a), (n2, b) = deltas
    assert n1 == 1 and n2 >= 3
    assert a["model.layers.0.mlp.up_proj.weight"].abs().max() > 1e-5
    for key in a:
        # float32 weights ~1e-2 hold deltas ~1e-5 to ~1e-4 relative precision, hence the scale.
        assert (a[key] - b[key]).abs().max() <= 1e-3 * a[key].abs().max() + 1e-10, key


@pytest.mark.parametrize("stage", [2, 3])
def test_named_weights_are_full_tensors_under_zero(model_dir, tmp_path, stage):
    learner = _learner(model_dir, zero_stage=stage)
    ref = AutoModelForCausalLM.from_pretrained(model_dir).state_dict()
    got = dict(learner.named_weights())
    assert set(got) <= set(ref) and "model.embed_tokens.weight" in got
    for name, tensor in got.items():
        assert tensor.shape == ref[name].shape, name
        assert torch.equal(tensor.cpu(), ref[name]), name
    micro = make_micro_batches(_samples(learner.tokenizer), 10_000, learner.tokenizer.pad_token_id)
    learner.train_step(micro, _nll)
    learner.save_checkpoint(tmp_path / "ckpt", tag="s1", client_state={"cursor": 7})
    after = learner.state_dict_full()
    learner.train_step(micro, _nll)
    assert learner.load_checkpoint(tmp_path / "ckpt", tag="s1") == {"cursor": 7}
    assert learner.global_step == 1
    for name, tensor in learner.state_dict_full().items():
        assert torch.equal(tensor, after[name]), name


def test_new_learner_after_the_world_was_destroyed_outside_deepspeed(model_dir):
    # An in-process vLLM engine tears the world group down through torch, not deepspeed.comm; DeepSpeed's
    # cached groups then point at a dead group and the next engine failed with "Group ... is not registered".
    # Run in a child process: destroying the world here would poison later in-process engines of the session.
    import subprocess
    import sys

    script = f"""
import torch.distributed as dist
from rlvr.learner.engine import Learner
from rlvr.learner.settings import LearnerSettings
Learner({str(model_dir)!r}, LearnerSettings(zero_stage=0, lr=1e-3, dist_timeout_s=120))
dist.destroy_process_group()
learner = Learner({str(model_dir)!r}, LearnerSettings(zero_stage=2, lr=1e-3, dist_timeout_s=120))
assert dist.is_initialized() and next(iter(learner.named_weights()))[1].numel() > 0
print("second learner ok")
"""
    env = {
        k: v for k, v in os.environ.items() if k not in ("RANK", "LOCAL_RANK", "WORLD_SIZE", "MASTER_PORT")
    }
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300, env=env)
    assert out.returncode == 0 and "second learner ok" in out.stdout, out.stderr[-3000:]
