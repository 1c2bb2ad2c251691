#!/usr/bin/env bash
# The one-shot GPU check, run on a lent H100/H200 by the device tool in ONE call
# (bench/gpu/README.md gives the exact call). From the repo root:
#
#   bash bench/gpu/run.sh [--carry DIR] [--work DIR] [--out DIR] [--budget-s 480]
#        [--reps 3] [--new-tokens 32] [--skip-7b | --model DIR] [--no-profile] [--allow-stale]
#        [--hf-device cuda] [--need-gb 15] [--dry-run] [--setup-only]
#
# Steps (each under `timeout`, capped by what is left of --budget-s; a step that fails
# or runs out of time is reported and the rest still run):
#   setup       unpack node + dawn.node from the carry, the Vulkan loader and glvnd where the
#               machine lacks them, point Vulkan at the NVIDIA ICD when Dawn would not find it
#   checks      nvidia-smi, python3 + torch + transformers versions
#   7b write    make-random --shape llava-7b (14.1 GB of fp16 safetensors), in the background,
#               into --work or /dev/shm, whichever has more free space (at least --need-gb;
#               else the 7B steps are skipped and the summary says why)
#   parity      make-tiny llava / instructblip (f32), phaselens dump of each, HF transformers
#               on the CPU on the dump's inputs: hidden states + logits compared (parity-*.json)
#   adapter     the adapter Dawn gave (from the dumps); with none, or a software one on a GPU
#               machine, the Vulkan loader's diagnostics (VK_LOADER_DEBUG=error,driver)
#   phaselens   device-bench --mode time on the 7B: prefill, decode tok/s, analyze s/image,
#               peak buffers, self-checks and variants picked (phaselens.json)
#   hf          hf_bench.py perf on the same checkpoint and the same prepared inputs:
#               prefill eager + sdpa, decode, analyze (hidden states + attentions + torch
#               metrics), peak memory (hf.json)
#   phaselens-f16  device-bench again with --precision f16 (the ONE_PRODUCT forms and their
#               self-checks; into the work folder; summary.py adds it to phaselens.json as "f16")
#   profile     device-bench --mode profile (precision f32): per-kernel table (profile.txt),
#               last, as the step the table can best do without
#   summary     summary.py prints the table last and writes summary.txt
# Results in $OUT (at most 8 files come back): summary.txt log.txt phaselens.json
# profile.txt hf.json parity-llava.json parity-instructblip.json trace.json.gz
#
# Refuses (exit 2) on: an unknown argument, a bad number, no $OUT and no --out, a budget
# over 590 s (the tool stops a command at 600 s), a missing or stale carry (packed from
# other sources than this tree: repack, or --allow-stale), a processor other than x86-64.
# --model DIR: time that (LLaVA) checkpoint instead of writing the random 7B (the tests run
# the whole pipeline on a tiny checkpoint this way). --skip-7b: only setup, checks, parity.
# --hf-device cpu: run hf_bench.py perf on the CPU in float32 (a rehearsal off the GPU).
# --dry-run: check all that and print the plan, run nothing. --setup-only: also unpack
# and run `node --version` and the bundle's --help, then stop.
set -uo pipefail

