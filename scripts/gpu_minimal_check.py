"""What a GPU machine with only PyTorch (CUDA) and transformers can check of rlvr: no vLLM, Ray or network.

    python scripts/gpu_minimal_check.py                       # on CUDA
    python scripts/gpu_minimal_check.py --device cpu          # the same checks on CPU with gloo (CI runs this)
    python scripts/gpu_minimal_check.py --hidden 1536 --layers 28   # a push the size of a 1.5B model

Checks, one line each (`ok`, `FAILED` or `skipped` with the reason):

1. algo: the algorithm tests (tests/algo) with tensors created on the device by default (a torch function
   mode, as ``torch.set_default_device`` plus seeded CPU generators), so their tensors live there. Needs pytest and hypothesis (and pydantic, PyYAML for the config tests); `--wheels DIR` installs
   missing ones from wheel files brought along (pip install --no-index), into a temporary folder.
2. broadcast: rlvr's weight group (`rlvr.sync.group.WeightGroup`) between two processes: a sender with a
   small Qwen2 model pushes its HF-named tensors bucket by bucket into a plain transformers model with other
   weights in the receiver process, then both score the same probe tokens; the max |Δlogprob| must stay within
   the sync probe's tolerance for the dtype. A second push with noise in one tensor must be detected. NCCL
   with two GPUs (one rank per GPU: NCCL cannot join two ranks on one GPU); with one GPU or on CPU, gloo.
3. learner: GRPO updates of a small model on the device with rlvr's chunked logprobs and PPO-clip loss:
   DeepSpeed's learner (`rlvr.learner.engine.Learner`) when DeepSpeed imports, else plain torch AdamW. The
   updates must raise the advantage-weighted mean logprob of the responses.

Exit status 0 when nothing failed, 1 otherwise.
"""

from __future__ import annotations

import argparse
import importlib.util
import math
import shlex
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run from a checkout without installing rlvr

# The sync probe's default tolerances (rlvr.config.rollout; repeated so this script needs no pydantic; a test
# checks they agree).
FLOAT32_TOLERANCE = 1e-4
HALF_PRECISION_TOLERANCE = 5e-2
DTYPES = {"float32": "float32", "bfloat16": "bfloat16"}


def tolerance_for(dtype: str) -> float:
    return FLOAT32_TOLERANCE if dtype == "float32" else HALF_PRECISION_TOLERANCE


# ---- the model both sides build ----------------------------------------------------------------------------


