"""From a checkpoint directory to checked parameters: every key and shape that config.json implies.

`load_checked` reads the safetensors files (weights.py), renames BERT's keys to DistilBERT's (the
layers compute the same thing; only the names differ), compares every tensor with what the config
says the architecture and head need, and names the file and the original key when they disagree.
`nest` turns the flat `a.b.weight` keys into the dict tree model.py's functions walk.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from .config import BertConfig, DistilBertConfig
from .model import Params, sinusoidal_position_embeddings
from .weights import load_tensors

Config = DistilBertConfig | BertConfig

# ---------------------------------------------------------------------------------------------
# BERT -> DistilBERT key names. A BERT layer is a DistilBERT layer under other names, so BERT
# checkpoints are renamed once here and model.py has a single encoder.

BERT_LAYER_RENAMES = {
    "attention.self.query": "attention.q_lin",
    "attention.self.key": "attention.k_lin",
    "attention.self.value": "attention.v_lin",
    "attention.output.dense": "attention.out_lin",
    "attention.output.LayerNorm": "sa_layer_norm",
    "intermediate.dense": "ffn.lin1",
    "output.dense": "ffn.lin2",
    "output.LayerNorm": "output_layer_norm",
}
BERT_HEAD_RENAMES = {  # BertForMaskedLM's head is DistilBertForMaskedLM's: dense -> act -> LayerNorm -> decoder
    "cls.predictions.transform.dense": "vocab_transform",
    "cls.predictions.transform.LayerNorm": "vocab_layer_norm",
    "cls.predictions.decoder": "vocab_projector",
    "cls.predictions.bias": "vocab_projector.bias",  # the decoder's bias, stored one level up
}
_BERT_LAYER = re.compile(r"encoder\.layer\.(\d+)\.(.+)\.(weight|bias)")


def bert_to_distilbert_key(key: str) -> str:
    """`encoder.layer.0.attention.self.query.weight` -> `transformer.layer.0.attention.q_lin.weight`;
    keys with no DistilBERT twin (token_type_embeddings, pooler, task heads) keep their name."""
    m = _BERT_LAYER.fullmatch(key)
    if m and m.group(2) in BERT_LAYER_RENAMES:
        return f"transformer.layer.{m.group(1)}.{BERT_LAYER_RENAMES[m.group(2)]}.{m.group(3)}"
    for old, new in BERT_HEAD_RENAMES.items():
        if key == old or key.startswith(old + "."):
            return new + key[len(old):]
    return key


def checkpoint_key(name: str, cfg: Config, prefixed: bool) -> str:
    """The inverse of the renaming: the key a checkpoint stores model name `name` under (for error messages)."""
    if cfg.model_type == "bert":
        m = re.fullmatch(r"transformer\.layer\.(\d+)\.(.+)\.(weight|bias)", name)
        layer_names = {new: old for old, new in BERT_LAYER_RENAMES.items()}
        if m and m.group(2) in layer_names:
            name = f"encoder.layer.{m.group(1)}.{layer_names[m.group(2)]}.{m.group(3)}"
        head_names = {new: old for old, new in BERT_HEAD_RENAMES.items()}
        for new, old in sorted(head_names.items(), key=lambda kv: -len(kv[0])):  # vocab_projector.bias first
            if name == new or name.startswith(new + "."):
                name = old + name[len(new):]
                break
    base = name.split(".")[0] in ("embeddings", "transformer", "encoder") or (
        cfg.model_type == "bert" and name.startswith("pooler.")
    )
    return f"{cfg.model_type}.{name}" if prefixed and base else name


def _normalised_keys(tensors: dict, cfg: Config) -> dict[str, str]:
    """{model name: checkpoint key}: the base-model prefix (`distilbert.` / `bert.`) dropped, BERT renamed."""
    prefix = cfg.model_type + "."
    has_prefix = any(k.startswith(prefix) for k in tensors)
    names = {}
    for key in tensors:
        bare = key.removeprefix(prefix) if has_prefix else key
        name = bert_to_distilbert_key(bare) if cfg.model_type == "bert" else bare
        if key == "cls.predictions.decoder.bias" and "cls.predictions.bias" in tensors:
            continue  # the same tied tensor as cls.predictions.bias; transformers reads that one
        names[name] = key
    return names


# ---------------------------------------------------------------------------------------------
# The parameters a config implies: every key and shape a checkpoint must provide (DistilBERT names).


def _lin(name: str, n_out: int, n_in: int) -> dict[str, tuple[int, ...]]:
    return {f"{name}.weight": (n_out, n_in), f"{name}.bias": (n_out,)}


def _norm(name: str, C: int) -> dict[str, tuple[int, ...]]:
    return {f"{name}.weight": (C,), f"{name}.bias": (C,)}


def encoder_shapes(cfg: Config) -> dict[str, tuple[int, ...]]:
    C, F = cfg.dim, cfg.hidden_dim
    shapes = {
        "embeddings.word_embeddings.weight": (cfg.vocab_size, C),
        "embeddings.position_embeddings.weight": (cfg.max_position_embeddings, C),
        **_norm("embeddings.LayerNorm", C),
    }
    if cfg.model_type == "bert":  # BERT's one addition to the embeddings: a vector per token type
        shapes["embeddings.token_type_embeddings.weight"] = (cfg.type_vocab_size, C)
    for i in range(cfg.n_layers):
        layer = f"transformer.layer.{i}"
        for name in ("q_lin", "k_lin", "v_lin", "out_lin"):
            shapes |= _lin(f"{layer}.attention.{name}", C, C)
        shapes |= _norm(f"{layer}.sa_layer_norm", C)
        shapes |= _lin(f"{layer}.ffn.lin1", F, C) | _lin(f"{layer}.ffn.lin2", C, F)
        shapes |= _norm(f"{layer}.output_layer_norm", C)
    return shapes


def pooler_shapes(cfg: Config) -> dict[str, tuple[int, ...]]:
    return _lin("pooler.dense", cfg.dim, cfg.dim)  # BERT only


def classifier_shapes(cfg: Config) -> dict[str, tuple[int, ...]]:
    # sequence classification: DistilBERT's pre_classifier + classifier; BERT's pooler + classifier
    C, L = cfg.dim, cfg.num_labels
    first = pooler_shapes(cfg) if cfg.model_type == "bert" else _lin("pre_classifier", C, C)
    return first | _lin("classifier", L, C)


HEADS = {
    "sequence_classification": classifier_shapes,
    "masked_lm": lambda cfg: (
        _lin("vocab_transform", cfg.dim, cfg.dim)
        | _norm("vocab_layer_norm", cfg.dim)
        | _lin("vocab_projector", cfg.vocab_size, cfg.dim)
    ),
    "token_classification": lambda cfg: _lin("classifier", cfg.num_labels, cfg.dim),
    "question_answering": lambda cfg: _lin("qa_outputs", 2, cfg.dim),
}
HEAD_NAMES = {  # how the error message names a missing head
    "sequence_classification": "sequence-classification head (pre_classifier/classifier; BERT: pooler/classifier)",
    "masked_lm": "masked-LM head (vocab_transform/vocab_layer_norm/vocab_projector; BERT: cls.predictions)",
    "token_classification": "token-classification head (classifier)",
    "question_answering": "question-answering head (qa_outputs)",
}


def head_shapes(cfg: Config, head: str | None) -> dict[str, tuple[int, ...]]:
    return {} if head is None else HEADS[head](cfg)


def load_checked(
    directory: Path, cfg: Config, with_head: bool | str = False, dtype: np.dtype = np.float32
) -> dict[str, np.ndarray]:
    """Checkpoint tensors by their (DistilBERT) names in the module tree, each checked against the
    config, as read-only `dtype` arrays.

    with_head: False (the encoder; for BERT plus the pooler when the file has one), True (sequence
    classification) or a key of HEADS. Encoder keys are bare (`embeddings...`) in a saved base model
    and prefixed `distilbert.` / `bert.` in a saved model with a head; either loads.
    """
    head = "sequence_classification" if with_head is True else (with_head or None)
    tensors, source = load_tensors(directory, dtype)
    names = _normalised_keys(tensors, cfg)  # model name -> checkpoint key
    prefixed = any(k.startswith(cfg.model_type + ".") for k in tensors)
    tensors = {name: tensors[key] for name, key in names.items()}
    source = {name: f"{source[key]}: tensor {key}" for name, key in names.items()}

    wanted = encoder_shapes(cfg) | head_shapes(cfg, head)
    if cfg.model_type == "bert" and head is None and "pooler.dense.weight" in tensors:
        wanted |= pooler_shapes(cfg)  # BertModel's pooler_output, when the checkpoint has a pooler
    position_key = "embeddings.position_embeddings.weight"
    if cfg.sinusoidal_pos_embds and position_key not in tensors:
        tensors[position_key] = sinusoidal_position_embeddings(cfg.max_position_embeddings, cfg.dim).astype(dtype)
        source[position_key] = "(computed: sinusoidal_pos_embds): tensor " + position_key
    if "vocab_projector.weight" in wanted and cfg.tie_word_embeddings:
        # Tied (transformers' default): the output projection IS the word embedding matrix, whatever the
        # file stores under the decoder's name (transformers re-ties it on load, and so do we).
        tensors["vocab_projector.weight"] = tensors.get("embeddings.word_embeddings.weight")
        source["vocab_projector.weight"] = "(tied to embeddings.word_embeddings.weight)"

    files = ", ".join(sorted({s.split(": tensor ")[0] for s in source.values()})) or "(no tensors)"
    missing_names = [k for k in wanted if tensors.get(k) is None]
    missing = [checkpoint_key(k, cfg, prefixed) for k in missing_names]
    missing_head = [checkpoint_key(k, cfg, prefixed) for k in missing_names if k in head_shapes(cfg, head)]
    if missing_head and len(missing_head) == len(missing):
        raise ValueError(
            f"{directory} ({files}) has no {HEAD_NAMES[head]}: it lacks {', '.join(missing_head[:3])}. "
            "Load it with AutoModel or the class for the task it was trained for; minibert does not invent "
            "random head weights."
        )
    if missing:
        raise ValueError(
            f"{directory} ({files}) lacks {len(missing)} tensor(s) that config.json implies, e.g. "
            f"{', '.join(missing[:5])}{_architecture_hint(names, cfg)}"
        )
    for key, shape in wanted.items():
        if tensors[key].shape != shape:
            raise ValueError(
                f"{directory / source[key]} has shape {tuple(tensors[key].shape)}, but config.json implies {shape}"
            )
    # Tensors the config does not explain: inside the encoder they mean config and file disagree
    # (e.g. more layers in the file); elsewhere they are another task's head (MLM, QA): unused.
    encoder_roots = ("embeddings", "transformer", "encoder")
    stray = [
        k for k in tensors
        if k not in wanted
        and k.split(".")[0] in encoder_roots
        and not k.endswith("position_ids")  # an index buffer older transformers saved; not a weight
    ]
    if stray:
        raise ValueError(
            f"{directory / source[stray[0]]} is not part of the model config.json describes "
            f"(n_layers={cfg.n_layers}); {len(stray)} such tensor(s)"
        )
    return {k: tensors[k] for k in wanted}


def _architecture_hint(names: dict[str, str], cfg: Config) -> str:
    # A checkpoint of the other architecture under this config.json says so, instead of 100 missing keys.
    other = {"bert": "distilbert", "distilbert": "bert"}[cfg.model_type]
    marker = "encoder.layer." if other == "bert" else "transformer.layer."
    if any(marker in key for key in names.values()):
        return f"; its tensors look like a {other!r} checkpoint but config.json has model_type {cfg.model_type!r}"
    return ""


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
