"""numpy's float16 and torch's bfloat16 conversions, the reference for src/gpu/half.ts.

stdin: little-endian u32 N, then N float32 values (little-endian).
stdout, little-endian, concatenated:
  N u16   the values as numpy float16 (IEEE round to nearest, ties to even; overflow to inf)
  N u16   the values as torch bfloat16 (round to nearest even)
  65536 f32  every f16 bit pattern 0..65535 as numpy float32
  65536 f32  every bf16 bit pattern 0..65535 as torch float32
"""
import sys
import warnings

import numpy as np
import torch

data = sys.stdin.buffer.read()
n = int(np.frombuffer(data[:4], dtype="<u4")[0])
x = np.frombuffer(data[4 : 4 + 4 * n], dtype="<f4").copy()
every = np.arange(65536, dtype=np.uint32).astype("<u2")
with warnings.catch_warnings():
    warnings.simplefilter("ignore")  # overflow to inf is what is being checked
    f16 = x.astype(np.float16).view("<u2")
bf16 = torch.from_numpy(x).to(torch.bfloat16).view(torch.int16).numpy().view("<u2")
f16_to_f32 = every.view(np.float16).astype("<f4")
bf16_to_f32 = torch.from_numpy(every.view(np.int16).copy()).view(torch.bfloat16).to(torch.float32).numpy().astype("<f4")
out = sys.stdout.buffer
for a in (f16, bf16, f16_to_f32, bf16_to_f32):
    out.write(np.ascontiguousarray(a).tobytes())
