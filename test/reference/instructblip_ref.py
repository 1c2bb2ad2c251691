#!/usr/bin/python3
"""Independent PyTorch reference for InstructBLIP (Vicuna / LLaMA) inference (float32, no transformers).

Written from the semantics of Hugging Face transformers' modeling_instructblip.py
(InstructBlipVisionEmbeddings, InstructBlipAttention, InstructBlipMLP,
InstructBlipEncoderLayer, InstructBlipVisionModel; InstructBlipQFormerEmbeddings,
InstructBlipQFormerMultiHeadAttention, InstructBlipQFormerSelfOutput,
InstructBlipQFormerIntermediate, InstructBlipQFormerOutput, InstructBlipQFormerLayer,
InstructBlipQFormerModel; InstructBlipForConditionalGeneration.get_image_features /
get_placeholder_mask / forward / generate), processing_instructblip.py (the Q image
tokens go in front of the LLaMA tokenizer's output, i.e. before BOS) and
configuration_instructblip.py (defaults; qformer encoder_hidden_size := vision
hidden_size). The language model is LLaMA, taken from llava_ref.py (LlamaModel
semantics, RoPE, GQA, KV-cached greedy decoding), as are the safetensors reader/writer
and the small math helpers. It shares no code with phaselens' TypeScript engine.

Everything runs in float32: f16 / bf16 weights are upcast on load.

Usage
-----
  /usr/bin/python3 test/reference/instructblip_ref.py --model DIR --pixel-values FILE.f32 \
      --input-ids 1,319,... --qformer-input-ids 101,2054,...,102 --out OUT.safetensors [options]

  --model DIR            HF checkpoint folder: config.json (model_type "instructblip",
                         text_config llama) and model.safetensors or index + shards, with the
                         names InstructBlipForConditionalGeneration saves (vision_model.*,
                         query_tokens, qformer.*, language_projection.*, language_model.*).
  --pixel-values FILE    raw little-endian float32 pixel_values [3, H, W], preprocessed.
                         Shape: --pixel-shape C,H,W, else FILE.json, else [3, S, S] with S
                         the vision image_size.
  --input-ids 1,2,3      LLaMA token ids. Either they hold the image token exactly Q times
                         (Q = num_query_tokens; as the processor writes them:
                         [image]*Q + [BOS] + prompt), or not at all, and then Q image tokens
                         are prepended here. BOS is not added here.
  --qformer-input-ids    the instruction in the Q-Former's (BERT) vocabulary, e.g.
                         [CLS] ... [SEP]; comma separated, may be empty.
  --image-token-id N     the placeholder id (default: config image_token_index /
                         image_token_id, else 32000).
  --out FILE             output safetensors (see below).
  --max-new-tokens N     greedy decoding of N tokens after the prompt (default 0).
  --stop-at-eos          stop after an eos token (generation_config.json, else text_config;
                         --eos-token-id overrides).
  --no-kv-cache          decode by recomputing the full forward for every new token.
  --with-attentions      also write attentions.{l} and attn_input_normed.{l} of the LM.
  --time-only            write nothing: as llava_ref.py's --time-only, run the prefill
                         --repeats times (default 3) and a KV-cached greedy decode of
                         --max-new-tokens (default 8 in this mode), print one JSON line
                         {"prefill_s": median seconds, "decode_tok_s": tokens per second, ...}.
  --device cpu|cuda      (default cpu).  --threads N: torch CPU threads.

Output (safetensors, F32 unless noted, batch dim dropped; T = LM prompt length, Tq =
Q-Former text length, Q = num_query_tokens)
  input_ids                  I32 [T]           after the image tokens are placed
  qformer_input_ids          I32 [Tq]
  pixel_values               [3, H, W]
  vision_hidden_states.k     [1+patches, d_v]  k = 0..Lv: 0 = embeddings (there is no
                                               pre-layernorm), k = output of encoder layer
                                               k; none has post_layernorm
  vision_last_hidden_state   [1+patches, d_v]  post_layernorm(layer Lv), CLS kept = the
                                               image_embeds the Q-Former cross-attends to
  qformer_hidden_states.k    [Q+Tq, d_q]       k = 0..Lq: 0 = embeddings LayerNorm output
                                               ([query_tokens; word + position embeddings]),
                                               k = output of Q-Former layer k
  query_output               [Q, d_q]          rows 0..Q-1 of qformer_hidden_states.Lq
  image_features             [Q, d_lm]         language_projection(query_output)
  hidden_states.l            [T, d_lm]         l = 0..L, HF convention: 0 = input embeddings
                                               with image_features spliced in, l = output of
                                               decoder layer l, the last after the final
                                               RMSNorm
  residual_final             [T, d_lm]         decoder layer L output before the final norm
  logits                     [T, vocab]
  greedy_tokens              I32 [n]           n <= --max-new-tokens
  attentions.l, attn_input_normed.l            as llava_ref.py (only --with-attentions)
__metadata__: format "phaselens-instructblip-ref", version, image_token_index,
image_start, n_image_tokens (= Q), expanded ("1" if the script prepended the image
tokens), bos_token_id (the tokenizer's: tokenizer_config.json bos_token, </s> = 2 for
Vicuna InstructBLIP; text_config.bos_token_id only without a tokenizer), bos_position
(first position after the image span if it holds that id, else -1), eos_token_ids,
prefill_s.
"""
import argparse
import json
import os
import sys
import time

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import llava_ref as lr  # noqa: E402  (safetensors I/O, LLaMA decoder, math helpers, greedy)

