"""Writes test/fixtures/rope/torch-rope-dim128.json: HF LlamaRotaryEmbedding's inv_freq, freqs
and cos/sin in float32, computed by torch exactly as modeling_llama.py does, as raw f32 bits.

Run with a Python that has torch (the fixture was written with torch 1.13 CPU; the venv of
.ci/hf-venv.sh has torch 2.x):
    $(bash .ci/hf-venv.sh) test/reference/rope_torch.py
"""
import json
import os
import struct

import torch

DIM, BASE = 128, 10000
POSITIONS = [0, 1, 7, 100, 575, 1000, 2047, 4095]


def bits(t):
    return [struct.unpack('<I', struct.pack('<f', float(v)))[0] for v in t.flatten().tolist()]


inv_freq = 1.0 / (BASE ** (torch.arange(0, DIM, 2).float() / DIM))
position_ids = torch.tensor([POSITIONS])
inv_freq_expanded = inv_freq[None, :, None].float().expand(position_ids.shape[0], -1, 1)
position_ids_expanded = position_ids[:, None, :].float()
freqs = (inv_freq_expanded.float() @ position_ids_expanded.float()).transpose(1, 2)[0]
out = {
    '_provenance': f'test/reference/rope_torch.py with torch {torch.__version__}: HF LlamaRotaryEmbedding in float32, values as f32 bit patterns',
    'dim': DIM,
    'base': BASE,
    'positions': POSITIONS,
    'inv_freq': bits(inv_freq),
    'freqs': bits(freqs),
    'cos': bits(freqs.cos()),
    'sin': bits(freqs.sin()),
}
path = os.path.join(os.path.dirname(__file__), '..', 'fixtures', 'rope', 'torch-rope-dim128.json')
with open(path, 'w') as f:
    json.dump(out, f, separators=(',', ':'))
    f.write('\n')
print('wrote', os.path.normpath(path))
