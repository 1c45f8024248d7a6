#!/usr/bin/env bash
# The prepared GPU session (issue 13): InternVL3.5-8B's official flags against the faster variants, 30
# steps each, on one lent GPU, in one device call under 10 minutes. Prepare here, where PyPI is reachable:
#
#   .venv/bin/python benchmarks/offline_wheels.py          # 23 wheels, ~22 MiB, into .whl/ (git-ignored)
#
# then run it through the device tool with carry [".whl"] and the command `bash benchmarks/gpu_session.sh`.
# The table (results.json per variant set) lands in $OUT; paste it into README's performance section.
set -euo pipefail
cd "$(dirname "$0")/.."
out=${OUT:-/tmp/gpu-bench-out}
site=/tmp/kit-site
mkdir -p "$out"
python3 benchmarks/offline_wheels.py --install "$site" --dest .whl
export PYTHONPATH="$site" HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 HF_DATASETS_OFFLINE=1 MODELSCOPE_OFFLINE=1
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv | tee "$out/gpu.txt"
python3 benchmarks/gpu_train.py recipes/internvl3_5-8b-latex-ocr.yaml --steps 30 \
    --variant seed,sdpa,batch4,padding_free,liger --work /tmp/bench-8b 2>&1 | tee "$out/internvl3_5-8b.txt"
cp /tmp/bench-8b/results.json "$out/internvl3_5-8b.json"
