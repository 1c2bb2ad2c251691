#!/usr/bin/python3
"""Independent reference for phaselens' analysis metrics (float64, naive formulas).

Reads what `llava_ref.py --with-attentions` or `instructblip_ref.py --with-attentions`
writes (full hidden states and softmax attention maps of the LLaMA language model, HF
style) plus a few checkpoint tensors, and computes the per-image
metrics of `phaselens analyze` the slow, obvious way, sharing no code or tricks with the
GPU probes (no mean-unit-vector identity, no fused attention pass, no split lm_head):

  contextualization   for every hidden-state index l = 0..L (HF output_hidden_states:
                      0 = input embeddings with the image features spliced in, L = after
                      the final RMSNorm) and for `last_layer_prenorm` (= residual_final,
                      layer L before the final norm):
                        inter       = mean over all pairs (i in image, j in text) of
                                      cos(h_i, h_j), from the explicit [m, n] cosine matrix
                        intra_image = mean over ordered pairs i != j in the image set
                        intra_text  = the same in the text set
                      text set = every position outside [image_start, image_end), minus
                      the BOS position with --drop-bos. InstructBLIP's image span is the
                      Q query outputs at 0..Q-1 and its BOS follows them at Q. A value is null when its set(s) are too
                      small (inter: an empty set; intra: fewer than 2 tokens).
  norm_attention      Kobayashi et al. 2020 ("Attention is not only a weight"), for the
                      query row q at every decoder layer l = 0..L-1:
                        x       = attn_input_normed.l            [seq, d]
                        v       = x W_V^T (+ b_V when attention_bias)  [seq, Hkv*Dh]
                        f^h(x_j) = v_j[kvh(h)] W_O[:, h*Dh:(h+1)*Dh]^T  [d]
                                  (W_O = o_proj.weight [d, H*Dh]; GQA: kvh(h) = h // (H/Hkv);
                                  the o_proj bias is not part of f by definition)
                        head[l][h][j] = || alpha^h_{q,j} f^h(x_j) ||,  alpha = attentions.l[h, q, j]
                        layer[l][j]   = || sum_h alpha^h_{q,j} f^h(x_j) ||
                      Keys j > q have alpha = 0 (causal), so their entries are 0.
  logit_lens          for l = 0..L: the image-span rows of hidden_states.l; for l < L the
                      final RMSNorm (model.norm.weight, rms_norm_eps) is applied; index L
                      is already normed (HF convention) and is NOT normed again; then
                      lm_head (or the tied embeddings), softmax over the vocabulary, top-k.
                      Ranking is by logit (same order as probability), ties -> smaller id.

Everything is float64 (the activations are float32 as written by the references and are
upcast exactly; so are f16 / bf16 checkpoint weights). The model family is config.json's
model_type (llava or instructblip); the activations' format must match it.

Usage
-----
  /usr/bin/python3 test/reference/metrics_ref.py --activations ACTS.safetensors --model DIR \
      [--image-start S --image-end E] [--drop-bos] [--bos-position P] [--query Q] [--topk K]
      [--out FILE.json] [--debug-sums]

  --activations FILE   llava_ref.py / instructblip_ref.py output written with
                       --with-attentions (the Q-Former input ids are part of that run).
  --model DIR          the checkpoint the reference ran (config.json + safetensors); only
                       the LM's v_proj / o_proj, model.norm and lm_head are read.
  --image-start S, --image-end E
                       the image span [S, E) (E exclusive). Default: the file's metadata,
                       image_start and image_start + n_image_tokens (checked against
                       input_ids and the metadata's image_token_index).
  --drop-bos           leave the BOS position out of the text set.
  --bos-position P     where BOS is (never assumed to be 0). Default: the first position
                       outside the image span (0 for LLaVA's "USER: <image>..." prompts, Q
                       for InstructBLIP's [image]*Q + [BOS] + prompt); --drop-bos then
                       requires the tokenizer's BOS id there (tokenizer_config.json
                       bos_token: </s> = 2 for Vicuna InstructBLIP; text_config.bos_token_id
                       without a tokenizer).
  --query Q            query row of norm_attention (default: the last token; negative
                       values count from the end).
  --topk K             LogitLens k (default 5).
  --out FILE           write the JSON there (default: stdout).
  --debug-sums         also write "debug": {"attn_out_from_f": [L][d]} = sum over keys j of
                       sum_h alpha^h_{q,j} f^h(x_j), i.e. the attention block's output row q
                       without the o_proj bias (a self-check hook for the tests).

Output JSON (keys as in the per-image metrics schema of `phaselens analyze`):
  {"reference": {"format": "phaselens-metrics-ref", "version": "1"},
   "options": {"drop_bos": b, "query": q, "k": k},
   "tokens": {"seq": n, "image": [S, E], "text": [indices]},
   "contextualization": {"inter": [L+1], "intra_image": [L+1], "intra_text": [L+1],
                         "last_layer_prenorm": {"inter": x, "intra_image": x, "intra_text": x}},
   "norm_attention": {"query": q, "layer": [L][seq], "head": [L][H][seq]},
   "logit_lens": {"k": k, "top_ids": [L+1][n_img][k], "top_probs": [L+1][n_img][k]}}
"""
import argparse
import json
import os
import struct
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import llava_ref  # noqa: E402  (safetensors reader, config defaults, checkpoint key mapping)
import instructblip_ref  # noqa: E402  (its config; the LM tensors have llava's classic names)

