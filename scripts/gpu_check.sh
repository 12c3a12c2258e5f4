#!/usr/bin/env bash
# Every GPU check of this repository, on a machine with CUDA and the gpu extra (pip install -e '.[gpu,dev]'):
#   bash scripts/gpu_check.sh            # a few minutes; exit 0 when every check passed
# 1. the gpu-marked tests (tests/gpu): two GRPO steps on CUDA with the NCCL weight push and the bf16 sync probe
#    (a learner and a rollout worker on a GPU each: 2 GPUs), colocated placement refused in one line;
# 2. `device: cuda` start-up of the real-model recipes (tests/test_cuda_startup.py) on a real GPU;
# 3. scripts/gpu_minimal_check.py: tests/algo on CUDA, the weight group into a plain HF model, a learner update.
# Set PYTHON to choose the interpreter (default: .venv/bin/python if present, else python).
set -euo pipefail
cd "$(dirname "$0")/.."
py=${PYTHON:-}
if [ -z "$py" ]; then
  if [ -x .venv/bin/python ]; then py=.venv/bin/python; else py=python; fi
fi
if ! "$py" -c 'import sys, torch; sys.exit(0 if torch.cuda.is_available() else 1)'; then
  echo "[gpu-check] no CUDA device visible to $py (torch $("$py" -c 'import torch; print(torch.__version__)'))" >&2
  exit 2
fi
"$py" -c 'import torch; print(f"[gpu-check] torch {torch.__version__}, CUDA {torch.version.cuda}, {torch.cuda.device_count()} x {torch.cuda.get_device_name(0)}")'
if command -v nvidia-smi >/dev/null 2>&1; then
  nvidia-smi --query-gpu=index,name,memory.total,driver_version --format=csv,noheader
fi
export HF_HUB_OFFLINE=1 RLVR_PROGRESS=0
status=0
start=$SECONDS
"$py" -m pytest tests/gpu tests/test_cuda_startup.py -v -rs --timeout=1800 || status=1
echo "[gpu-check] tests done after $((SECONDS - start)) s (status $status)"
"$py" scripts/gpu_minimal_check.py --device cuda || status=1
echo "[gpu-check] all done after $((SECONDS - start)) s: $([ "$status" = 0 ] && echo passed || echo FAILED)"
exit "$status"
