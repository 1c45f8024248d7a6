#!/usr/bin/env bash
# Proves the offline wheel set here, on Python 3.11: a fresh venv holding only torch/torchvision (the builds
# on this disk), transformers, peft and accelerate (the versions the toolkit pins) stands in for the GPU
# image; offline_wheels.py picks what that venv lacks, installs it --no-deps into a target dir, and the
# stand-in runs gpu_train.py --scale tiny (train.py -> swift sft) with only PYTHONPATH=target added.
#
#   bash benchmarks/check_offline_wheels.sh        # from the repo root, after `make setup`; ~5 minutes
set -euo pipefail
cd "$(dirname "$0")/.."
kit=.venv/bin/python
work=$(mktemp -d "${TMPDIR:-/tmp}/offline-wheels-XXXX")
trap 'rm -rf "$work"' EXIT
pins=$($kit -c 'import importlib.metadata as m
print(" ".join(f"{d}=={m.version(d)}" for d in ("torch", "torchvision", "transformers", "peft", "accelerate")))')
echo "[check] stand-in GPU image: python3.11 venv with $pins"
python3.11 -m venv "$work/image"
"$work/image/bin/pip" install -q $pins 2>&1 | grep -v "^WARNING: Location" || true
$kit benchmarks/offline_wheels.py --have-from "$work/image/bin/python" --dest "$work/whl"
"$work/image/bin/python" benchmarks/offline_wheels.py --install "$work/target" --dest "$work/whl"
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 HF_DATASETS_OFFLINE=1 MODELSCOPE_OFFLINE=1 CUDA_VISIBLE_DEVICES=
PYTHONPATH="$work/target" "$work/image/bin/python" benchmarks/gpu_train.py recipes/internvl3_5-8b-latex-ocr.yaml \
    --scale tiny --steps 2 --variant seed
echo "[check] ok: the wheel set runs the training path on a machine without ms-swift"
