"""Batched, trainable PyTorch forward passes of the two organism layouts, with every
parameter stored under its Hugging Face name (so the trained state dict is the
checkpoint's tensor list as it is).

Semantics follow HF transformers' modules: modeling_clip.py (CLIPVisionTransformer with
pre_layrnorm, quick_gelu), modeling_llava.py (features = hidden_states[-2] without CLS,
LlavaMultiModalProjector), modeling_instructblip.py (EVA tower with fused qkv and
post_layernorm, post-LN BERT Q-Former whose queries cross-attend to the image every
cross_attention_frequency layers, language_projection) and modeling_llama.py (RMSNorm,
rotate-half RoPE, SwiGLU). The inference references in test/reference/ implement the
same semantics unbatched; they share no code with this file, so test/organisms can check
one against the other.

Shapes: B batch, P patches (+1 with CLS), T sequence, d widths.
"""
import math

import torch
import torch.nn.functional as F

STD = 0.02


class Params:
    """name -> trainable tensor, initialised as HF's _init_weights does in spirit (normal
    0.02, norms 1, biases 0)."""

    def __init__(self, seed):
        self.t = {}
        self.g = torch.Generator().manual_seed(seed)

    def add(self, name, *shape, init="normal"):
        if init == "ones":
            v = torch.ones(shape)
        elif init == "zeros":
            v = torch.zeros(shape)
        else:
            v = torch.randn(shape, generator=self.g) * STD
        self.t[name] = v.requires_grad_(True)

    def linear(self, name, n_out, n_in, bias=True):
        self.add(name + ".weight", n_out, n_in)
        if bias:
            self.add(name + ".bias", n_out, init="zeros")

    def norm(self, name, d, bias=True):
        self.add(name + ".weight", d, init="ones")
        if bias:
            self.add(name + ".bias", d, init="zeros")

    def __getitem__(self, name):
        return self.t[name]


def linear(x, w, name, bias=True):
    return F.linear(x, w[name + ".weight"], w[name + ".bias"] if bias else None)


def layer_norm(x, w, name, eps):
    return F.layer_norm(x, (x.shape[-1],), w[name + ".weight"], w[name + ".bias"], eps)


def attend(q, k, v, key_mask=None, causal=False):
    """q [B, h, Tq, hd], k/v [B, h, Tk, hd]; key_mask [B, Tk] (True = keep). The scale goes
    on q and the masks are one added bias: [B, h, T, T] is the largest tensor here."""
    s = (q * q.shape[-1] ** -0.5) @ k.transpose(-1, -2)
    if causal:
        n = s.shape[-1]
        s = s + torch.full((n, n), float("-inf")).triu(1)
    if key_mask is not None:
        s = s + torch.zeros(key_mask.shape).masked_fill(~key_mask, float("-inf"))[:, None, None, :]
    return torch.softmax(s, -1) @ v


