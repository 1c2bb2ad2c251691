"""The table bench/gpu/run.sh prints last (and writes to OUT/summary.txt), from what its
steps left in the work folder and in OUT. Standard library only; every input may be
missing (a step failed or timed out), and the table then says so instead of a number.

  python3 bench/gpu/summary.py --work WORK --out OUT [--budget S] [--elapsed S]

Reads: OUT/phaselens.json (device-bench --mode time), WORK/phaselens-f16.json (the same
with --precision f16; added to OUT/phaselens.json as "f16", so that it comes back from the
device tool's 8 files), OUT/hf.json (hf_bench.py perf),
OUT/parity-{llava,instructblip}.json, OUT/profile.txt, WORK/steps.tsv (step, rc, s),
WORK/mem.{baseline,phaselens,phaselens-f16,hf}.log (nvidia-smi memory.used samples, MiB),
WORK/metrics-{phaselens,hf}.json (the analyze metrics of both sides on the 7B),
WORK/make-random.rc, WORK/versions.json.
"""
import argparse
import json
import os


def load(path):
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def get(d, *keys):
    for k in keys:
        if not isinstance(d, dict) or k not in d:
            return None
        d = d[k]
    return d


def mem_peak(work, name):
    try:
        with open(os.path.join(work, f"mem.{name}.log")) as f:
            vals = [float(v) for v in f.read().split() if v.replace(".", "", 1).isdigit()]
        return max(vals) if vals else None
    except OSError:
        return None


def fmt_s(x, unit="ms"):
    if x is None:
        return "—"
    return f"{x * 1000:.1f} ms" if unit == "ms" else f"{x:.2f} s"


def fmt_n(x, digits=1, suffix=""):
    return "—" if x is None else f"{x:.{digits}f}{suffix}"


def ratio(a, b):
    """How many times faster phaselens (time a) is than HF (time b); > 1: phaselens faster."""
    if a is None or b is None or a <= 0:
        return "—"
    return f"{b / a:.2f}x"


def metric_agreement(pl, hf):
    """Largest |Δ| of the contextualization curves and the LogitLens top-1 agreement."""
    if not pl or not hf:
        return None
    out = {}
    for key in ("inter", "intra_image", "intra_text"):
        a, b = get(pl, "contextualization", key), get(hf, "contextualization", key)
        if a and b and len(a) == len(b):
            out[key] = max(abs(x - y) for x, y in zip(a, b) if x is not None and y is not None)
    a, b = get(pl, "logit_lens", "top_ids"), get(hf, "logit_lens", "top_ids")
    if a and b and len(a) == len(b):
        same = total = 0
        for la, lb in zip(a, b):
            for ra, rb in zip(la, lb):
                total += 1
                same += ra[0] == rb[0]
        out["lens_top1_agree"] = same / total if total else None
    a, b = get(pl, "norm_attention", "layer"), get(hf, "norm_attention", "layer")
    if a and b and len(a) == len(b):
        num = max(abs(x - y) for ra, rb in zip(a, b) for x, y in zip(ra, rb))
        den = max(abs(y) for rb in b for y in rb) or 1.0
        out["norm_attention_rel"] = num / den
    return out


def variants_line(r, label):
    picked = get(r, "picked")
    if not picked:
        return None
    line = (
        f"variants picked{label}: matmul prefill {picked.get('matmul_prefill')}, decode {picked.get('matmul_decode')}; "
        f"attention (D=128) prefill {picked.get('attention_prefill')}, decode {picked.get('attention_decode')}"
    )
    plan = get(r, "matmul_plan")
    if plan:
        line += "\n  prefill matmuls: " + ", ".join(f"{k} {v}" for k, v in plan.items())
    return line


def checks_line(r, label):
    checks = get(r, "self_checks")
    if checks is None:
        return None
    return f"self-checks{label}: " + ("; ".join(checks) if checks else "none apply (CPU-class kernels, or no shader-f16 / subgroup matrices)")


def pair(f32, f16, fmt):
    """One cell for phaselens f32 and, when it ran, f16: 'a / b'."""
    return fmt(f32) if f16 is False else f"{fmt(f32)} / {fmt(f16)}"


