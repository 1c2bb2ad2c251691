"""The HF transformers baseline of `npm run bench` (models and interventions groups).

bench/hf.ts starts ONE of these per benchmark group and keeps it: a checkpoint is loaded
once, then every timed request runs on a warm model, so neither Python's start-up nor
the weight loading is inside a timed figure (both are reported apart). It runs on the
CPU in float32 with torch.set_num_threads(os.cpu_count()), on exactly the inputs
phaselens prepared (PREFIX.json + PREFIX.f32, as bench/gpu/device-bench --inputs-out
writes them), and does the same work as phaselens's side of each case:

  prefill   one forward, no KV cache, logits of the last position only (logits_to_keep=1);
            SDPA attention (the default)
  decode    greedy with the KV cache, EOS ignored: the prefill, then T-1 one-token steps
            (timed: the T-1 steps, as phaselens's generate() times them); SDPA attention,
            or "attn": "eager" (the host-overhead group)
  chain     torch's per-op cost: N out-of-place adds of a SIZE-float tensor, each on the
            last one's result (the host-overhead group's kernel chain)
  analyze   eager attention, output_hidden_states + output_attentions, then the metrics
            of `phaselens analyze` in torch (bench/gpu/hf_metrics.py)
  vq        Chameleon: model.model.get_image_tokens(pixel_values), the VQ encoder to the
            image's BPE ids
  gate      eager attention, output_hidden_states + output_attentions, then the measures of
            `phaselens gate` in torch: per hidden state (and the last layer before the
            final norm) the quartiles of |cos| over every image x text pair; per layer the
            head-averaged attention of each text query on each image-side group, averaged
            over the queries (`of_all`)
  knockout  the un-intervened forward, then one full forward per entry with attention from
            the entry's DST rows to its SRC columns blocked (finfo.min in the additive mask,
            SDPA) in the entry's layers; p = softmax(last logits)[answer], answer = the
            un-intervened argmax

Protocol: one JSON request per line on stdin, one JSON answer per line on stdout (what
the libraries print goes to stderr). A failed request answers {"ok": false, "error"} and
the process stays up. Timed requests: one warm-up, then the median of "reps".

  {"op": "versions"}                        -> python, torch, transformers, threads, import_s
  {"op": "load", "model": DIR}              -> load_s, family
  {"op": "inputs", "prefix": P}             the inputs of the requests that follow
  {"op": "prefill", "reps": N}              -> s, all, last_logits
  {"op": "decode", "new_tokens": T, "reps": N[, "attn": "eager"]}  -> s, all, tokens
  {"op": "chain", "n": N, "size": SIZE, "reps": R}   -> s, all (seconds per chain)
  {"op": "analyze", "k": K, "reps": N}               -> s, all
  {"op": "vq", "reps": N}                   -> s, all, ids
  {"op": "gate", "queries": [..], "groups": [[..], ..], "image": [..], "text": [..], "reps": N}
                                            -> s, all, separation [[q1, median, q3] per state], of_all [layer][group]
  {"op": "knockout", "entries": [{"dst": [..], "src": [..], "layers": [..]}], "reps": N}
                                            -> s, all, answer, p_base, p
"""
import json
import os
import statistics
import sys
import time

T_START = time.perf_counter()
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "gpu"))

import torch  # noqa: E402
import transformers  # noqa: E402

import hf_bench  # noqa: E402  (load_model, read_inputs, lm_weights, PrenormHook, greedy_decode, timed)
from hf_metrics import compute_metrics  # noqa: E402

IMPORT_S = time.perf_counter() - T_START
torch.set_num_threads(os.cpu_count())
torch.set_grad_enabled(False)

KNOCKOUT = "phaselens_knockout"


class Knockout:
    """Which LM attention modules block which (query, key) pairs in the current forward."""

    def __init__(self):
        self.layer_of = {}  # id(self_attn module) -> decoder layer
        self.layers = set()
        self.block = None  # bool [seq, seq]

    def attention(self, module, query, key, value, attention_mask, **kw):
        # the additive float mask of eager_mask (registered below): blocked pairs get finfo.min
        if self.layer_of.get(id(module)) in self.layers:
            attention_mask = attention_mask.masked_fill(self.block, torch.finfo(attention_mask.dtype).min)
        return SDPA(module, query, key, value, attention_mask, **kw)


SDPA = transformers.AttentionInterface._global_mapping["sdpa"]
KNOCK = Knockout()
transformers.AttentionInterface.register(KNOCKOUT, KNOCK.attention)
from transformers.masking_utils import AttentionMaskInterface, eager_mask  # noqa: E402

AttentionMaskInterface.register(KNOCKOUT, eager_mask)


