#!/usr/bin/env bash
# Installs the Debian packages phaselens needs on a fresh bookworm machine, as root.
# Idempotent: each group is skipped when already present.
#  - lavapipe (Mesa >= 25 from bookworm-backports; bookworm's Mesa 22 is refused by Dawn)
#  - chromium (browser test), python3-venv (.ci/hf-venv.sh's venv: torch + transformers for
#    the reference tests), python3-pil / python3-numpy (test/io/image.test.ts against
#    Debian's Pillow 9: it decodes out-of-range palette indices as the decoder does, Pillow 12 not),
#    slurm-wlm and munge (the cluster test starts its own single-node Slurm),
#    libopenblas-dev (bench baseline; also for test: test/bench/quick.test.ts runs the bench)
# Usage: system-deps.sh [gpu] [test] [bench]   (no argument = everything)
set -euo pipefail
want="${*:-gpu test bench}"
need=()
has() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed"; }
mesa_ok() { has mesa-vulkan-drivers && dpkg-query -W -f='${Version}' mesa-vulkan-drivers | grep -qE '^(2[5-9]|[3-9][0-9])\.'; }
backports=0
if [[ $want == *gpu* ]] && ! mesa_ok; then backports=1; fi
if [[ $want == *test* ]]; then
  for p in chromium python3-venv python3-numpy python3-pil slurm-wlm munge libopenblas-dev; do has "$p" || need+=("$p"); done
fi
if [[ $want == *bench* ]]; then
  for p in libopenblas-dev; do has "$p" || need+=("$p"); done
fi
if [[ $backports == 0 && ${#need[@]} == 0 ]]; then exit 0; fi
if [[ $(id -u) != 0 ]]; then
  echo "phaselens: missing system packages (${need[*]} ${backports:+mesa-vulkan-drivers/bookworm-backports}); run this script as root: bash .ci/system-deps.sh" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
if [[ $backports == 1 ]] && ! grep -rqs bookworm-backports /etc/apt/sources.list /etc/apt/sources.list.d/; then
  echo "deb http://deb.debian.org/debian bookworm-backports main" > /etc/apt/sources.list.d/bookworm-backports.list
fi
echo "phaselens: installing system packages: ${need[*]} $([[ $backports == 1 ]] && echo mesa-vulkan-drivers/bookworm-backports)" >&2
apt-get update -qq >&2
if [[ $backports == 1 ]]; then
  apt-get install -y -qq -t bookworm-backports mesa-vulkan-drivers libvulkan1 >&2
fi
if [[ ${#need[@]} -gt 0 ]]; then
  apt-get install -y -qq --no-install-recommends "${need[@]}" >&2
fi
