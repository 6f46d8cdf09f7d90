#!/usr/bin/env bash
# The GPU check (`make bench-gpu`): on one GPU machine, in under 5 minutes,
#   1. the CUDA tests (tests/test_gpu.py): bf16 training and the probe run on the device and match the CPU;
#   2. `python -m transfersep.bench --gpu-check`: the paper-size training step in fp32 and bf16 (median
#      of 5 after a warm-up), the DDP step on every GPU present, the loader's augmented samples/s with
#      the configured workers, the zero-shot probe and the evaluation of 1000 paper excerpts, and the
#      study's estimate in GPU-hours. Figures go to bench/results-gpu.json (override with OUT=...).
# Usage: bash scripts/gpu_check.sh   (PY=path/to/python to choose the interpreter)
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-$( [ -x .venv/bin/python ] && echo .venv/bin/python || echo python3 )}
OUT=${OUT:-bench/results-gpu.json}
if ! "$PY" -c "import transfersep, torch" 2>/dev/null; then
    echo "gpu_check: $PY cannot import transfersep and torch; run \`make install\` or set PY=path/to/python" >&2
    exit 2
fi
if ! "$PY" -c "import sys, torch; sys.exit(0 if torch.cuda.is_available() else 1)"; then
    echo "gpu_check: torch sees no CUDA device on this machine; run it where a GPU is present" >&2
    exit 2
fi
command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
start=$(date +%s)
"$PY" -m pytest tests/test_gpu.py -m gpu -q -p no:cacheprovider
"$PY" -m transfersep.bench --gpu-check --out "$OUT"
echo "gpu_check: done in $(( $(date +%s) - start )) s; figures in $OUT"
