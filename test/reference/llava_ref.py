#!/usr/bin/python3
"""Independent PyTorch reference for LLaVA-1.5 inference (float32, no transformers).

Written from the semantics of Hugging Face transformers' modeling_clip.py
(CLIPVisionEmbeddings, CLIPAttention, CLIPEncoderLayer, CLIPVisionTransformer),
modeling_llama.py (LlamaRMSNorm, LlamaRotaryEmbedding, rotate_half, repeat_kv,
LlamaAttention, LlamaMLP, LlamaDecoderLayer, LlamaModel) and modeling_llava.py
(LlavaMultiModalProjector, get_image_features, masked_scatter of the image features),
and of the config classes' defaults (configuration_clip/llama/llava.py). It shares no
code with phaselens' TypeScript engine; it needs only torch (1.13 CPU is enough) and
numpy, and reads/writes safetensors itself.

Everything runs in float32: f16 / bf16 weights are upcast on load. Matmuls are torch's
(OpenBLAS / MKL on CPU; on CUDA TF32 is switched off).

Usage
-----
  /usr/bin/python3 test/reference/llava_ref.py --model DIR --pixel-values FILE.f32 \
      --input-ids 1,319,32000,... --out OUT.safetensors [options]

  --model DIR            HF checkpoint folder: config.json and model.safetensors, or shards
                         listed in model.safetensors.index.json. Key names: classic llava
                         (vision_tower.vision_model.*, multi_modal_projector.linear_{1,2}.*,
                         language_model.model.*, language_model.lm_head.weight); the newer
                         layout (model.vision_tower.*, model.language_model.*, lm_head.*)
                         is mapped onto it.
  --pixel-values FILE    raw little-endian float32 pixel_values [C, H, W] (already
                         preprocessed). Shape: --pixel-shape C,H,W, else FILE.json
                         ({"shape": [C, H, W]}) if it exists, else [3, S, S] with S the
                         config's vision image_size.
  --input-ids 1,2,3      prompt token ids, comma separated. Contains image_token_index
                         either once (expanded here to one token per image feature, as
                         the HF processor does) or already once per image feature;
                         which one is detected from the count.
  --out FILE             output safetensors (see below).
  --max-new-tokens N     greedy decoding of N tokens after the prompt (default 0).
  --stop-at-eos          stop greedy decoding after an eos token (eos ids from
                         generation_config.json, else text_config.eos_token_id, else 2;
                         --eos-token-id overrides).
  --no-kv-cache          decode by recomputing the full forward for every new token
                         (default: a KV cache, like HF generate).
  --with-attentions      also write attentions.{l} and attn_input_normed.{l}.
  --time-only            write nothing: run the prefill --repeats times (default 3) and a
                         KV-cached greedy decode of --max-new-tokens (default 8 in this
                         mode), print one JSON line {"prefill_s": median seconds,
                         "decode_tok_s": tokens per second, ...}.
  --device cpu|cuda      where to run (default cpu).  --threads N: torch CPU threads.

Output (safetensors, F32 unless noted; seq = prompt length after expansion)
  input_ids              I32 [seq]            after image-token expansion
  pixel_values           [C, H, W]
  vision_hidden_states.k [1+patches, d_v]     k = 0..Lv, HF output_hidden_states: 0 is the
                                              encoder input (embeddings after pre_layrnorm),
                                              k the output of encoder layer k (no
                                              post_layernorm anywhere)
  image_features         [n_img, d_lm]        projector output (n_img = patches, or
                                              1+patches for strategy "full")
  hidden_states.l        [seq, d_lm]          l = 0..L, HF convention: 0 = input embeddings
                                              with the image features spliced in, l = output
                                              of decoder layer l, EXCEPT the last (l = L),
                                              which has the final RMSNorm applied
  residual_final         [seq, d_lm]          output of decoder layer L before the final norm
  logits                 [seq, vocab]
  greedy_tokens          I32 [n]              n <= --max-new-tokens
  attentions.l           [heads, seq, seq]    softmax maps (only --with-attentions)
  attn_input_normed.l    [seq, d_lm]          input_layernorm output of layer l (same)
__metadata__: format "phaselens-llava-ref", version, image_token_index, image_start,
n_image_tokens, expanded ("1" if the script expanded the image token), eos_token_ids,
prefill_s.
"""
import argparse
import json
import math
import os
import struct
import sys
import time

