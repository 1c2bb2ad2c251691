#!/usr/bin/python3
"""Independent PyTorch reference for three interventions on the LLaMA decoder of LLaVA-1.5
and InstructBLIP (float32, no transformers), written from the papers' definitions.

The vision side and the decoder come from llava_ref.py / instructblip_ref.py (chosen by
config.json's model_type); the interventions are llava_ref.llama_forward's hooks:

  knockout   Attention knockout, Zhang et al. 2024, "Cross-modal Information Flow in
             Multimodal Large Language Models" (arXiv 2411.18620): in every head of each
             layer in W, torch.finfo(float32).min is added to the scaled pre-softmax score
             of every (query q in DST, key k in SRC) pair, after the causal mask (-inf);
             the softmax then renormalises over the remaining keys. A query whose every
             causally visible key is in SRC keeps scores that all round to finfo.min, so
             its row becomes uniform over its visible keys (what an additive finfo.min mask,
             as in HF's attention masks, gives).
  ablate     Token ablation, "The Narrow Gate" (arXiv 2412.06646): in the given layers (and
             heads, default all), AFTER the softmax the attention weight of every query to
             every key in S is set to 0; the rows are NOT renormalised. Applies to the
             prefill and to every KV-cached greedy decoding step.
  patch      Activation patching / steering at the residual stream entering decoder layer
             l (HF hidden_states[l], i.e. lm.blocks.{l}.resid_pre), rows of the positions
             in a group G:
               copy, one layer:      rows := the source run's rows entering layer l
               copy, from layer on:  at every layer k >= l, rows entering k := the source
                                     run's (un-intervened) rows entering k
               add, one layer:       rows += scale * v at layer l
               add, from layer on:   rows += scale * v at every layer k >= l (so the
                                     additions accumulate in the residual stream)
             The source run is the same prompt (and Q-Former instruction) with another image.

Positions are indices into the language model's sequence after the image tokens are
expanded (LLaVA: the image token becomes one position per image feature) or placed
(InstructBLIP: [image]*Q first). Layers are 0..L-1. Heads are query heads 0..H-1.

Usage
-----
  /usr/bin/python3 test/reference/interventions_ref.py --model DIR --pixel-values F.f32 \\
      --pixel-shape C,H,W --input-ids 1,2,... [--qformer-input-ids 101,...,102] \\
      (--knockout JSON | --ablate JSON | --patch JSON) [--answer-id N] [--max-new-tokens N]
      [--with-logits] [--device cpu|cuda] [--threads N]

  A JSON argument is inline when it starts with '[' or '{', else the path of a JSON file.

  --knockout [{"dst": [q...], "src": [k...], "layers": [l...]}, ...]
      -> {"answer_id", "p_base", "p": [per entry], "argmax": [per entry], "seq"}
         answer_id = --answer-id, else the argmax of the un-intervened last logits.
  --ablate [{"keys": [k...], "layers": [l...], "heads": null | [h...]}, ...]
      -> {"answer_id", "p_base", "p_answer": [per entry], "argmax_after": [per entry],
          "seq"} and, with --max-new-tokens N > 0, "tokens_base": [N] and "tokens": [per
          entry][N] (greedy, KV-cached, the ablation active at every step; tokens[e][0] =
          argmax_after[e]).
  --patch {"source_pixel_values": F2 (raw f32, shape --pixel-shape; required for copy),
           "group": [positions], "layers": [l...], "mode": "copy" | "add",
           "from_layer_on": bool (default false), "vector": F3 (raw f32 [d], add only),
           "scale": s (default 1), "answers": [id1, id2]}
      -> {"answers", "base_target", "base_source" (null without a source), "base_target_top_id",
          "base_source_top_id", "results": [{"layer", "logit_diff", "top_id"} per layer], "seq"}
         logit_diff = logit[id1] - logit[id2] at the last position; top_id = its argmax.
  --with-logits  also "last_logits_base" [vocab] and per entry / result "last_logits"
                 (knockout, ablate: "last_logits": [entry][vocab]; patch: in each result;
                 plus "last_logits_source" when there is a source). Each float is the f32
                 value exactly (JSON doubles); probabilities are softmax(last_logits).

Probabilities are torch.softmax of the f32 last-position logits over the whole vocabulary.
Prints one JSON object to stdout.
"""
import argparse
import json
import os
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import llava_ref as lr  # noqa: E402
import instructblip_ref as ir  # noqa: E402

