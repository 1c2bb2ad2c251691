"""The metrics of `phaselens analyze`, in torch, computed from what HF transformers returns
with `output_hidden_states=True, output_attentions=True` (plus the final norm's input,
caught with a forward hook) and the LM's weights — the HF side of `analyze` s/image in
bench/gpu/run.sh. Written the way a researcher with HF would write them (explicit cosine
matrices, per-head value vectors, full-vocabulary softmax), on whatever device the
tensors are on, so the timing includes them; no code is shared with phaselens's probes.

Conventions (DESIGN.md "Exact metric definitions"; the per-image JSON of analyze):
  hidden_states[l], l = 0..L  HF output_hidden_states: 0 = input embeddings (image
                              features spliced in), l = output of layer l, L = after the
                              final RMSNorm; prenorm = layer L's output before that norm.
  contextualization           inter = mean over (i in image, j in text) of cos(h_i, h_j);
                              intra_* = mean over ordered pairs i != j inside one set.
  norm attention (Kobayashi)  x = input_layernorm_l(hidden_states[l]) (the attention
                              block's normed input), v = x W_V^T (+ b_V),
                              f^h(x_j) = v_j[kv(h)] W_O[:, h*Dh:(h+1)*Dh]^T,
                              head[l][h][j] = ||alpha^h_qj f^h(x_j)||, layer[l][j] = ||sum_h ...||
  LogitLens                   image rows of hidden_states[l]; final RMSNorm for l < L
                              (index L is normed already); lm_head; softmax; top-k.

Used by hf_bench.py (under HF, on the GPU or the CPU), bench/hf_baseline.py and
test/hf/hf_parity.py; test/gpu-check/hf-metrics.test.ts runs hf_bench.py's path on the CPU
against `phaselens analyze`. Needs only torch and numpy.
"""
import json
import struct

import numpy as np
import torch

# --------------------------------------------------------------------------------------
# safetensors without the safetensors package

_DTYPES = {"F32": np.float32, "F16": np.float16, "I32": np.int32, "I64": np.int64, "F64": np.float64, "BF16": None}


def read_safetensors(path, names=None):
    """{name: torch.Tensor (float32 for floats)} of the tensors in `names` (all when None)."""
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n).decode("utf-8"))
        header.pop("__metadata__", None)
        out = {}
        for name, info in header.items():
            if names is not None and name not in names:
                continue
            a, b = info["data_offsets"]
            f.seek(8 + n + a)
            raw = f.read(b - a)
            dt = info["dtype"]
            if dt not in _DTYPES:
                raise SystemExit(f"{path}: tensor {name} has dtype {dt}, which hf_metrics.py does not read")
            if dt == "BF16":
                arr = (np.frombuffer(raw, dtype=np.uint16).astype(np.uint32) << 16).view(np.float32)
            else:
                arr = np.frombuffer(raw, dtype=_DTYPES[dt])
            t = torch.from_numpy(arr.copy().reshape(info["shape"]))
            out[name] = t.float() if t.is_floating_point() else t
    return out


# --------------------------------------------------------------------------------------
# the metrics


class LmWeights:
    """What the metrics need from the language model, per decoder layer l."""

    def __init__(self, input_norm, v_w, v_b, o_w, final_norm, eps, lm_head, n_heads, n_kv, head_dim):
        self.input_norm = input_norm  # [L] of [d]
        self.v_w = v_w  # [L] of [Hkv*Dh, d]
        self.v_b = v_b  # [L] of [Hkv*Dh] or None
        self.o_w = o_w  # [L] of [d, H*Dh]
        self.final_norm = final_norm  # [d]
        self.eps = eps
        self.lm_head = lm_head  # [vocab, d]
        self.n_heads, self.n_kv, self.head_dim = n_heads, n_kv, head_dim


def rms_norm(x, w, eps):
    """LlamaRMSNorm: in float32, then the weight."""
    x32 = x.float()
    return w.float() * (x32 * torch.rsqrt(x32.pow(2).mean(-1, keepdim=True) + eps))


def _cos(a, b):
    a = a.float()
    b = b.float()
    return (a / a.norm(dim=-1, keepdim=True)) @ (b / b.norm(dim=-1, keepdim=True)).T