def heads(x, n):
    B, T, d = x.shape
    return x.view(B, T, n, d // n).transpose(1, 2)


def merge(x):
    B, h, T, hd = x.shape
    return x.transpose(1, 2).reshape(B, T, h * hd)


def quick_gelu(x):
    return x * torch.sigmoid(1.702 * x)


# ---- vision towers -------------------------------------------------------------------


def patchify(w, prefix, pixels, patch, bias):
    x = F.conv2d(pixels, w[prefix + "embeddings.patch_embedding.weight"], w[prefix + "embeddings.patch_embedding.bias"] if bias else None, stride=patch)
    return x.flatten(2).transpose(1, 2)  # [B, P, d], row-major over the grid


def vit_layer(x, w, lp, nh, eps, act, fused):
    """Pre-LN ViT block (CLIPEncoderLayer / InstructBlipEncoderLayer)."""
    h = layer_norm(x, w, lp + "layer_norm1", eps)
    if fused:
        d = x.shape[-1]
        keep = torch.ones(3 * d)
        keep[d: 2 * d] = 0  # keys have no bias: the stored bias is [q_bias, 0, v_bias]
        qkv = F.linear(h, w[lp + "self_attn.qkv.weight"], w[lp + "self_attn.qkv.bias"] * keep)
        q, k, v = qkv.chunk(3, -1)
        out = "self_attn.projection"
    else:
        q, k, v = (linear(h, w, lp + f"self_attn.{n}_proj") for n in "qkv")
        out = "self_attn.out_proj"
    x = x + linear(merge(attend(heads(q, nh), heads(k, nh), heads(v, nh))), w, lp + out)
    h = layer_norm(x, w, lp + "layer_norm2", eps)
    return x + linear(act(linear(h, w, lp + "mlp.fc1")), w, lp + "mlp.fc2")


def clip_params(p, prefix, vc, n_pos):
    d = vc["hidden_size"]
    p.add(prefix + "embeddings.class_embedding", d)
    p.add(prefix + "embeddings.patch_embedding.weight", d, 3, vc["patch_size"], vc["patch_size"])
    p.add(prefix + "embeddings.position_embedding.weight", n_pos, d)
    p.norm(prefix + "pre_layrnorm", d)
    vit_params(p, prefix, vc, fused=False)
    p.norm(prefix + "post_layernorm", d)  # in the checkpoint, unused by llava


def vit_params(p, prefix, vc, fused):
    d, m = vc["hidden_size"], vc["intermediate_size"]
    for i in range(vc["num_hidden_layers"]):
        lp = f"{prefix}encoder.layers.{i}."
        if fused:
            p.linear(lp + "self_attn.qkv", 3 * d, d)
            p.linear(lp + "self_attn.projection", d, d)
        else:
            for n in "qkv":
                p.linear(lp + f"self_attn.{n}_proj", d, d)
            p.linear(lp + "self_attn.out_proj", d, d)
        p.norm(lp + "layer_norm1", d)
        p.linear(lp + "mlp.fc1", m, d)
        p.linear(lp + "mlp.fc2", d, m)
        p.norm(lp + "layer_norm2", d)


def clip_vision(w, prefix, vc, pixels):
    """pixels [B, 3, S, S] -> hidden states (0 = after pre_layrnorm), each [B, 1+P, d]."""
    x = patchify(w, prefix, pixels, vc["patch_size"], bias=False)
    cls = w[prefix + "embeddings.class_embedding"].expand(x.shape[0], 1, -1)
    x = torch.cat([cls, x], 1) + w[prefix + "embeddings.position_embedding.weight"]
    x = layer_norm(x, w, prefix + "pre_layrnorm", 1e-5)
    states = [x]
    for i in range(vc["num_hidden_layers"]):
        x = vit_layer(x, w, f"{prefix}encoder.layers.{i}.", vc["num_attention_heads"], 1e-5, quick_gelu, fused=False)
        states.append(x)
    return states


def eva_params(p, vc, n_pos):
    d = vc["hidden_size"]
    p.add("vision_model.embeddings.class_embedding", 1, 1, d)
    p.add("vision_model.embeddings.patch_embedding.weight", d, 3, vc["patch_size"], vc["patch_size"])
    p.add("vision_model.embeddings.patch_embedding.bias", d, init="zeros")
    p.add("vision_model.embeddings.position_embedding", 1, n_pos, d)
    vit_params(p, "vision_model.", vc, fused=True)
    p.norm("vision_model.post_layernorm", d)


def eva_vision(w, vc, pixels):
    """pixels [B, 3, S, S] -> post_layernorm(last hidden state) [B, 1+P, d] (CLS kept)."""
    pre = "vision_model."
    x = patchify(w, pre, pixels, vc["patch_size"], bias=True)
    cls = w[pre + "embeddings.class_embedding"].expand(x.shape[0], 1, -1)
    x = torch.cat([cls, x], 1) + w[pre + "embeddings.position_embedding"]
    eps = vc["layer_norm_eps"]
    for i in range(vc["num_hidden_layers"]):
        x = vit_layer(x, w, f"{pre}encoder.layers.{i}.", vc["num_attention_heads"], eps, F.gelu, fused=True)
    return layer_norm(x, w, pre + "post_layernorm", eps)


# ---- Q-Former ------------------------------------------------------------------------


def qformer_params(p, qc, n_query, d_image):
    d, m = qc["hidden_size"], qc["intermediate_size"]
    p.add("query_tokens", 1, n_query, d)
    p.add("qformer.embeddings.word_embeddings.weight", qc["vocab_size"], d)
    p.add("qformer.embeddings.position_embeddings.weight", qc["max_position_embeddings"], d)
    p.norm("qformer.embeddings.layernorm", d)
    for i in range(qc["num_hidden_layers"]):
        lp = f"qformer.encoder.layer.{i}."
        blocks = ["attention"] + (["crossattention"] if i % qc["cross_attention_frequency"] == 0 else [])
        for b in blocks:
            kv = d_image if b == "crossattention" else d
            p.linear(lp + b + ".attention.query", d, d)
            p.linear(lp + b + ".attention.key", d, kv)
            p.linear(lp + b + ".attention.value", d, kv)
            p.linear(lp + b + ".output.dense", d, d)
            p.norm(lp + b + ".output.LayerNorm", d)
        for inter, out in (("intermediate", "output"), ("intermediate_query", "output_query")):
            p.linear(lp + inter + ".dense", m, d)
            p.linear(lp + out + ".dense", d, m)
            p.norm(lp + out + ".LayerNorm", d)


def bert_attention(x, kv, w, prefix, qc, key_mask=None):
    """LayerNorm(dense(MHA(x, kv)) + x)."""
    nh = qc["num_attention_heads"]
    q, k, v = (heads(linear(t, w, prefix + ".attention." + n), nh) for t, n in ((x, "query"), (kv, "key"), (kv, "value")))
    y = linear(merge(attend(q, k, v, key_mask)), w, prefix + ".output.dense")
    return layer_norm(y + x, w, prefix + ".output.LayerNorm", qc["layer_norm_eps"])


def bert_ffn(x, w, lp, inter, out, qc):
    y = linear(F.gelu(linear(x, w, f"{lp}{inter}.dense")), w, f"{lp}{out}.dense")
    return layer_norm(y + x, w, f"{lp}{out}.LayerNorm", qc["layer_norm_eps"])


def qformer(w, qc, image_embeds, ids, text_mask):
    """image_embeds [B, 1+P, d_v]; ids [B, Tq] (padding anywhere text_mask is False)
    -> query outputs [B, Q, d_q]."""
    B, Tq = ids.shape
    queries = w["query_tokens"].expand(B, -1, -1)
    nq = queries.shape[1]
    text = F.embedding(ids, w["qformer.embeddings.word_embeddings.weight"]) + w["qformer.embeddings.position_embeddings.weight"][:Tq]
    x = layer_norm(torch.cat([queries, text], 1), w, "qformer.embeddings.layernorm", qc["layer_norm_eps"])
    mask = torch.cat([torch.ones(B, nq, dtype=torch.bool), text_mask], 1)
    for i in range(qc["num_hidden_layers"]):
        lp = f"qformer.encoder.layer.{i}."
        a = bert_attention(x, x, w, lp + "attention", qc, mask)
        qa = a[:, :nq]
        if i % qc["cross_attention_frequency"] == 0:
            qa = bert_attention(qa, image_embeds, w, lp + "crossattention", qc)
        x = torch.cat([bert_ffn(qa, w, lp, "intermediate_query", "output_query", qc), bert_ffn(a[:, nq:], w, lp, "intermediate", "output", qc)], 1)
    return x[:, :nq]


# ---- LLaMA ---------------------------------------------------------------------------

LM = "language_model.model."


def llama_params(p, tc):
    d, m = tc["hidden_size"], tc["intermediate_size"]
    p.add(LM + "embed_tokens.weight", tc["vocab_size"], d)
    for i in range(tc["num_hidden_layers"]):
        lp = f"{LM}layers.{i}."
        p.norm(lp + "input_layernorm", d, bias=False)
        for n in "qkvo":
            p.linear(lp + f"self_attn.{n}_proj", d, d, bias=False)
        p.norm(lp + "post_attention_layernorm", d, bias=False)
        p.linear(lp + "mlp.gate_proj", m, d, bias=False)
        p.linear(lp + "mlp.up_proj", m, d, bias=False)
        p.linear(lp + "mlp.down_proj", d, m, bias=False)
    p.norm(LM + "norm", d, bias=False)


def rms_norm(x, weight, eps):
    return weight * (x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps))


