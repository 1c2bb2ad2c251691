"""Reference for three interventions on the LLaMA decoder of LLaVA-1.5, InstructBLIP and
Chameleon, on HF transformers' own models (LlavaForConditionalGeneration /
InstructBlipForConditionalGeneration / ChameleonForConditionalGeneration, float32), written
from the papers' definitions. Run with the venv python of .ci/hf-venv.sh
(torch 2.x + transformers 5.x).

transformers computes the model; the interventions enter through its own extension points:

  knockout, ablate  an attention function registered with transformers' AttentionInterface
                    (plus the eager mask under the same name) and set on the language model
                    only: softmax(q·kᵀ·scale + causal mask) v per head, HF's eager order of
                    operations, with the edits below between its steps. `--states` runs
                    HF's stock "eager" instead, so the two can be compared.
  patch             forward pre-hooks on the decoder layers (the residual stream entering
                    layer l, HF's hidden_states[l] = lm.blocks.{l}.resid_pre).

Definitions:

  knockout   Attention knockout, Zhang et al. 2024, "Cross-modal Information Flow in
             Multimodal Large Language Models" (arXiv 2411.18620): in every head of each
             layer in W, the edges (query q in DST -> key k in SRC) are blocked before the
             softmax: the causal mask is made -inf and torch.finfo(float32).min is added to
             the scaled score of every blocked pair; the softmax then renormalises over the
             remaining keys. A query whose every causally visible key is in SRC keeps scores
             that all round to finfo.min, so its row becomes uniform over its visible keys
             (what an additive finfo.min mask, as in HF's attention masks, gives) rather
             than NaN. The narrow-gate study's ablations ("The Narrow Gate", arXiv
             2412.06646) knock text out of an image-side group in fixed layers while the
             model answers: with "generated": true every generated token (a position >= the
             prompt's length) is a DST query too, at every KV-cached step of model.generate.
  ablate     Token ablation, "The Narrow Gate" (arXiv 2412.06646): in the given layers (and
             heads, default all), AFTER the softmax the attention weight of every query to
             every key in S is set to 0; the rows are NOT renormalised. Applies to the
             prefill and to every KV-cached step of model.generate.
  patch      Activation patching / steering at the residual stream entering decoder layer
             l, rows of the positions in a group G:
               copy, one layer:      rows := the source run's rows entering layer l
               copy, from layer on:  at every layer k >= l, rows entering k := the source
                                     run's (un-intervened) rows entering k
               add, one layer:       rows += scale * v at layer l
               add, from layer on:   rows += scale * v at every layer k >= l (so the
                                     additions accumulate in the residual stream)
             The source run is the same prompt (and Q-Former instruction) with another image.

Positions are indices into the language model's sequence after the image tokens are
expanded (LLaVA: the image token becomes one position per image feature) or placed
(InstructBLIP: [image]*Q first; Chameleon: the placeholders, one per image token, are
replaced here by the BPE ids of the image's VQ codes, model.get_image_tokens, so the model
runs on ids alone). Layers are 0..L-1. Heads are query heads 0..H-1.

Usage
-----
  PY=$(bash .ci/hf-venv.sh)
  $PY test/reference/interventions_ref.py --model DIR --pixel-values F.f32 \\
      --pixel-shape C,H,W --input-ids 1,2,... [--qformer-input-ids 101,...,102] \\
      (--knockout JSON | --ablate JSON | --patch JSON | --states OUT.safetensors)
      [--answer-id N] [--max-new-tokens N] [--with-logits] [--device cpu|cuda] [--threads N]

  $PY test/reference/interventions_ref.py --batch JOBS.json
      JOBS.json: a list of argument lists, each as for one call above; prints a JSON list of
      their answers, in order, each checkpoint loaded once.

  --input-ids: LLaVA: the image token once (expanded here) or already expanded;
  InstructBLIP: with the Q image tokens first or without them (prepended here); Chameleon:
  the <image> placeholder once per image token, between <racm3:break> and <eoss>, as
  ChameleonProcessor writes them.
  A JSON argument is inline when it starts with '[' or '{', else the path of a JSON file.

  --knockout [{"dst": [q...], "src": [k...], "layers": [l...], "generated": bool (default false)}, ...]
      -> {"answer_id", "p_base", "p": [per entry], "argmax": [per entry], "seq"}
         answer_id = --answer-id, else the argmax of the un-intervened last logits; with
         --max-new-tokens N > 0 also "tokens_base": [N] and "tokens": [per entry][N] (greedy
         model.generate as for --ablate, the knockout active at every step).
  --ablate [{"keys": [k...], "layers": [l...], "heads": null | [h...]}, ...]
      -> {"answer_id", "p_base", "p_answer": [per entry], "argmax_after": [per entry],
          "seq"} and, with --max-new-tokens N > 0, "tokens_base": [N] and "tokens": [per
          entry][N] (greedy model.generate, KV-cached, EOS not stopping, the ablation active
          at every step; tokens[e][0] = argmax_after[e]).
  --patch {"source_pixel_values": F2 (raw f32, shape --pixel-shape; required for copy),
           "group": [positions], "layers": [l...], "mode": "copy" | "add",
           "from_layer_on": bool (default false), "vector": F3 (raw f32 [d], add only),
           "scale": s (default 1), "answers": [id1, id2]}
      -> {"answers", "base_target", "base_source" (null without a source), "base_target_top_id",
          "base_source_top_id", "results": [{"layer", "logit_diff", "top_id"} per layer], "seq"}
         logit_diff = logit[id1] - logit[id2] at the last position; top_id = its argmax.
  --states OUT   the un-intervened forward with HF's stock eager attention, written to a
                 safetensors file: input_ids [seq] (I32, as expanded / placed),
                 hidden_states.{l} [seq, d] (F32, l = 0..L, HF's output_hidden_states: the
                 last after the final norm), logits [seq, vocab]. Prints {"seq", ...}.
  --with-logits  also "last_logits_base" [vocab] and per entry / result "last_logits"
                 (knockout, ablate: "last_logits": [entry][vocab]; patch: in each result;
                 plus "last_logits_source" when there is a source). Each float is the f32
                 value exactly (JSON doubles); probabilities are softmax(last_logits).

Probabilities are torch.softmax of the f32 last-position logits over the whole vocabulary.
Prints one JSON object (a list with --batch) to stdout.
"""
import argparse
import json
import sys

