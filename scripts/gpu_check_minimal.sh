#!/usr/bin/env bash
# For a GPU machine with only PyTorch (CUDA) and transformers: no vLLM, DeepSpeed, Ray or network.
#   bash scripts/gpu_check_minimal.sh [WHEELS_DIR]       # ~1 min; exit 0 when nothing failed
# Runs scripts/gpu_minimal_check.py on CUDA: the algorithm tests (tests/algo) with CUDA as torch's default device,
# rlvr's weight group broadcasting HF-named tensors into a plain transformers model in another process (NCCL with
# 2 GPUs, gloo with one) checked by logprobs, and GRPO updates of a small model (DeepSpeed's learner if it
# imports, else plain torch). WHEELS_DIR: wheel files for what tests/algo needs and the machine lacks (pytest,
# hypothesis, pydantic, PyYAML), e.g. made elsewhere with `pip download -d wheels pytest hypothesis pydantic`
# for the machine's Python version; they are installed into a temporary folder, not the machine's environment.
set -euo pipefail
cd "$(dirname "$0")/.."
py=${PYTHON:-python}
args=(--device cuda)
if [ "$#" -ge 1 ]; then args+=(--wheels "$1"); fi
"$py" scripts/gpu_minimal_check.py "${args[@]}" --verbose
# A push of ~0.6 B parameters (1.2 GB in bf16, random weights): the weight group's throughput at a real size.
"$py" scripts/gpu_minimal_check.py --device cuda --only broadcast --hidden 1536 --layers 28 --bucket-mb 512