import numpy as np
import torch

FORMAT = "phaselens-llava-ref"
VERSION = "1"

# --------------------------------------------------------------------------------------
# safetensors (https://github.com/huggingface/safetensors): u64 LE header length N,
# N bytes of JSON {name: {dtype, shape, data_offsets: [begin, end]}}, then the data.

NP_DTYPES = {"F32": np.float32, "F16": np.float16, "I32": np.int32, "I64": np.int64, "F64": np.float64}


def read_safetensors_header(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n).decode("utf-8"))
    header.pop("__metadata__", None)
    return header, 8 + n


def read_tensor_f32(path, info, base):
    """One tensor as a float32 numpy array (memory-mapped read, upcast)."""
    begin, end = info["data_offsets"]
    shape = info["shape"]
    dtype = info["dtype"]
    count = int(np.prod(shape)) if shape else 1
    if dtype == "BF16":
        raw = np.fromfile(path, dtype="<u2", count=count, offset=base + begin)
        out = (raw.astype(np.uint32) << 16).view(np.float32)
    elif dtype in NP_DTYPES:
        raw = np.fromfile(path, dtype=np.dtype(NP_DTYPES[dtype]).newbyteorder("<"), count=count, offset=base + begin)
        out = raw.astype(np.float32)
    else:
        raise SystemExit(f"{path}: tensor dtype {dtype} not supported by llava_ref.py")
    assert out.size * np.dtype(NP_DTYPES.get(dtype, np.uint16)).itemsize == end - begin, (path, info)
    return out.reshape(shape)


def write_safetensors(path, tensors, metadata):
    """tensors: list of (name, numpy array float32 / int32), written in that order."""
    header = {"__metadata__": {k: str(v) for k, v in metadata.items()}}
    offset = 0
    blobs = []
    for name, arr in tensors:
        arr = np.ascontiguousarray(arr)
        if arr.dtype == np.float32:
            dt = "F32"
        elif arr.dtype == np.int32:
            dt = "I32"
        else:
            raise ValueError(f"{name}: unexpected dtype {arr.dtype}")
        data = arr.astype(arr.dtype.newbyteorder("<"), copy=False).tobytes()
        header[name] = {"dtype": dt, "shape": list(arr.shape), "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    h = json.dumps(header, separators=(",", ":")).encode("utf-8")
    h += b" " * ((8 - len(h) % 8) % 8)  # the spec pads the header to 8 bytes with spaces
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)
    os.replace(tmp, path)


# --------------------------------------------------------------------------------------
# Config, with the defaults of the HF config classes for keys config.json leaves out.

CLIP_VISION_DEFAULTS = dict(  # CLIPVisionConfig.__init__
    hidden_size=768, intermediate_size=3072, num_hidden_layers=12, num_attention_heads=12,
    num_channels=3, image_size=224, patch_size=32, hidden_act="quick_gelu", layer_norm_eps=1e-5,
)
LLAVA_VISION_DEFAULTS = dict(  # LlavaConfig builds this when vision_config is None
    hidden_size=1024, intermediate_size=4096, num_hidden_layers=24, num_attention_heads=16,
    num_channels=3, image_size=336, patch_size=14, hidden_act="quick_gelu", layer_norm_eps=1e-5,
)
LLAMA_DEFAULTS = dict(  # LlamaConfig.__init__
    vocab_size=32000, hidden_size=4096, intermediate_size=11008, num_hidden_layers=32,
    num_attention_heads=32, num_key_value_heads=None, hidden_act="silu", rms_norm_eps=1e-6,
    rope_theta=10000.0, rope_scaling=None, attention_bias=False, mlp_bias=False, head_dim=None,
    tie_word_embeddings=False, bos_token_id=1, eos_token_id=2,
)


class Cfg:
    def __init__(self, d):
        self.__dict__.update(d)


