#!/usr/bin/env bash
# The training and decoding benchmarks on a CUDA GPU, training at fp32, bf16-mixed and
# fp16-mixed: one command for whenever a GPU is available. Install a CUDA torch first, e.g.
#   make install TORCH=torch==2.13.0 TORCH_ARGS="--index-url https://download.pytorch.org/whl/cu128"
#   bash scripts/gpu_check.sh            # tables on stdout, JSON in bench-results/gpu-*.json
#   ROWS=reference,lstm MIXED_ROWS=reference,lstm bash scripts/gpu_check.sh   # fewer rows
# Every row is a process of its own (~20 s each on an H200, mostly start-up): all rows at the three
# precisions take ~14 minutes (more with the +compile rows, which compile first); MIXED_ROWS=reference,lstm about 8.
# Each training row (and the hand-written reference) trains on the GPU that Lightning's
# accelerator=auto picks; decoding times an untrained 2x256 LSTM whose answers all run to 10 and
# to 20 tokens, at batch 1, 64 and 1024, beside the hand-written greedy loop on the same GPU.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
ROWS=${ROWS:-reference,lstm,peephole_lstm,layernorm_lstm,gru,rnn,lstm+rdrop,peephole_lstm+compile,layernorm_lstm+compile,lstm+rdrop+compile}
MIXED_ROWS=${MIXED_ROWS:-$ROWS}
if ! "$PY" -c 'import sys, torch; sys.exit(0 if torch.cuda.is_available() else 1)'; then
  echo "error: no CUDA device for $("$PY" -c 'import torch; print("torch", torch.__version__)');" \
    "install a CUDA build of torch: see the top of scripts/gpu_check.sh" >&2
  exit 2
fi
"$PY" -c 'import torch; print(torch.cuda.get_device_name(), "torch", torch.__version__)'
mkdir -p bench-results
status=0
for precision in 32-true bf16-mixed 16-mixed; do
  rows=$([ "$precision" = 32-true ] && echo "$ROWS" || echo "$MIXED_ROWS")
  "$PY" scripts/bench.py --precision "$precision" --no-decode --datasets toy,arith --rows "$rows" \
    --json "bench-results/gpu-$precision.json" || status=1  # a failed row: time the others
done
for length in 10 20; do
  "$PY" scripts/bench_decode.py --untrained --device cuda --max-length "$length" \
    --batch-sizes 1,64,1024 || status=1
done
exit $status