def build_model(seed: int, device: str, dtype: str, hidden: int, layers: int):
    """A Qwen2 causal LM with tied embeddings, random weights from ``seed`` (peaky logits: init range 0.1)."""
    import torch
    from transformers import Qwen2Config, Qwen2ForCausalLM

    config = Qwen2Config(
        vocab_size=1024,
        hidden_size=hidden,
        intermediate_size=hidden * 2,
        num_hidden_layers=layers,
        num_attention_heads=max(hidden // 32, 2),
        num_key_value_heads=max(hidden // 64, 1),
        max_position_embeddings=256,
        tie_word_embeddings=True,
        initializer_range=0.1,
    )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = Qwen2ForCausalLM(config)
    return model.to(device=device, dtype=getattr(torch, dtype)).eval()


def probe_tokens(device: str, batch: int = 4, length: int = 32):
    import torch

    gen = torch.Generator().manual_seed(1234)
    return torch.randint(3, 1000, (batch, length), generator=gen).to(device)


def token_logprobs(model, ids):
    """[B, T-1] float32 logprobs of each next token, through rlvr's chunked logprob code."""
    import torch

    from rlvr.learner.logprobs import compute_token_logprobs_and_entropy

    with torch.no_grad():
        logits = model(input_ids=ids).logits[:, :-1]
        lp, _ = compute_token_logprobs_and_entropy(
            logits.reshape(-1, logits.shape[-1]), ids[:, 1:].reshape(-1), entropy_grad=False
        )
    return lp.view(ids.shape[0], -1).cpu()


# ---- 1. algorithm tests on the device ----------------------------------------------------------------------


class DefaultDevice:
    """pytest plugin: tensors the tests create without a device are created on ``device`` while they run.

    As ``torch.set_default_device``, except that a factory given a generator (``torch.rand(..., generator=g)``)
    draws on the generator's device and then moves to ``device``: the tests' seeded CPU generators keep working
    and their numbers do not change.
    """

    def __init__(self, device: str) -> None:
        self.device = device
        self.mode = None

    def pytest_configure(self, config) -> None:
        import torch
        from torch.overrides import TorchFunctionMode
        from torch.utils._device import _device_constructors

        factories, device = _device_constructors(), torch.device(self.device)

        class OnDevice(TorchFunctionMode):
            def __torch_function__(self, func, types, args=(), kwargs=None):
                kwargs = dict(kwargs or {})
                if func in factories and kwargs.get("device") is None:
                    gen = kwargs.get("generator")
                    if gen is not None and gen.device.type != device.type:
                        return func(*args, **kwargs, device=gen.device).to(device)
                    kwargs["device"] = device
                return func(*args, **kwargs)

        self.mode = OnDevice()
        self.mode.__enter__()

    def pytest_unconfigure(self, config) -> None:
        if self.mode is not None:
            self.mode.__exit__(None, None, None)


def add_wheels(wheels: str | None, modules: list[str]) -> list[str]:
    """Install the missing ``modules`` from wheel files in ``wheels`` into a temporary folder on sys.path."""
    missing = [m for m in modules if importlib.util.find_spec(m) is None]
    if not missing or wheels is None:
        return missing
    target = tempfile.mkdtemp(prefix="rlvr-wheels-")
    names = {"yaml": "pyyaml"}
    cmd = [
        sys.executable,
        "-m",
        "pip",
        "install",
        "-q",
        "--no-index",
        "--find-links",
        wheels,
        "--target",
        target,
    ]
    subprocess.run([*cmd, *(names.get(m, m) for m in missing)], check=False)
    sys.path.insert(0, target)
    importlib.invalidate_caches()
    return [m for m in modules if importlib.util.find_spec(m) is None]


def check_algo(args) -> str:
    missing = add_wheels(args.wheels, ["pytest", "hypothesis", "pydantic", "yaml"])
    if missing:
        return f"skipped: {', '.join(missing)} not importable (bring their wheels: --wheels DIR)"
    import pytest

    code = pytest.main(
        [str(ROOT / "tests" / "algo"), "-q", "-p", "no:cacheprovider", "-x", *shlex.split(args.pytest_args)],
        plugins=[DefaultDevice(args.device)],
    )
    if code != 0:
        raise RuntimeError(f"pytest tests/algo on {args.device} exited {int(code)}")
    return f"ok: tests/algo passed with torch's default device {args.device}"


# ---- 2. the weight group into a plain HF receiver ------------------------------------------------------------


def _corrupted(named):
    """The same tensors with noise of the embedding's own scale in the embedding (every logit depends on it)."""
    import torch

    out = []
    gen = torch.Generator().manual_seed(7)
    for name, tensor in named:
        if name.endswith("embed_tokens.weight"):
            noise = torch.randn(tensor.shape, generator=gen).to(tensor.device, tensor.dtype)
            tensor = tensor + noise * tensor.float().std().to(tensor.dtype)
        out.append((name, tensor))
    return out


def _member(role: str, args, ports, results) -> None:
    """One process of the broadcast check: role "send" (rank 0) or "receive" (rank 1)."""
    import torch

    try:
        from rlvr.sync.group import WeightGroup

        rank = 0 if role == "send" else 1
        gpus = torch.cuda.device_count() if args.device == "cuda" else 0
        if gpus:
            torch.cuda.set_device(rank if gpus >= 2 else 0)
        device = f"cuda:{torch.cuda.current_device()}" if gpus else "cpu"
        group_device = "cuda" if gpus >= 2 else "cpu"
        model = build_model(1 if role == "send" else 0, device, args.dtype, args.hidden, args.layers)
        port = 0 if role == "send" else ports.get(timeout=120)
        group = WeightGroup("127.0.0.1", port, rank, 2, group_device, timeout_s=300)
        if role == "send":
            ports.put(group.port)
        group.connect()
        ids = probe_tokens(device)
        if role == "send":
            named = [(n, p.detach()) for n, p in model.named_parameters()]
            results.put(
                ("sender", token_logprobs(model, ids).tolist())
            )  # lists: a queued tensor is a shared fd
            for push in (named, _corrupted(named)):
                if device.startswith("cuda"):
                    torch.cuda.synchronize()
                t0 = time.perf_counter()
                count, num_bytes = group.send(push, bucket_bytes=args.bucket_mb * 2**20)
                results.put(("sent", (count, num_bytes, time.perf_counter() - t0)))
        else:
            params = dict(model.named_parameters())
            for push in ("clean", "corrupted"):
                seen = set()
                with torch.no_grad():
                    for name, tensor in group.receive():
                        params[name].copy_(tensor)  # HF names: the receiver is a plain transformers model
                        seen.add(name)
                if seen != set(params):
                    raise RuntimeError(f"push {push}: missing {sorted(set(params) - seen)[:4]}")
                results.put((push, token_logprobs(model, ids).tolist()))
        group.close()
    except BaseException:
        results.put(("error", f"{role}: {traceback.format_exc()}"))


def check_broadcast(args) -> str:
    import torch
    import torch.multiprocessing as mp

    gpus = torch.cuda.device_count() if args.device == "cuda" else 0
    backend = (
        "nccl, GPU 0 -> GPU 1"
        if gpus >= 2
        else "gloo" + (" (one GPU: NCCL needs a GPU per rank)" if gpus else "")
    )
    ctx = mp.get_context("spawn")
    ports, results = ctx.Queue(), ctx.Queue()
    procs = [ctx.Process(target=_member, args=(role, args, ports, results)) for role in ("send", "receive")]
    for p in procs:
        p.start()
    got: dict[str, object] = {}
    sent = []
    try:
        while len(got) < 3 or len(sent) < 2:
            key, value = results.get(timeout=600)
            if key == "error":
                raise RuntimeError(str(value).strip().splitlines()[-1] + "\n" + str(value))
            if key == "sent":
                sent.append(value)
            else:
                got[key] = value
    finally:
        for p in procs:
            p.join(timeout=60)
            if p.is_alive():
                p.kill()
    tol = tolerance_for(args.dtype)
    sender = torch.tensor(got["sender"])
    clean = float((torch.tensor(got["clean"]) - sender).abs().max())
    corrupt = float((torch.tensor(got["corrupted"]) - sender).abs().max())
    if clean > tol:
        raise RuntimeError(
            f"after the push the receiver's logprobs differ by {clean:.2e} > tolerance {tol:g}"
        )
    if corrupt <= tol:
        raise RuntimeError(
            f"a corrupted push went unnoticed: max |dlogprob| {corrupt:.2e} <= tolerance {tol:g}"
        )
    count, num_bytes, seconds = sent[0]
    return (
        f"ok: {count} HF-named tensors, {num_bytes / 2**20:.1f} MiB in {seconds:.3f} s "
        f"({num_bytes / seconds / 1e9:.2f} GB/s) over {backend}; probe max |dlogprob| {clean:.1e} <= {tol:g} "
        f"({args.dtype}); corrupted push detected ({corrupt:.2f})"
    )


# ---- 3. learner forward/backward on the device -------------------------------------------------------------


def _rl_batch(device: str):
    """8 sequences of 8 prompt + 16 response tokens in 2 groups of 4, rewards 1/0 alternating."""
    import torch

    from rlvr.algo import Groups, grpo_scalar

    gen = torch.Generator().manual_seed(5)
    ids = torch.randint(3, 1000, (8, 24), generator=gen)
    mask = torch.zeros(8, 24)
    mask[:, 8:] = 1
    rewards = torch.tensor([1.0, 0.0] * 4)
    adv = grpo_scalar(rewards, Groups.from_ids(torch.tensor([0, 0, 0, 0, 1, 1, 1, 1])))
    return {
        "input_ids": ids.to(device),
        "attention_mask": torch.ones_like(ids).to(device),
        "response_mask": mask.to(device),
        "advantages": (adv[:, None] * mask).to(device),
    }


def _shift(lp_BT):
    """Logprobs of token t predicted at t-1, aligned to ``input_ids`` (position 0 has none)."""
    import torch

    return torch.cat([torch.zeros_like(lp_BT[:, :1]), lp_BT], dim=1)


def _plain_logprobs(model, mb):
    from rlvr.learner.logprobs import compute_token_logprobs_and_entropy

    logits = model(input_ids=mb["input_ids"], attention_mask=mb["attention_mask"]).logits[:, :-1]
    lp, _ = compute_token_logprobs_and_entropy(
        logits.reshape(-1, logits.shape[-1]), mb["input_ids"][:, 1:].reshape(-1), entropy_grad=False
    )
    return _shift(lp.view(mb["input_ids"].shape[0], -1))


def _objective(lp_BT, mb) -> float:
    """Advantage-weighted mean response logprob: what a policy-gradient step must raise."""
    mask = mb["response_mask"]
    return float(((mb["advantages"] * lp_BT * mask).sum(1) / mask.sum(1)).mean())


def _loss(mb, logprobs_BT, old_BT):
    from rlvr.algo import LossInputs, compute_policy_loss

    spec = {
        "loss": {"name": "ppo_clip", "kwargs": {"eps_low": 0.2, "eps_high": 0.2}},
        "aggregation": "token_mean",
    }
    inputs = LossInputs(
        logprobs=logprobs_BT,
        old_logprobs=old_BT,
        response_mask=mb["response_mask"],
        advantages=mb["advantages"],
    )
    return compute_policy_loss(spec, inputs)


def check_learner(args) -> str:
    import torch

    use_ds = args.learner == "deepspeed" or (
        args.learner == "auto" and importlib.util.find_spec("deepspeed") is not None
    )
    device = args.device
    model = build_model(2, device, args.dtype, args.hidden, args.layers)
    mb = _rl_batch(device)
    with torch.no_grad():
        old = _plain_logprobs(model, mb).float()
    before = _objective(old, mb)
    steps, losses = 3, []
    if use_ds:
        from rlvr.learner.engine import Learner
        from rlvr.learner.settings import LearnerSettings

        folder = Path(tempfile.mkdtemp(prefix="rlvr-learner-"))
        model.save_pretrained(folder)
        learner = Learner(folder, LearnerSettings(dtype=args.dtype, lr=1e-3))
        for _ in range(steps):
            out = learner.train_step(
                [mb],
                lambda m, o: (
                    _loss(m, o.logprobs, old.to(o.logprobs.device)).loss * m["response_mask"].sum(),
                    {},
                ),
            )
            losses.append(out["loss"])
        trained = learner.engine.module
        kind = "DeepSpeed learner (rlvr.learner.engine.Learner)"
    else:
        opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
        model.train()
        for _ in range(steps):
            loss = _loss(mb, _plain_logprobs(model, mb), old).loss
            opt.zero_grad()
            loss.backward()
            grad_norm = torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            if not math.isfinite(float(grad_norm)):
                raise RuntimeError(f"grad norm {float(grad_norm)}")
            opt.step()
            losses.append(float(loss.detach()))
        trained = model.eval()
        kind = "plain torch AdamW (no DeepSpeed)"
    with torch.no_grad():
        after = _objective(_plain_logprobs(trained, mb).float(), mb)
    if not all(math.isfinite(x) for x in losses):
        raise RuntimeError(f"non-finite loss {losses}")
    if not after > before:
        raise RuntimeError(
            f"{steps} updates did not raise the advantage-weighted logprob ({before:.4f} -> {after:.4f})"
        )
    return f"ok: {kind} on {device} ({args.dtype}): {steps} updates, advantage-weighted logprob {before:.4f} -> {after:.4f}"


# ---- main --------------------------------------------------------------------------------------------------

CHECKS = {"algo": check_algo, "broadcast": check_broadcast, "learner": check_learner}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", choices=("cuda", "cpu"), default="cuda")
    parser.add_argument("--dtype", choices=sorted(DTYPES), help="default: bfloat16 on cuda, float32 on cpu")
    parser.add_argument(
        "--only", default=",".join(CHECKS), help=f"comma-separated subset of {','.join(CHECKS)}"
    )
    parser.add_argument("--hidden", type=int, default=128, help="hidden size of the model the checks build")
    parser.add_argument("--layers", type=int, default=2, help="decoder layers of that model")
    parser.add_argument("--bucket-mb", type=int, default=64, help="bucket size of the weight push")
    parser.add_argument("--learner", choices=("auto", "torch", "deepspeed"), default="auto")
    parser.add_argument("--wheels", help="folder of wheel files for the algo tests' missing packages")
    parser.add_argument("--verbose", action="store_true", help="print the traceback of a failed check")
    parser.add_argument(
        "--pytest-args",
        default="",
        help="extra pytest arguments for tests/algo, one string: --pytest-args='-k drpo'",
    )
    args = parser.parse_args(argv)
    args.dtype = args.dtype or ("bfloat16" if args.device == "cuda" else "float32")

    import torch

    if args.device == "cuda" and not torch.cuda.is_available():
        print(f"no CUDA device (torch {torch.__version__}); use --device cpu to run the checks on CPU")
        return 2
    where = torch.cuda.get_device_name(0) if args.device == "cuda" else "CPU"
    print(
        f"[gpu-minimal] torch {torch.__version__} on {where} ({torch.cuda.device_count()} GPU(s)), {args.dtype}"
    )
    failed = 0
    for name in args.only.split(","):
        t0 = time.perf_counter()
        try:
            line = CHECKS[name](args)
        except Exception as exc:  # report every check, then fail
            failed += 1
            line = f"FAILED: {str(exc).strip()}"
            if args.verbose:
                traceback.print_exc()
        print(f"[gpu-minimal] {name}: {line} [{time.perf_counter() - t0:.1f} s]", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
