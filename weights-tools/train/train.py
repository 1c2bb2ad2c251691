"""Trains a shapes-world organism (CPU, one process, fixed seeds).

  $(bash .ci/hf-venv.sh) weights-tools/train/train.py --model SKELETON --data TRAIN.safetensors \\
      --steps 1200 --batch 48 --out TRAINED.safetensors [--log train.json] [--threads 1]

SKELETON is the organism folder written by organisms.ts (config.json, tokenizer and
processor files); TRAIN the tasks prepare.ts wrote from that folder's tokenizers. The
output holds every parameter under its HF name in float32 (export.ts turns it into the
f16 checkpoint); --log gets the recipe, the loss curve and the wall time.

Recipe: stage 1 (vision_stage below) trains the vision tower alone on per-patch object
attributes; stage 2 trains the rest (the tower stays frozen, as the pretrained one does in
LLaVA-1.5 and InstructBLIP) on the tasks with AdamW (lr 2e-3, betas 0.9/0.98,
weight decay 0.01 on matrices), linear warm-up over the first 5 % of steps, cosine decay
to 10 %, gradient norm clipped at 1, cross-entropy on the answer tokens only. The softmax of that loss runs over the ids that
occur in the data's answers (about 70 of the 32064), not the whole vocabulary: the full
lm_head would be over a third of a step's arithmetic, for logits whose only lesson is
"not one of the 32000 words this world never uses". The other rows keep their small
random initialisation, so at inference (full vocabulary) they stay far below the trained
answers; eval.py measures with the full vocabulary.
"""
import argparse
import json
import math
import os
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import model as M  # noqa: E402
import st  # noqa: E402
from tasks import TaskSet  # noqa: E402


def answer_loss(m, data, rng, batch, turns=1, chunks=2):
    """Mean cross-entropy over the answer tokens of `batch` conversations, run in
    `chunks` forwards of similar-length conversations (less padding, and attention is
    quadratic in the padded length)."""
    scenes = rng.integers(data.n_scenes, size=batch)
    convs = sorted(((int(s),) + data.conversation(rng, int(s), turns) for s in scenes), key=lambda c: len(c[2]))
    total, count = 0.0, 0
    for part in np.array_split(np.arange(batch), min(chunks, batch)):
        group = [convs[i] for i in part]
        ids, lab = data.batch([(i, l) for _, _, i, l in group])
        px = data.pixel_values([s for s, _, _, _ in group])
        h = m.hidden(px, ids) if data.arch == "llava" else m.hidden(px, ids, data.qformer_batch([ks[0] for _, ks, _, _ in group]))
        target = lab[:, 1:]
        at = target != -100  # the logits at position j predict token j + 1
        logits = h[:, :-1][at] @ m.w[M.LM + "embed_tokens.weight"][data.answer_vocab].t()
        total = total + F.cross_entropy(logits, data.answer_index[target[at]], reduction="sum")
        count += int(at.sum())
    return total / count


VISION_CLASSES = (5, 8, 2)  # shapes, colours, sizes (world.ts)


def vision_stage(m, data, rng, steps, batch, lr):
    """Stage 1, the stand-in for a pretrained vision tower (LLaVA starts from CLIP, InstructBLIP
    from EVA): the tower alone learns to tell, from the features the next module reads, which
    shape, colour and size sits in each patch, through a linear head that is then dropped.
    Without it the decoder learns the answers' priors long before the random tower says
    anything useful, and the image pathway stays unused. Returns the loss curve."""
    d = data.cfg["vision_config"]["hidden_size"]
    g = torch.Generator().manual_seed(int(rng.integers(1 << 31)))
    head = (torch.randn(1 + sum(VISION_CLASSES), d, generator=g) * M.STD).requires_grad_(True)
    tower = [p for n, p in m.w.items() if n.startswith(("vision_tower.", "vision_model."))]
    opt = torch.optim.AdamW(tower + [head], lr=lr, weight_decay=0.0)
    curve, window = [], []
    for step in range(steps):
        scenes = rng.integers(data.n_scenes, size=batch)
        logits = m.vision_features(data.pixel_values(scenes)) @ head.t()  # [B, P, 16]
        y = data.patches[scenes]  # [B, P, 3]
        empty = y[..., 0] < 0
        # shape head has one more class: no object centred in this patch
        loss = F.cross_entropy(logits[..., :6].reshape(-1, 6), torch.where(empty, 5, y[..., 0]).reshape(-1))
        at = 6
        for k, n in enumerate(VISION_CLASSES[1:], 1):
            if (~empty).any():
                loss = loss + F.cross_entropy(logits[..., at: at + n][~empty], y[..., k][~empty])
            at += n
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        window.append(loss.item())
        if (step + 1) % 50 == 0 or step + 1 == steps:
            curve.append({"step": step + 1, "loss": float(np.mean(window))})
            print(json.dumps({"vision": curve[-1]}), flush=True)
            window = []
    return curve


