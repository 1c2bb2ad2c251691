"""HF transformers' side of the one-shot GPU check (bench/gpu/run.sh), on exactly the
inputs phaselens prepared (device-bench --inputs-out), so both sides run the same
tokens and pixels through the same checkpoint.

  python3 bench/gpu/hf_bench.py check
      prints {"python", "torch", "transformers", "cuda"} as JSON; exits 3 with
      MISSING_TRANSFORMERS when transformers cannot be imported.
  python3 bench/gpu/hf_bench.py perf --model DIR --inputs PREFIX [--device cuda]
      [--dtype float16] [--reps 3] [--new-tokens 32] [--out HF.json] [--metrics-out M.json]
      LLaVA only. Loads the checkpoint once with attn_implementation="eager", then
      switches to "sdpa" (set_attn_implementation, else a reload), and times:
        prefill_s[eager|sdpa]   median of --reps forwards (use_cache, logits of the last
                                position only where the version offers logits_to_keep)
        decode[eager|sdpa]      greedy tokens/s, a plain loop over the KV cache (EOS ignored)
        analyze_s               eager forward with output_hidden_states + output_attentions
                                and the metrics of hf_metrics.py on the GPU (LogitLens
                                logits in the model's dtype), results moved to the host
        peak_bytes[phase]       torch.cuda.max_memory_allocated / _reserved per phase
  python3 bench/gpu/hf_bench.py parity --model TINY --dump DUMP.safetensors [--device cpu]
      [--tol 1e-4] [--out PARITY.json]
      Runs the checkpoint in float32 on the dump's own input_ids / pixel_values (and
      qformer_input_ids) and compares every hidden_states.{l}, residual_final and logits
      with `phaselens dump`'s: max |phaselens - HF| / max |HF| per tensor. Exits 1 when
      one is over --tol (shapes that differ count as failures and are named).

Exit codes: 0 ok, 1 a check failed, 2 bad arguments, 3 transformers (or torch) missing.
"""
import argparse
import json
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

MISSING_TRANSFORMERS = (
    "hf_bench.py: HF transformers cannot be imported by {python} ({error}). "
    "The lent H100/H200 machines have it preinstalled (transformers 5.x with torch 2.x, see the device "
    "tool's KINDS.md). Elsewhere give run.sh a python3 that has it: transformers 5 needs torch 2.x, so "
    "Debian's python3-torch (1.13) will not do; a venv with torch 2.x + transformers 5.x works (bench/gpu/README.md, "
    "'Rehearsal'); or carry wheels as the device README says (pip download --no-deps ... -d .whl transformers==VERSION). "
    "hf_metrics.py (the torch metrics) needs only torch and numpy."
)


def need_torch():
    try:
        import torch  # noqa: F401
        import numpy  # noqa: F401
    except ImportError as e:
        sys.stderr.write(f"hf_bench.py: torch and numpy are needed ({sys.executable}: {e})\n")
        sys.exit(3)


def need_transformers():
    need_torch()
    try:
        import transformers
    except Exception as e:  # ImportError, or a broken install raising something else
        sys.stderr.write(MISSING_TRANSFORMERS.format(python=sys.executable, error=f"{type(e).__name__}: {e}") + "\n")
        sys.exit(3)
    return transformers


def versions():
    import torch

    tr = need_transformers()
    return {
        "python": sys.version.split()[0],
        "torch": torch.__version__,
        "transformers": tr.__version__,
        "cuda": torch.cuda.is_available(),
        "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
    }


def _dtype_kw(tr, dtype):
    """transformers >= 4.56 names the argument `dtype`, earlier ones `torch_dtype`."""
    major, minor = (int(p) for p in tr.__version__.split(".")[:2])
    return {"dtype": dtype} if (major, minor) >= (4, 56) else {"torch_dtype": dtype}


def _set_float(d, field):
    """Casts every int value of `field` in the nested config dict to float; True if one was."""
    hit = False
    for k, v in list(d.items()):
        if k == field and isinstance(v, int) and not isinstance(v, bool):
            d[k] = float(v)
            hit = True
        elif isinstance(v, dict):
            hit = _set_float(v, field) or hit
    return hit


def load_config(cls, model_dir):
    """config.json as the model class's config. JSON written from JavaScript has no 1.0
    (JSON.stringify(1.0) is "1"), and transformers 5's strict config dataclasses refuse an
    int where a float is declared ("Field 'initializer_factor' expected float, got int"):
    such fields are cast to float and the config is built again."""
    import re

    with open(os.path.join(model_dir, "config.json")) as f:
        d = json.load(f)
    for _ in range(32):
        try:
            return cls.config_class.from_dict(d)
        except Exception as e:  # huggingface_hub's StrictDataclassFieldValidationError, by message
            m = re.search(r"field '([A-Za-z0-9_]+)'.*expected float, got int", str(e), re.S)
            if not m or not _set_float(d, m.group(1)):
                raise
    raise SystemExit(f"{model_dir}/config.json: too many int-for-float fields")