import numpy as np
import torch
import transformers as tr
from safetensors.torch import save_file
from transformers.masking_utils import ALL_MASK_ATTENTION_FUNCTIONS, eager_mask

FORMAT = "phaselens-interventions-ref"
VERSION = "3"
NEG = torch.finfo(torch.float32).min
ATTN = "phaselens_interventions"
CLASSES = {"llava": tr.LlavaForConditionalGeneration, "instructblip": tr.InstructBlipForConditionalGeneration,
           "chameleon": tr.ChameleonForConditionalGeneration}


# --------------------------------------------------------------------------------------
# The edits and the attention function that applies them


class Knockout:
    """Blocks (q in dst -> k in src) before the softmax in the given layers; with gen_from, every
    query at a position >= gen_from (a generated token) is in dst too."""

    def __init__(self, dst, src, layers, gen_from=None):
        self.dst, self.src, self.layers, self.gen_from = set(dst), set(src), set(layers), gen_from

    def queries(self, qpos, device):
        q = in_set(qpos, self.dst, device)
        if self.gen_from is not None:
            q = q | torch.tensor([p >= self.gen_from for p in qpos], dtype=torch.bool, device=device)
        return q


class Ablate:
    """Zeroes the weights of heads (None = all) on keys after the softmax in the given layers."""

    def __init__(self, keys, layers, heads):
        self.keys, self.layers, self.heads = set(keys), set(layers), None if heads is None else sorted(set(heads))


ACTIVE = None  # the Knockout or Ablate the language model's attention applies now


def in_set(positions, s, device):
    return torch.tensor([int(p) in s for p in positions], dtype=torch.bool, device=device)