FORMAT = "phaselens-metrics-ref"
VERSION = "1"
# activations format written by each model family's reference
ACTIVATIONS_FORMATS = {"llava": "phaselens-llava-ref", "instructblip": "phaselens-instructblip-ref"}


# --------------------------------------------------------------------------------------
# Inputs


def model_type(model_dir):
    with open(os.path.join(model_dir, "config.json")) as f:
        mt = json.load(f).get("model_type")
    if mt not in ACTIVATIONS_FORMATS:
        raise SystemExit(f"{model_dir}/config.json: model_type {mt!r}, metrics_ref.py handles {sorted(ACTIVATIONS_FORMATS)}")
    return mt


def text_config(model_dir, mt):
    """The LLaMA config (llava_ref.Cfg) of either family."""
    if mt == "llava":
        return llava_ref.load_config(model_dir)[1]
    return instructblip_ref.load_config(model_dir)[2]


def bos_token_id(model_dir, tc):
    return llava_ref.tokenizer_bos_id(model_dir, tc.bos_token_id)


class Activations:
    """Lazy reader of a reference's safetensors output; tensors come back as float64."""

    def __init__(self, path, expected_format):
        with open(path, "rb") as f:
            n = struct.unpack("<Q", f.read(8))[0]
            header = json.loads(f.read(n).decode("utf-8"))
        self.path = path
        self.base = 8 + n
        self.metadata = header.pop("__metadata__", {}) or {}
        self.header = header
        if self.metadata.get("format") != expected_format:
            raise SystemExit(f"{path}: metadata format {self.metadata.get('format')!r}, expected {expected_format!r} for this checkpoint (write it with the matching *_ref.py)")

    def has(self, name):
        return name in self.header

    def f64(self, name):
        if name not in self.header:
            hint = " (run the reference with --with-attentions)" if name.startswith(("attentions.", "attn_input_normed.")) else ""
            raise SystemExit(f"{self.path}: no tensor {name!r}{hint}")
        return llava_ref.read_tensor_f32(self.path, self.header[name], self.base).astype(np.float64)

    def ints(self, name):
        return self.f64(name).astype(np.int64)


def load_selected(model_dir, names):
    """The checkpoint tensors with these classic-llava names, as float64 (missing: absent)."""
    files = llava_ref.checkpoint_files(model_dir)
    want = set(names)
    out = {}
    for fname in files:
        path = os.path.join(model_dir, fname)
        header, base = llava_ref.read_safetensors_header(path)
        for key, info in header.items():
            name = llava_ref.classic_name(key)
            if name in want:
                out[name] = llava_ref.read_tensor_f32(path, info, base).astype(np.float64)
    return out


# --------------------------------------------------------------------------------------
# Metrics (float64 numpy, written for clarity)


def cosine_matrix(a, b):
    """[m, d], [n, d] -> [m, n] with cos(a_i, b_j) = a_i . b_j / (|a_i| |b_j|)."""
    na = np.sqrt((a * a).sum(1))
    nb = np.sqrt((b * b).sum(1))
    if (na == 0).any() or (nb == 0).any():
        raise SystemExit("a hidden state is the zero vector: its cosine is undefined")
    return (a @ b.T) / (na[:, None] * nb[None, :])