FORMAT = "phaselens-interventions-ref"
VERSION = "1"
NEG = torch.finfo(torch.float32).min


# --------------------------------------------------------------------------------------
# Hooks for llava_ref.llama_forward


class Knockout:
    """Adds finfo(f32).min to scores[:, q in dst, k in src] in the given layers."""

    def __init__(self, dst, src, layers):
        self.dst, self.src, self.layers = set(dst), set(src), set(layers)

    def scores(self, i, scores, qpos, kpos):
        if i not in self.layers:
            return scores
        q = torch.as_tensor([int(p) in self.dst for p in qpos[:, 0].tolist()], device=scores.device)
        k = torch.as_tensor([int(p) in self.src for p in kpos[0].tolist()], device=scores.device)
        pair = (q[:, None] & k[None, :]).to(scores.dtype)  # [n, total]
        return scores + pair * NEG


class Ablate:
    """Zeroes probs[h in heads, :, k in keys] after the softmax in the given layers."""

    def __init__(self, keys, layers, heads):
        self.keys, self.layers, self.heads = set(keys), set(layers), None if heads is None else sorted(set(heads))

    def probs(self, i, probs, qpos, kpos):
        if i not in self.layers:
            return probs
        k = torch.as_tensor([int(p) in self.keys for p in kpos[0].tolist()], device=probs.device)  # [total]
        h = torch.ones(probs.shape[0], dtype=torch.bool, device=probs.device)
        if self.heads is not None:
            h[:] = False
            h[self.heads] = True
        drop = h[:, None, None] & k[None, None, :]  # [heads, 1, total]
        return probs.masked_fill(drop, 0.0)


class Patch:
    """Overwrites (copy) or shifts (add) the group's rows of the residual entering layers."""

    def __init__(self, group, layer, from_layer_on, source_states=None, vector=None):
        self.group, self.layer, self.on = sorted(set(group)), layer, from_layer_on
        self.src, self.vec = source_states, vector

    def resid_pre(self, i, x, start):
        if i < self.layer or (i > self.layer and not self.on):
            return x
        if start != 0:
            raise SystemExit("patching is defined on the prefill only")
        x = x.clone()
        g = torch.as_tensor(self.group, dtype=torch.long, device=x.device)
        if self.src is not None:
            x[g] = self.src[i][g]
        else:
            x[g] = x[g] + self.vec
        return x


# --------------------------------------------------------------------------------------
# Model family


class Model:
    def __init__(self, model_dir, device):
        with open(os.path.join(model_dir, "config.json")) as f:
            self.family = json.load(f).get("model_type")
        if self.family == "llava":
            self.vc, self.tc, self.top = lr.load_config(model_dir)
            self.w = lr.load_weights(model_dir, device)
        elif self.family == "instructblip":
            self.vc, self.qc, self.tc, self.top = ir.load_config(model_dir)
            self.w = ir.load_weights(model_dir, device)
        else:
            raise SystemExit(f"{model_dir}: model_type {self.family!r}, want llava or instructblip")
        self.head = lr.lm_head_weight(self.w, self.tc)

    def embeds(self, pixel_values, ids, qformer_ids):
        if self.family == "llava":
            r = lr.build_embeds(pixel_values, ids, self.w, self.vc, self.top)
        else:
            if qformer_ids is None:
                raise SystemExit("InstructBLIP needs --qformer-input-ids")
            r = ir.build_embeds(pixel_values, ids, qformer_ids, self.w, self.vc, self.qc, self.top)
        return r["embeds"], r["ids"]

    def run(self, x, hooks=None, record=False, cache=None):
        """Prefill on embeds x; returns (last-position logits [vocab], llama_forward's dict)."""
        out = lr.llama_forward(x, self.w, self.tc, 0, cache, record, False, hooks)
        return out["final"][-1] @ self.head.t(), out

    def greedy(self, x, hooks, n_new):
        """KV-cached greedy decoding of n_new tokens with the hooks active at every step."""
        cache = []
        logits, _ = self.run(x, hooks, cache=cache)
        pos = x.shape[0]
        tokens = []
        for step in range(n_new):
            nxt = int(torch.argmax(logits))
            tokens.append(nxt)
            if step == n_new - 1:
                break
            out = lr.llama_forward(lr.embed([nxt], self.w), self.w, self.tc, pos, cache, False, False, hooks)
            logits = out["final"][-1] @ self.head.t()
            pos += 1
        return tokens


