"""HF transformers reference for the narrow-gate measures (src/probes/gate.ts).

Runs the model (eager attention, float32) with output_attentions and output_hidden_states
on the input of a phaselens dump file: Chameleon on the LM ids with the image placeholders
already holding the image's BPE ids (dump's image_token_ids; the Chameleon parity test
checks they equal HF's), LLaVA on the dump's input_ids and pixel_values. Prints JSON:

  attention[l][g]   mean over the text queries of the head-averaged attention mass on
                    group g's keys (groups as given, positions)
  cos[l]            every |cos| of image x text pairs of hidden state l, sorted (float64)

usage: hf_gate.py MODEL_DIR DUMP.safetensors GROUPS_JSON QUERIES IMAGE TEXT
  QUERIES, IMAGE, TEXT: comma-separated positions; GROUPS_JSON: [[positions], ...]
"""
import json
import sys

import torch
from safetensors.torch import load_file
from transformers import AutoConfig, ChameleonForConditionalGeneration, LlavaForConditionalGeneration


def ints(s):
    return [int(x) for x in s.split(",") if x]


def main():
    model_dir, dump, groups, queries, image, text = sys.argv[1:7]
    queries, image, text = ints(queries), ints(image), ints(text)
    groups = json.loads(groups)
    d = load_file(dump)
    ids = d["input_ids"].long()
    kind = AutoConfig.from_pretrained(model_dir).model_type
    if kind == "chameleon":
        model = ChameleonForConditionalGeneration.from_pretrained(model_dir, dtype=torch.float32, attn_implementation="eager").eval()
        ids[ids == model.config.vocabulary_map["<image>"]] = d["image_token_ids"].long()
        inputs = {"input_ids": ids[None]}
    else:
        model = LlavaForConditionalGeneration.from_pretrained(model_dir, dtype=torch.float32, attn_implementation="eager").eval()
        inputs = {"input_ids": ids[None], "pixel_values": d["pixel_values"][None].float()}
    with torch.no_grad():
        out = model(**inputs, output_attentions=True, output_hidden_states=True)
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