def rotate_half(x):
    h = x.shape[-1] // 2
    return torch.cat([-x[..., h:], x[..., :h]], -1)


def llama(w, tc, embeds):
    """embeds [B, T, d] at positions 0..T-1 -> final-normed hidden states [B, T, d]."""
    B, T, d = embeds.shape
    nh = tc["num_attention_heads"]
    hd = d // nh
    inv = 1.0 / (tc.get("rope_theta", 10000.0) ** (torch.arange(0, hd, 2).float() / hd))
    freqs = torch.arange(T).float()[:, None] * inv[None]
    emb = torch.cat([freqs, freqs], -1)
    cos, sin = emb.cos(), emb.sin()
    eps = tc["rms_norm_eps"]
    x = embeds
    for i in range(tc["num_hidden_layers"]):
        lp = f"{LM}layers.{i}."
        h = rms_norm(x, w[lp + "input_layernorm.weight"], eps)
        q, k, v = (heads(linear(h, w, lp + f"self_attn.{n}_proj", False), nh) for n in "qkv")
        q = q * cos + rotate_half(q) * sin
        k = k * cos + rotate_half(k) * sin
        x = x + linear(merge(attend(q, k, v, causal=True)), w, lp + "self_attn.o_proj", False)
        h = rms_norm(x, w[lp + "post_attention_layernorm.weight"], eps)
        x = x + linear(F.silu(linear(h, w, lp + "mlp.gate_proj", False)) * linear(h, w, lp + "mlp.up_proj", False), w, lp + "mlp.down_proj", False)
    return rms_norm(x, w[LM + "norm.weight"], eps)