die() { echo "run.sh: $*" >&2; exit 2; }
need() { [ $# -ge 2 ] && [[ "$2" != --* ]] || die "$1 needs a value"; }
posint() { [[ "$2" =~ ^[1-9][0-9]*$ ]] || die "$1 must be a positive integer, got '${2}'"; }

ROOT=$(pwd)
CARRY=bench/gpu/carry
WORK=${TMPDIR:-/tmp}/phaselens-gpu
OUTDIR=${OUT:-}
BUDGET=480
REPS=3
NEW_TOKENS=32
SKIP_7B=0
MODEL=
PROFILE=1
ALLOW_STALE=0
HF_DEVICE=cuda
NEED_GB=15
MODE=run
while [ $# -gt 0 ]; do
  case "$1" in
    --carry) need "$@"; CARRY=$2; shift 2 ;;
    --work) need "$@"; WORK=$2; shift 2 ;;
    --out) need "$@"; OUTDIR=$2; shift 2 ;;
    --budget-s) need "$@"; posint --budget-s "$2"; BUDGET=$2; shift 2 ;;
    --reps) need "$@"; posint --reps "$2"; REPS=$2; shift 2 ;;
    --new-tokens) need "$@"; posint --new-tokens "$2"; NEW_TOKENS=$2; shift 2 ;;
    --skip-7b) SKIP_7B=1; shift ;;
    --model) need "$@"; MODEL=$2; shift 2 ;;
    --no-profile) PROFILE=0; shift ;;
    --allow-stale) ALLOW_STALE=1; shift ;;
    --hf-device) need "$@"; HF_DEVICE=$2; shift 2 ;;
    --need-gb) need "$@"; posint --need-gb "$2"; NEED_GB=$2; shift 2 ;;
    --dry-run) MODE=dry; shift ;;
    --setup-only) MODE=setup; shift ;;
    -h|--help) sed -n '2,/^set -uo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown argument '$1' (see --help)" ;;
  esac
done
[ "$BUDGET" -le 590 ] || die "--budget-s $BUDGET: the device tool stops a command at 600 s; give at most 590"
[ -z "$MODEL" ] || [ "$SKIP_7B" = 0 ] || die "--model and --skip-7b exclude each other"
[ -z "$MODEL" ] || [ -f "$MODEL/config.json" ] || die "--model $MODEL: no config.json there"
[ -z "$MODEL" ] || MODEL=$(cd "$MODEL" && pwd)
[ "$NEW_TOKENS" -ge 2 ] || die "--new-tokens must be at least 2 (one prefill token + one decoded)"
[ -n "$OUTDIR" ] || die "no \$OUT and no --out DIR: run.sh is meant for the device tool's run (which sets \$OUT); elsewhere pass --out"
[ "$(uname -m)" = x86_64 ] || die "this is $(uname -m): the carried node and dawn.node are x86-64 builds"
[ -f bench/gpu/run.sh ] || die "run from the repo root (bench/gpu/run.sh not found under $(pwd))"
[ -f "$CARRY/MANIFEST.json" ] || die "no $CARRY/MANIFEST.json: pack first (node src/cli/run-ts.mjs bench/gpu/pack.ts) and name $CARRY in the run's carry"
for f in node.xz app/phaselens.mjs app/device-bench.mjs app/node_modules/webgpu/index.js app/node_modules/webgpu/dist/linux-x64/dawn.node.xz; do
  [ -f "$CARRY/$f" ] || die "$CARRY/$f is missing: the carry is incomplete, pack again"
done
manifest() { sed -n "s/^ *\"$1\": *\"\{0,1\}\([^\",]*\)\"\{0,1\},\{0,1\}$/\1/p" "$CARRY/MANIFEST.json" | head -1; }
PACKED=$(manifest source_hash)
HERE=$(bash bench/gpu/source-hash.sh "$ROOT")
if [ "$PACKED" != "$HERE" ]; then
  if [ "$ALLOW_STALE" = 1 ]; then echo "run.sh: WARNING: carry packed from sources $PACKED, this tree is $HERE (--allow-stale)" >&2
  else die "the carry is stale: packed from sources $PACKED, this tree hashes to $HERE; run pack.ts again (or --allow-stale)"; fi
fi
if grep -q '"missing": \[$' "$CARRY/MANIFEST.json"; then
  echo "run.sh: the pack reported missing pieces (MANIFEST.json \"missing\"):" >&2
  sed -n '/"missing": \[/,/\]/p' "$CARRY/MANIFEST.json" | sed '1d;$d' >&2
fi

# step caps in seconds (each also capped by what is left of the budget)
CAP_SETUP=30; CAP_CHECKS=40; CAP_7B=240; CAP_PARITY=150; CAP_PL=150; CAP_PL16=120; CAP_PROF=100; CAP_HF=170; CAP_SUMMARY=20
IMAGE=test/fixtures/images/000000039769.png   # COCO val2017 39769 (two cats), 640x480
PROMPT="Describe the image in detail."

