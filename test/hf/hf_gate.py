"""HF transformers reference for the narrow-gate measures (src/probes/gate.ts).

Runs ChameleonForConditionalGeneration (eager attention, float32) on LM input ids in
which the image placeholders already hold the image's BPE ids (phaselens' dump gives
them; the Chameleon parity test checks they equal HF's), with output_attentions and
output_hidden_states, and prints JSON:

  attention[l][g]   mean over the text queries of the head-averaged attention mass on
                    group g's keys (groups as given, positions)
  cos[l]            every |cos| of image x text pairs of hidden state l, sorted (float64)

usage: hf_gate.py MODEL_DIR IDS GROUPS_JSON QUERIES IMAGE TEXT
  IDS, QUERIES, IMAGE, TEXT: comma-separated; GROUPS_JSON: [[positions], ...]
"""
import json
import sys

import torch
from transformers import ChameleonForConditionalGeneration


def ints(s):
    return [int(x) for x in s.split(",") if x]


def main():
    model_dir, ids, groups, queries, image, text = sys.argv[1:7]
    ids, queries, image, text = ints(ids), ints(queries), ints(image), ints(text)
    groups = json.loads(groups)
    model = ChameleonForConditionalGeneration.from_pretrained(model_dir, dtype=torch.float32, attn_implementation="eager").eval()
    with torch.no_grad():
        out = model(input_ids=torch.tensor([ids]), output_attentions=True, output_hidden_states=True)
    attention = []
    for a in out.attentions:  # [1, H, S, S]
        a = a[0].double().mean(0)  # head average [S, S]
        attention.append([a[queries][:, g].sum(1).mean().item() for g in groups])
    cos = []
    for h in out.hidden_states:
        h = h[0].double()
        u = h / h.norm(dim=1, keepdim=True)
        c = (u[image] @ u[text].T).abs().flatten().sort().values
        cos.append(c.tolist())
    print(json.dumps({"attention": attention, "cos": cos}))


main()