def embed(w, ids):
    return F.embedding(ids, w[LM + "embed_tokens.weight"])


def lm_logits(w, h):
    return h @ w[LM + "embed_tokens.weight"].t()  # tied embeddings


# ---- compositions --------------------------------------------------------------------


class Llava:
    def __init__(self, cfg, seed):
        self.vc, self.tc = cfg["vision_config"], cfg["text_config"]
        self.image_token = cfg["image_token_index"]
        grid = self.vc["image_size"] // self.vc["patch_size"]
        self.n_image = grid * grid
        p = Params(seed)
        clip_params(p, "vision_tower.vision_model.", self.vc, self.n_image + 1)
        p.linear("multi_modal_projector.linear_1", self.tc["hidden_size"], self.vc["hidden_size"])
        p.linear("multi_modal_projector.linear_2", self.tc["hidden_size"], self.tc["hidden_size"])
        llama_params(p, self.tc)
        self.w = p.t

    def vision_features(self, pixels):
        """[B, P, d_v]: hidden_states[-2] without CLS (vision_feature_layer -2, strategy "default")."""
        return clip_vision(self.w, "vision_tower.vision_model.", self.vc, pixels)[-2][:, 1:]

    def image_features(self, pixels):
        h = F.gelu(linear(self.vision_features(pixels), self.w, "multi_modal_projector.linear_1"))
        return linear(h, self.w, "multi_modal_projector.linear_2")

    def hidden(self, pixels, ids):
        """ids [B, T] with n_image image tokens per row -> final hidden states [B, T, d]."""
        x = embed(self.w, ids.clamp(min=0))
        mask = ids == self.image_token
        x = x.masked_scatter(mask[..., None], self.image_features(pixels).to(x.dtype))
        return llama(self.w, self.tc, x)


class InstructBlip:
    def __init__(self, cfg, seed):
        self.vc, self.qc, self.tc = cfg["vision_config"], cfg["qformer_config"], cfg["text_config"]
        self.image_token = cfg["image_token_index"]
        self.n_image = cfg["num_query_tokens"]
        grid = self.vc["image_size"] // self.vc["patch_size"]
        p = Params(seed)
        eva_params(p, self.vc, grid * grid + 1)
        qformer_params(p, self.qc, self.n_image, self.vc["hidden_size"])
        p.linear("language_projection", self.tc["hidden_size"], self.qc["hidden_size"])
        llama_params(p, self.tc)
        self.w = p.t

    def vision_features(self, pixels):
        """[B, P, d_v]: the patch rows of what the Q-Former cross-attends to."""
        return eva_vision(self.w, self.vc, pixels)[:, 1:]

    def hidden(self, pixels, ids, qformer_ids):
        """ids [B, T] = [image]*Q + BOS + prompt (+ answer); qformer_ids [B, Tq], -1 = padding."""
        image = eva_vision(self.w, self.vc, pixels)
        q = qformer(self.w, self.qc, image, qformer_ids.clamp(min=0), qformer_ids >= 0)
        feats = linear(q, self.w, "language_projection")
        x = embed(self.w, ids.clamp(min=0))
        x = x.masked_scatter((ids == self.image_token)[..., None], feats)
        return llama(self.w, self.tc, x)


def build(cfg, seed=0):
    return {"llava": Llava, "instructblip": InstructBlip}[cfg["model_type"]](cfg, seed)


def saved_tensors(m):
    """The state dict as written: qkv biases with their key third zeroed, as HF stores them."""
    out = {}
    for name, t in m.w.items():
        t = t.detach().clone()
        if name.endswith("self_attn.qkv.bias"):
            d = t.shape[0] // 3
            t[d: 2 * d] = 0
        out[name] = t
    return out