# Where the random 7B goes: --work's file system or /dev/shm (RAM-backed, 128 GiB on the lent
# machines), whichever has more free space; neither with --need-gb free: no 7B steps.
free_gb() { local d=$1; while [ ! -d "$d" ]; do d=$(dirname "$d"); done; df -Pk "$d" 2>/dev/null | awk 'NR == 2 { print int($4 / 1048576) }'; }
CK=$MODEL
CK_NOTE=
if [ "$SKIP_7B" = 0 ] && [ -z "$MODEL" ]; then
  FREE_WORK=$(free_gb "$WORK"); FREE_SHM=$( [ -d /dev/shm ] && free_gb /dev/shm || echo 0 )
  if [ "${FREE_SHM:-0}" -gt "${FREE_WORK:-0}" ]; then CK=/dev/shm/phaselens-llava-7b-random; FREE=$FREE_SHM; else CK="$WORK/llava-7b-random"; FREE=$FREE_WORK; fi
  CK_NOTE="free: ${FREE_WORK:-?} GB under $WORK, ${FREE_SHM:-?} GB in /dev/shm; it needs $NEED_GB"
  if [ "${FREE:-0}" -lt "$NEED_GB" ]; then
    echo "run.sh: no room for the 7B checkpoint ($CK_NOTE); the 7B steps are skipped"
    SKIP_7B=1; CK=
  fi
fi
if [ "$MODE" = dry ]; then
  echo "run.sh plan (dry run): budget ${BUDGET} s, work $WORK, results $OUTDIR, carry $CARRY (sources $PACKED)"
  echo "  setup ${CAP_SETUP}s | checks ${CAP_CHECKS}s | 7b write ${CAP_7B}s (background, skip: $SKIP_7B) | parity ${CAP_PARITY}s"
  echo "  phaselens time ${CAP_PL}s | hf perf ${CAP_HF}s | phaselens --precision f16 ${CAP_PL16}s | profile ${CAP_PROF}s (on: $PROFILE) | summary ${CAP_SUMMARY}s"
  if [ -n "$MODEL" ]; then CKLINE=$MODEL; elif [ -n "$CK" ]; then CKLINE="make-random --shape llava-7b into $CK ($CK_NOTE)"; else CKLINE="none (no 7B steps)"; fi
  echo "  checkpoint $CKLINE"
  echo "  image $IMAGE, prompt '$PROMPT', reps $REPS, new tokens $NEW_TOKENS"
  exit 0
fi

START=$(date +%s)
mkdir -p "$OUTDIR" "$WORK" || die "cannot create $OUTDIR or $WORK"
LOG="$OUTDIR/log.txt"
STEPS="$WORK/steps.tsv"
: > "$STEPS"
exec > >(tee -a "$LOG") 2>&1
left() { echo $(( BUDGET - ($(date +%s) - START) )); }
# step NAME CAP cmd... : runs under timeout min(CAP, left - 5), records "name rc seconds"
step() {
  local name=$1 cap=$2; shift 2
  local l; l=$(( $(left) - 5 )); [ "$l" -lt "$cap" ] && cap=$l
  if [ "$cap" -lt 5 ]; then echo "== $name: skipped, the budget is spent"; printf '%s\t%s\t%s\n' "$name" skipped 0 >> "$STEPS"; return 124; fi
  echo "== $name (at most ${cap}s; $(left)s of the budget left)"
  local t0; t0=$(date +%s)
  # functions run through an exported bash -c, so timeout can stop them
  timeout --kill-after=5 "$cap" bash -c '"$@"' step "$@"; local rc=$?
  printf '%s\t%s\t%s\n' "$name" "$rc" "$(( $(date +%s) - t0 ))" >> "$STEPS"
  [ "$rc" = 0 ] || echo "== $name: exit $rc$([ "$rc" = 124 ] && echo ' (timed out)')"
  return "$rc"
}