def lr_at(step, steps, lr):
    warm = max(1, steps // 20)
    if step < warm:
        return lr * (step + 1) / warm
    return lr * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * (step - warm) / max(1, steps - warm))))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", required=True)
    ap.add_argument("--data", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--log", default=None)
    ap.add_argument("--steps", type=int, default=3000)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--vision-steps", type=int, default=400, help="stage 1 (vision tower on per-patch attributes) steps, batch 4x --batch")
    ap.add_argument("--train-vision", dest="freeze_vision", action="store_false",
                    help="also train the vision tower in stage 2 (default: frozen after stage 1, as LLaVA-1.5 and InstructBLIP keep theirs)")
    ap.add_argument("--turns", type=int, default=1, help="LLaVA: conversations of up to N questions (default 1: one task per sequence)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--every", type=int, default=50, help="log the mean loss every N steps")
    a = ap.parse_args()
    if a.steps < 1 or a.batch < 1:
        ap.error("--steps and --batch must be positive")
    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    rng = np.random.default_rng(a.seed)

    data = TaskSet(a.data, a.model)
    m = M.build(data.cfg, a.seed)
    t0 = time.perf_counter()
    vision = vision_stage(m, data, rng, a.vision_steps, 4 * a.batch, a.lr) if a.vision_steps else []
    for n, p in m.w.items():
        p.requires_grad_(not (a.freeze_vision and n.startswith(("vision_tower.", "vision_model."))))
    params = [p for p in m.w.values() if p.requires_grad]
    decay = [p for p in params if p.dim() >= 2]
    rest = [p for p in params if p.dim() < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.01}, {"params": rest, "weight_decay": 0.0}], lr=a.lr, betas=(0.9, 0.98))

    curve, window = [], []
    for step in range(a.steps):
        for g in opt.param_groups:
            g["lr"] = lr_at(step, a.steps, a.lr)
        loss = answer_loss(m, data, rng, a.batch, a.turns)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        window.append(loss.item())
        if (step + 1) % a.every == 0 or step + 1 == a.steps:
            curve.append({"step": step + 1, "loss": float(np.mean(window)), "s": round(time.perf_counter() - t0, 1)})
            print(json.dumps(curve[-1]), flush=True)
            window = []
    wall = time.perf_counter() - t0

    st.write(a.out, {k: v.numpy().astype(np.float32) for k, v in M.saved_tensors(m).items()},
             {"format": "phaselens-organism-f32", "arch": data.arch, "steps": a.steps})
    log = {
        "arch": data.arch, "data": os.path.abspath(a.data), "data_seed": int(data.meta.get("seed", -1)), "data_scenes": data.n_scenes,
        "seed": a.seed, "vision_steps": a.vision_steps, "freeze_vision": a.freeze_vision, "vision_curve": vision, "turns": a.turns, "steps": a.steps, "batch": a.batch, "lr": a.lr, "threads": a.threads, "torch": torch.__version__,
        "wall_s": round(wall, 1), "first_loss": curve[0]["loss"], "final_loss": curve[-1]["loss"], "curve": curve,
        "params": sum(p.numel() for p in m.w.values()),
    }
    if a.log:
        with open(a.log, "w") as f:
            json.dump(log, f, indent=1)
    print(json.dumps({k: log[k] for k in ("arch", "steps", "wall_s", "first_loss", "final_loss", "params")}))


if __name__ == "__main__":
    main()