def llama_config(tc):
    """LlamaConfig from a text_config dict, with the class defaults and the derived fields."""
    tc = tc or {}
    if tc.get("model_type", "llama") != "llama":
        raise SystemExit(f"text_config.model_type {tc['model_type']!r} is not llama")
    text = dict(LLAMA_DEFAULTS)
    text.update({k: v for k, v in tc.items() if k in text})
    if text["num_key_value_heads"] is None:
        text["num_key_value_heads"] = text["num_attention_heads"]
    if text["head_dim"] is None:
        text["head_dim"] = text["hidden_size"] // text["num_attention_heads"]
    return text


def eos_token_ids(model_dir, text):
    """generation_config.json's eos_token_id, else the text config's, as a list."""
    eos = None
    gpath = os.path.join(model_dir, "generation_config.json")
    if os.path.exists(gpath):
        with open(gpath) as f:
            eos = json.load(f).get("eos_token_id")
    if eos is None:
        eos = text["eos_token_id"]
    return [] if eos is None else (list(eos) if isinstance(eos, list) else [eos])


def tokenizer_bos_id(model_dir, default):
    """The BOS id the checkpoint's tokenizer prepends: tokenizer_config.json's bos_token
    (a string or {"content": ...}) looked up in its added_tokens_decoder, tokenizer.json's
    added_tokens / vocab, or added_tokens.json; `default` (text_config.bos_token_id) when
    there is no tokenizer. Vicuna InstructBLIP names </s> (2) here, while its text_config
    says otherwise, so the tokenizer is the authority the processor follows."""

    def read(name):
        path = os.path.join(model_dir, name)
        if not os.path.exists(path):
            return None
        with open(path) as f:
            return json.load(f)

    tc = read("tokenizer_config.json") or {}
    bos = tc.get("bos_token")
    if isinstance(bos, dict):
        bos = bos.get("content")
    if not bos:
        return default
    for i, t in (tc.get("added_tokens_decoder") or {}).items():
        if t.get("content") == bos:
            return int(i)
    tj = read("tokenizer.json") or {}
    for t in tj.get("added_tokens") or []:
        if t.get("content") == bos:
            return int(t["id"])
    vocab = (tj.get("model") or {}).get("vocab")
    if isinstance(vocab, dict) and bos in vocab:
        return int(vocab[bos])
    added = read("added_tokens.json") or {}
    if bos in added:
        return int(added[bos])
    raise SystemExit(f"{model_dir}: tokenizer_config.json bos_token {bos!r} is not in the tokenizer's vocabulary")


def load_config(model_dir):
    with open(os.path.join(model_dir, "config.json")) as f:
        c = json.load(f)
    if c.get("model_type") != "llava":
        raise SystemExit(f"{model_dir}/config.json: model_type {c.get('model_type')!r}, llava_ref.py handles 'llava'")
    vc = c.get("vision_config")
    vision = dict(LLAVA_VISION_DEFAULTS) if vc is None else dict(CLIP_VISION_DEFAULTS)
    vision.update({k: v for k, v in (vc or {}).items() if k in vision})
    if (vc or {}).get("model_type", "clip_vision_model") != "clip_vision_model":
        raise SystemExit(f"vision_config.model_type {vc['model_type']!r} is not clip_vision_model")
    text = llama_config(c.get("text_config"))
    top = dict(
        image_token_index=c.get("image_token_index", c.get("image_token_id", 32000)),
        projector_hidden_act=c.get("projector_hidden_act", "gelu"),
        vision_feature_layer=c.get("vision_feature_layer", -2),
        vision_feature_select_strategy=c.get("vision_feature_select_strategy", "default"),
        multimodal_projector_bias=c.get("multimodal_projector_bias", True),
    )
    if top["vision_feature_select_strategy"] not in ("default", "full"):
        raise SystemExit(f"vision_feature_select_strategy {top['vision_feature_select_strategy']!r}")
    top["eos_token_ids"] = eos_token_ids(model_dir, text)
    return Cfg(vision), Cfg(text), Cfg(top)


# --------------------------------------------------------------------------------------
# Weights


def classic_name(key):
    """Newer transformers layout -> classic llava names (the reverse of HF's
    _checkpoint_conversion_mapping)."""
    for new, old in (
        ("model.language_model.", "language_model.model."),
        ("model.vision_tower.", "vision_tower."),
        ("model.multi_modal_projector.", "multi_modal_projector."),
        ("lm_head.", "language_model.lm_head."),
    ):
        if key.startswith(new):
            return old + key[len(new):]
    return key


