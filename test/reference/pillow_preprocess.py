#!/usr/bin/python3
"""Pillow + numpy reference for src/io/image.ts and src/io/image-processor.ts.

Run with Debian's /usr/bin/python3 (python3-pil, python3-numpy); transformers is not
needed: the HF slow image processors' steps are written out below from
transformers/image_transforms.py, image_processing_clip.py and image_processing_blip.py,
with Pillow doing the decoding and the resizing, as it does under HF.

  pillow_preprocess.py make-images OUTDIR
      Writes the synthetic test images (PNG in every colour type and bit depth, JPEG with
      4:2:0 / 4:4:4 / grayscale / progressive) to OUTDIR and prints their names as JSON.
  pillow_preprocess.py run SPEC.json
      SPEC.json: [{"image": path, "out": prefix, "config": {preprocessor_config...},
      "pad_to_square": bool}, ...]. For each entry writes
        prefix.rgb  uint8 [H, W, 3]   Image.open(image).convert("RGB")
        prefix.u8   uint8 [h, w, 3]   after expand2square (optional), resize, centre crop
        prefix.f32  float32 [3, h, w] pixel_values (rescale, normalise, channels first)
      and prints [{"out", "rgb_shape", "u8_shape"}] as JSON.
"""
import json
import math
import struct
import sys
import zlib

import numpy as np
from PIL import Image

OPENAI_CLIP_MEAN = [0.48145466, 0.4578275, 0.40821073]
OPENAI_CLIP_STD = [0.26862954, 0.26130258, 0.27577711]


# --------------------------------------------------------------------------------------
# Test images


def raw_png(path, w, h, depth, ctype, rows, extra=b""):
    """A PNG written byte by byte, for the colour types / depths Pillow cannot save."""

    def chunk(t, d):
        return struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", w, h, depth, ctype, 0, 0, 0)
    data = b"".join(b"\x00" + r for r in rows)
    with open(path, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + extra + chunk(b"IDAT", zlib.compress(data)) + chunk(b"IEND", b""))


def pack_bits(vals, depth):
    """Pack a row of small ints MSB first, padding the last byte."""
    out, acc, n = bytearray(), 0, 0
    for v in vals:
        acc = (acc << depth) | int(v)
        n += depth
        if n == 8:
            out.append(acc)
            acc, n = 0, 0
    if n:
        out.append(acc << (8 - n))
    return bytes(out)


