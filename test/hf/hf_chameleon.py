"""The Chameleon cases of hf_parity.py (family "chameleon"): a tiny ChameleonForConditionalGeneration
written by transformers, and what transformers computes on it.

Case keys besides hf_parity.py's common ones (name, dtype, gqa, image_size = the crop, resize
= the shortest edge, seed, image, prompt, new_tokens): swin (swin_norm), levels (the VQ
encoder's resolution levels: downsampling by 2^(levels-1)), attn (attn_resolutions holds the
image size, so level 0 has attention blocks too), mult (channel_multiplier, default (1, 2, 2, …);
(1, 5) makes the mid block's attention 160 channels wide, past the fused attention kernel's 128).
The image goes to the processor as opened (an RGBA PNG stays RGBA, so the processor's
convert_to_rgb blends it onto white); image_rgb is Pillow's convert('RGB') of it.

No Chameleon tokenizer is at hand (the shared assets folder has none; the hub is unreachable), so
the checkpoint's tokenizer is a tiny byte-level BPE trained here with `tokenizers` on a few
sentences (vocabulary 320), plus Chameleon's special tokens <s> <pad> </s> <unk> (0..3),
<racm3:break>, <eoss>, <image> and the chat-mode separator <reserved08706> (the sep_token),
BOS added by a TemplateProcessing post-processor, wrapped as PreTrainedTokenizerFast.
vocabulary_map = the tokenizer's vocabulary plus the K image codes IMGIMG… at ids
len(tokenizer) … len(tokenizer) + K − 1 (vocab_size), as the real map names them.

The VQ model: 32 base channels × channel_multiplier (1, 2, 2, …), 2 ResNet blocks a level
(the first of level 1 has a nin_shortcut), the mid block's attention over 64 channels,
latent 8, codebook K = 48 × 8. Random weights as hf_parity.py's `randomize` (convs N(0,
1/fan_in), GroupNorm weights 1 + N(0, 0.1²), the codebook N(0, 1)); the LM's q_norm /
k_norm weights are QK_NORM × (1 + N(0, 0.1²)) so attention is peaked after the norm (the
q/k projections' scale no longer matters there).

Outputs as hf_parity.py's, plus image_token_ids (the BPE ids of the image's codes,
model.get_image_tokens) and, in hf.json, the number of distinct codes.
"""
import torch

CODES = 48
QK_NORM = 3.0
SPECIALS = ["<s>", "<pad>", "</s>", "<unk>"]
ADDED = ["<racm3:break>", "<eoss>", "<image>", "<reserved08706>"]
CORPUS = [
    "What is shown in this image? Describe the picture in one sentence.",
    "A cat sits on a red sofa next to a window; the sun is shining.",
    "Two dogs are playing with a ball in the park, 3 children watch them.",
    "The quick brown fox jumps over the lazy dog near the river bank.",
]


def image_token_name(k):
    return "IMGIMG" + "".join("ABCDEFGHIJ"[int(d)] for d in str(k)) + "Z"


def tiny_tokenizer(tr):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers

    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=320, special_tokens=SPECIALS, initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(CORPUS * 4, trainer)
    tok.add_special_tokens(ADDED)
    tok.post_processor = processors.TemplateProcessing(single="<s> $A", special_tokens=[("<s>", tok.token_to_id("<s>"))])
    return tr.PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<s>", eos_token="</s>", pad_token="<pad>", unk_token="<unk>",
                                      sep_token="<reserved08706>")


def make(tr, c, tok):
    vocab = dict(tok.get_vocab())
    base = len(tok)
    for k in range(CODES):
        vocab[image_token_name(k)] = base + k
    levels = c["levels"]
    vq = dict(embed_dim=8, num_embeddings=CODES, latent_channels=8, resolution=c["image_size"], in_channels=3, base_channels=32,
              channel_multiplier=c.get("mult") or [1] + [2] * (levels - 1), num_res_blocks=2, attn_resolutions=[c["image_size"]] if c.get("attn") else None,
              attn_type="vanilla", double_latent=False)
    return tr.ChameleonConfig(vocab_size=base + CODES, hidden_size=64, intermediate_size=107, num_hidden_layers=3, num_attention_heads=4,
                              num_key_value_heads=2 if c["gqa"] else 4, max_position_embeddings=4096, rms_norm_eps=1e-5,
                              bos_token_id=0, pad_token_id=1, eos_token_id=2, swin_norm=c["swin"], vq_config=vq, vocabulary_map=vocab,
                              tie_word_embeddings=False)


@torch.no_grad()
def case(tr, c, d, randomize, dtypes):
    """Writes the checkpoint to d and returns (tensors, info) as hf_parity.py's run_hf."""
    from PIL import Image

    tok = tiny_tokenizer(tr)
    size = c["image_size"]
    n = (size // 2 ** (c["levels"] - 1)) ** 2
    ip = tr.ChameleonImageProcessorPil(size={"shortest_edge": c["resize"]}, crop_size={"height": size, "width": size})
    proc = tr.ChameleonProcessor(image_processor=ip, tokenizer=tok, image_seq_length=n)
    model = tr.ChameleonForConditionalGeneration(make(tr, c, tok))
    randomize(model, c["seed"])
    g = torch.Generator().manual_seed(c["seed"] + 1000)
    for name, p in model.named_parameters():
        if name.endswith(("q_norm.weight", "k_norm.weight")):
            p.copy_(QK_NORM * (1 + 0.1 * torch.randn(p.shape, generator=g)))
    model.to(dtypes[c["dtype"]]).save_pretrained(d)
    proc.save_pretrained(d)

    model = tr.ChameleonForConditionalGeneration.from_pretrained(d, dtype=torch.float32, attn_implementation="eager").eval()
    opened = Image.open(c["image"])
    image = opened.convert("RGB")
    x = proc(images=opened, text=c["prompt"], return_tensors="pt")
    pre = {}
    handle = model.model.norm.register_forward_hook(lambda _m, inp, _o: pre.__setitem__("v", inp[0]))
    out = model(**x, output_hidden_states=True, use_cache=False, return_dict=True)
    handle.remove()
    ids = x["input_ids"][0]
    image_ids = model.model.get_image_tokens(x["pixel_values"])[0]
    t = {"input_ids": ids.int(), "pixel_values": x["pixel_values"][0], "image_token_ids": image_ids.int()}
    t["image_rgb"] = torch.frombuffer(bytearray(image.tobytes()), dtype=torch.uint8).view(image.height, image.width, 3)
    t.update({f"hidden_states.{l}": h[0] for l, h in enumerate(out.hidden_states)})
    t["residual_final"] = pre["v"][0]
    t["logits"] = out.logits[0]
    gen = model.generate(**x, max_new_tokens=c["new_tokens"], do_sample=False, eos_token_id=None, pad_token_id=1)
    t["greedy_tokens"] = gen[0, -c["new_tokens"]:].int()
    img = (ids == model.config.image_token_id).nonzero().flatten().tolist()
    info = {
        "case": c,
        "tokens": {"seq": len(ids), "image": [img[0], img[-1] + 1], "image_seq_length": n},
        "distinct_codes": len(set(image_ids.tolist())),
        "image_code_ids": sorted(model.model.vocabulary_mapping.image_tokens),
        "versions": {"torch": torch.__version__, "transformers": tr.__version__},
    }
    return {k: (v.detach().float() if v.is_floating_point() else v).clone().contiguous() for k, v in t.items()}, info