def load_model(model_dir, dtype, attn, device):
    tr = need_transformers()
    with open(os.path.join(model_dir, "config.json")) as f:
        mt = json.load(f).get("model_type")
    cls = {"llava": tr.LlavaForConditionalGeneration, "llava_next": tr.LlavaNextForConditionalGeneration,
           "instructblip": tr.InstructBlipForConditionalGeneration, "chameleon": tr.ChameleonForConditionalGeneration}.get(mt)
    if cls is None:
        raise SystemExit(f"{model_dir}: model_type {mt!r}; hf_bench.py runs llava, llava_next, instructblip and chameleon")
    kw = dict(_dtype_kw(tr, dtype), attn_implementation=attn, config=load_config(cls, model_dir))
    if device != "cpu":
        kw["device_map"] = device
    model = cls.from_pretrained(model_dir, **kw)
    if device == "cpu":
        model = model.to(device)
    return mt, model.eval()


def decoder_of(model):
    """The LlamaModel inside (transformers 4.x: language_model.model; 5.x: model.language_model)."""
    for _, mod in model.named_modules():
        if hasattr(mod, "layers") and hasattr(mod, "norm") and hasattr(mod, "embed_tokens"):
            return mod
    raise SystemExit("no LLaMA decoder (a module with layers, norm and embed_tokens) in the HF model")


def lm_weights(model):
    from hf_metrics import LmWeights

    dec = decoder_of(model)
    tc = getattr(model.config, "text_config", None) or model.config  # Chameleon's LM fields are at the top
    H = tc.num_attention_heads
    Hkv = getattr(tc, "num_key_value_heads", None) or H
    Dh = getattr(tc, "head_dim", None) or tc.hidden_size // H
    att = [layer.self_attn for layer in dec.layers]
    v_b = [a.v_proj.bias for a in att]
    return LmWeights(
        [layer.input_layernorm.weight for layer in dec.layers],
        [a.v_proj.weight for a in att],
        v_b if all(b is not None for b in v_b) else None,
        [a.o_proj.weight for a in att],
        dec.norm.weight,
        dec.norm.variance_epsilon,
        model.get_output_embeddings().weight,
        H, Hkv, Dh,
    )


class PrenormHook:
    """Catches the final norm's input (residual_final: layer L's output before the norm)."""

    def __init__(self, model):
        self.value = None
        self.handle = decoder_of(model).norm.register_forward_hook(self._hook)

    def _hook(self, _mod, inp, _out):
        self.value = inp[0]


def read_inputs(prefix, device, dtype):
    import numpy as np
    import torch

    with open(prefix + ".json") as f:
        meta = json.load(f)
    px = np.fromfile(prefix + ".f32", dtype="<f4").reshape(meta["pixel_shape"])
    x = {
        "input_ids": torch.tensor([meta["ids"]], dtype=torch.long, device=device),
        "attention_mask": torch.ones(1, len(meta["ids"]), dtype=torch.long, device=device),
        "pixel_values": torch.from_numpy(px.copy())[None].to(device=device, dtype=dtype),
    }
    if meta.get("image_sizes"):  # LLaVA-NeXT: pixel_values [1, views, 3, H, W] and the original [H, W]
        x["image_sizes"] = torch.tensor([meta["image_sizes"]], dtype=torch.long, device=device)
    if meta.get("qformer_ids"):
        q = meta["qformer_ids"]
        x["qformer_input_ids"] = torch.tensor([q], dtype=torch.long, device=device)
        x["qformer_attention_mask"] = torch.ones(1, len(q), dtype=torch.long, device=device)
    return meta, x


def sync(device):
    import torch

    if device.startswith("cuda"):
        torch.cuda.synchronize()


def timed(fn, reps, device):
    fn()  # warm-up: kernels chosen, caches allocated
    sync(device)
    t = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        sync(device)
        t.append(time.perf_counter() - t0)
    return {"median": statistics.median(t), "all": t}


