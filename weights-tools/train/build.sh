#!/usr/bin/env bash
# Builds one shipped organism from nothing: skeleton, training data, training, f16 export,
# held-out evaluation and model card, into weights-tools/organisms/shapes-ARCH/.
#
#   bash weights-tools/train/build.sh llava|instructblip STEPS BATCH [WORK_DIR]
#
# One CPU thread (BLAS pools included), so the wall time in the card is what one core gives.
set -euo pipefail
arch=${1:?arch: llava or instructblip}
steps=${2:?steps}
batch=${3:?batch}
work=${4:-$(mktemp -d -t phaselens-organism-XXXX)}
here=$(cd "$(dirname "$0")/../.." && pwd)
cd "$here"
out=weights-tools/organisms/shapes-$arch
export OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 MKL_NUM_THREADS=1
ts() { node src/cli/run-ts.mjs "$@"; }
py=$(bash .ci/hf-venv.sh)  # torch 2.x (the shipped organisms' cards name the torch that trained them)
mkdir -p "$work"

ts weights-tools/train/organisms.ts --arch "$arch" --out "$out"
ts weights-tools/train/prepare.ts --model "$out" --seed 1 --scenes 20000 --out "$work/train.safetensors"
$py weights-tools/train/train.py --model "$out" --data "$work/train.safetensors" --steps "$steps" --batch "$batch" \
  --out "$work/trained.safetensors" --log "$out/train.json"
ts weights-tools/train/export.ts --model "$out" --weights "$work/trained.safetensors"
ts weights-tools/train/prepare.ts --model "$out" --seed 1001 --scenes 500 --out "$work/heldout.safetensors"
$py weights-tools/train/eval.py --model "$out" --data "$work/heldout.safetensors" --out "$out/eval.json"
$py weights-tools/train/card.py --model "$out" --train "$out/train.json" --eval "$out/eval.json" \
  --command "bash weights-tools/train/build.sh $arch $steps $batch"