def intervened_attention(module, query, key, value, attention_mask, scaling, dropout=0.0, **kwargs):
    """HF's eager attention, step by step, with ACTIVE's edit at layer module.layer_idx.

    query [b, H, nq, hd]; key, value [b, Hkv, nk, hd] (the cache included): the queries are
    the last nq of the nk positions, in the prefill and in every decoding step."""
    groups = module.num_key_value_groups
    k = key.repeat_interleave(groups, dim=1)  # query head h reads KV head h // groups
    v = value.repeat_interleave(groups, dim=1)
    scores = torch.matmul(query, k.transpose(2, 3)) * scaling
    if attention_mask is not None:
        scores = scores + attention_mask
    nq, nk = query.shape[2], k.shape[2]
    qpos, kpos = range(nk - nq, nk), range(nk)
    edit, layer = ACTIVE, module.layer_idx
    if isinstance(edit, Knockout) and layer in edit.layers:
        causal = torch.arange(nk, device=scores.device)[None, :] <= torch.tensor(qpos, device=scores.device)[:, None]
        blocked = edit.queries(qpos, scores.device)[:, None] & in_set(kpos, edit.src, scores.device)[None, :]
        scores = scores.masked_fill(~causal, float("-inf")) + blocked.to(scores.dtype) * NEG
    probs = torch.softmax(scores, dim=-1, dtype=torch.float32).to(query.dtype)
    if isinstance(edit, Ablate) and layer in edit.layers:
        heads = torch.ones(probs.shape[1], dtype=torch.bool, device=probs.device)
        if edit.heads is not None:
            heads[:] = False
            heads[edit.heads] = True
        probs = probs.masked_fill(heads[None, :, None, None] & in_set(kpos, edit.keys, probs.device)[None, None, None, :], 0.0)
    out = torch.matmul(probs, v).transpose(1, 2).contiguous()
    return out, probs


tr.utils.logging.disable_progress_bar()
tr.AttentionInterface.register(ATTN, intervened_attention)
ALL_MASK_ATTENTION_FUNCTIONS.register(ATTN, eager_mask)  # the additive finfo.min mask eager gets


class Patch:
    """Overwrites (copy) or shifts (add) the group's rows of the residual entering layers."""

    def __init__(self, group, layer, from_layer_on, source_states=None, vector=None):
        self.group, self.layer, self.on = sorted(set(group)), layer, from_layer_on
        self.src, self.vec = source_states, vector

    def __call__(self, i, x):
        if i < self.layer or (i > self.layer and not self.on):
            return x
        x = x.clone()
        g = torch.as_tensor(self.group, dtype=torch.long, device=x.device)
        if self.src is not None:
            x[0, g] = self.src[i][g]
        else:
            x[0, g] = x[0, g] + self.vec
        return x


# --------------------------------------------------------------------------------------
# The model


