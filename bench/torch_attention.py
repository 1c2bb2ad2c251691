"""PyTorch baseline for the attention benchmark (bench/kernels.ts).

out[i, h, :] = softmax(scale * q[i, h] . k[:, h // (Hq / Hkv)]^T + causal mask) v[:, ...]
computed as plain torch ops (torch 1.13 has no scaled_dot_product_attention): q, k, v are
held head-major ([H, S, D], contiguous) so the two matmuls are batched GEMMs; grouped-query
heads are expanded (repeat_interleave) before timing. Causal: query i sees keys
j <= Skv - Sq + i (the queries are the last Sq positions), as src/ops/attention.ts does.

  python3 bench/torch_attention.py bench Sq Skv Hq Hkv D CAUSAL WARMUP REPS THREADS
      random inputs, THREADS intra-op threads (torch picks 1 on this machine; the caller
      tries 1 and every core and keeps the faster); prints {"median_ms": .., "ms": [..], "threads": ..}
  python3 bench/torch_attention.py run Sq Skv Hq Hkv D CAUSAL Q_FILE K_FILE V_FILE OUT_FILE
      raw little-endian f32 q [Sq, Hq, D], k and v [Skv, Hkv, D] (token-major, as the GPU
      op takes them); writes out [Sq, Hq * D]
"""
import json
import sys
import time

import numpy as np
import torch


def prepare(q, k, v, hq, hkv):
    # [S, H, D] -> [H, S, D]; expand kv heads for grouped-query attention
    q = q.permute(1, 0, 2).contiguous()
    k = k.permute(1, 0, 2).repeat_interleave(hq // hkv, dim=0).contiguous()
    v = v.permute(1, 0, 2).repeat_interleave(hq // hkv, dim=0).contiguous()
    return q, k, v


def causal_mask(sq, skv):
    i = torch.arange(sq).unsqueeze(1) + (skv - sq)
    j = torch.arange(skv).unsqueeze(0)
    return torch.zeros(sq, skv).masked_fill(j > i, float("-inf"))


def attend(q, k, v, scale, mask):
    s = torch.matmul(q, k.transpose(1, 2)) * scale
    if mask is not None:
        s = s + mask
    return torch.matmul(torch.softmax(s, dim=-1), v)  # [H, Sq, D]


def main():
    mode = sys.argv[1]
    sq, skv, hq, hkv, d = (int(a) for a in sys.argv[2:7])
    causal = sys.argv[7] in ("1", "true")
    scale = 1.0 / d**0.5
    mask = causal_mask(sq, skv) if causal else None
    torch.set_grad_enabled(False)
    if mode == "bench":
        warmup, reps, threads = int(sys.argv[8]), int(sys.argv[9]), int(sys.argv[10])
        torch.set_num_threads(threads)
        g = torch.Generator().manual_seed(0)
        q, k, v = prepare(torch.rand(sq, hq, d, generator=g), torch.rand(skv, hkv, d, generator=g),
                          torch.rand(skv, hkv, d, generator=g), hq, hkv)
        for _ in range(warmup):
            attend(q, k, v, scale, mask)
        ms = []
        for _ in range(reps):
            t = time.perf_counter()
            attend(q, k, v, scale, mask)
            ms.append((time.perf_counter() - t) * 1e3)
        print(json.dumps({"median_ms": float(np.median(ms)), "ms": ms, "threads": torch.get_num_threads()}))
    elif mode == "run":
        qf, kf, vf, of = sys.argv[8:12]
        load = lambda f, s, h: torch.from_numpy(np.fromfile(f, dtype="<f4").reshape(s, h, d))
        q, k, v = prepare(load(qf, sq, hq), load(kf, skv, hkv), load(vf, skv, hkv), hq, hkv)
        out = attend(q, k, v, scale, mask).permute(1, 0, 2).reshape(sq, hq * d)
        out.numpy().astype("<f4").tofile(of)
    else:
        sys.exit(f"unknown mode {mode}")


if __name__ == "__main__":
    main()
