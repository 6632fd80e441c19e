#!/usr/bin/env bash
# The wheels bench/gpu_check.sh installs on the GPU machine, which reaches no package index: what
# its image (torch 2.11, transformers 5.17, accelerate, peft, onnxruntime, Python 3.12) lacks or
# has at another version than lorakit's verified stack, and xformers. Into .whl/ (git-ignored), 25 MB.
#   bash bench/gpu_wheels.sh && du -sh .whl
set -euo pipefail
cd "$(dirname "$0")/.."
grep -qx "/.whl/" .git/info/exclude 2>/dev/null || echo "/.whl/" >> .git/info/exclude
PY=${PYTHON:-python3}
mkdir -p .whl
"$PY" -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
  --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
  -d .whl "diffusers==0.42.1" "transformers==5.23.0" "peft==0.21.0" "open_clip_torch==3.3.0" "ftfy==6.3.1" \
  "xformers==0.0.35"  # a 3 MB py39-none wheel, for torch >= 2.10 (the image has 2.11)
du -sh .whl