FORMAT = "phaselens-instructblip-ref"
VERSION = "1"

EVA_VISION_DEFAULTS = dict(  # InstructBlipVisionConfig.__init__
    hidden_size=1408, intermediate_size=6144, num_hidden_layers=39, num_attention_heads=16,
    image_size=224, patch_size=14, hidden_act="gelu", layer_norm_eps=1e-6, qkv_bias=True,
)
QFORMER_DEFAULTS = dict(  # InstructBlipQFormerConfig.__init__
    vocab_size=30522, hidden_size=768, num_hidden_layers=12, num_attention_heads=12,
    intermediate_size=3072, hidden_act="gelu", max_position_embeddings=512, layer_norm_eps=1e-12,
    position_embedding_type="absolute", cross_attention_frequency=2, encoder_hidden_size=1408,
)


def load_config(model_dir):
    """(vision, qformer, text, top) Cfgs of an instructblip config.json."""
    with open(os.path.join(model_dir, "config.json")) as f:
        c = json.load(f)
    if c.get("model_type") != "instructblip":
        raise SystemExit(f"{model_dir}/config.json: model_type {c.get('model_type')!r}, instructblip_ref.py handles 'instructblip'")
    vision = dict(EVA_VISION_DEFAULTS)
    vision.update({k: v for k, v in (c.get("vision_config") or {}).items() if k in vision})
    qformer = dict(QFORMER_DEFAULTS)
    qformer.update({k: v for k, v in (c.get("qformer_config") or {}).items() if k in qformer})
    qformer["encoder_hidden_size"] = vision["hidden_size"]  # InstructBlipConfig overrides it so
    if qformer["position_embedding_type"] != "absolute":
        raise SystemExit(f"qformer position_embedding_type {qformer['position_embedding_type']!r} is not supported")
    text = lr.llama_config(c.get("text_config") or {"model_type": "opt"})  # HF's default text model is OPT
    top = dict(
        num_query_tokens=c.get("num_query_tokens", 32),
        image_token_index=c.get("image_token_index", c.get("image_token_id")),
        eos_token_ids=lr.eos_token_ids(model_dir, text),
        bos_token_id=lr.tokenizer_bos_id(model_dir, text["bos_token_id"]),
    )
    if top["image_token_index"] is None:
        top["image_token_index"] = 32000  # Vicuna checkpoints' <image>, appended after the 32000 LLaMA ids
    return lr.Cfg(vision), lr.Cfg(qformer), lr.Cfg(text), lr.Cfg(top)


def load_weights(model_dir, device):
    # stored names are used as they are; they are the ones HF's modules give
    return lr.load_tensors(model_dir, device)


# ---- EVA vision tower (InstructBlipVisionModel) ----


