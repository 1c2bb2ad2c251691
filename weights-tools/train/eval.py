"""Held-out evaluation of a shipped organism checkpoint (its f16 weights, upcast).

  $(bash .ci/hf-venv.sh) weights-tools/train/eval.py --model DIR --data HELDOUT.safetensors --out eval.json

HELDOUT is prepare.ts output for a world seed training never used. Every task is asked
as a single first turn in the family's prompt format and answered greedily over the full
32064-token vocabulary until EOS (at most --max-new-tokens):
  - VQA: exact match of the decoded answer, per question type;
  - caption: object-word recall = |reference colour and shape words ∩ generated words| /
    |reference colour and shape words| (as sets, per caption, then averaged), and the
    stricter object recall: the fraction of reference objects whose "colour shape" pair
    appears in the generated caption;
  - the same questions with a blank grey image (128) instead of the scene, for colour and
    shape (chance: 1/8 and 1/5; a model that answers one word always gets that word's
    share), and every other type.
"""
import argparse
import json
import os
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import model as M  # noqa: E402
import st  # noqa: E402
from tasks import CAPTION, TASKS, TaskSet  # noqa: E402

COLOURS = ["red", "green", "blue", "yellow", "purple", "orange", "white", "black"]
SHAPES = ["circle", "square", "triangle", "star", "cross"]


def load(model_dir, cfg):
    m = M.build(cfg)
    files = ["model.safetensors"]
    index = os.path.join(model_dir, "model.safetensors.index.json")
    if os.path.exists(index):
        with open(index) as f:
            files = sorted(set(json.load(f)["weight_map"].values()))
    w = {}
    for fn in files:
        w.update({k: torch.from_numpy(v.astype(np.float32)) for k, v in st.read(os.path.join(model_dir, fn))[0].items()})
    if set(w) != set(m.w):
        raise SystemExit(f"{model_dir}: tensors differ from the organism layout: {sorted(set(w) ^ set(m.w))[:5]}")
    m.w = w
    return m


class Decoder:
    """ids -> text for the LLaMA SentencePiece vocabulary (▁ = space; the organisms' words
    never need byte pieces)."""

    def __init__(self, model_dir):
        with open(os.path.join(model_dir, "tokenizer.json")) as f:
            tj = json.load(f)
        self.piece = {i: p for p, i in tj["model"]["vocab"].items()}
        self.piece.update({t["id"]: t["content"] for t in tj["added_tokens"]})

    def __call__(self, ids):
        return "".join(self.piece.get(i, "<?>") for i in ids).replace("\u2581", " ").strip()


@torch.no_grad()
def greedy(m, data, ks, blank, max_new, eos):
    """Answer ids for task rows ks (grouped by prompt length, so no padding is needed)."""
    out = {}
    by_len = {}
    for k in ks:
        by_len.setdefault(len(data.prompt_ids(k)), []).append(k)
    for group in by_len.values():
        for at in range(0, len(group), 64):
            part = group[at: at + 64]
            ids = torch.tensor([data.prompt_ids(k) for k in part])
            px = data.pixel_values([int(data.scene[k]) for k in part], blank)
            q = data.qformer_batch(part) if data.arch != "llava" else None
            done = torch.zeros(len(part), dtype=torch.bool)
            gen = []
            for _ in range(max_new):
                h = m.hidden(px, ids) if q is None else m.hidden(px, ids, q)
                nxt = M.lm_logits(m.w, h[:, -1]).argmax(-1)
                nxt = torch.where(done, torch.full_like(nxt, eos), nxt)
                gen.append(nxt)
                done |= nxt == eos
                if done.all():
                    break
                ids = torch.cat([ids, nxt[:, None]], 1)
            g = torch.stack(gen, 1).tolist()
            for k, row in zip(part, g):
                out[k] = row[: row.index(eos)] if eos in row else row
    return out


def words(text):
    return set(text.replace(",", " ").replace(".", " ").lower().split())


def caption_scores(ref, gen):
    ref_w = [w for w in ref.split() if w in COLOURS or w in SHAPES]
    word = len(set(ref_w) & words(gen)) / len(set(ref_w))
    pairs = [f"{c} {s}" for c, s in zip(ref.split(), ref.split()[1:]) if c in COLOURS and s in SHAPES]
    obj = sum(p in gen for p in pairs) / len(pairs)
    return word, obj


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", required=True)
    ap.add_argument("--data", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--max-new-tokens", type=int, default=40)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--examples", type=int, default=3, help="examples per task kept in the output")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    data = TaskSet(a.data, a.model)
    m = load(a.model, data.cfg)
    decode = Decoder(a.model)
    eos = 2
    rows = list(range(len(data.task)))
    result = {"model": os.path.abspath(a.model), "data_seed": int(data.meta.get("seed", -1)), "scenes": data.n_scenes}
    for blank in (False, True):
        gen = greedy(m, data, rows, blank, a.max_new_tokens, eos)
        scores, examples = {}, {}
        for t, name in enumerate(TASKS):
            ks = [k for k in rows if data.task[k] == t]
            pairs = [(decode(data.answer[k][:-1]), decode(gen[k])) for k in ks]
            examples[name] = [{"reference": r, "generated": g} for r, g in pairs[: a.examples]]
            if t == CAPTION:
                s = np.array([caption_scores(r, g) for r, g in pairs])
                scores[name] = {"object_word_recall": float(s[:, 0].mean()), "object_recall": float(s[:, 1].mean()), "n": len(ks)}
            else:
                answers = [g for _, g in pairs]
                top = max(set(answers), key=answers.count)
                scores[name] = {"accuracy": float(np.mean([r == g for r, g in pairs])), "n": len(ks),
                                "most_common_answer": top, "most_common_share": answers.count(top) / len(answers)}
        result["blank_image" if blank else "held_out"] = {"scores": scores, "examples": examples}
        print(json.dumps({"blank" if blank else "scene": scores}), flush=True)
    with open(a.out, "w") as f:
        json.dump(result, f, indent=1)


if __name__ == "__main__":
    main()