# ---- setup ----------------------------------------------------------------------------
RT="$WORK/rt"
setup() {
  rm -rf "$RT" && mkdir -p "$RT" && cp -r "$CARRY/app" "$RT/" || return 1
  unxz() { if command -v xz >/dev/null; then xz -dc "$1"; else python3 -c 'import lzma,sys; sys.stdout.buffer.write(lzma.open(sys.argv[1]).read())' "$1"; fi; }
  unxz "$CARRY/node.xz" > "$RT/node" && chmod +x "$RT/node" || return 1
  unxz "$CARRY/app/node_modules/webgpu/dist/linux-x64/dawn.node.xz" > "$RT/app/node_modules/webgpu/dist/linux-x64/dawn.node" || return 1
  rm -f "$RT/app/node_modules/webgpu/dist/linux-x64/dawn.node.xz"
  # the Vulkan loader and glvnd where this machine lacks them (vulkan/LIBS.tsv: package, library, carried file)
  local have pkg lib file unpacked=0
  have=$(ldconfig -p 2>/dev/null | awk 'NR > 1 { print $1 }')
  if [ -f "$CARRY/vulkan/LIBS.tsv" ]; then
    while IFS=$'\t' read -r pkg lib file; do
      grep -qxF "$lib" <<< "$have" && continue
      case "$file" in
        *.deb) echo "setup: no $lib here; unpacking the carried $file into / (device README recipe)"; dpkg -x "$CARRY/vulkan/$file" / || return 1; unpacked=1 ;;
        *) echo "setup: no $lib here; using the carried copy through LD_LIBRARY_PATH"; mkdir -p "$RT/lib" && cp "$CARRY/vulkan/$file" "$RT/lib/" || return 1 ;;
      esac
    done < "$CARRY/vulkan/LIBS.tsv"
    [ "$unpacked" = 0 ] || ldconfig
  fi
  if ! grep -qxF libvulkan.so.1 <<< "$have" && ! grep -qs $'\tlibvulkan.so.1\t' "$CARRY/vulkan/LIBS.tsv"; then
    echo "setup: no Vulkan loader here and none carried: Dawn will find no adapter (pack online to carry libvulkan1)"
  fi
  "$RT/node" --version
}
export CARRY RT WORK OUTDIR ROOT IMAGE PROMPT
export -f setup
step setup "$CAP_SETUP" setup || die "setup failed (see above)"
export LD_LIBRARY_PATH="$RT/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
export PHASELENS_ROOT="$ROOT" XDG_RUNTIME_DIR="$WORK/xdg"
mkdir -p "$XDG_RUNTIME_DIR" && chmod 700 "$XDG_RUNTIME_DIR"
ICD=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
if [ -z "${VK_DRIVER_FILES:-}" ] && [ -f "$ICD" ] && ! ls /usr/share/vulkan/icd.d/nvidia* /etc/vulkan/icd.d/nvidia* >/dev/null 2>&1; then
  export VK_DRIVER_FILES=$ICD  # the driver's ICD sits outside the loader's search path
  echo "setup: VK_DRIVER_FILES=$ICD"
fi
export PLN="$RT/node" PLJ="$RT/app/phaselens.mjs" BENCHJ="$RT/app/device-bench.mjs"
"$PLN" "$PLJ" --help > /dev/null || die "the bundle does not start: $RT/app/phaselens.mjs --help failed"
if [ "$MODE" = setup ]; then echo "setup-only: node $("$RT/node" --version), bundle starts"; exit 0; fi

# ---- checks ---------------------------------------------------------------------------
checks() {
  command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.sm,clocks.mem --format=csv,noheader
  python3 bench/gpu/hf_bench.py check > "$WORK/versions.json"; local rc=$?
  cat "$WORK/versions.json" 2>/dev/null; return $rc
}
export -f checks
step checks "$CAP_CHECKS" checks
export HF_OK=$?   # 0: transformers imports; 3: it does not (hf_bench.py said why)