def eva_vision(pixel_values, w, vc):
    """pixel_values [3, H, W] -> (Lv+1 hidden states [1+patches, d_v], post_layernorm(last))."""
    p = "vision_model."
    C, H, W = pixel_values.shape
    if H != vc.image_size or W != vc.image_size:
        raise SystemExit(f"pixel_values are {H}x{W}, the vision tower wants {vc.image_size}x{vc.image_size} (no position interpolation here)")
    if C != 3:
        raise SystemExit(f"pixel_values have {C} channels, InstructBLIP's patch conv takes 3")
    conv_w = lr.get(w, p + "embeddings.patch_embedding.weight")
    conv_b = lr.get(w, p + "embeddings.patch_embedding.bias")  # unlike CLIP, the patch conv has a bias
    patches = torch.nn.functional.conv2d(pixel_values[None], conv_w, conv_b, stride=vc.patch_size)
    patches = patches.flatten(2)[0].t()  # [patches, d_v], row-major over the grid
    cls = lr.get(w, p + "embeddings.class_embedding").reshape(1, -1)  # stored [1, 1, d_v]
    x = torch.cat([cls, patches], 0)
    n, d = x.shape
    pos = lr.get(w, p + "embeddings.position_embedding").reshape(-1, d)  # stored [1, 1+patches, d_v]
    if pos.shape[0] < n:
        raise SystemExit(f"position_embedding has {pos.shape[0]} rows for {n} positions")
    x = x + pos[:n]  # HF: position_embedding[:, :n]; no pre-layernorm follows
    states = [x]
    nh = vc.num_attention_heads
    hd = d // nh
    act = lr.act_fn(vc.hidden_act)
    for i in range(vc.num_hidden_layers):
        lp = f"{p}encoder.layers.{i}."
        h = lr.layer_norm(x, w, lp + "layer_norm1", vc.layer_norm_eps)
        # fused qkv: output rows are [q; k; v], each split into heads; the stored bias is
        # [q_bias, 0, v_bias] (keys never had one), absent when qkv_bias is false
        qkv = lr.linear(h, w, lp + "self_attn.qkv", vc.qkv_bias)
        qkv = qkv.reshape(n, 3, nh, hd).permute(1, 2, 0, 3)  # [3, nh, n, hd]
        q, k, v = qkv[0], qkv[1], qkv[2]
        probs = torch.softmax((q @ k.transpose(1, 2)) * hd**-0.5, -1)  # no mask
        attn = (probs @ v).transpose(0, 1).reshape(n, d)
        x = x + lr.linear(attn, w, lp + "self_attn.projection")
        h = lr.layer_norm(x, w, lp + "layer_norm2", vc.layer_norm_eps)
        x = x + lr.linear(act(lr.linear(h, w, lp + "mlp.fc1")), w, lp + "mlp.fc2")
        states.append(x)
    last = lr.layer_norm(x, w, p + "post_layernorm", vc.layer_norm_eps)
    return states, last


# ---- Q-Former (InstructBlipQFormerModel: post-LN BERT with cross-attention) ----


def bert_attention(x, kv, w, prefix, qc):
    """InstructBlipQFormerAttention: LayerNorm(dense(MHA(x, kv)) + x). Unmasked (one
    unpadded input: HF's bidirectional mask is all ones)."""
    n, m = x.shape[0], kv.shape[0]
    nh = qc.num_attention_heads
    hd = qc.hidden_size // nh
    q = lr.linear(x, w, prefix + ".attention.query").view(n, nh, hd).transpose(0, 1)
    k = lr.linear(kv, w, prefix + ".attention.key").view(m, nh, hd).transpose(0, 1)
    v = lr.linear(kv, w, prefix + ".attention.value").view(m, nh, hd).transpose(0, 1)
    probs = torch.softmax((q @ k.transpose(1, 2)) / (hd**0.5), -1)
    ctx = (probs @ v).transpose(0, 1).reshape(n, nh * hd)
    return lr.layer_norm(lr.linear(ctx, w, prefix + ".output.dense") + x, w, prefix + ".output.LayerNorm", qc.layer_norm_eps)


def bert_ffn(x, w, lp, inter, output, qc):
    """InstructBlipQFormerIntermediate + InstructBlipQFormerOutput: LN(dense(act(dense(x))) + x)."""
    y = lr.linear(lr.act_fn(qc.hidden_act)(lr.linear(x, w, f"{lp}{inter}.dense")), w, f"{lp}{output}.dense")
    return lr.layer_norm(y + x, w, f"{lp}{output}.LayerNorm", qc.layer_norm_eps)


