"""The shapes-world tasks written by prepare.ts, as model inputs in each family's real
prompt format.

LLaVA (chat template of llava-1.5, multi-turn as in its instruction data):
    <s>USER: <image>\\n{q1} ASSISTANT: {a1}</s>USER: {q2} ASSISTANT: {a2}</s>...
with <image> expanded to one token per patch feature. InstructBLIP (one instruction):
    LM      [image]*Q </s>{q} {a}</s>        (BOS is </s> for Vicuna InstructBLIP)
    Q-Former [CLS] {q} [SEP]
Labels are the answer tokens (with their EOS) only.
"""
import json
import os

import numpy as np
import torch

import st

TASKS = ["colour", "shape", "count", "existence", "position", "caption"]
CAPTION = TASKS.index("caption")


def rows(a):
    """A -1-padded id matrix as a list of id lists."""
    return [r[r >= 0].tolist() for r in a]


class TaskSet:
    def __init__(self, path, model_dir):
        t, meta = st.read(path)
        with open(os.path.join(model_dir, "config.json")) as f:
            self.cfg = json.load(f)
        if meta.get("arch") != self.cfg["model_type"]:
            raise SystemExit(f"{path} holds {meta.get('arch')} tasks, {model_dir} is {self.cfg['model_type']}")
        with open(os.path.join(model_dir, "preprocessor_config.json")) as f:
            pre = json.load(f)
        self.mean = torch.tensor(pre["image_mean"])[:, None, None]
        self.std = torch.tensor(pre["image_std"])[:, None, None]
        self.scale = pre.get("rescale_factor", 1 / 255)
        self.meta = meta
        self.pixels = t["pixels"]
        self.scene = t["scene"]
        self.task = t["task"]
        self.patches = torch.from_numpy(t["patches"].astype(np.int64))  # [N, G*G, 3]
        self.answer = rows(t["answer"])
        self.arch = self.cfg["model_type"]
        if self.arch == "llava":
            self.first, self.turn = rows(t["first"]), rows(t["turn"])
            grid = self.cfg["vision_config"]["image_size"] // self.cfg["vision_config"]["patch_size"]
            self.n_image = grid * grid
        else:
            self.prompt, self.qformer = rows(t["prompt"]), rows(t["qformer"])
            self.n_image = self.cfg["num_query_tokens"]
        self.image_token = self.cfg["image_token_index"]
        self.pad = self.cfg["text_config"].get("pad_token_id", 0)
        # the ids answers can hold, and each id's index among them (train.py's softmax)
        self.answer_vocab = torch.tensor(sorted({t for a in self.answer for t in a}))
        self.answer_index = torch.full((int(self.answer_vocab.max()) + 1,), -1, dtype=torch.long)
        self.answer_index[self.answer_vocab] = torch.arange(len(self.answer_vocab))
        # prepare.ts writes the tasks of scene i at rows 6i .. 6i+5, in TASKS order
        assert (self.task.reshape(-1, len(TASKS)) == np.arange(len(TASKS))).all()

    @property
    def n_scenes(self):
        return self.pixels.shape[0]

    def pixel_values(self, scenes, blank=False):
        """[B, 3, S, S] as the image processor makes them (images are already at size S)."""
        px = torch.from_numpy(self.pixels[scenes]).permute(0, 3, 1, 2).float()
        if blank:
            px = torch.full_like(px, 128.0)
        return (px * self.scale - self.mean) / self.std

    def prompt_ids(self, k, first=True):
        """The LM prompt of task row k as a single turn (the image tokens expanded)."""
        if self.arch == "llava":
            ids = self.first[k] if first else self.turn[k]
            out = []
            for t in ids:
                out += [t] * self.n_image if t == self.image_token else [t]
            return out
        return [self.image_token] * self.n_image + self.prompt[k]

    def batch(self, sequences):
        """[(ids, labels)] -> ids [B, T] (right-padded), labels [B, T] (-100 = no loss)."""
        T = max(len(s) for s, _ in sequences)
        ids = torch.full((len(sequences), T), self.pad, dtype=torch.long)
        lab = torch.full((len(sequences), T), -100, dtype=torch.long)
        for b, (s, l) in enumerate(sequences):
            ids[b, : len(s)] = torch.tensor(s)
            lab[b, : len(l)] = torch.tensor(l)
        return ids, lab

    def qformer_batch(self, ks):
        T = max(len(self.qformer[k]) for k in ks)
        q = torch.full((len(ks), T), -1, dtype=torch.long)
        for b, k in enumerate(ks):
            q[b, : len(self.qformer[k])] = torch.tensor(self.qformer[k])
        return q

    def conversation(self, rng, scene, turns=1):
        """One random task of the scene, or for LLaVA with turns > 1 a conversation: a
        random subset of up to `turns` of the scene's questions in random order, the
        caption last with probability 1/2 (always when no question was drawn).
        Returns (task rows, ids, labels)."""
        base = scene * len(TASKS)
        if turns == 1 or self.arch != "llava":
            qs = [int(rng.integers(len(TASKS)))]
        else:
            qs = list(rng.permutation(CAPTION)[: int(rng.integers(0, min(turns, CAPTION) + 1))])
            if not qs or rng.random() < 0.5:
                qs.append(CAPTION)
        ids, lab, ks = [], [], []
        for i, t in enumerate(qs):
            k = base + int(t)
            p = self.prompt_ids(k, first=i == 0)
            ids += p + self.answer[k]
            lab += [-100] * len(p) + self.answer[k]
            ks.append(k)
        return ks, ids, lab