class Model:
    def __init__(self, model_dir, device):
        with open(f"{model_dir}/config.json") as f:
            self.family = json.load(f).get("model_type")
        if self.family not in CLASSES:
            raise SystemExit(f"{model_dir}: model_type {self.family!r}, want llava, instructblip or chameleon")
        self.hf = CLASSES[self.family].from_pretrained(model_dir, dtype=torch.float32, attn_implementation="eager").to(device).eval()
        self.lm = self.hf.get_decoder()  # LlamaModel: its config is the text config alone
        self.layers = list(self.lm.layers)
        self.device = device
        self.pre = None  # a Patch, or a recorder of the rows entering each layer
        for i, layer in enumerate(self.layers):
            layer.register_forward_pre_hook(self._resid_pre(i), with_kwargs=True)

    def _resid_pre(self, i):
        def hook(_module, args, kwargs):
            if self.pre is None:
                return None
            if args:
                return (self.pre(i, args[0]), *args[1:]), kwargs
            return args, {**kwargs, "hidden_states": self.pre(i, kwargs["hidden_states"])}

        return hook

    def inputs(self, pixel_values, ids, qformer_ids):
        """HF's forward arguments, the image tokens expanded / placed as the processors do."""
        cfg = self.hf.config
        image = self.hf.model.vocabulary_mapping.image_token_id if self.family == "chameleon" else cfg.image_token_id
        n_image = sum(1 for t in ids if t == image)
        if self.family == "chameleon":
            n = int((torch.tensor(ids) == image).sum())
            codes = self.hf.model.get_image_tokens(pixel_values[None].to(self.device))[0].tolist()
            if n != len(codes):
                raise SystemExit(f"--input-ids has {n} image placeholders (id {image}); the image is {len(codes)} tokens")
            it = iter(codes)
            ids = [next(it) if t == image else t for t in ids]
            t = torch.tensor([ids], dtype=torch.long, device=self.device)
            return {"input_ids": t, "attention_mask": torch.ones_like(t)}, ids
        if self.family == "llava":
            n = cfg.image_seq_length
            if n_image == 1:
                ids = [t for i in ids for t in ([image] * n if i == image else [i])]
            elif n_image != n:
                raise SystemExit(f"--input-ids has {n_image} image tokens (id {image}); want 1 or {n}")
            x = {}
        else:
            if qformer_ids is None:
                raise SystemExit("InstructBLIP needs --qformer-input-ids")
            q = cfg.num_query_tokens
            if n_image == 0:
                ids = [image] * q + ids
            elif ids[:q] != [image] * q or n_image != q:
                raise SystemExit(f"--input-ids has {n_image} image tokens (id {image}); want none or the first {q}")
            qt = torch.tensor([qformer_ids], dtype=torch.long, device=self.device)
            x = {"qformer_input_ids": qt, "qformer_attention_mask": torch.ones_like(qt)}
        t = torch.tensor([ids], dtype=torch.long, device=self.device)
        x.update(input_ids=t, attention_mask=torch.ones_like(t), pixel_values=pixel_values[None])
        return x, ids

    @torch.no_grad()
    def run(self, x, edit=None, patch=None, record=False):
        """One prefill; returns the last-position logits [vocab] and, with record, the rows entering each layer."""
        global ACTIVE
        rows = {}
        ACTIVE, self.pre = edit, patch
        if record:
            def keep(i, h):
                rows[i] = h[0].clone()
                return h
            self.pre = keep
        try:
            out = self.hf(**x, use_cache=False, return_dict=True)
        finally:
            ACTIVE, self.pre = None, None
        return out.logits[0, -1].float(), [rows[i] for i in range(len(self.layers))] if record else None

    @torch.no_grad()
    def greedy(self, x, edit, n_new):
        """model.generate, greedy, EOS neither stopping nor masked, the edit at every step."""
        global ACTIVE
        ACTIVE = edit
        try:
            out = self.hf.generate(**x, max_new_tokens=n_new, do_sample=False, eos_token_id=None, pad_token_id=0)
        finally:
            ACTIVE = None
        return out[0, -n_new:].tolist()

    @torch.no_grad()
    def states(self, x, ids, path):
        """The un-intervened forward with HF's stock eager attention, to a safetensors file."""
        self.lm.set_attn_implementation("eager")
        out = self.hf(**x, use_cache=False, output_hidden_states=True, return_dict=True)
        lm = getattr(out, "language_model_outputs", None)
        hidden = (out if lm is None else lm).hidden_states
        t = {f"hidden_states.{l}": h[0] for l, h in enumerate(hidden)}
        t["logits"] = out.logits[0]
        t = {k: v.float().cpu().contiguous() for k, v in t.items()}
        t["input_ids"] = torch.tensor(ids, dtype=torch.int32)
        save_file(t, path, metadata={"format": FORMAT, "version": VERSION})


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


def parse_ids(text, flag):
    try:
        return [int(t) for t in text.split(",") if t.strip()]
    except ValueError:
        raise SystemExit(f"{flag}: not a comma-separated list of token ids: {text!r}") from None


def read_pixels(path, shape, device):
    v = np.fromfile(path, dtype="<f4")
    if v.size != int(np.prod(shape)):
        raise SystemExit(f"{path}: {v.size} floats, --pixel-shape {shape} needs {int(np.prod(shape))}")
    return torch.from_numpy(v.astype(np.float32).reshape(shape)).to(device)


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