def qformer(image_embeds, qformer_ids, w, qc, n_query):
    """image_embeds [1+patches, d_v], qformer_ids [Tq] -> Lq+1 states [Q+Tq, d_q]."""
    p = "qformer."
    queries = lr.get(w, "query_tokens").reshape(-1, qc.hidden_size)  # stored [1, Q, d_q]
    if queries.shape[0] != n_query:
        raise SystemExit(f"query_tokens has {queries.shape[0]} rows, num_query_tokens is {n_query}")
    tq = len(qformer_ids)
    if tq > qc.max_position_embeddings:
        raise SystemExit(f"{tq} Q-Former tokens exceed max_position_embeddings {qc.max_position_embeddings}")
    words = lr.get(w, p + "embeddings.word_embeddings.weight")
    ids = torch.as_tensor(qformer_ids, dtype=torch.long, device=words.device)
    text = words[ids] + lr.get(w, p + "embeddings.position_embeddings.weight")[:tq]  # positions 0..Tq-1
    x = torch.cat([queries, text], 0)  # the queries get no position embedding
    x = lr.layer_norm(x, w, p + "embeddings.layernorm", qc.layer_norm_eps)
    states = [x]
    for i in range(qc.num_hidden_layers):
        lp = f"{p}encoder.layer.{i}."
        a = bert_attention(x, x, w, lp + "attention", qc)  # queries and text attend to each other
        qa = a[:n_query]
        if i % qc.cross_attention_frequency == 0:
            qa = bert_attention(qa, image_embeds, w, lp + "crossattention", qc)  # only queries see the image
        out = bert_ffn(qa, w, lp, "intermediate_query", "output_query", qc)
        if a.shape[0] > n_query:
            out = torch.cat([out, bert_ffn(a[n_query:], w, lp, "intermediate", "output", qc)], 0)
        x = out
        states.append(x)
    return states


# ---- composition (InstructBlipForConditionalGeneration) ----


def place_image_tokens(ids, top):
    """The processor writes [image]*Q + [BOS] + prompt; ids without the image token get the
    Q tokens prepended here."""
    it, nq = top.image_token_index, top.num_query_tokens
    count = sum(1 for t in ids if t == it)
    if count == nq:
        return list(ids), False
    if count == 0:
        return [it] * nq + list(ids), True
    raise SystemExit(f"input_ids hold image token {it} {count} times: want 0 (prepended here) or num_query_tokens = {nq}")


def build_embeds(pixel_values, ids, qformer_ids, w, vc, qc, top):
    """The language model's inputs_embeds: EVA tower, Q-Former, language_projection, the
    Q image tokens placed and spliced. Returns dict(vstates, image_embeds, qstates,
    query_output, feats, ids (placed), expanded, embeds [T, d])."""
    vstates, image_embeds = eva_vision(pixel_values, w, vc)
    qstates = qformer(image_embeds, qformer_ids, w, qc, top.num_query_tokens)
    query_output = qstates[-1][: top.num_query_tokens]
    feats = lr.linear(query_output, w, "language_projection")
    ids, expanded = place_image_tokens(ids, top)
    x = lr.embed(ids, w).clone()
    mask = torch.as_tensor([t == top.image_token_index for t in ids], device=x.device)
    x[mask] = feats  # masked_scatter: features fill the image positions in order
    return dict(vstates=vstates, image_embeds=image_embeds, qstates=qstates, query_output=query_output, feats=feats,
                ids=ids, expanded=expanded, embeds=x)


def prefill(pixel_values, ids, qformer_ids, w, vc, qc, tc, top, record, with_attn):
    r = build_embeds(pixel_values, ids, qformer_ids, w, vc, qc, top)
    cache = []
    out = lr.llama_forward(r["embeds"], w, tc, 0, cache, record, with_attn)  # RoPE positions 0..T-1 from the first query
    logits = out["final"] @ lr.lm_head_weight(w, tc).t()
    return dict(r, lm=out, logits=logits, cache=cache)


