#!/usr/bin/env bash
# Sets up (once, then cached) the Python venv with torch 2.x + transformers 5.x that the
# parity tests and the bench run HF transformers in. Prints the venv's python on stdout.
# Location: $PHASELENS_HF_VENV, default ~/.cache/phaselens/hf-venv. Idempotent: a venv
# that already imports torch 2 and transformers 5 is reused as is.
set -euo pipefail
venv="${PHASELENS_HF_VENV:-$HOME/.cache/phaselens/hf-venv}"
py="$venv/bin/python"
ok() { "$py" -c 'import torch, transformers, safetensors, PIL, numpy, sys; sys.exit(not (torch.__version__.startswith("2.") and transformers.__version__.startswith("5.")))' 2>/dev/null; }
if [[ -x $py ]] && ok; then echo "$py"; exit 0; fi
echo "phaselens: setting up the transformers venv in $venv (once)" >&2
rm -rf "$venv"
python3 -m venv "$venv" >&2
# --retries 0: machines without internet answer from local wheel indexes; don't wait on PyPI.
"$venv/bin/pip" install -q --no-warn-script-location --retries 0 --timeout 10 'torch>=2,<3' 'transformers>=5,<6' safetensors pillow numpy >&2
ok || { echo "phaselens: the venv in $venv does not import torch 2 + transformers 5" >&2; exit 1; }
echo "$py"