def inter_modal(h, image, text):
    if len(image) == 0 or len(text) == 0:
        return None
    return float(cosine_matrix(h[image], h[text]).mean())


def intra_modal(h, idx):
    m = len(idx)
    if m < 2:
        return None
    c = cosine_matrix(h[idx], h[idx])
    off = ~np.eye(m, dtype=bool)  # pairs i != j
    return float(c[off].mean())


def contextualization(h, image, text):
    return {"inter": inter_modal(h, image, text), "intra_image": intra_modal(h, image), "intra_text": intra_modal(h, text)}


def norm_attention_layer(x, alpha, w_v, b_v, w_o, n_heads, n_kv, head_dim):
    """x [seq, d], alpha [H, seq_keys] (the query's row of each head's map), w_v [Hkv*Dh, d],
    b_v [Hkv*Dh] or None, w_o [d, H*Dh]. Returns (layer [seq], head [H, seq], sum [d])."""
    seq, d = x.shape
    v = x @ w_v.T
    if b_v is not None:
        v = v + b_v
    group = n_heads // n_kv
    total = np.zeros((seq, d))  # sum_h alpha^h_j f^h(x_j), per key j
    head = np.zeros((n_heads, seq))
    for h in range(n_heads):
        kvh = h // group
        v_h = v[:, kvh * head_dim:(kvh + 1) * head_dim]  # [seq, Dh]
        f_h = v_h @ w_o[:, h * head_dim:(h + 1) * head_dim].T  # [seq, d] = f^h(x_j) per row j
        weighted = alpha[h][:, None] * f_h
        head[h] = np.sqrt((weighted * weighted).sum(1))
        total += weighted
    layer = np.sqrt((total * total).sum(1))
    return layer, head, total.sum(0)


def rms_norm(x, weight, eps):
    return weight * (x / np.sqrt((x * x).mean(-1, keepdims=True) + eps))


def logit_lens_rows(h, lm_head, k):
    """h [n, d] (already normed) -> top-k ids [n, k] and softmax probabilities [n, k]."""
    logits = h @ lm_head.T  # [n, vocab]
    ids = np.zeros((h.shape[0], k), dtype=np.int64)
    probs = np.zeros((h.shape[0], k))
    for r in range(h.shape[0]):
        z = logits[r]
        e = np.exp(z - z.max())
        p = e / e.sum()
        order = np.argsort(-z, kind="stable")[:k]  # stable: equal logits keep id order
        ids[r] = order
        probs[r] = p[order]
    return ids, probs


def bos_position(given, ids, s, e, bos_id, drop_bos):
    """The BOS position: given, else the first position outside the image span [s, e)."""
    seq = len(ids)
    if given is not None:
        bos = given + seq if given < 0 else given
        if not 0 <= bos < seq or s <= bos < e:
            raise SystemExit(f"--bos-position {given} is not a text position of [0, {seq}) outside the image span [{s}, {e})")
        return bos
    bos = next((i for i in range(seq) if not (s <= i < e)), None)
    if drop_bos and (bos is None or ids[bos] != bos_id):
        raise SystemExit(f"--drop-bos: the first text position {bos} does not hold the tokenizer's bos_token_id {bos_id}; pass --bos-position")
    return bos


