"""Writes an organism's model card (README.md) from its config, train.py's log and
eval.py's scores.

  $(bash .ci/hf-venv.sh) weights-tools/train/card.py --model DIR --train train.json --eval eval.json --command "…"
"""
import argparse
import json
import os

TYPES = ["colour", "shape", "count", "existence", "position"]
CHANCE = {"colour": "1/8", "shape": "1/5", "count": "1/4", "existence": "1/2", "position": "1/5"}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", required=True)
    ap.add_argument("--train", required=True)
    ap.add_argument("--eval", required=True)
    ap.add_argument("--command", required=True, help="the command that reproduces the folder")
    a = ap.parse_args()
    with open(os.path.join(a.model, "config.json")) as f:
        cfg = json.load(f)
    with open(a.train) as f:
        tr = json.load(f)
    with open(a.eval) as f:
        ev = json.load(f)
    size = os.path.getsize(os.path.join(a.model, "model.safetensors"))
    arch = cfg["model_type"]
    tc, vc = cfg["text_config"], cfg["vision_config"]
    if arch == "llava":
        layout = (f"CLIP-style ViT ({vc['num_hidden_layers']} layers, hidden {vc['hidden_size']}, {vc['image_size']} px in {vc['patch_size']} px patches, "
                  f"features from hidden_states[-2] without CLS) → `multi_modal_projector` (Linear, GELU, Linear) → LLaMA decoder; "
                  f"prompt `USER: <image>\\n{{question}} ASSISTANT:` (the llava-1.5 chat template), {(vc['image_size'] // vc['patch_size']) ** 2} visual tokens")
    else:
        qc = cfg["qformer_config"]
        layout = (f"EVA-style ViT ({vc['num_hidden_layers']} layers, hidden {vc['hidden_size']}, fused qkv with q/v biases, `post_layernorm`, {vc['image_size']} px in {vc['patch_size']} px patches) → "
                  f"Q-Former ({qc['num_hidden_layers']} post-LN BERT layers, hidden {qc['hidden_size']}, cross-attention every {qc['cross_attention_frequency']}nd layer, "
                  f"{cfg['num_query_tokens']} learned queries, the instruction as `[CLS] … [SEP]` from bert-base-uncased) → `language_projection` → LLaMA decoder; "
                  f"LM input `[{cfg['num_query_tokens']} query outputs, </s>, instruction]` (BOS `</s>` as in Vicuna InstructBLIP)")
    ho, bl = ev["held_out"]["scores"], ev["blank_image"]["scores"]
    rows = "\n".join(f"| {t} | {ho[t]['accuracy']:.3f} | {bl[t]['accuracy']:.3f} (answers “{bl[t]['most_common_answer']}” {bl[t]['most_common_share']:.0%} of the time) | {CHANCE[t]} |" for t in TYPES)
    cap, bcap = ho["caption"], bl["caption"]
    ex = "\n".join(f"- {t}: “{e['generated']}” (reference “{e['reference']}”)" for t in TYPES + ["caption"] for e in ev["held_out"]["examples"][t][:1])
    text = f"""# shapes-{arch}: a toy {arch} trained on synthetic shapes-world scenes

**This is a toy.** A {tr['params']:,}-parameter vision-language model in the exact Hugging Face
`{cfg['architectures'][0]}` layout (tensor names, `config.json`, the real llava-1.5 LLaMA
tokenizer with its 32064-row vocabulary, processor files), trained from scratch for
{tr['wall_s'] / 60:.1f} minutes on one CPU thread to look at procedurally drawn scenes of 1–3
coloured shapes and answer questions about them. It knows nothing else. It exists so that
phaselens' probes and interventions have a model whose image use is real and measurable.

## Architecture

{layout}. Decoder: {tc['num_hidden_layers']} layers, hidden {tc['hidden_size']}, {tc['num_attention_heads']} heads, SwiGLU MLP {tc['intermediate_size']},
RMSNorm, RoPE θ {tc['rope_theta']:g}, tied input/output embeddings. Weights: f16 `model.safetensors`,
{size / 1e6:.2f} MB.

## Data

The shapes world (`weights-tools/shapes/`): 48 px scenes of 1–3 objects (shape: circle, square,
triangle, star, cross; 8 colours; small or big; at one of left, right, top, bottom, middle),
anti-aliased, on a grey background. Each scene has a template caption (“a big red circle on the
left and a small blue square at the top”) and one question of each type: colour, shape, count,
existence (half of the no's are binding traps), position. Training: world seed {tr['data_seed']},
{tr['data_scenes']:,} scenes. Held-out evaluation: world seed {ev['data_seed']}, {ev['scenes']} scenes, never used in training.
The committed evaluation set `../eval-scenes/` (COCO captions, VQA and Winoground-style
files) comes from another unused seed.

## Recipe

`weights-tools/train/train.py`: PyTorch {tr['torch']} on CPU, {tr['threads']} thread, seed {tr['seed']}.
Stage 1 ({tr['vision_steps']} steps of {4 * tr['batch']} images, the stand-in for a pretrained CLIP / EVA tower): the vision
tower alone learns, through a linear head that is then dropped, which shape, colour and size
sits in each patch (loss {tr['vision_curve'][0]['loss']:.3f} → {tr['vision_curve'][-1]['loss']:.3f}). Stage 2 ({'the tower frozen, the rest trained' if tr['freeze_vision'] else 'everything trained'}): {tr['steps']} steps of
{tr['batch']} {'conversations of up to %d questions' % tr['turns'] if tr['turns'] > 1 else 'single tasks (one random task of a random scene, in the prompt format above)'},
AdamW lr {tr['lr']:g} (5 % warm-up, cosine to 10 %), weight decay 0.01, gradient clip 1,
cross-entropy on the answer tokens only (softmax over the ids that occur in answers; see
train.py). Wall time, both stages: {tr['wall_s']:.0f} s; stage-2 loss {tr['first_loss']:.3f} (first {tr['curve'][0]['step']} steps) → {tr['final_loss']:.3f} (last {tr['curve'][-1]['step'] - tr['curve'][-2]['step']} steps).

## Held-out scores (`weights-tools/train/eval.py`, greedy, full vocabulary, single turn)

| question type | accuracy | with a blank grey image | chance |
| --- | --- | --- | --- |
{rows}

Caption (“Describe the image.”): object-word recall {cap['object_word_recall']:.3f} (colour and shape
words of the reference found in the generated caption), object recall {cap['object_recall']:.3f}
(“colour shape” pairs); with the blank image {bcap['object_word_recall']:.3f} / {bcap['object_recall']:.3f}.

Examples:
{ex}

## Reproduce

```sh
{a.command}
```

Scores and the loss curve: `eval.json`, `train.json` in this folder.
"""
    with open(os.path.join(a.model, "README.md"), "w") as f:
        f.write(text)


if __name__ == "__main__":
    main()