def checkpoint_files(model_dir):
    """The safetensors files of a checkpoint folder: the shards of the index, or model.safetensors."""
    index = os.path.join(model_dir, "model.safetensors.index.json")
    if os.path.exists(index):
        with open(index) as f:
            files = sorted(set(json.load(f)["weight_map"].values()))
    elif os.path.exists(os.path.join(model_dir, "model.safetensors")):
        files = ["model.safetensors"]
    else:
        raise SystemExit(f"{model_dir}: neither model.safetensors nor model.safetensors.index.json")
    return files


def load_tensors(model_dir, device, rename=lambda key: key, keep=lambda name: True):
    """Every tensor of the checkpoint as float32 on device, keyed by rename(stored key),
    except those keep() rejects."""
    w = {}
    for fname in checkpoint_files(model_dir):
        path = os.path.join(model_dir, fname)
        header, base = read_safetensors_header(path)
        for key, info in header.items():
            name = rename(key)
            if keep(name):
                w[name] = torch.from_numpy(read_tensor_f32(path, info, base)).to(device)
    return w


def load_weights(model_dir, device):
    # llava takes hidden states, never the pooled output: post_layernorm is not loaded
    return load_tensors(model_dir, device, classic_name, lambda name: not name.startswith("vision_tower.vision_model.post_layernorm"))


def get(w, name):
    if name not in w:
        raise SystemExit(f"checkpoint has no tensor {name!r}")
    return w[name]


# --------------------------------------------------------------------------------------
# Math


def act_fn(name):
    # ACT2FN: "gelu" is the exact erf GELU; "quick_gelu" is x * sigmoid(1.702 x).
    if name == "gelu":
        return lambda x: torch.nn.functional.gelu(x)
    if name in ("gelu_new", "gelu_pytorch_tanh", "gelu_fast"):
        return lambda x: torch.nn.functional.gelu(x, approximate="tanh")
    if name == "quick_gelu":
        return lambda x: x * torch.sigmoid(1.702 * x)
    if name in ("silu", "swish"):
        return torch.nn.functional.silu
    if name == "relu":
        return torch.relu
    raise SystemExit(f"activation {name!r} not supported by llava_ref.py")


def linear(x, w, prefix, bias=True):
    y = x @ get(w, prefix + ".weight").t()
    if bias:
        y = y + get(w, prefix + ".bias")
    return y


def layer_norm(x, w, prefix, eps):
    return torch.nn.functional.layer_norm(x, (x.shape[-1],), get(w, prefix + ".weight"), get(w, prefix + ".bias"), eps)


def rms_norm(x, weight, eps):
    variance = x.pow(2).mean(-1, keepdim=True)
    return weight * (x * torch.rsqrt(variance + eps))


# ---- CLIP vision tower (modeling_clip.py) ----


