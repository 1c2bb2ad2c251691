#!/usr/bin/env bash
# Prints one sha256 over the sources a bundle in bench/gpu/carry is built from (the
# TypeScript of src/, weights-tools/ and bench/gpu/, and the WGSL of shaders/), so that
# bench/gpu/run.sh can tell a carry packed from an older tree. The same command runs in
# pack.ts (here) and in run.sh (on the lent machine, which has no .git), so it reads
# files, not git. Usage: bash bench/gpu/source-hash.sh [ROOT]
set -euo pipefail
cd "${1:-.}"
find src weights-tools bench/gpu shaders -type f \( -name '*.ts' -o -name '*.mjs' -o -name '*.wgsl' \) \
  -not -path 'bench/gpu/carry*' -print0 | LC_ALL=C sort -z | xargs -0 sha256sum | sha256sum | cut -c1-16