class Baseline:
    def __init__(self):
        self.model = None
        self.family = None
        self.meta = None
        self.x = None

    def versions(self, _r):
        return {"python": sys.version.split()[0], "torch": torch.__version__, "transformers": transformers.__version__,
                "threads": torch.get_num_threads(), "import_s": IMPORT_S}

    def load(self, r):
        self.model = None
        t0 = time.perf_counter()
        self.family, self.model = hf_bench.load_model(r["model"], torch.float32, "sdpa", "cpu")
        load_s = time.perf_counter() - t0
        self.weights = hf_bench.lm_weights(self.model)
        self.prenorm = hf_bench.PrenormHook(self.model)
        KNOCK.layer_of = {id(layer.self_attn): l for l, layer in enumerate(hf_bench.decoder_of(self.model).layers)}
        return {"load_s": load_s, "family": self.family}

    def inputs(self, r):
        self.meta, self.x = hf_bench.read_inputs(r["prefix"], "cpu", torch.float32)
        return {"seq": len(self.meta["ids"])}

    def attn(self, impl):
        if hf_bench.attn_impl(self.model) != impl:
            self.model.set_attn_implementation(impl)

    def prefill(self, r):
        self.attn("sdpa")
        out = {}

        def once():
            out["logits"] = self.model(**self.x, use_cache=False, logits_to_keep=1).logits[0, -1]

        t = hf_bench.timed(once, r["reps"], "cpu")
        return {"s": t["median"], "all": t["all"], "last_logits": out["logits"].tolist()}

    def decode(self, r):
        """The median time of the T-1 one-token steps alone (what generate()'s decodeMs covers)."""
        self.attn(r.get("attn", "sdpa"))
        hf_bench.greedy_decode(self.model, self.x, r["new_tokens"], "cpu")  # warm-up
        runs = [hf_bench.greedy_decode(self.model, self.x, r["new_tokens"], "cpu") for _ in range(r["reps"])]
        s = [d["s"] for d in runs]
        return {"s": statistics.median(s), "all": s, "tokens": runs[-1]["ids"], "steps": runs[-1]["tokens"]}

    def chain(self, r):
        a = torch.ones(r["size"], dtype=torch.float32)

        def once():
            x = a
            for _ in range(r["n"]):
                x = torch.add(x, a)
            return float(x[0])  # the result on the host, as the other side's read

        t = hf_bench.timed(once, r["reps"], "cpu")
        return {"s": t["median"], "all": t["all"]}

    def analyze(self, r):
        self.attn("eager")
        m = self.meta

        def once():
            out = self.model(**self.x, output_hidden_states=True, output_attentions=True, use_cache=False, logits_to_keep=1)
            lm = getattr(out, "language_model_outputs", None) or out  # InstructBLIP nests the LM's outputs
            hs = [h[0] for h in lm.hidden_states]
            att = [a[0] for a in lm.attentions]
            return compute_metrics(hs, att, self.prenorm.value[0], self.weights, m["image"], m["text"], m["query"], r["k"])

        t = hf_bench.timed(once, r["reps"], "cpu")
        return {"s": t["median"], "all": t["all"]}

    def vq(self, r):
        out = {}

        def once():
            out["ids"] = self.model.model.get_image_tokens(self.x["pixel_values"])[0]

        t = hf_bench.timed(once, r["reps"], "cpu")
        return {"s": t["median"], "all": t["all"], "ids": out["ids"].tolist()}

    def gate(self, r):
        self.attn("eager")
        queries, image, text = (torch.tensor(r[k]) for k in ("queries", "image", "text"))
        groups = [torch.tensor(g) for g in r["groups"]]
        quartiles = torch.tensor([0.25, 0.5, 0.75])
        out = {}

        def once():
            o = self.model(**self.x, output_hidden_states=True, output_attentions=True, use_cache=False, logits_to_keep=1)
            sep = []
            for h in [*o.hidden_states, self.prenorm.value]:
                u = torch.nn.functional.normalize(h[0], dim=-1)
                sep.append(torch.quantile((u[image] @ u[text].T).abs().flatten(), quartiles).tolist())
            share = []
            for a in o.attentions:  # [1, H, S, S]
                m = a[0].mean(0)[queries]  # the text queries' rows, head-averaged
                share.append([float(m[:, g].sum(1).mean()) for g in groups])
            out.update(separation=sep, of_all=share)

        t = hf_bench.timed(once, r["reps"], "cpu")
        return {"s": t["median"], "all": t["all"], **out}

    def knockout(self, r):
        self.attn(KNOCKOUT)
        seq = len(self.meta["ids"])
        out = {}

        def last_probs():
            return torch.softmax(self.model(**self.x, use_cache=False, logits_to_keep=1).logits[0, -1].float(), -1)

        def sweep():
            KNOCK.layers = set()
            base = last_probs()
            answer = int(base.argmax())
            ps = []
            for e in r["entries"]:
                block = torch.zeros(seq, seq, dtype=torch.bool)
                block[torch.tensor(e["dst"])[:, None], torch.tensor(e["src"])[None, :]] = True
                KNOCK.block, KNOCK.layers = block, set(e["layers"])
                ps.append(float(last_probs()[answer]))
            KNOCK.layers = set()
            out.update(answer=answer, p_base=float(base[answer]), p=ps)

        t = hf_bench.timed(sweep, r["reps"], "cpu")
        return {"s": t["median"], "all": t["all"], **out}


def main():
    reply = sys.stdout
    sys.stdout = sys.stderr  # stray prints must not break the protocol
    b = Baseline()
    ops = {"versions": b.versions, "load": b.load, "inputs": b.inputs, "prefill": b.prefill,
           "decode": b.decode, "chain": b.chain, "analyze": b.analyze, "vq": b.vq, "gate": b.gate, "knockout": b.knockout}
    for line in sys.stdin:
        if not line.strip():
            continue
        try:
            r = json.loads(line)
            with torch.inference_mode():
                res = {"ok": True, **ops[r["op"]](r)}
        except Exception as e:  # answer and stay up: the client turns it into the group's failure
            res = {"ok": False, "error": f"{type(e).__name__}: {e}"}
        reply.write(json.dumps(res) + "\n")
        reply.flush()


if __name__ == "__main__":
    main()