# GPU memory of the whole device, sampled while a step runs (the steps never overlap)
mem_start() { MEMLOG="$WORK/mem.$1.log"; : > "$MEMLOG"; command -v nvidia-smi >/dev/null || return 0
  nvidia-smi --query-gpu=memory.used --format=csv,noheader,nounits -lms 200 > "$MEMLOG" 2>/dev/null & MEMPID=$!; }
MEMPID=
mem_stop() { if [ -n "$MEMPID" ]; then kill "$MEMPID" 2>/dev/null; wait "$MEMPID" 2>/dev/null; fi; MEMPID=; }

# ---- the 7B checkpoint, written in the background while the tiny parity runs ----------
if [ "$SKIP_7B" = 0 ] && [ -z "$MODEL" ]; then
  echo "7b write: $CK ($CK_NOTE)"
  rm -rf "$CK" "$WORK/make-random.rc"
  ( t0=$(date +%s); timeout "$CAP_7B" "$PLN" "$PLJ" make-random --shape llava-7b --out "$CK" > "$WORK/make-random.log" 2>&1
    echo "$? $(( $(date +%s) - t0 ))" > "$WORK/make-random.rc" ) &
  MR_PID=$!
fi

# ---- parity on the tiny checkpoints (HF on the CPU) -----------------------------------
parity() {
  local fam=$1 d="$WORK/tiny-$1" prompt
  rm -rf "$d"
  "$PLN" "$PLJ" make-tiny --arch "$fam" --out "$d" || return 1
  if [ "$fam" = llava ]; then prompt=(--prompt "What is in the image?" --chat); else prompt=(--prompt "What is in the image?"); fi
  "$PLN" "$PLJ" dump --model "$d" --image "$IMAGE" "${prompt[@]}" --out "$WORK/dump-$fam.safetensors" || return 1
  [ "$HF_OK" = 0 ] || { echo "parity $fam: HF transformers is missing here (see checks); not compared"; return 3; }
  OMP_NUM_THREADS=4 python3 bench/gpu/hf_bench.py parity --model "$d" --dump "$WORK/dump-$fam.safetensors" --device cpu --out "$OUTDIR/parity-$fam.json"
}
export -f parity
step parity-llava $(( CAP_PARITY / 2 )) parity llava
step parity-instructblip $(( CAP_PARITY / 2 )) parity instructblip

# ---- which adapter Dawn gave phaselens (the dumps above printed it) -------------------
ADAPTER=$(grep -o 'phaselens: GPU .*' "$LOG" | head -1)
echo "adapter: ${ADAPTER:-none found (see the parity steps)}"
grep -o 'phaselens: .*self-check.*' "$LOG" | sort -u
# the loader's own account of the drivers it found and refused, through a command that asks Dawn for an adapter
loader_diagnostics() {
  echo "-- Vulkan loader diagnostics (VK_LOADER_DEBUG=error,driver; VK_DRIVER_FILES=${VK_DRIVER_FILES:-unset}):"
  ls -l /usr/share/vulkan/icd.d /etc/vulkan/icd.d "$ICD" 2>&1 | head -20
  ldconfig -p | grep -E 'libvulkan|libGLX|libGLdispatch|libEGL' | head -12
  local tiny="$WORK/tiny-llava"; [ -f "$tiny/config.json" ] || "$PLN" "$PLJ" make-tiny --arch llava --out "$tiny" > /dev/null
  VK_LOADER_DEBUG=error,driver timeout 60 "$PLN" "$PLJ" dump --model "$tiny" --image "$IMAGE" --prompt x --chat --out "$WORK/loader-probe.safetensors" 2>&1 | awk '!seen[$0]++' | head -80  # the loader repeats itself per instance
  echo "-- end of the loader diagnostics"
}
PL_OK=1
if [ -z "$ADAPTER" ]; then
  PL_OK=0
  echo "run.sh: Dawn found no adapter; the phaselens 7B steps are skipped."
  loader_diagnostics
