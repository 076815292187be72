"""Read a checkpoint's tensors from safetensors files as read-only NumPy arrays (float32 or float64).

Only safetensors: a `pytorch_model.bin` is a pickle, and unpickling runs arbitrary code, so a
checkpoint that has nothing else is refused with an error that says how to convert it.
"""

from __future__ import annotations

import json
import mmap
from pathlib import Path

import numpy as np
import safetensors
from safetensors import safe_open

SINGLE_FILE = "model.safetensors"
SHARD_INDEX = "model.safetensors.index.json"
FLOAT_DTYPES = ("F32", "F16", "BF16", "F64")


def safetensors_files(directory: Path) -> list[Path]:
    """The safetensors files of a checkpoint directory: one file, or the shards its index names."""
    if (directory / SINGLE_FILE).is_file():
        return [directory / SINGLE_FILE]
    if (directory / SHARD_INDEX).is_file():
        weight_map = json.loads((directory / SHARD_INDEX).read_text(encoding="utf-8"))["weight_map"]
        shards = [directory / name for name in sorted(set(weight_map.values()))]
        missing = [s.name for s in shards if not s.is_file()]
        if missing:
            raise FileNotFoundError(f"{directory / SHARD_INDEX} names shards that are not there: {missing}")
        return shards
    if any((directory / name).is_file() for name in ("pytorch_model.bin", "tf_model.h5", "flax_model.msgpack")):
        raise FileNotFoundError(
            f"{directory} has no {SINGLE_FILE}, only pickled/framework weights. minibert never unpickles "
            "pytorch_model.bin (it can run arbitrary code). Convert it once with transformers: "
            "AutoModel.from_pretrained(dir).save_pretrained(out_dir) writes model.safetensors."
        )
    raise FileNotFoundError(f"{directory} has no {SINGLE_FILE} (or {SHARD_INDEX})")


def _header(buffer: mmap.mmap) -> tuple[dict, int]:
    # A safetensors file is: 8-byte little-endian header length n, n bytes of JSON, then the data.
    # safe_open has already validated the header (offsets in bounds and contiguous, dtypes known).
    n = int.from_bytes(buffer[:8], "little")
    header = json.loads(buffer[8 : 8 + n])
    header.pop("__metadata__", None)
    return header, 8 + n


def _from_bytes(buffer: mmap.mmap, info: dict, base: int, dtype: np.dtype) -> np.ndarray:
    # One tensor of the file as a read-only array of `dtype`. float32 in a float32 model is a view of
    # the memory map: no copy, and pages shared by every process that maps the same file.
    start, end = info["data_offsets"]
    raw = np.frombuffer(buffer, dtype=np.uint8, count=end - start, offset=base + start)
    if info["dtype"] == "BF16":  # bfloat16 is the top half of a float32: widen the bits, reinterpret
        arr = (raw.view("<u2").astype(np.uint32) << 16).view(np.float32)
    else:
        arr = raw.view(_NUMPY_DTYPES[info["dtype"]])
    arr = arr.reshape(info["shape"]).astype(dtype, copy=False)
    arr.flags.writeable = False  # a forward pass never writes into weights; make any attempt raise
    return arr


_NUMPY_DTYPES = {"F32": "<f4", "F16": "<f2", "F64": "<f8"}


def load_tensors(directory: Path, dtype: np.dtype = np.float32) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    """All tensors of the checkpoint as read-only `dtype` arrays, and for each key the file it came from."""
    tensors: dict[str, np.ndarray] = {}
    source: dict[str, str] = {}
    for path in safetensors_files(directory):
        try:
            with safe_open(str(path), framework="numpy") as f:  # safetensors' own header validation
                keys = list(f.keys())
                dtypes = {k: f.get_slice(k).get_dtype() for k in keys}
        except safetensors.SafetensorError as e:
            raise ValueError(f"{path} is not a readable safetensors file: {e}") from e
        # embeddings.position_ids is an integer index buffer (0..n-1) that older transformers saved, not a weight.
        keys = [k for k in keys if not (k.endswith("position_ids") and dtypes[k] not in FLOAT_DTYPES)]
        bad = {k: d for k in keys if (d := dtypes[k]) not in FLOAT_DTYPES}
        if bad:
            key, file_dtype = next(iter(bad.items()))
            raise ValueError(f"{path.name}: tensor {key} has dtype {file_dtype}; weights must be floating point")
        with open(path, "rb") as fh:
            buffer = mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ)  # stays open while an array views it
        header, base = _header(buffer)
        for k in keys:
            tensors[k] = _from_bytes(buffer, header[k], base, np.dtype(dtype))
        source.update(dict.fromkeys(keys, path.name))
    return tensors, source
