#!/usr/bin/env bash
# Every lesson under nbval on a real CUDA GPU (a lent device machine), with seconds and the
# GPU's peak memory per lesson. Prepared here, run there in one call:
#   python tests/places/gpu_wheels.py                         (here: the wheels it lacks)
#   device run: bash tests/places/cuda_run.sh   carry: [".whl"]   timeout_s: 540
# The machine's own torch (2.11, CUDA) is kept, as on Colab; the carried wheels go in
# /tmp/site without their dependencies. Results land in $OUT/cuda_lessons.txt.
set -uo pipefail
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target /tmp/site .whl/*.whl || exit 1
export PYTHONPATH="/tmp/site:$PWD" MMLEARN_OFFLINE=1 HF_HUB_OFFLINE=1 PYTHONHASHSEED=0
export MPLBACKEND=Agg PYTHONUNBUFFERED=1
out="${OUT:-/tmp}/cuda_lessons.txt"
python3 -c "import torch, mmlearn.config as c; print(torch.__version__, c.describe_device())" \
    | tee "$out"
status=0
for notebook in notebooks/[0-9][0-9]_*.ipynb; do
    nvidia-smi --query-gpu=memory.used --format=csv,noheader,nounits -lms 200 > /tmp/gpu.log &
    sampler=$!
    start=$(date +%s.%N)
    python3 -m pytest -q --nbval-lax --nbval-current-env --nbval-cell-timeout=600 \
        --nbval-sanitize-with tests/nbval_sanitize.cfg -p no:cacheprovider "$notebook" \
        > "/tmp/$(basename "$notebook").log" 2>&1
    code=$?
    kill "$sampler"
    seconds=$(python3 -c "import time; print(f'{time.time() - $start:.1f}')")
    peak=$(sort -n /tmp/gpu.log | tail -1)
    echo "$(basename "$notebook") exit=$code seconds=$seconds peak_gpu_MiB=$peak" | tee -a "$out"
    if [ "$code" != 0 ]; then status=1; tail -40 "/tmp/$(basename "$notebook").log" >> "$out"; fi
done
exit $status