def contextualization(h, image, text):
    """h [seq, d]; image, text: index tensors. -> {inter, intra_image, intra_text} (None if undefined)."""
    m, n = len(image), len(text)
    out = {"inter": None, "intra_image": None, "intra_text": None}
    if m and n:
        out["inter"] = _cos(h[image], h[text]).mean()
    for key, idx in (("intra_image", image), ("intra_text", text)):
        k = len(idx)
        if k >= 2:
            c = _cos(h[idx], h[idx])
            out[key] = (c.sum() - c.diagonal().sum()) / (k * (k - 1))
    return out


def norm_attention(x, alpha, v_w, v_b, o_w, n_heads, n_kv, head_dim):
    """x [seq, d] (normed input), alpha [H, seq] (query row) -> layer [seq], head [H, seq]."""
    x = x.float()
    v = x @ v_w.float().T
    if v_b is not None:
        v = v + v_b.float()
    seq, d = x.shape
    v = v.view(seq, n_kv, head_dim).repeat_interleave(n_heads // n_kv, dim=1)  # [seq, H, Dh]
    wo = o_w.float().view(d, n_heads, head_dim)  # W_O[:, h*Dh:(h+1)*Dh] = wo[:, h, :]
    f = torch.einsum("shk,dhk->hsd", v, wo)  # f^h(x_j) [H, seq, d]
    weighted = alpha.float()[:, :, None] * f
    return weighted.sum(0).norm(dim=-1), weighted.norm(dim=-1)


def logit_lens(rows, lm_head, k, dtype):
    """rows [n, d] (normed) -> top ids [n, k], probabilities [n, k]; logits in `dtype`."""
    logits = (rows.to(dtype) @ lm_head.to(dtype).T).float()
    p = torch.softmax(logits, dim=-1)
    top = torch.topk(logits, k, dim=-1)
    return top.indices, p.gather(-1, top.indices)


def compute_metrics(hidden_states, attentions, prenorm, w, image_span, text, query, k, lens_dtype=torch.float32):
    """hidden_states: L+1 tensors [seq, d]; attentions: L tensors [H, seq, seq] (softmax maps);
    prenorm [seq, d]. Returns the analyze-schema dict with tensors still on their device
    (`to_json` moves them to lists)."""
    L = len(attentions)
    dev = hidden_states[0].device
    image = torch.arange(image_span[0], image_span[1], device=dev)
    text_t = torch.tensor(text, dtype=torch.long, device=dev)
    ctx = {"inter": [], "intra_image": [], "intra_text": []}
    for h in hidden_states:
        c = contextualization(h, image, text_t)
        for key in ctx:
            ctx[key].append(c[key])
    ctx["last_layer_prenorm"] = contextualization(prenorm, image, text_t)
    na_layer, na_head = [], []
    for l in range(L):
        x = rms_norm(hidden_states[l], w.input_norm[l], w.eps)
        lay, hd = norm_attention(x, attentions[l][:, query, :], w.v_w[l], w.v_b[l] if w.v_b else None, w.o_w[l], w.n_heads, w.n_kv, w.head_dim)
        na_layer.append(lay)
        na_head.append(hd)
    ids, probs = [], []
    k = min(k, w.lm_head.shape[0])
    for l, h in enumerate(hidden_states):
        rows = h[image_span[0]:image_span[1]]
        rows = rms_norm(rows, w.final_norm, w.eps) if l < L else rows.float()
        i, p = logit_lens(rows, w.lm_head, k, lens_dtype)
        ids.append(i)
        probs.append(p)
    return {
        "contextualization": ctx,
        "norm_attention": {"query": query, "layer": na_layer, "head": na_head},
        "logit_lens": {"k": k, "top_ids": ids, "top_probs": probs},
    }


def to_json(x):
    """Tensors (any device) and nested lists/dicts of them -> plain JSON values."""
    if isinstance(x, torch.Tensor):
        return x.detach().cpu().tolist()
    if isinstance(x, dict):
        return {k: to_json(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [to_json(v) for v in x]
    return x
