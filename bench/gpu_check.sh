#!/usr/bin/env bash
# Everything lorakit checks on a GPU, in one call of the device tool, in under 9 minutes:
#   1. the CUDA tests (pytest -m cuda: fp16 training with xformers/SDPA, captioning on CUDA);
#   2. the training-step benchmark against the hand-written diffusers+peft loop: SD 1.5 at 512 px,
#      batch 1 and 4, xformers vs SDPA, fp16 vs bf16, gradient checkpointing off and on; SDXL at
#      1024 px batch 1 (SDPA and xformers, bf16, checkpointing on);
#   3. the captioning benchmarks (real-size BLIP / CoCa / CLIP with random weights; the light captioners);
# and writes one JSON of figures (device, peak VRAM, steps/s, images/s, each step's output) to
# $OUT/gpu_check.json (or ./build/gpu_check.json).
#
#   bash bench/gpu_wheels.sh                # here, once: the wheels the GPU image lacks, into .whl/ (< 64 MB)
#   device run: bash bench/gpu_check.sh     # carry [".whl"]; timeout_s 600
#   bash bench/gpu_check.sh --dry-run       # on a CPU (CI does): every step at its tiny size, same JSON
#
# The GPU machine reaches no package index: lorakit and what its image lacks (diffusers, the pinned
# transformers and peft, open_clip, xformers) are installed from .whl/ with --no-index; xformers rows are
# skipped with a note where no xformers wheel for the image's torch was carried.
set -uo pipefail
cd "$(dirname "$0")/.."

DRY_RUN=0
[ "${1:-}" = "--dry-run" ] && DRY_RUN=1
OUT_DIR="${OUT:-build}"
mkdir -p "$OUT_DIR" build/gpu-check
LOGS=build/gpu-check
rm -f "$LOGS"/*.log "$LOGS"/*.meta
PYTHON="${PYTHON:-python3}"
[ -x .venv/bin/python ] && [ "$DRY_RUN" = 1 ] && PYTHON=.venv/bin/python
export PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false

if [ "$DRY_RUN" = 0 ]; then
  # lorakit and the missing packages, into a folder of their own (the image's torch stays)
  if ls .whl/*.whl >/dev/null 2>&1; then
    "$PYTHON" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
      || echo "gpu_check: some wheels did not install" >&2
  else
    echo "gpu_check: no .whl/ folder: using the image's packages only (run bench/gpu_wheels.sh here first)" >&2
  fi
  "$PYTHON" -m pip install -q --no-index --no-deps --no-build-isolation --no-compile --target /tmp/site . \
    || { echo "gpu_check: lorakit did not install" >&2; exit 2; }
  export PYTHONPATH=/tmp/site
fi

# step NAME SECONDS COMMAND...: run with a time limit, keep its output and how it ended
step() {
  local name=$1 limit=$2
  shift 2
  local started=$SECONDS
  echo "== $name (limit ${limit}s): $*"
  timeout --kill-after=10 "$limit" "$@" >"$LOGS/$name.log" 2>&1
  local rc=$?
  printf '%s\t%s\t%s\n' "$rc" "$((SECONDS - started))" "$*" >"$LOGS/$name.meta"
  tail -n 25 "$LOGS/$name.log"
  echo "== $name: exit $rc after $((SECONDS - started))s"
}

if [ "$DRY_RUN" = 1 ]; then
  TRAIN_SMALL=(--size tiny --device cpu --resolution 64 --images 2 --rounds 1 --steps 1)
  step cuda_tests 300 "$PYTHON" -m pytest -q -p no:cacheprovider -m cuda --collect-only tests/plugins
  step train_sd15_bs1 300 "$PYTHON" bench/bench_train.py "${TRAIN_SMALL[@]}" --batch-size 1 \
    --attention sdpa --precision no --checkpointing off,on --workdir build/gpu-check/train
  step train_sdxl_bs1 300 "$PYTHON" bench/bench_train.py --size tiny-xl --device cpu --resolution 64 --images 2 \
    --rounds 1 --steps 1 --batch-size 1 --attention sdpa --precision no --checkpointing on --workdir build/gpu-check/train
  step caption_models 300 "$PYTHON" bench/bench_caption.py --size tiny --device cpu --captioners blip \
    --batch-sizes 2 --images 2 --workdir build/gpu-check/caption
  step caption_light 300 "$PYTHON" bench/bench_light_captioners.py --images 4 --repeat 1 --latency 0.01 \
    --workdir build/gpu-check/light
else
  XFORMERS=sdpa
  if "$PYTHON" -c "import xformers.ops" >/dev/null 2>&1; then XFORMERS=xformers,sdpa; fi
  step cuda_tests 120 "$PYTHON" -m pytest -q -p no:cacheprovider -m cuda tests/plugins/test_cuda_training.py \
    tests/plugins/test_cuda_captioning.py
  step train_sd15_bs1 100 "$PYTHON" bench/bench_train.py --size sd15 --device cuda --resolution 512 --batch-size 1 \
    --images 8 --rounds 2 --steps 5 --attention "$XFORMERS" --precision fp16,bf16 --checkpointing off,on \
    --workdir /tmp/gpu-check/train
  step train_sd15_bs4 100 "$PYTHON" bench/bench_train.py --size sd15 --device cuda --resolution 512 --batch-size 4 \
    --images 8 --rounds 2 --steps 5 --attention "$XFORMERS" --precision fp16,bf16 --checkpointing off,on \
    --workdir /tmp/gpu-check/train
  step train_sdxl_bs1 90 "$PYTHON" bench/bench_train.py --size sdxl --device cuda --resolution 1024 --batch-size 1 \
    --images 4 --rounds 2 --steps 3 --attention "$XFORMERS" --precision bf16 --checkpointing on \
    --workdir /tmp/gpu-check/train
  step caption_models 60 "$PYTHON" bench/bench_caption.py --size full --device cuda --captioners blip,coca,clip \
    --batch-sizes 1,8 --images 16 --workdir /tmp/gpu-check/caption
  step caption_light 20 "$PYTHON" bench/bench_light_captioners.py --images 32 --repeat 1 --latency 0.05 \
    --workdir /tmp/gpu-check/light
fi

"$PYTHON" bench/gpu_summary.py "$LOGS" "$OUT_DIR/gpu_check.json" --dry-run "$DRY_RUN"