def photo(rng, w, h):
    """Smooth gradients + hard edges + noise: exercises every part of a resampling kernel."""
    y, x = np.mgrid[0:h, 0:w].astype(np.float64)
    r = 128 + 100 * np.sin(x / 7.0) * np.cos(y / 11.0)
    g = 255 * x / max(w - 1, 1)
    b = np.where(((x // 9) + (y // 9)) % 2 == 0, 230.0, 20.0)
    img = np.stack([r, g, b], axis=-1) + rng.normal(0, 12, (h, w, 3))
    return np.clip(np.rint(img), 0, 255).astype(np.uint8)


def make_images(outdir):
    rng = np.random.RandomState(1234)
    names = []

    def save(name, im, **kw):
        im.save(f"{outdir}/{name}", **kw)
        names.append(name)

    save("square.png", Image.fromarray(photo(rng, 64, 64)))
    save("wide.png", Image.fromarray(photo(rng, 97, 41)))
    save("tall.png", Image.fromarray(photo(rng, 33, 120)))
    save("big.png", Image.fromarray(photo(rng, 703, 529)))
    save("gray.png", Image.fromarray(photo(rng, 50, 70)[..., 1]).convert("L"))
    la = np.dstack([photo(rng, 40, 30)[..., 0], rng.randint(0, 256, (30, 40))]).astype(np.uint8)
    save("gray_alpha.png", Image.fromarray(la, "LA"))
    rgba = np.dstack([photo(rng, 45, 30), rng.randint(0, 256, (30, 45))]).astype(np.uint8)
    save("rgba.png", Image.fromarray(rgba, "RGBA"))
    save("palette.png", Image.fromarray(photo(rng, 60, 44)).quantize(colors=200))
    pal_t = Image.fromarray(photo(rng, 30, 20)).quantize(colors=16)
    save("palette_trns.png", pal_t, transparency=3)
    g16 = (np.arange(37 * 23).reshape(23, 37) * 3).astype(np.uint16)  # 0..2550: clipped at 255
    save("gray16.png", Image.fromarray(g16.astype(np.int32), "I").convert("I;16"))
    save("gray1.png", Image.fromarray(photo(rng, 29, 17)[..., 0] > 128))

    # Colour types / depths Pillow cannot write: raw PNGs (Pillow still decodes them).
    def u16(a):
        return a.astype(">u2")

    rgb16 = u16(rng.randint(0, 65536, (19, 26, 3)))
    raw_png(f"{outdir}/rgb16.png", 26, 19, 16, 2, [r.tobytes() for r in rgb16])
    rgba16 = u16(rng.randint(0, 65536, (13, 21, 4)))
    raw_png(f"{outdir}/rgba16.png", 21, 13, 16, 6, [r.tobytes() for r in rgba16])
    la16 = u16(rng.randint(0, 65536, (11, 17, 2)))
    raw_png(f"{outdir}/la16.png", 17, 11, 16, 4, [r.tobytes() for r in la16])
    for d in (2, 4):
        g = rng.randint(0, 1 << d, (9, 15))
        raw_png(f"{outdir}/gray{d}.png", 15, 9, d, 0, [pack_bits(r, d) for r in g])
    plte = bytes(rng.randint(0, 256, 3 * 10).astype(np.uint8))

    def chunk(t, d):
        return struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d) & 0xFFFFFFFF)

    # 4-bit palette with 10 colours and indices up to 15 (past the palette: Pillow's ramp).
    p4 = rng.randint(0, 16, (7, 13))
    raw_png(f"{outdir}/palette4.png", 13, 7, 4, 3, [pack_bits(r, 4) for r in p4], chunk(b"PLTE", plte))
    names += ["rgb16.png", "rgba16.png", "la16.png", "gray2.png", "gray4.png", "palette4.png"]

    big = Image.fromarray(photo(rng, 211, 157))
    save("photo420.jpg", big, quality=90, subsampling=2)
    save("photo444.jpg", big, quality=90, subsampling=0)
    save("photo422.jpg", big, quality=85, subsampling=1)
    save("gray.jpg", big.convert("L"), quality=90)
    save("progressive.jpg", big, quality=80, progressive=True)
    save("cmyk.jpg", big.convert("CMYK"), quality=90)  # Adobe APP14, inverted CMYK
    # Subsampled chroma 2 samples wide: libjpeg replicates instead of the fancy filter.
    save("tiny420.jpg", Image.fromarray(photo(rng, 3, 3)), quality=90, subsampling=2)
    save("small420.jpg", Image.fromarray(photo(rng, 7, 5)), quality=90, subsampling=2)
    return names


# --------------------------------------------------------------------------------------
# HF image processor steps


def size_dict(v, default_to_square):
    """transformers.image_processing_utils.get_size_dict."""
    if isinstance(v, int):
        return {"height": v, "width": v} if default_to_square else {"shortest_edge": v}
    if isinstance(v, (list, tuple)):
        return {"height": v[0], "width": v[1]}
    return v


def resize_output_size(h, w, shortest_edge):
    """get_resize_output_image_size(default_to_square=False), as (height, width)."""
    short, long = (w, h) if w <= h else (h, w)
    new_short, new_long = shortest_edge, int(shortest_edge * long / short)
    return (new_long, new_short) if w <= h else (new_short, new_long)


def center_crop(arr, ch, cw):
    """image_transforms.center_crop on an HWC array."""
    h, w = arr.shape[:2]
    top = (h - ch) // 2
    bottom = top + ch
    left = (w - cw) // 2
    right = left + cw
    if top >= 0 and bottom <= h and left >= 0 and right <= w:
        return arr[top:bottom, left:right]
    nh, nw = max(ch, h), max(cw, w)
    new = np.zeros((nh, nw) + arr.shape[2:], dtype=arr.dtype)
    tp = math.ceil((nh - h) / 2)
    lp = math.ceil((nw - w) / 2)
    new[tp : tp + h, lp : lp + w] = arr
    top += tp
    bottom += tp
    left += lp
    right += lp
    return new[max(0, top) : min(nh, bottom), max(0, left) : min(nw, right)]


def expand2square(img, background):
    """LLaVA repo (llava/mm_utils.py) expand2square."""
    w, h = img.size
    if w == h:
        return img
    if w > h:
        res = Image.new(img.mode, (w, w), background)
        res.paste(img, (0, (w - h) // 2))
        return res
    res = Image.new(img.mode, (h, h), background)
    res.paste(img, ((h - w) // 2, 0))
    return res


def preprocess(path, cfg, pad_to_square):
    kind = cfg.get("image_processor_type", "CLIPImageProcessor").replace("Fast", "")
    clip = kind == "CLIPImageProcessor"
    mean = cfg.get("image_mean", OPENAI_CLIP_MEAN)
    std = cfg.get("image_std", OPENAI_CLIP_STD)
    img = Image.open(path)
    img = img.convert("RGB")  # do_convert_rgb
    rgb = np.array(img)
    if pad_to_square:
        img = expand2square(img, tuple(int(x * 255) for x in mean))
    if cfg.get("do_resize", True):
        size = size_dict(cfg.get("size", {"shortest_edge": 224} if clip else {"height": 384, "width": 384}), not clip)
        if "shortest_edge" in size:
            h, w = resize_output_size(img.height, img.width, size["shortest_edge"])
        else:
            h, w = size["height"], size["width"]
        img = img.resize((w, h), resample=cfg.get("resample", 3), reducing_gap=None)
    arr = np.array(img)
    if clip and cfg.get("do_center_crop", True):
        crop = size_dict(cfg.get("crop_size", {"height": 224, "width": 224}), True)
        arr = center_crop(arr, crop["height"], crop["width"])
    u8 = np.ascontiguousarray(arr)
    x = u8
    if cfg.get("do_rescale", True):
        x = (x.astype(np.float64) * cfg.get("rescale_factor", 1 / 255)).astype(np.float32)
    if cfg.get("do_normalize", True):
        x = x.astype(np.float32) if not np.issubdtype(x.dtype, np.floating) else x
        x = (x - np.array(mean, dtype=x.dtype)) / np.array(std, dtype=x.dtype)
    f32 = np.ascontiguousarray(x.astype(np.float32).transpose(2, 0, 1))
    return rgb, u8, f32


def main():
    if sys.argv[1] == "make-images":
        print(json.dumps(make_images(sys.argv[2])))
    elif sys.argv[1] == "run":
        spec = json.load(open(sys.argv[2]))
        done = []
        for e in spec:
            rgb, u8, f32 = preprocess(e["image"], e["config"], e.get("pad_to_square", False))
            rgb.tofile(e["out"] + ".rgb")
            u8.tofile(e["out"] + ".u8")
            f32.tofile(e["out"] + ".f32")
            done.append({"out": e["out"], "rgb_shape": list(rgb.shape), "u8_shape": list(u8.shape)})
        print(json.dumps(done))
    else:
        sys.exit(f"unknown command {sys.argv[1]}")


if __name__ == "__main__":
    main()