def clip_vision(pixel_values, w, vc):
    """pixel_values [C, H, W] -> list of Lv+1 hidden states [1+patches, d_v]."""
    p = "vision_tower.vision_model."
    C, H, W = pixel_values.shape
    if H != vc.image_size or W != vc.image_size:
        raise SystemExit(f"pixel_values are {H}x{W}, the vision tower wants {vc.image_size}x{vc.image_size}")
    if C != vc.num_channels:
        raise SystemExit(f"pixel_values have {C} channels, the vision tower wants {vc.num_channels}")
    conv = get(w, p + "embeddings.patch_embedding.weight")  # [d_v, C, P, P], no bias
    patches = torch.nn.functional.conv2d(pixel_values[None], conv, stride=vc.patch_size)  # [1, d_v, g, g]
    patches = patches.flatten(2)[0].t()  # [patches, d_v], row-major over the grid
    cls = get(w, p + "embeddings.class_embedding")[None]  # [1, d_v]
    x = torch.cat([cls, patches], 0)
    pos = get(w, p + "embeddings.position_embedding.weight")
    if pos.shape[0] != x.shape[0]:
        raise SystemExit(f"position_embedding has {pos.shape[0]} rows for {x.shape[0]} positions")
    x = x + pos  # position_ids = arange(num_positions)
    x = layer_norm(x, w, p + "pre_layrnorm", vc.layer_norm_eps)
    states = [x]
    nh = vc.num_attention_heads
    hd = vc.hidden_size // nh
    act = act_fn(vc.hidden_act)
    n = x.shape[0]
    for i in range(vc.num_hidden_layers):
        lp = f"{p}encoder.layers.{i}."
        h = layer_norm(x, w, lp + "layer_norm1", vc.layer_norm_eps)
        q = linear(h, w, lp + "self_attn.q_proj").view(n, nh, hd).transpose(0, 1)
        k = linear(h, w, lp + "self_attn.k_proj").view(n, nh, hd).transpose(0, 1)
        v = linear(h, w, lp + "self_attn.v_proj").view(n, nh, hd).transpose(0, 1)
        scores = (q @ k.transpose(1, 2)) * hd**-0.5  # no mask in the vision tower
        probs = torch.softmax(scores, -1)
        attn = (probs @ v).transpose(0, 1).reshape(n, nh * hd)
        x = x + linear(attn, w, lp + "self_attn.out_proj")
        h = layer_norm(x, w, lp + "layer_norm2", vc.layer_norm_eps)
        x = x + linear(act(linear(h, w, lp + "mlp.fc1")), w, lp + "mlp.fc2")
        states.append(x)
    return states


def image_features(vision_states, w, top):
    layers = top.vision_feature_layer
    layers = [layers] if isinstance(layers, int) else list(layers)
    picked = [vision_states[l] for l in layers]  # negative indices count from the end, as in a tuple
    if top.vision_feature_select_strategy == "default":
        picked = [s[1:] for s in picked]  # drop CLS
    feats = torch.cat(picked, -1)
    act = act_fn(top.projector_hidden_act)
    bias = top.multimodal_projector_bias
    h = linear(feats, w, "multi_modal_projector.linear_1", bias)
    return linear(act(h), w, "multi_modal_projector.linear_2", bias)


# ---- LLaMA (modeling_llama.py) ----


def rope_inv_freq(tc, device):
    d = tc.head_dim
    inv = 1.0 / (tc.rope_theta ** (torch.arange(0, d, 2, dtype=torch.int64).float().to(device) / d))
    rs = tc.rope_scaling
    if rs:
        kind = rs.get("rope_type", rs.get("type"))
        if kind == "linear":
            inv = inv / rs["factor"]
        elif kind != "default":
            raise SystemExit(f"rope_scaling {rs!r} not supported by llava_ref.py")
    return inv


def rotate_half(x):
    half = x.shape[-1] // 2
    return torch.cat([-x[..., half:], x[..., :half]], -1)