# --------------------------------------------------------------------------------------


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--activations", required=True)
    ap.add_argument("--model", required=True)
    ap.add_argument("--image-start", type=int, default=None)
    ap.add_argument("--image-end", type=int, default=None)
    ap.add_argument("--drop-bos", action="store_true")
    ap.add_argument("--bos-position", type=int, default=None)
    ap.add_argument("--query", type=int, default=None)
    ap.add_argument("--topk", type=int, default=5)
    ap.add_argument("--out", default=None)
    ap.add_argument("--debug-sums", action="store_true")
    a = ap.parse_args()

    mt = model_type(a.model)
    tc = text_config(a.model, mt)
    acts = Activations(a.activations, ACTIVATIONS_FORMATS[mt])
    L = tc.num_hidden_layers
    H, Hkv, Dh = tc.num_attention_heads, tc.num_key_value_heads, tc.head_dim
    if H % Hkv:
        raise SystemExit(f"num_attention_heads {H} is not a multiple of num_key_value_heads {Hkv}")
    ids = acts.ints("input_ids")
    seq = len(ids)

    # image span
    if (a.image_start is None) != (a.image_end is None):
        raise SystemExit("give both --image-start and --image-end, or neither")
    if a.image_start is None:
        s = int(acts.metadata["image_start"])
        e = s + int(acts.metadata["n_image_tokens"])
        positions = [i for i, t in enumerate(ids) if t == int(acts.metadata["image_token_index"])]
        if positions != list(range(s, e)):
            raise SystemExit(f"image tokens are not the contiguous span [{s}, {e}) the metadata names; pass --image-start/--image-end")
    else:
        s, e = a.image_start, a.image_end
    if not (0 <= s <= e <= seq):
        raise SystemExit(f"image span [{s}, {e}) is not inside [0, {seq})")
    image = list(range(s, e))
    bos = bos_position(a.bos_position, ids, s, e, bos_token_id(a.model, tc), a.drop_bos)
    text = [i for i in range(seq) if not (s <= i < e) and not (a.drop_bos and i == bos)]
    q = seq - 1 if a.query is None else a.query
    if q < 0:
        q += seq
    if not 0 <= q < seq:
        raise SystemExit(f"--query {a.query} is outside [0, {seq})")
    k = a.topk
    if k < 1:
        raise SystemExit("--topk must be >= 1")

    # checkpoint tensors
    p = "language_model.model."
    names = [p + "norm.weight", "language_model.lm_head.weight", p + "embed_tokens.weight"]
    for l in range(L):
        names += [f"{p}layers.{l}.self_attn.v_proj.weight", f"{p}layers.{l}.self_attn.v_proj.bias", f"{p}layers.{l}.self_attn.o_proj.weight"]
    w = load_selected(a.model, names)

    def need(name):
        if name not in w:
            raise SystemExit(f"{a.model}: checkpoint has no tensor {name!r}")
        return w[name]

    lm_head = need(p + "embed_tokens.weight") if (tc.tie_word_embeddings or "language_model.lm_head.weight" not in w) else w["language_model.lm_head.weight"]
    k = min(k, lm_head.shape[0])

    # contextualization
    ctx = {"inter": [], "intra_image": [], "intra_text": []}
    for l in range(L + 1):
        c = contextualization(acts.f64(f"hidden_states.{l}"), image, text)
        for key in ctx:
            ctx[key].append(c[key])
    ctx["last_layer_prenorm"] = contextualization(acts.f64("residual_final"), image, text)

    # norm-based attention
    na_layer, na_head, sums = [], [], []
    for l in range(L):
        lp = f"{p}layers.{l}.self_attn."
        x = acts.f64(f"attn_input_normed.{l}")
        maps = acts.f64(f"attentions.{l}")  # [H, seq, seq]
        if maps.shape != (H, seq, seq):
            raise SystemExit(f"attentions.{l} has shape {maps.shape}, expected {(H, seq, seq)}")
        b_v = w.get(lp + "v_proj.bias") if tc.attention_bias else None
        lay, hd, sm = norm_attention_layer(x, maps[:, q, :], need(lp + "v_proj.weight"), b_v, need(lp + "o_proj.weight"), H, Hkv, Dh)
        na_layer.append(lay.tolist())
        na_head.append(hd.tolist())
        sums.append(sm.tolist())

    # LogitLens
    norm_w = need(p + "norm.weight")
    top_ids, top_probs = [], []
    for l in range(L + 1):
        rows = acts.f64(f"hidden_states.{l}")[s:e]
        if l < L:
            rows = rms_norm(rows, norm_w, tc.rms_norm_eps)  # hidden_states.L is normed already
        i, pr = logit_lens_rows(rows, lm_head, k)
        top_ids.append(i.tolist())
        top_probs.append(pr.tolist())

    result = {
        "reference": {"format": FORMAT, "version": VERSION},
        "options": {"drop_bos": bool(a.drop_bos), "query": q, "k": k},
        "tokens": {"seq": seq, "image": [s, e], "text": text},
        "contextualization": ctx,
        "norm_attention": {"query": q, "layer": na_layer, "head": na_head},
        "logit_lens": {"k": k, "top_ids": top_ids, "top_probs": top_probs},
    }
    if a.debug_sums:
        result["debug"] = {"attn_out_from_f": sums}
    text_out = json.dumps(result)
    if a.out:
        tmp = a.out + ".tmp"
        with open(tmp, "w") as f:
            f.write(text_out)
        os.replace(tmp, a.out)
    else:
        sys.stdout.write(text_out + "\n")


if __name__ == "__main__":
    main()