def parser():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", required=True)
    ap.add_argument("--pixel-values", required=True)
    ap.add_argument("--pixel-shape", required=True)
    ap.add_argument("--input-ids", required=True)
    ap.add_argument("--qformer-input-ids", default=None)
    g = ap.add_mutually_exclusive_group(required=True)
    g.add_argument("--knockout")
    g.add_argument("--ablate")
    g.add_argument("--patch")
    g.add_argument("--states")
    ap.add_argument("--answer-id", type=int, default=None)
    ap.add_argument("--max-new-tokens", type=int, default=0)
    ap.add_argument("--with-logits", action="store_true")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--threads", type=int, default=None)
    return ap


def job(a, models):
    """One call's answer (a dict); models caches the loaded checkpoints by (folder, device)."""
    if a.threads:
        torch.set_num_threads(a.threads)
    if (a.model, a.device) not in models:
        models[a.model, a.device] = Model(a.model, a.device)
    m = models[a.model, a.device]
    tc = m.hf.config.get_text_config()
    L, H, d, V = tc.num_hidden_layers, tc.num_attention_heads, tc.hidden_size, m.hf.get_output_embeddings().weight.shape[0]
    shape = parse_ids(a.pixel_shape, "--pixel-shape")
    pix = read_pixels(a.pixel_values, shape, a.device)
    ids = parse_ids(a.input_ids, "--input-ids")
    if not ids:
        raise SystemExit("--input-ids is empty")
    qids = None if a.qformer_input_ids is None else parse_ids(a.qformer_input_ids, "--qformer-input-ids")
    x, full_ids = m.inputs(pix, ids, qids)
    seq = len(full_ids)
    res = {"reference": {"format": FORMAT, "version": VERSION}, "family": m.family, "seq": seq,
           "versions": {"torch": torch.__version__, "transformers": tr.__version__}}
    if a.states is not None:
        m.states(x, full_ids, a.states)
        return res

    m.lm.set_attn_implementation(ATTN)  # the language model only; the towers stay eager
    base_logits, _ = m.run(x)
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
        logits_all, tokens = [], []
        for e in entries:
            gen_from = seq if e.get("generated", False) else None
            edit = Knockout(check_positions(e["dst"], seq, "dst"), check_positions(e["src"], seq, "src"), check_layers(e["layers"], L, "layers"), gen_from)
            logits, _ = m.run(x, edit)
            res["p"].append(p_of(logits))
            res["argmax"].append(int(torch.argmax(logits)))
            logits_all.append(f32_list(logits))
            if a.max_new_tokens > 0:
                tokens.append(m.greedy(x, edit, a.max_new_tokens))
        if a.max_new_tokens > 0:
            res["tokens_base"] = m.greedy(x, None, a.max_new_tokens)
            res["tokens"] = tokens
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
            edit = Ablate(check_positions(e["keys"], seq, "keys"), check_layers(e["layers"], L, "layers"), heads)
            logits, _ = m.run(x, edit)
            res["p_answer"].append(p_of(logits))
            res["argmax_after"].append(int(torch.argmax(logits)))
            logits_all.append(f32_list(logits))
            if a.max_new_tokens > 0:
                tokens.append(m.greedy(x, edit, a.max_new_tokens))
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
            xs, _ = m.inputs(read_pixels(spec["source_pixel_values"], shape, a.device), ids, qids)
            src_logits, src_states = m.run(xs, record=True)
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
            logits, _ = m.run(x, patch=Patch(group, l, on, src_states if mode == "copy" else None, vec))
            r = {"layer": l, "logit_diff": diff(logits), "top_id": int(torch.argmax(logits))}
            if a.with_logits:
                r["last_logits"] = f32_list(logits)
            res["results"].append(r)
    return res


def main():
    if sys.argv[1:2] == ["--batch"]:
        if len(sys.argv) != 3:
            raise SystemExit("usage: interventions_ref.py --batch JOBS.json")
        jobs = read_json_arg(sys.argv[2], "--batch")
        if not (isinstance(jobs, list) and all(isinstance(j, list) and all(isinstance(t, str) for t in j) for j in jobs)):
            raise SystemExit("--batch wants a JSON list of argument lists")
        models = {}
        print(json.dumps([job(parser().parse_args(j), models) for j in jobs]))
    else:
        print(json.dumps(job(parser().parse_args(), {})))


if __name__ == "__main__":
    main()
