"""What transformers itself writes and reads, for test/io/hf-saved.test.ts.

  python test/io/hf_save_pretrained.py OUT CONFIGS.json     (the python of .ci/hf-venv.sh)

Writes, with the transformers installed (5.x):
  OUT/llava, OUT/instructblip   tiny random models, `model.save_pretrained` + `processor.save_pretrained`
                                (LlamaTokenizer from the repo's real llava-1.5 tokenizer files; the
                                InstructBLIP one with `</s>` as BOS like Salesforce's; BERT Q-Former
                                tokenizer with [DEC]); transformers chooses every file and name
  OUT/<family>-module-tree      the same weights under `model.state_dict()` names (the module tree
                                of transformers >= 4.52) in model.safetensors, with config.json
  OUT/hf.json                   what transformers reads back: for each folder the image processor's
                                settings and the ids its tokenizers give; for each entry of
                                CONFIGS.json ({name: config.json object}), and as "saved-<family>" for
                                the config.json it wrote, the fields phaselens parses, as
                                `AutoConfig.from_pretrained` resolves them (defaults included)
"""
import json
import os
import shutil
import sys
import tempfile

import torch
import transformers
from safetensors.torch import save_file
from transformers import (AutoConfig, AutoProcessor, AutoTokenizer, BlipImageProcessor, CLIPImageProcessor, InstructBlipConfig,
                          InstructBlipForConditionalGeneration, InstructBlipProcessor, LlavaConfig, LlavaForConditionalGeneration,
                          LlavaProcessor)

ASSETS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "weights-tools", "assets")
LLAVA_ASSETS = os.path.join(ASSETS, "llava-1.5-7b-hf")
LM = dict(model_type="llama", hidden_size=64, intermediate_size=107, num_attention_heads=4, num_hidden_layers=2,
          num_key_value_heads=2, vocab_size=32064, max_position_embeddings=256, rms_norm_eps=1e-5)
PROMPT = "USER: <image>\nWhat is in the picture? ASSISTANT:"


def llava():
    cfg = LlavaConfig(vision_config=dict(model_type="clip_vision_model", hidden_size=32, image_size=42, intermediate_size=74,
                                         num_attention_heads=4, num_hidden_layers=2, patch_size=14, projection_dim=32),
                      text_config=LM, image_token_index=32000, pad_token_id=32001, image_seq_length=9)
    tok = AutoTokenizer.from_pretrained(LLAVA_ASSETS)
    chat = json.load(open(os.path.join(LLAVA_ASSETS, "chat_template.json")))["chat_template"]
    image = CLIPImageProcessor(size={"shortest_edge": 48}, crop_size={"height": 42, "width": 42})
    return LlavaForConditionalGeneration(cfg), LlavaProcessor(image_processor=image, tokenizer=tok, chat_template=chat, patch_size=14,
                                                              vision_feature_select_strategy="default")


def instructblip():
    cfg = InstructBlipConfig(vision_config=dict(hidden_size=40, image_size=42, intermediate_size=74, num_attention_heads=4,
                                                num_hidden_layers=2, patch_size=14),
                             qformer_config=dict(hidden_size=32, intermediate_size=74, num_attention_heads=4, num_hidden_layers=3,
                                                 max_position_embeddings=128, vocab_size=30523),
                             text_config=LM, num_query_tokens=8, image_token_index=32000)
    qtok = AutoTokenizer.from_pretrained(os.path.join(ASSETS, "bert-base-uncased-tokenizer"))
    qtok.add_special_tokens({"bos_token": "[DEC]"})
    tok = AutoTokenizer.from_pretrained(LLAVA_ASSETS, bos_token="</s>", unk_token="</s>")
    image = BlipImageProcessor(size={"height": 42, "width": 42})
    return InstructBlipForConditionalGeneration(cfg), InstructBlipProcessor(image_processor=image, tokenizer=tok, qformer_tokenizer=qtok,
                                                                            num_query_tokens=8)