# --------------------------------------------------------------------------------------
# Driver


def read_json_arg(text, flag):
    t = text.lstrip()
    try:
        if t.startswith("[") or t.startswith("{"):
            return json.loads(t)
        with open(text) as f:
            return json.load(f)
    except (OSError, ValueError) as e:
        raise SystemExit(f"{flag}: {e}") from None


def check_positions(ps, seq, what):
    if not isinstance(ps, list) or not all(isinstance(p, int) and 0 <= p < seq for p in ps):
        raise SystemExit(f"{what} must be a list of positions in 0..{seq - 1}, got {ps!r}")
    return ps


def check_layers(ls, L, what):
    if not isinstance(ls, list) or not all(isinstance(l, int) and 0 <= l < L for l in ls):
        raise SystemExit(f"{what} must be a list of decoder layers in 0..{L - 1}, got {ls!r}")
    return ls


def f32_list(t):
    return [float(v) for v in t.detach().float().cpu().numpy().tolist()]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    lr.add_input_args(ap)
    ap.add_argument("--qformer-input-ids", default=None)
    g = ap.add_mutually_exclusive_group(required=True)
    g.add_argument("--knockout")
    g.add_argument("--ablate")
    g.add_argument("--patch")
    ap.add_argument("--answer-id", type=int, default=None)
    ap.add_argument("--max-new-tokens", type=int, default=0)
    ap.add_argument("--with-logits", action="store_true")
    lr.add_device_args(ap)
    a = ap.parse_args()
    lr.setup_torch(a)

    m = Model(a.model, a.device)
    tc = m.tc
    L, H, d, V = tc.num_hidden_layers, tc.num_attention_heads, tc.hidden_size, m.head.shape[0]
    default_shape = [getattr(m.vc, "num_channels", 3), m.vc.image_size, m.vc.image_size]
    pix = lr.read_pixel_values(a.pixel_values, a.pixel_shape, default_shape, a.device)
    ids = lr.parse_ids(a.input_ids, "--input-ids")
    if not ids:
        raise SystemExit("--input-ids is empty")
    qids = None if a.qformer_input_ids is None else lr.parse_ids(a.qformer_input_ids, "--qformer-input-ids")
    x, full_ids = m.embeds(pix, ids, qids)
    seq = x.shape[0]
    base_logits, base_out = m.run(x, record=a.patch is not None)
    res = {"reference": {"format": FORMAT, "version": VERSION}, "family": m.family, "seq": seq}
    if a.with_logits:
        res["last_logits_base"] = f32_list(base_logits)
    answer = int(torch.argmax(base_logits)) if a.answer_id is None else a.answer_id
    if not 0 <= answer < V:
        raise SystemExit(f"--answer-id {answer} is outside the vocabulary (0..{V - 1})")
    p_of = lambda logits: float(torch.softmax(logits, -1)[answer])

    if a.knockout is not None:
        entries = read_json_arg(a.knockout, "--knockout")
        if not isinstance(entries, list):
            raise SystemExit("--knockout wants a JSON list of {dst, src, layers}")
        res.update(answer_id=answer, p_base=p_of(base_logits), p=[], argmax=[])
        logits_all = []
        for e in entries:
            hook = Knockout(check_positions(e["dst"], seq, "dst"), check_positions(e["src"], seq, "src"), check_layers(e["layers"], L, "layers"))
            logits, _ = m.run(x, hook)
            res["p"].append(p_of(logits))
            res["argmax"].append(int(torch.argmax(logits)))
            logits_all.append(f32_list(logits))
        if a.with_logits:
            res["last_logits"] = logits_all

    elif a.ablate is not None:
        entries = read_json_arg(a.ablate, "--ablate")
        if not isinstance(entries, list):
            raise SystemExit("--ablate wants a JSON list of {keys, layers, heads}")
        res.update(answer_id=answer, p_base=p_of(base_logits), p_answer=[], argmax_after=[])
        logits_all, tokens = [], []
        for e in entries:
            heads = e.get("heads")
            if heads is not None and not (isinstance(heads, list) and all(isinstance(h, int) and 0 <= h < H for h in heads)):
                raise SystemExit(f"heads must be null or a list of heads in 0..{H - 1}, got {heads!r}")
            hook = Ablate(check_positions(e["keys"], seq, "keys"), check_layers(e["layers"], L, "layers"), heads)
            logits, _ = m.run(x, hook)
            res["p_answer"].append(p_of(logits))
            res["argmax_after"].append(int(torch.argmax(logits)))
            logits_all.append(f32_list(logits))
            if a.max_new_tokens > 0:
                tokens.append(m.greedy(x, hook, a.max_new_tokens))
        if a.max_new_tokens > 0:
            res["tokens_base"] = m.greedy(x, None, a.max_new_tokens)
            res["tokens"] = tokens
        if a.with_logits:
            res["last_logits"] = logits_all

    else:
        spec = read_json_arg(a.patch, "--patch")
        if not isinstance(spec, dict):
            raise SystemExit("--patch wants a JSON object")
        mode = spec.get("mode", "copy")
        if mode not in ("copy", "add"):
            raise SystemExit(f"patch mode {mode!r}: want copy or add")
        group = check_positions(spec["group"], seq, "group")
        layers = check_layers(spec["layers"], L, "layers")
        on = bool(spec.get("from_layer_on", False))
        answers = spec["answers"]
        if not (isinstance(answers, list) and len(answers) == 2 and all(isinstance(t, int) and 0 <= t < V for t in answers)):
            raise SystemExit(f"answers must be two token ids in 0..{V - 1}, got {answers!r}")
        diff = lambda logits: float(logits[answers[0]] - logits[answers[1]])
        src_states = None
        res.update(answers=answers, base_target=diff(base_logits), base_target_top_id=int(torch.argmax(base_logits)),
                   base_source=None, base_source_top_id=None, results=[])
        if spec.get("source_pixel_values"):
            spix = lr.read_pixel_values(spec["source_pixel_values"], a.pixel_shape, default_shape, a.device)
            xs, sids = m.embeds(spix, ids, qids)
            assert sids == full_ids
            src_logits, src_out = m.run(xs, record=True)
            src_states = src_out["states"][:L]  # rows entering layers 0..L-1 (the last entry is post-norm)
            res.update(base_source=diff(src_logits), base_source_top_id=int(torch.argmax(src_logits)))
            if a.with_logits:
                res["last_logits_source"] = f32_list(src_logits)
        vec = None
        if mode == "copy":
            if src_states is None:
                raise SystemExit("patch mode copy needs source_pixel_values")
        else:
            if not spec.get("vector"):
                raise SystemExit("patch mode add needs vector (raw f32 [d])")
            v = np.fromfile(spec["vector"], dtype="<f4")
            if v.size != d:
                raise SystemExit(f"{spec['vector']}: {v.size} floats, the residual stream has d = {d}")
            vec = torch.from_numpy(v.astype(np.float32)).to(a.device) * float(spec.get("scale", 1.0))
        for l in layers:
            hook = Patch(group, l, on, src_states if mode == "copy" else None, vec)
            logits, _ = m.run(x, hook)
            r = {"layer": l, "logit_diff": diff(logits), "top_id": int(torch.argmax(logits))}
            if a.with_logits:
                r["last_logits"] = f32_list(logits)
            res["results"].append(r)

    print(json.dumps(res))


if __name__ == "__main__":
    main()
