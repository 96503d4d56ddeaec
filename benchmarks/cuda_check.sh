#!/usr/bin/env bash
# CUDA check of the proxy trainer, run on a lent GPU machine (not part of CI: CI has no GPU).
# Command, from the repository root on the GPU machine (its python3 holds torch):
#   OUT=benchmarks/results/cuda_check bash benchmarks/cuda_check.sh
# What it checks: tests/test_cuda.py (rollout on CUDA learns digits, returns CPU weights,
# warm-starts from them; MnasNet-A1 on CUDA matches the analytic and timm parameter counts),
# the CPU-side task and search tests on that machine, `fnas train` and a tiny `fnas search`
# with --device cuda. Results: benchmarks/results/cuda_check/.
set -o pipefail
export PYTHONPATH=src PYTHONUNBUFFERED=1
mkdir -p "$OUT"
nvidia-smi --query-gpu=name,memory.total --format=csv | tee "$OUT/gpu.txt"
python3 -c "import torch; print(torch.__version__, torch.cuda.is_available())"
timeout 240 python3 -m pytest tests/test_cuda.py tests/test_tasks.py tests/test_search.py -q -rs \
    -p no:cacheprovider 2>&1 | tee "$OUT/pytest.txt"
timeout 60 python3 -m fnas.cli train mnas_default --device cuda --epochs 5 --json \
    | tee "$OUT/train_cuda.json"
timeout 120 python3 -m fnas.cli search --device cuda --budget 8 --batch 4 --epochs 3 \
    --store /tmp/s --no-progress 2>&1 | tee "$OUT/search_cuda.txt"