def llama_fields(t):
    return dict(vocab_size=t.vocab_size, hidden_size=t.hidden_size, intermediate_size=t.intermediate_size,
                num_hidden_layers=t.num_hidden_layers, num_attention_heads=t.num_attention_heads,
                num_key_value_heads=t.num_key_value_heads, head_dim=t.head_dim, hidden_act=t.hidden_act,
                max_position_embeddings=t.max_position_embeddings, rms_norm_eps=t.rms_norm_eps,
                rope_theta=t.rope_parameters["rope_theta"], attention_bias=t.attention_bias, mlp_bias=t.mlp_bias,
                tie_word_embeddings=t.tie_word_embeddings, bos_token_id=t.bos_token_id, eos_token_id=t.eos_token_id,
                pad_token_id=t.pad_token_id)


def fields(obj, names):
    return {n: getattr(obj, n) for n in names}


def config_fields(c):
    """The fields phaselens's parseConfig returns, under its names, from a resolved HF config."""
    out = dict(model_type=c.model_type, dtype=str(c.dtype).removeprefix("torch.") if c.dtype is not None else None,
               text_config=llama_fields(c.text_config))
    v = c.vision_config
    vision = ["hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads", "image_size", "patch_size",
              "hidden_act", "layer_norm_eps"]
    if c.model_type == "llava":
        out["vision_config"] = fields(v, vision + ["projection_dim", "num_channels"])
        out.update(fields(c, ["image_token_index", "projector_hidden_act", "vision_feature_layer", "vision_feature_select_strategy",
                              "multimodal_projector_bias", "image_seq_length", "tie_word_embeddings"]))
    else:
        out["vision_config"] = fields(v, vision + ["qkv_bias"])
        out["qformer_config"] = fields(c.qformer_config, ["vocab_size", "hidden_size", "num_hidden_layers", "num_attention_heads",
                                                          "intermediate_size", "hidden_act", "max_position_embeddings",
                                                          "layer_norm_eps", "pad_token_id", "cross_attention_frequency",
                                                          "encoder_hidden_size"])
        out.update(fields(c, ["num_query_tokens", "image_token_index"]))
    return out


def resolve(config):
    """`AutoConfig.from_pretrained` of a folder holding only this config.json."""
    with tempfile.TemporaryDirectory() as d:
        json.dump(config, open(os.path.join(d, "config.json"), "w"))
        try:
            return config_fields(AutoConfig.from_pretrained(d))
        except Exception as e:  # noqa: BLE001  (the test expects phaselens to refuse it too)
            return {"error": f"{type(e).__name__}: {e}"}


def read_back(d):
    """What transformers reads from a folder it wrote: image processor settings and token ids."""
    p = AutoProcessor.from_pretrained(d)
    ip = p.image_processor
    out = dict(image_processor=dict(type=type(ip).__name__, size=dict(ip.size), crop_size=dict(ip.crop_size) if getattr(ip, "do_center_crop", False) else None,
                                    resample=int(ip.resample), image_mean=list(ip.image_mean), image_std=list(ip.image_std),
                                    rescale_factor=ip.rescale_factor),
               input_ids=p.tokenizer(PROMPT)["input_ids"], chat_template=getattr(p, "chat_template", None))
    if hasattr(p, "qformer_tokenizer"):
        out["qformer_input_ids"] = p.qformer_tokenizer("What is in the picture?")["input_ids"]
    return out


def main():
    out, configs = sys.argv[1], json.load(open(sys.argv[2]))
    transformers.logging.set_verbosity_error()
    torch.manual_seed(0)
    report = dict(transformers=transformers.__version__, folders={}, configs={})
    for name, make in [("llava", llava), ("instructblip", instructblip)]:
        model, processor = make()
        d = os.path.join(out, name)
        model.save_pretrained(d)
        processor.save_pretrained(d)
        tree = os.path.join(out, f"{name}-module-tree")
        os.makedirs(tree, exist_ok=True)
        save_file({k: v.contiguous() for k, v in model.state_dict().items()}, os.path.join(tree, "model.safetensors"), metadata={"format": "pt"})
        shutil.copy(os.path.join(d, "config.json"), tree)
        report["folders"][name] = read_back(d)
        report["configs"][f"saved-{name}"] = resolve(json.load(open(os.path.join(d, "config.json"))))
    for name, config in configs.items():
        report["configs"][name] = resolve(config)
    json.dump(report, open(os.path.join(out, "hf.json"), "w"), indent=1)


if __name__ == "__main__":
    main()