def build(work, out, budget=None, elapsed=None, checkpoint="random fp16 LLaVA-1.5-7B (make-random)"):
    pl = load(os.path.join(out, "phaselens.json"))
    pl16 = load(os.path.join(work, "phaselens-f16.json"))
    if pl is not None and pl16 is not None:
        pl["f16"] = pl16
        with open(os.path.join(out, "phaselens.json"), "w") as f:
            json.dump(pl, f, indent=1)
    elif pl is not None:
        pl16 = pl.get("f16")
    hf = load(os.path.join(out, "hf.json"))
    ver = load(os.path.join(work, "versions.json")) or get(hf, "versions") or {}
    lines = []
    gpu = ver.get("gpu") or get(pl, "adapter") or "?"
    lines.append(f"one-shot GPU check: {gpu}; phaselens adapter {get(pl, 'adapter') or '—'} ({get(pl, 'kernels') or '?'} kernels)")
    two = pl16 is not None
    for r, label in ((pl, " (f32)" if two else ""), (pl16, " (--precision f16)")):
        for line in (variants_line(r, label), checks_line(r, label)):
            if line:
                lines.append(line)
    lines.append(f"torch {ver.get('torch', '—')}, transformers {ver.get('transformers', '— (missing)')}; checkpoint: {checkpoint}")
    seq = get(pl, "seq") or get(hf, "seq")
    span = get(pl, "image_span")
    vis = span[1] - span[0] if span else "?"
    lines.append(f"input: one COCO image (000000039769) + prompt, {seq or '?'} tokens ({vis} visual)")
    lines.append("")
    # with the f16 run, phaselens's cell and the ratios are "f32 / f16"
    pl_head = "phaselens f32 / f16" if two else "phaselens"
    rows = [("", pl_head, "HF eager", "HF sdpa", "HF eager / pl", "HF sdpa / pl")]
    f16 = (lambda *k: get(pl16, *k)) if two else (lambda *k: False)
    p_pre, p16_pre = get(pl, "prefill_s", "median"), f16("prefill_s", "median")
    h_pre_e, h_pre_s = get(hf, "prefill_s_eager", "median"), get(hf, "prefill_s_sdpa", "median")
    rows.append((
        "prefill (median)", pair(p_pre, p16_pre, fmt_s), fmt_s(h_pre_e), fmt_s(h_pre_s),
        pair(p_pre, p16_pre, lambda p: ratio(p, h_pre_e)), pair(p_pre, p16_pre, lambda p: ratio(p, h_pre_s)),
    ))
    p_dec, p16_dec = get(pl, "decode", "tok_s"), f16("decode", "tok_s")
    h_dec_e, h_dec_s = get(hf, "decode_eager", "tok_s"), get(hf, "decode_sdpa", "tok_s")
    speedup = lambda h: lambda p: "—" if not (p and h) else f"{p / h:.2f}x"  # noqa: E731
    rows.append((
        f"decode tokens/s ({get(pl, 'decode', 'tokens') or '?'} tok)", pair(p_dec, p16_dec, fmt_n), fmt_n(h_dec_e), fmt_n(h_dec_s),
        pair(p_dec, p16_dec, speedup(h_dec_e)), pair(p_dec, p16_dec, speedup(h_dec_s)),
    ))
    p_an, p16_an, h_an = get(pl, "analyze_s", "median"), f16("analyze_s", "median"), get(hf, "analyze_s", "median")
    rows.append((
        "analyze s/image, all probes", pair(p_an, p16_an, lambda x: fmt_s(x, "s")), fmt_s(h_an, "s") + " (hs+attn+torch)", "n/a (no attentions)",
        pair(p_an, p16_an, lambda p: ratio(p, h_an)), "",
    ))
    base = mem_peak(work, "baseline") or 0.0
    hm = mem_peak(work, "hf")
    hpk = get(hf, "peak_bytes") or {}
    h_alloc = max((v.get("allocated", 0) for v in hpk.values()), default=None) if hpk else None

    def pl_mem(r, log):
        pb, pm = get(r, "peak_gpu_bytes"), mem_peak(work, log)
        return f"{fmt_n(pb / 2**30 if pb else None, 2, ' GiB')} buffers; {fmt_n((pm - base) / 1024 if pm else None, 2, ' GiB')} device"

    rows.append((
        "peak GPU memory",
        pl_mem(pl, "phaselens") + (f" / {pl_mem(pl16, 'phaselens-f16')}" if two else ""),
        f"{fmt_n(h_alloc / 2**30 if h_alloc else None, 2, ' GiB')} torch alloc; {fmt_n((hm - base) / 1024 if hm else None, 2, ' GiB')} device",
        "", "", "",
    ))
    rows.append(("weights load", pair(get(pl, "load_s"), f16("load_s"), lambda x: fmt_s(x, "s")), fmt_s(get(hf, "load_s"), "s"), "", "", ""))
    widths = [max(len(str(r[i])) for r in rows) for i in range(len(rows[0]))]
    for r in rows:
        lines.append("  ".join(str(c).ljust(w) for c, w in zip(r, widths)).rstrip())
    lines.append("(ratios > 1: phaselens faster; 'device' = nvidia-smi memory.used over the idle baseline)")

    agree = metric_agreement(load(os.path.join(work, "metrics-phaselens.json")), load(os.path.join(work, "metrics-hf.json")))
    if agree:
        parts = [f"max |Δ {k}| {v:.2e}" for k, v in agree.items() if k in ("inter", "intra_image", "intra_text")]
        if agree.get("norm_attention_rel") is not None:
            parts.append(f"norm attention rel {agree['norm_attention_rel']:.2e}")
        if agree.get("lens_top1_agree") is not None:
            parts.append(f"LogitLens top-1 agreement {100 * agree['lens_top1_agree']:.1f}%")
        lines.append("analyze metrics on this checkpoint, phaselens vs HF + hf_metrics.py: " + ", ".join(parts))
    lines.append("")
    for fam in ("llava", "instructblip"):
        p = load(os.path.join(out, f"parity-{fam}.json"))
        if p is None:
            why = "HF transformers missing" if not ver.get("transformers") else "see log.txt"
            lines.append(f"parity {fam} (tiny, HF on CPU vs phaselens dump): not run ({why})")
            continue
        worst = p.get("worst_rel")
        lines.append(
            f"parity {fam} (tiny, f32, HF {get(p, 'versions', 'transformers')} on CPU vs phaselens dump): "
            f"{len(p.get('tensors', {}))} tensors, worst max|Δ|/max|HF| {worst:.2e} (tol {p.get('tol')}): "
            + ("PASS" if p.get("pass") else "FAIL " + ", ".join(p.get("failed", [])))
        )
    errs = {
        **(get(pl, "errors") or {}),
        **{f"f16 {k}": v for k, v in ((get(pl16, "errors") if two else None) or {}).items()},
        **{f"hf {k}": v for k, v in (get(hf, "errors") or {}).items()},
    }
    for k, v in errs.items():
        lines.append(f"error in {k}: {v[:300]}")
    mr = None
    try:
        with open(os.path.join(work, "make-random.rc")) as f:
            rc, s = f.read().split()
            mr = (int(rc), int(s))
    except (OSError, ValueError):
        pass
    if mr:
        lines.append(f"make-random llava-7b: exit {mr[0]} in {mr[1]} s" + (f" ({14.13 / mr[1]:.2f} GB/s)" if mr[0] == 0 and mr[1] > 0 else ""))
    try:
        with open(os.path.join(work, "steps.tsv")) as f:
            steps = [line.rstrip("\n").split("\t") for line in f if line.strip()]
        lines.append("steps (rc, s): " + ", ".join(f"{n} {rc} {s}s" for n, rc, s in steps))
    except OSError:
        pass
    if elapsed is not None:
        lines.append(f"total {elapsed} s of the {budget} s budget")
    try:
        with open(os.path.join(out, "profile.txt")) as f:
            prof = f.read().rstrip().split("\n")
        lines.append("")
        lines.append("phaselens per-kernel profile (first 30 lines; all of it in profile.txt):")
        lines.extend(prof[:30])
    except OSError:
        lines.append("phaselens per-kernel profile: not run")
    return "\n".join(lines) + "\n"


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--work", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--budget", type=int, default=None)
    ap.add_argument("--elapsed", type=int, default=None)
    ap.add_argument("--checkpoint", default="random fp16 LLaVA-1.5-7B (make-random)")
    a = ap.parse_args(argv)
    text = build(a.work, a.out, a.budget, a.elapsed, a.checkpoint)
    with open(os.path.join(a.out, "summary.txt"), "w") as f:
        f.write(text)
    print(text, end="")


if __name__ == "__main__":
    main()
