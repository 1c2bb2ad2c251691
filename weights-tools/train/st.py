"""Minimal safetensors I/O for the trainer (numpy only): read every tensor of a file in
its stored dtype, write float32 / int32 tensors. Format: u64 LE header length, JSON
header {name: {dtype, shape, data_offsets}}, padded with spaces to 8 bytes, then data."""
import json
import os
import struct

import numpy as np

DTYPES = {"F32": np.float32, "F16": np.float16, "I32": np.int32, "I64": np.int64, "U8": np.uint8}


def read(path):
    """(tensors {name: ndarray}, metadata {str: str})."""
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
    meta = header.pop("__metadata__", {})
    out = {}
    for name, info in header.items():
        if info["dtype"] not in DTYPES:
            raise SystemExit(f"{path}: {name} has dtype {info['dtype']}, not one of {sorted(DTYPES)}")
        begin, end = info["data_offsets"]
        dt = np.dtype(DTYPES[info["dtype"]]).newbyteorder("<")
        out[name] = np.fromfile(path, dtype=dt, count=(end - begin) // dt.itemsize, offset=8 + n + begin).reshape(info["shape"])
    return out, meta


def write(path, tensors, metadata):
    """tensors: {name: float32 or int32 ndarray}, written in order; atomic replace."""
    header = {"__metadata__": {k: str(v) for k, v in metadata.items()}}
    blobs, at = [], 0
    for name, a in tensors.items():
        a = np.ascontiguousarray(a)
        dt = {np.dtype(np.float32): "F32", np.dtype(np.int32): "I32"}[a.dtype]
        b = a.astype(a.dtype.newbyteorder("<"), copy=False).tobytes()
        header[name] = {"dtype": dt, "shape": list(a.shape), "data_offsets": [at, at + len(b)]}
        blobs.append(b)
        at += len(b)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    with open(path + ".tmp", "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h)
        for b in blobs:
            f.write(b)
    os.replace(path + ".tmp", path)