def llama_forward(embeds, w, tc, start=0, cache=None, record=False, with_attn=False, hooks=None):
    """embeds [n, d] at positions start..start+n-1. cache: list of (k, v) per layer
    ([kv_heads, past, hd]) or None; it is extended in place when given.
    Returns dict with 'final' ([n, d] after the final norm), and, when record, 'states'
    (HF hidden_states tuple), 'residual', 'attn', 'normed'.

    hooks (for interventions_ref.py; None changes nothing): an object whose optional
    methods are called in every layer i, each returning the (possibly new) tensor:
      resid_pre(i, x, start)          x [n, d] = the residual stream entering layer i
                                      (HF hidden_states[i]); recorded states keep the
                                      un-hooked value
      scores(i, scores, qpos, kpos)   [heads, n, total] scaled, causally masked (-inf)
                                      scores, before the softmax
      probs(i, probs, qpos, kpos)     [heads, n, total] softmax output, before it weights V
    qpos [n, 1] and kpos [1, total] are absolute positions (long tensors)."""
    p = "language_model.model."
    n, _ = embeds.shape
    nh, nkv, hd = tc.num_attention_heads, tc.num_key_value_heads, tc.head_dim
    if nh % nkv:
        raise SystemExit(f"num_attention_heads {nh} is not a multiple of num_key_value_heads {nkv}")
    device = embeds.device
    pos = torch.arange(start, start + n, device=device).float()
    freqs = pos[:, None] * rope_inv_freq(tc, device)[None, :]  # [n, hd/2]
    emb = torch.cat([freqs, freqs], -1)
    cos, sin = emb.cos(), emb.sin()  # [n, hd]
    act = act_fn(tc.hidden_act)
    x = embeds
    out = {"states": [x] if record else None, "attn": [], "normed": []}
    hook = (lambda name: getattr(hooks, name, None)) if hooks is not None else (lambda name: None)
    resid_hook, scores_hook, probs_hook = hook("resid_pre"), hook("scores"), hook("probs")
    for i in range(tc.num_hidden_layers):
        lp = f"{p}layers.{i}."
        if resid_hook is not None:
            x = resid_hook(i, x, start)
        h = rms_norm(x, get(w, lp + "input_layernorm.weight"), tc.rms_norm_eps)
        if with_attn:
            out["normed"].append(h)
        ab = tc.attention_bias
        q = linear(h, w, lp + "self_attn.q_proj", ab).view(n, nh, hd).transpose(0, 1)
        k = linear(h, w, lp + "self_attn.k_proj", ab).view(n, nkv, hd).transpose(0, 1)
        v = linear(h, w, lp + "self_attn.v_proj", ab).view(n, nkv, hd).transpose(0, 1)
        q = q * cos + rotate_half(q) * sin
        k = k * cos + rotate_half(k) * sin
        if cache is not None:
            if len(cache) > i:
                k = torch.cat([cache[i][0], k], 1)
                v = torch.cat([cache[i][1], v], 1)
                cache[i] = (k, v)
            else:
                cache.append((k, v))
        total = k.shape[1]
        k = k.repeat_interleave(nh // nkv, 0)  # repeat_kv: head h uses kv head h // (nh/nkv)
        v = v.repeat_interleave(nh // nkv, 0)
        scores = (q @ k.transpose(1, 2)) * hd**-0.5  # [nh, n, total]
        qpos = torch.arange(start, start + n, device=device)[:, None]
        kpos = torch.arange(total, device=device)[None, :]
        scores = scores.masked_fill(kpos > qpos, float("-inf"))  # causal
        if scores_hook is not None:
            scores = scores_hook(i, scores, qpos, kpos)
        probs = torch.softmax(scores, -1)
        if probs_hook is not None:
            probs = probs_hook(i, probs, qpos, kpos)
        if with_attn:
            out["attn"].append(probs)
        attn = (probs @ v).transpose(0, 1).reshape(n, nh * hd)
        x = x + linear(attn, w, lp + "self_attn.o_proj", ab)
        h = rms_norm(x, get(w, lp + "post_attention_layernorm.weight"), tc.rms_norm_eps)
        mb = tc.mlp_bias
        gate = linear(h, w, lp + "mlp.gate_proj", mb)
        up = linear(h, w, lp + "mlp.up_proj", mb)
        x = x + linear(act(gate) * up, w, lp + "mlp.down_proj", mb)
        if record and i < tc.num_hidden_layers - 1:
            out["states"].append(x)
    out["residual"] = x
    out["final"] = rms_norm(x, get(w, p + "norm.weight"), tc.rms_norm_eps)
    if record:
        out["states"].append(out["final"])  # HF: the last entry is after the final norm
    return out


def lm_head_weight(w, tc):
    if tc.tie_word_embeddings or "language_model.lm_head.weight" not in w:
        return get(w, "language_model.model.embed_tokens.weight")
    return w["language_model.lm_head.weight"]


def embed(ids, w):
    table = get(w, "language_model.model.embed_tokens.weight")
    return table[torch.as_tensor(ids, dtype=torch.long, device=table.device)]


# --------------------------------------------------------------------------------------
# Driver


def expand_ids(ids, top, n_img):
    it = top.image_token_index
    count = sum(1 for t in ids if t == it)
    if count == n_img:
        return list(ids), False
    if count == 1:
        at = ids.index(it)
        return ids[:at] + [it] * n_img + ids[at + 1:], True
    raise SystemExit(f"input_ids hold image token {it} {count} times: want once (to expand) or {n_img} times (expanded)")


def build_embeds(pixel_values, ids, w, vc, top):
    """The language model's inputs_embeds: vision tower, projector, image-token expansion
    and splice. Returns dict(vstates, feats, ids (expanded), expanded, embeds [seq, d])."""
    vstates = clip_vision(pixel_values, w, vc)
    feats = image_features(vstates, w, top)
    ids, expanded = expand_ids(ids, top, feats.shape[0])
    x = embed(ids, w)
    mask = torch.as_tensor([t == top.image_token_index for t in ids], device=x.device)
    x = x.clone()
    x[mask] = feats  # masked_scatter: features fill the image positions in order
    return dict(vstates=vstates, feats=feats, ids=ids, expanded=expanded, embeds=x)


def prefill(pixel_values, ids, w, vc, tc, top, record, with_attn):
    r = build_embeds(pixel_values, ids, w, vc, top)
    cache = []
    out = llama_forward(r["embeds"], w, tc, 0, cache, record, with_attn)
    logits = out["final"] @ lm_head_weight(w, tc).t()
    return dict(r, lm=out, logits=logits, cache=cache)


def greedy(r, w, tc, top, max_new, stop_at_eos, eos_ids, use_cache):
    tokens = []
    nxt = int(torch.argmax(r["logits"][-1]))
    cache = r["cache"]
    seq_embeds = r["embeds"]
    for step in range(max_new):
        tokens.append(nxt)
        if stop_at_eos and nxt in eos_ids:
            break
        if step == max_new - 1:
            break
        e = embed([nxt], w)
        if use_cache:
            out = llama_forward(e, w, tc, seq_embeds.shape[0], cache)
            seq_embeds = torch.cat([seq_embeds, e], 0)
        else:
            seq_embeds = torch.cat([seq_embeds, e], 0)
            out = llama_forward(seq_embeds, w, tc, 0, None)
        logits = out["final"][-1] @ lm_head_weight(w, tc).t()
        nxt = int(torch.argmax(logits))
    return tokens


def read_pixel_values(path, shape_arg, default_shape, device):
    """Raw little-endian float32 [C, H, W]; shape from shape_arg "C,H,W", else PATH.json
    ({"shape": [...]}) if it exists, else default_shape."""
    if shape_arg:
        shape = [int(s) for s in shape_arg.split(",")]
    elif os.path.exists(path + ".json"):
        with open(path + ".json") as f:
            shape = json.load(f)["shape"]
    else:
        shape = default_shape
    pix = np.fromfile(path, dtype="<f4")
    if pix.size != int(np.prod(shape)) or len(shape) != 3:
        raise SystemExit(f"{path}: {pix.size} floats do not make pixel_values of shape {shape}")
    return torch.from_numpy(pix.astype(np.float32).reshape(shape)).to(device)


def parse_ids(text, flag):
    """Comma-separated token ids ("" -> [])."""
    try:
        return [int(s) for s in text.replace(" ", "").split(",") if s]
    except ValueError:
        raise SystemExit(f"{flag} {text!r}: want comma-separated integers") from None


def sync(device):
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def add_input_args(ap):
    """The inputs every reference script takes: the checkpoint, pixel values and LM ids."""
    ap.add_argument("--model", required=True)
    ap.add_argument("--pixel-values", required=True)
    ap.add_argument("--pixel-shape", default=None, help="C,H,W")
    ap.add_argument("--input-ids", required=True)


def add_run_args(ap):
    """What a dump / greedy / timing run of a model reference takes (see the module docstring)."""
    ap.add_argument("--out", default=None)
    ap.add_argument("--max-new-tokens", type=int, default=None)
    ap.add_argument("--stop-at-eos", action="store_true")
    ap.add_argument("--eos-token-id", type=int, action="append", default=None)
    ap.add_argument("--no-kv-cache", action="store_true")
    ap.add_argument("--with-attentions", action="store_true")
    ap.add_argument("--time-only", action="store_true")
    ap.add_argument("--repeats", type=int, default=3)


def add_device_args(ap):
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--threads", type=int, default=None)


def setup_torch(a):
    """Threads, no TF32 on CUDA (the reference stays float32), no autograd."""
    if a.threads:
        torch.set_num_threads(a.threads)
    if a.device.startswith("cuda"):
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False
    torch.set_grad_enabled(False)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    add_input_args(ap)
    add_run_args(ap)
    add_device_args(ap)
    a = ap.parse_args()
    if not a.time_only and not a.out:
        ap.error("--out is required (unless --time-only)")
    setup_torch(a)

    vc, tc, top = load_config(a.model)
    if a.eos_token_id:
        top.eos_token_ids = a.eos_token_id
    pixel_values = read_pixel_values(a.pixel_values, a.pixel_shape, [vc.num_channels, vc.image_size, vc.image_size], a.device)
    ids = parse_ids(a.input_ids, "--input-ids")
    if not ids:
        raise SystemExit("--input-ids is empty")

    t0 = time.perf_counter()
    w = load_weights(a.model, a.device)
    load_s = time.perf_counter() - t0

    if a.time_only:
        times = []
        for _ in range(max(1, a.repeats)):
            sync(a.device)
            t0 = time.perf_counter()
            r = prefill(pixel_values, ids, w, vc, tc, top, False, False)
            sync(a.device)
            times.append(time.perf_counter() - t0)
        n_new = 8 if a.max_new_tokens is None else a.max_new_tokens
        decode_tok_s = None
        if n_new > 1:
            sync(a.device)
            t0 = time.perf_counter()
            toks = greedy(r, w, tc, top, n_new, False, top.eos_token_ids, not a.no_kv_cache)
            sync(a.device)
            # n_new tokens need n_new - 1 decode forwards (the first comes from the prefill)
            decode_tok_s = (len(toks) - 1) / (time.perf_counter() - t0)
        print(json.dumps({
            "prefill_s": sorted(times)[len(times) // 2], "prefill_all_s": times, "decode_tok_s": decode_tok_s,
            "decode_tokens": n_new, "seq": len(r["ids"]), "load_s": load_s, "device": a.device,
            "threads": torch.get_num_threads(), "kv_cache": not a.no_kv_cache,
        }))
        return

    sync(a.device)
    t0 = time.perf_counter()
    r = prefill(pixel_values, ids, w, vc, tc, top, True, a.with_attentions)
    sync(a.device)
    prefill_s = time.perf_counter() - t0
    n_new = a.max_new_tokens or 0
    t0 = time.perf_counter()
    toks = greedy(r, w, tc, top, n_new, a.stop_at_eos, top.eos_token_ids, not a.no_kv_cache)
    sync(a.device)
    decode_s = time.perf_counter() - t0

    cpu = lambda t: t.detach().float().cpu().numpy()
    out = [("input_ids", np.asarray(r["ids"], dtype=np.int32)), ("pixel_values", cpu(pixel_values))]
    out += [(f"vision_hidden_states.{k}", cpu(s)) for k, s in enumerate(r["vstates"])]
    out.append(("image_features", cpu(r["feats"])))
    out += [(f"hidden_states.{l}", cpu(s)) for l, s in enumerate(r["lm"]["states"])]
    out.append(("residual_final", cpu(r["lm"]["residual"])))
    out.append(("logits", cpu(r["logits"])))
    out.append(("greedy_tokens", np.asarray(toks, dtype=np.int32)))
    if a.with_attentions:
        out += [(f"attentions.{l}", cpu(s)) for l, s in enumerate(r["lm"]["attn"])]
        out += [(f"attn_input_normed.{l}", cpu(s)) for l, s in enumerate(r["lm"]["normed"])]
    positions = [i for i, t in enumerate(r["ids"]) if t == top.image_token_index]
    meta = {
        "format": FORMAT, "version": VERSION, "image_token_index": top.image_token_index,
        "image_start": positions[0], "n_image_tokens": len(positions), "expanded": int(r["expanded"]),
        "eos_token_ids": json.dumps(top.eos_token_ids), "prefill_s": f"{prefill_s:.6f}",
    }
    write_safetensors(a.out, out, meta)
    print(json.dumps({"prefill_s": prefill_s, "decode_s": decode_s, "load_s": load_s, "seq": len(r["ids"]),
                      "greedy_tokens": toks, "out": a.out}))


if __name__ == "__main__":
    main()
