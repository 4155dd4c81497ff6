#!/usr/bin/env bash
# The training benchmark on a CUDA GPU at fp32, bf16-mixed and fp16-mixed: one command for
# whenever a GPU is available. Install a CUDA torch first, e.g.
#   make install TORCH=torch==2.13.0 TORCH_ARGS="--index-url https://download.pytorch.org/whl/cu128"
#   bash scripts/gpu_check.sh            # tables on stdout, JSON in bench-results/gpu-*.json
# Each row (and the hand-written reference) trains on the GPU that Lightning's accelerator=auto
# picks; decoding stays a CPU benchmark (make bench-decode).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
if ! "$PY" -c 'import sys, torch; sys.exit(0 if torch.cuda.is_available() else 1)'; then
  echo "error: no CUDA device for $("$PY" -c 'import torch; print("torch", torch.__version__)');" \
    "install a CUDA build of torch: see the top of scripts/gpu_check.sh" >&2
  exit 2
fi
"$PY" -c 'import torch; print(torch.cuda.get_device_name(), "torch", torch.__version__)'
mkdir -p bench-results
for precision in 32-true bf16-mixed 16-mixed; do
  "$PY" scripts/bench.py --precision "$precision" --no-decode --datasets toy,arith \
    --json "bench-results/gpu-$precision.json"
done
