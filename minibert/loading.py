"""From a checkpoint directory to checked parameters: every key and shape that config.json implies.

`load_checked` reads the safetensors files (weights.py), compares every tensor with what the config
says the architecture needs (model.py), and names the file and the key when they disagree. `nest`
turns the flat `a.b.weight` keys into the dict tree model.py's functions walk.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .config import DistilBertConfig
from .model import Params, sinusoidal_position_embeddings
from .weights import load_tensors

# ---------------------------------------------------------------------------------------------
# The parameters a config implies: every key and shape a checkpoint must provide.


def encoder_shapes(cfg: DistilBertConfig) -> dict[str, tuple[int, ...]]:
    C, F = cfg.dim, cfg.hidden_dim

    def lin(name, n_out, n_in):
        return {f"{name}.weight": (n_out, n_in), f"{name}.bias": (n_out,)}

    def norm(name):
        return {f"{name}.weight": (C,), f"{name}.bias": (C,)}

    shapes = {
        "embeddings.word_embeddings.weight": (cfg.vocab_size, C),
        "embeddings.position_embeddings.weight": (cfg.max_position_embeddings, C),
        **norm("embeddings.LayerNorm"),
    }
    for i in range(cfg.n_layers):
        layer = f"transformer.layer.{i}"
        for name in ("q_lin", "k_lin", "v_lin", "out_lin"):
            shapes |= lin(f"{layer}.attention.{name}", C, C)
        shapes |= norm(f"{layer}.sa_layer_norm")
        shapes |= lin(f"{layer}.ffn.lin1", F, C) | lin(f"{layer}.ffn.lin2", C, F)
        shapes |= norm(f"{layer}.output_layer_norm")
    return shapes


def classifier_shapes(cfg: DistilBertConfig) -> dict[str, tuple[int, ...]]:
    C, L = cfg.dim, cfg.num_labels
    return {
        "pre_classifier.weight": (C, C),
        "pre_classifier.bias": (C,),
        "classifier.weight": (L, C),
        "classifier.bias": (L,),
    }


def load_checked(
    directory: Path, cfg: DistilBertConfig, with_head: bool, dtype: np.dtype = np.float32
) -> dict[str, np.ndarray]:
    """Checkpoint tensors by their names in the module tree, each checked against the config, as
    read-only `dtype` arrays.

    Encoder keys are bare (`embeddings...`) in a saved DistilBertModel and prefixed `distilbert.`
    in a saved DistilBertForSequenceClassification; either loads. The result uses bare encoder
    names plus `pre_classifier.*` / `classifier.*` when `with_head`.
    """
    tensors, source = load_tensors(directory, dtype)
    prefix = "distilbert." if any(k.startswith("distilbert.") for k in tensors) else ""
    wanted = {prefix + k: s for k, s in encoder_shapes(cfg).items()}
    if with_head:
        wanted |= classifier_shapes(cfg)
    position_key = prefix + "embeddings.position_embeddings.weight"
    if cfg.sinusoidal_pos_embds and position_key not in tensors:
        tensors[position_key] = sinusoidal_position_embeddings(cfg.max_position_embeddings, cfg.dim).astype(dtype)
        source[position_key] = "(computed: sinusoidal_pos_embds)"

    encoder_roots = ("embeddings", "transformer")
    files = ", ".join(sorted(set(source.values()))) or "(no tensors)"
    missing = [k for k in wanted if k not in tensors]
    if with_head and any(k in classifier_shapes(cfg) for k in missing):
        raise ValueError(
            f"{directory} ({files}) has no sequence-classification head (pre_classifier/classifier): it is a "
            "base model. Load it with AutoModel, or use a fine-tuned classification checkpoint; minibert "
            "does not invent random head weights."
        )
    if missing:
        raise ValueError(
            f"{directory} ({files}) lacks {len(missing)} tensor(s) that config.json implies, e.g. "
            f"{', '.join(missing[:5])}"
        )
    for key, shape in wanted.items():
        if tensors[key].shape != shape:
            raise ValueError(
                f"{directory / source[key]}: tensor {key} has shape {tuple(tensors[key].shape)}, "
                f"but config.json implies {shape}"
            )
    # Tensors the config does not explain: inside the encoder they mean config and file disagree
    # (e.g. more layers in the file); elsewhere they are another task's head (MLM, QA): unused.
    stray = [
        k for k in tensors
        if k not in wanted
        and k.removeprefix(prefix).split(".")[0] in encoder_roots
        and not k.endswith("position_ids")  # an index buffer older transformers saved; not a weight
    ]
    if stray:
        raise ValueError(
            f"{directory / source[stray[0]]}: tensor {stray[0]} is not part of the model config.json "
            f"describes (n_layers={cfg.n_layers}); {len(stray)} such tensor(s)"
        )
    return {k.removeprefix(prefix) if k.startswith(prefix) else k: tensors[k] for k in wanted}


def nest(flat: dict[str, np.ndarray]) -> Params:
    # {"a.b.weight": w} -> {"a": {"b": {"weight": w}}}: the checkpoint's key tree as dicts
    tree: Params = {}
    for key, value in flat.items():
        *path, leaf = key.split(".")
        node = tree
        for part in path:
            node = node.setdefault(part, {})
        node[leaf] = value
    return tree