elif command -v nvidia-smi >/dev/null && grep -q '(cpu:' <<< "$ADAPTER"; then   # a software adapter on a GPU machine
  PL_OK=0
  echo "run.sh: phaselens did not get the NVIDIA GPU from Dawn (${ADAPTER:-no adapter}); the phaselens 7B steps are skipped."
  echo "        Check the Vulkan loader (ldconfig -p | grep libvulkan) and VK_DRIVER_FILES (${VK_DRIVER_FILES:-unset}; the ICD is usually $ICD)."
  loader_diagnostics
fi

# ---- the 7B runs ----------------------------------------------------------------------
if [ "$SKIP_7B" = 0 ]; then
  waitmr() { while [ ! -f "$WORK/make-random.rc" ]; do sleep 1; done; cat "$WORK/make-random.log"; read -r rc s < "$WORK/make-random.rc"; echo "make-random: exit $rc in ${s}s"; return "$rc"; }
  export -f waitmr
  if [ -n "$MODEL" ] || step make-random-wait "$CAP_7B" waitmr; then
    mem_start baseline; sleep 1; mem_stop
    mem_start phaselens
    [ "$PL_OK" = 1 ] && step phaselens "$CAP_PL" "$PLN" "$BENCHJ" --model "$CK" --image "$IMAGE" --prompt "$PROMPT" --reps "$REPS" --new-tokens "$NEW_TOKENS" \
      --out "$OUTDIR/phaselens.json" --inputs-out "$WORK/inputs" --metrics-out "$WORK/metrics-phaselens.json"
    mem_stop
    [ "$PL_OK" = 1 ] || "$PLN" "$BENCHJ" --model "$CK" --image "$IMAGE" --prompt "$PROMPT" --mode inputs --inputs-out "$WORK/inputs"
    if [ "$HF_OK" = 0 ] && [ -f "$WORK/inputs.json" ]; then
      mem_start hf
      step hf "$CAP_HF" python3 bench/gpu/hf_bench.py perf --model "$CK" --inputs "$WORK/inputs" \
        --device "$HF_DEVICE" --dtype "$([ "$HF_DEVICE" = cpu ] && echo float32 || echo float16)" --reps "$REPS" --new-tokens "$NEW_TOKENS" \
        --out "$OUTDIR/hf.json" --metrics-out "$WORK/metrics-hf.json"
      mem_stop
    else
      echo "== hf: not run ($([ "$HF_OK" = 0 ] && echo 'phaselens wrote no inputs' || echo 'transformers missing'))"
    fi
    # after HF's baseline: when time runs short, the f16 run is what gets cut
    mem_start phaselens-f16
    rm -f "$WORK/phaselens-f16.json"
    [ "$PL_OK" = 1 ] && step phaselens-f16 "$CAP_PL16" "$PLN" "$BENCHJ" --model "$CK" --image "$IMAGE" --prompt "$PROMPT" --reps "$REPS" --new-tokens "$NEW_TOKENS" \
      --precision f16 --out "$WORK/phaselens-f16.json"
    mem_stop
    if [ "$PROFILE" = 1 ] && [ "$PL_OK" = 1 ]; then
      step profile "$CAP_PROF" "$PLN" "$BENCHJ" --model "$CK" --image "$IMAGE" --prompt "$PROMPT" --mode profile --new-tokens 8 \
        --out "$WORK/phaselens-profile.json" --profile-out "$OUTDIR/profile.txt" --trace "$WORK/trace.json" \
        && gzip -c "$WORK/trace.json" > "$OUTDIR/trace.json.gz"
    fi
  fi
fi

# ---- summary --------------------------------------------------------------------------
step summary "$CAP_SUMMARY" python3 bench/gpu/summary.py --work "$WORK" --out "$OUTDIR" --checkpoint "${MODEL:-random fp16 LLaVA-1.5-7B (make-random)}" --budget "$BUDGET" --elapsed "$(( $(date +%s) - START ))"
# the checkpoint in /dev/shm holds 14 GB of RAM until removed
case "$CK" in /dev/shm/*) [ -n "$MODEL" ] || rm -rf "$CK" ;; esac