def greedy_decode(model, x, n, device):
    """n greedy tokens with the KV cache, EOS ignored: the prefill (logits of the last position
    only), then n-1 one-token steps, timed alone. LLaVA's steps go through the whole model with
    input_ids only; InstructBLIP's forward needs pixels, so its steps go to the LM inside."""
    import torch

    lm = getattr(model, "language_model", None)
    step = lm if lm is not None and lm.get_output_embeddings() is not None else model
    out = model(**x, use_cache=True, logits_to_keep=1)
    cache = getattr(out, "language_model_outputs", None) or out  # InstructBLIP keeps the LM's cache there
    past, nxt, mask = cache.past_key_values, out.logits[:, -1].argmax(-1, keepdim=True), x["attention_mask"]
    one = torch.ones(1, 1, dtype=mask.dtype, device=device)
    ids = [int(nxt)]
    sync(device)
    t0 = time.perf_counter()
    for _ in range(n - 1):
        mask = torch.cat([mask, one], 1)
        out = step(input_ids=nxt, attention_mask=mask, past_key_values=past, use_cache=True, logits_to_keep=1)
        past, nxt = out.past_key_values, out.logits[:, -1].argmax(-1, keepdim=True)
        ids.append(int(nxt))  # a host read per token, as a generation loop has
    sync(device)
    s = time.perf_counter() - t0
    return {"tokens": n - 1, "s": s, "tok_s": (n - 1) / s if n > 1 else None, "ids": ids}


def attn_impl(model):
    tc = getattr(model.config, "text_config", None)
    return getattr(tc, "_attn_implementation", None) or getattr(model.config, "_attn_implementation", None)


def perf(a):
    import torch

    tr = need_transformers()
    dtype = getattr(torch, a.dtype)
    dev = a.device
    cuda = dev.startswith("cuda")
    res = {"side": "hf", "versions": versions(), "device": dev, "dtype": a.dtype, "errors": {}, "peak_bytes": {}}
    t0 = time.perf_counter()
    mt, model = load_model(a.model, dtype, "eager", dev)
    sync(dev)
    res["load_s"] = time.perf_counter() - t0
    if mt != "llava":
        raise SystemExit(f"perf times LLaVA checkpoints; {a.model} is {mt}")
    meta, x = read_inputs(a.inputs, dev, dtype)
    res["seq"] = len(meta["ids"])
    import inspect

    keep = {"logits_to_keep": 1} if "logits_to_keep" in inspect.signature(model.forward).parameters else {}

    def phase(name, fn):
        if cuda:
            torch.cuda.reset_peak_memory_stats()
        try:
            with torch.inference_mode():
                fn()
        except Exception as e:  # one phase failing must not lose the others
            res["errors"][name] = f"{type(e).__name__}: {e}"
            sys.stderr.write(f"hf_bench.py: {name} failed: {res['errors'][name]}\n")
        if cuda:
            res["peak_bytes"][name] = {"allocated": torch.cuda.max_memory_allocated(), "reserved": torch.cuda.max_memory_reserved()}
        save()  # after every phase: a run stopped by run.sh's timeout keeps what it measured

    def save():
        if a.out:
            with open(a.out, "w") as f:
                json.dump(res, f, indent=1, default=str)

    def prefill():
        model(**x, use_cache=True, **keep)

    def run_decode(key):
        greedy_decode(model, x, min(4, a.new_tokens), dev)  # warm-up
        res[key] = greedy_decode(model, x, a.new_tokens, dev)

    w = lm_weights(model)
    hook = PrenormHook(model)

    def analyze_once():
        from hf_metrics import compute_metrics, to_json

        out = model(**x, output_hidden_states=True, output_attentions=True, use_cache=False, **keep)
        hs = [h[0] for h in out.hidden_states]
        att = [t[0] for t in out.attentions]
        m = compute_metrics(hs, att, hook.value[0], w, meta["image"], meta["text"], meta["query"], 5, lens_dtype=dtype)
        return to_json(m)

    res["attn_eager"] = attn_impl(model)
    phase("prefill_eager", lambda: res.__setitem__("prefill_s_eager", timed(prefill, a.reps, dev)))
    metrics = {}

    def analyze():
        metrics["m"] = analyze_once()
        res["analyze_s"] = timed(analyze_once, a.reps, dev)

    phase("analyze", analyze)
    phase("decode_eager", lambda: run_decode("decode_eager"))
    if a.metrics_out and "m" in metrics:
        with open(a.metrics_out, "w") as f:
            json.dump(metrics["m"], f)

    # SDPA: switch in place where the version can, else reload
    try:
        model.set_attn_implementation("sdpa")
        res["sdpa_by"] = "set_attn_implementation"
    except Exception as e:
        res["sdpa_by"] = f"reload ({type(e).__name__}: {e})"
        hook.handle.remove()
        del model
        if cuda:
            torch.cuda.empty_cache()
        _, model = load_model(a.model, dtype, "sdpa", dev)
    res["attn_sdpa"] = attn_impl(model)
    phase("prefill_sdpa", lambda: res.__setitem__("prefill_s_sdpa", timed(prefill, a.reps, dev)))
    phase("decode_sdpa", lambda: run_decode("decode_sdpa"))
    save()
    print(json.dumps({k: v for k, v in res.items() if k not in ("versions",)}, default=str)[:4000])
    return 1 if res["errors"] else 0