def time_only(a, run_prefill, w, tc, top, load_s):
    """--time-only: the figures llava_ref.py's --time-only prints, same keys and rules."""
    times = []
    for _ in range(max(1, a.repeats)):
        lr.sync(a.device)
        t0 = time.perf_counter()
        r = run_prefill()
        lr.sync(a.device)
        times.append(time.perf_counter() - t0)
    n_new = 8 if a.max_new_tokens is None else a.max_new_tokens
    decode_tok_s = None
    if n_new > 1:
        lr.sync(a.device)
        t0 = time.perf_counter()
        toks = lr.greedy(r, w, tc, top, n_new, False, top.eos_token_ids, not a.no_kv_cache)
        lr.sync(a.device)
        # n_new tokens need n_new - 1 decode forwards (the first comes from the prefill)
        decode_tok_s = (len(toks) - 1) / (time.perf_counter() - t0)
    return {
        "prefill_s": sorted(times)[len(times) // 2], "prefill_all_s": times, "decode_tok_s": decode_tok_s,
        "decode_tokens": n_new, "seq": len(r["ids"]), "load_s": load_s, "device": a.device,
        "threads": torch.get_num_threads(), "kv_cache": not a.no_kv_cache,
    }


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    lr.add_input_args(ap)
    ap.add_argument("--qformer-input-ids", required=True)
    ap.add_argument("--image-token-id", type=int, default=None)
    lr.add_run_args(ap)
    lr.add_device_args(ap)
    a = ap.parse_args()
    if not a.time_only and not a.out:
        ap.error("--out is required (unless --time-only)")
    lr.setup_torch(a)

    vc, qc, tc, top = load_config(a.model)
    if a.eos_token_id:
        top.eos_token_ids = a.eos_token_id
    if a.image_token_id is not None:
        top.image_token_index = a.image_token_id
    pixel_values = lr.read_pixel_values(a.pixel_values, a.pixel_shape, [3, vc.image_size, vc.image_size], a.device)
    ids = lr.parse_ids(a.input_ids, "--input-ids")
    qids = lr.parse_ids(a.qformer_input_ids, "--qformer-input-ids")
    t0 = time.perf_counter()
    w = load_weights(a.model, a.device)
    load_s = time.perf_counter() - t0

    if a.time_only:
        print(json.dumps(time_only(a, lambda: prefill(pixel_values, ids, qids, w, vc, qc, tc, top, False, False), w, tc, top, load_s)))
        return

    lr.sync(a.device)
    t0 = time.perf_counter()
    r = prefill(pixel_values, ids, qids, w, vc, qc, tc, top, True, a.with_attentions)
    lr.sync(a.device)
    prefill_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    toks = lr.greedy(r, w, tc, top, a.max_new_tokens or 0, a.stop_at_eos, top.eos_token_ids, not a.no_kv_cache)
    lr.sync(a.device)
    decode_s = time.perf_counter() - t0

    cpu = lambda t: t.detach().float().cpu().numpy()
    i32 = lambda v: np.asarray(v, dtype=np.int32)
    out = [("input_ids", i32(r["ids"])), ("qformer_input_ids", i32(qids)), ("pixel_values", cpu(pixel_values))]
    out += [(f"vision_hidden_states.{k}", cpu(s)) for k, s in enumerate(r["vstates"])]
    out.append(("vision_last_hidden_state", cpu(r["image_embeds"])))
    out += [(f"qformer_hidden_states.{k}", cpu(s)) for k, s in enumerate(r["qstates"])]
    out.append(("query_output", cpu(r["query_output"])))
    out.append(("image_features", cpu(r["feats"])))
    out += [(f"hidden_states.{l}", cpu(s)) for l, s in enumerate(r["lm"]["states"])]
    out.append(("residual_final", cpu(r["lm"]["residual"])))
    out.append(("logits", cpu(r["logits"])))
    out.append(("greedy_tokens", i32(toks)))
    if a.with_attentions:
        out += [(f"attentions.{l}", cpu(s)) for l, s in enumerate(r["lm"]["attn"])]
        out += [(f"attn_input_normed.{l}", cpu(s)) for l, s in enumerate(r["lm"]["normed"])]
    positions = [i for i, t in enumerate(r["ids"]) if t == top.image_token_index]
    after = positions[-1] + 1
    bos = after if after < len(r["ids"]) and r["ids"][after] == top.bos_token_id else -1
    meta = {
        "format": FORMAT, "version": VERSION, "image_token_index": top.image_token_index,
        "image_start": positions[0], "n_image_tokens": len(positions), "expanded": int(r["expanded"]),
        "bos_token_id": top.bos_token_id, "bos_position": bos, "eos_token_ids": json.dumps(top.eos_token_ids), "prefill_s": f"{prefill_s:.6f}",
    }
    lr.write_safetensors(a.out, out, meta)
    print(json.dumps({"prefill_s": prefill_s, "decode_s": decode_s, "load_s": load_s, "seq": len(r["ids"]),
                      "greedy_tokens": toks, "out": a.out}))


if __name__ == "__main__":
    main()
