"""Read a checkpoint's tensors from safetensors files as float32 NumPy arrays.

Only safetensors: a `pytorch_model.bin` is a pickle, and unpickling runs arbitrary code, so a
checkpoint that has nothing else is refused with an error that says how to convert it.
"""

from __future__ import annotations

import json
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


def _bf16_to_f32(raw: bytes, shape: list[int]) -> np.ndarray:
    # bfloat16 is the top half of a float32: widen the bits and reinterpret. NumPy has no bf16 dtype.
    return (np.frombuffer(raw, dtype="<u2").astype(np.uint32) << 16).view(np.float32).reshape(shape)


def load_tensors(directory: Path) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    """All tensors of the checkpoint as float32 arrays, and for each key the file it came from."""
    tensors: dict[str, np.ndarray] = {}
    source: dict[str, str] = {}
    for path in safetensors_files(directory):
        try:
            with safe_open(str(path), framework="numpy") as f:
                keys = list(f.keys())
                dtypes = {k: f.get_slice(k).get_dtype() for k in keys}
                bad = {k: d for k, d in dtypes.items() if d not in FLOAT_DTYPES}
                if bad:
                    key, dtype = next(iter(bad.items()))
                    raise ValueError(f"{path.name}: tensor {key} has dtype {dtype}; weights must be floating point")
                for k in keys:
                    if dtypes[k] != "BF16":
                        tensors[k] = f.get_tensor(k).astype(np.float32, copy=False)
            if "BF16" in dtypes.values():
                # safetensors' NumPy backend cannot produce bf16; read the raw bytes instead.
                for k, info in safetensors.deserialize(path.read_bytes()):
                    if dtypes[k] == "BF16":
                        tensors[k] = _bf16_to_f32(info["data"], info["shape"])
        except safetensors.SafetensorError as e:
            raise ValueError(f"{path} is not a readable safetensors file: {e}") from e
        source.update(dict.fromkeys(keys, path.name))
    return tensors, source