def parity(a):
    import torch

    from hf_metrics import read_safetensors

    need_transformers()
    dump = read_safetensors(a.dump)
    mt, model = load_model(a.model, torch.float32, "eager", a.device)
    dev = a.device
    x = {
        "input_ids": dump["input_ids"].long()[None].to(dev),
        "attention_mask": torch.ones(1, dump["input_ids"].numel(), dtype=torch.long, device=dev),
        "pixel_values": dump["pixel_values"][None].to(dev),
    }
    if "qformer_input_ids" in dump:
        q = dump["qformer_input_ids"].long()[None].to(dev)
        x["qformer_input_ids"] = q
        x["qformer_attention_mask"] = torch.ones_like(q)
    hook = PrenormHook(model)
    with torch.inference_mode():
        out = model(**x, output_hidden_states=True, use_cache=False)
    lm_out = getattr(out, "language_model_outputs", None)
    hidden = out.hidden_states if getattr(out, "hidden_states", None) is not None else lm_out.hidden_states
    logits = out.logits
    hf = {f"hidden_states.{l}": h[0] for l, h in enumerate(hidden)}
    hf["residual_final"] = hook.value[0]
    hf["logits"] = logits[0]
    img = getattr(out, "image_hidden_states", None)  # LLaVA: the projector's output
    if img is not None and "image_features" in dump:
        hf["image_features"] = img.reshape(-1, img.shape[-1])
    rows = {}
    failed = []
    for name, ref in hf.items():
        ours = dump.get(name)
        if ours is None:
            rows[name] = {"error": "not in the dump"}
            failed.append(name)
            continue
        ref = ref.float().cpu()
        if tuple(ours.shape) != tuple(ref.shape):
            rows[name] = {"error": f"shape: phaselens {list(ours.shape)}, HF {list(ref.shape)}"}
            failed.append(name)
            continue
        diff = (ours.double() - ref.double()).abs().max().item()
        scale = ref.double().abs().max().item()
        rel = diff / scale if scale > 0 else diff
        rows[name] = {"shape": list(ref.shape), "max_abs": diff, "rel": rel}
        if not rel <= a.tol:  # NaN fails too
            failed.append(name)
    worst = max((r.get("rel", float("inf")) for r in rows.values()), default=float("inf"))
    res = {"family": mt, "model": a.model, "versions": versions(), "tol": a.tol, "tensors": rows, "worst_rel": worst, "failed": failed, "pass": not failed}
    if a.out:
        with open(a.out, "w") as f:
            json.dump(res, f, indent=1)
    print(f"parity {mt}: {len(rows)} tensors, worst max|phaselens-HF|/max|HF| = {worst:.3g} (tol {a.tol:g}): {'PASS' if not failed else 'FAIL ' + ', '.join(failed)}")
    return 0 if not failed else 1


def main(argv=None):
    ap = argparse.ArgumentParser(description="HF transformers side of bench/gpu/run.sh (see the module docstring)")
    sub = ap.add_subparsers(dest="cmd", required=True)
    sub.add_parser("check", help="print the versions; exit 3 without transformers")
    p = sub.add_parser("perf", help="prefill (eager, sdpa), decode and analyze timings of a LLaVA checkpoint")
    p.add_argument("--model", required=True)
    p.add_argument("--inputs", required=True, help="PREFIX of PREFIX.json + PREFIX.f32 (device-bench --inputs-out)")
    p.add_argument("--device", default="cuda")
    p.add_argument("--dtype", default="float16", choices=["float16", "bfloat16", "float32"])
    p.add_argument("--reps", type=int, default=3)
    p.add_argument("--new-tokens", type=int, default=32)
    p.add_argument("--out", default=None)
    p.add_argument("--metrics-out", default=None)
    q = sub.add_parser("parity", help="hidden states and logits of HF vs a phaselens dump (float32)")
    q.add_argument("--model", required=True)
    q.add_argument("--dump", required=True)
    q.add_argument("--device", default="cpu")
    q.add_argument("--tol", type=float, default=1e-4)
    q.add_argument("--out", default=None)
    a = ap.parse_args(argv)
    if a.cmd == "perf" and (a.reps < 1 or a.new_tokens < 2):
        ap.error("--reps must be >= 1 and --new-tokens >= 2")
    need_transformers()  # every mode needs it: fail before reading anything
    if a.cmd == "check":
        print(json.dumps(versions()))
        return 0
    return perf(a) if a.cmd == "perf" else parity(a)


if __name__ == "__main__":
    sys.exit(main())
