"""DistilBERT in NumPy, top to bottom.

DistilBERT (Sanh et al., 2019) is BERT with half the layers and no token-type embeddings or
pooler. A forward pass is:

    input_ids [B, T]
      -> embeddings: word vector + position vector, LayerNorm             [B, T, C]
      -> n_layers x transformer block (post-LN):
             x = LayerNorm(x + SelfAttention(x))                          [B, T, C]
             x = LayerNorm(x + FFN(x)),  FFN = lin2(GELU(lin1(x)))        [B, T, C]
      -> last_hidden_state                                                [B, T, C]
    sequence classification adds a head on the first ([CLS]) token:
      -> classifier(ReLU(pre_classifier(h[:, 0])))                        [B, L]

Shapes: B batch, T tokens, C = dim, H = n_heads, D = C // H (head size), F = hidden_dim, L = labels.

Parameter names equal the checkpoint keys of Hugging Face's modeling_distilbert.py (`q_lin`,
`sa_layer_norm`, `ffn.lin1`, `pre_classifier`, ...), so loading is a dictionary walk. Linear
weights are stored as torch stores them, (out, in), hence `x @ weight.T`.

The hot steps (linear, LayerNorm, GELU, attention softmax) come from `ops`, the backend chosen in
kernels.py: the NumPy reference or the fast path (Numba kernels, BLAS in its fastest call order).
Everything else is plain NumPy.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, fields
from pathlib import Path
from typing import TypeVar

import numpy as np

from .config import DistilBertConfig
from .hub import resolve_checkpoint
from .kernels import MASK_MIN, Ops, get_ops
from .weights import load_tensors

Params = dict  # a nested dict of float32 arrays, shaped like the checkpoint's key tree


# ---------------------------------------------------------------------------------------------
# The architecture: one pure function per step.


def linear(x: np.ndarray, p: Params, ops: Ops) -> np.ndarray:
    # [..., n_in] -> [..., n_out]: x @ weight.T + bias, with weight [n_out, n_in] as torch stores it
    out = ops.linear(x.reshape(-1, x.shape[-1]), p["weight"], p["bias"])
    return out.reshape(*x.shape[:-1], -1)


def embeddings(input_ids: np.ndarray, p: Params, eps: float, ops: Ops) -> np.ndarray:
    # [B, T] -> [B, T, C]: a learned vector per token id plus one per position, then LayerNorm.
    T = input_ids.shape[1]
    x = p["word_embeddings"]["weight"][input_ids] + p["position_embeddings"]["weight"][:T]
    return ops.layer_norm(x, p["LayerNorm"]["weight"], p["LayerNorm"]["bias"], eps)


def attention_mask_bias(attention_mask: np.ndarray) -> np.ndarray:
    # [B, T] of 1 (real token) / 0 (padding) -> [B, T] additive bias: 0 or MASK_MIN, added to the
    # scores of every query, so no token attends to padding.
    return np.where(attention_mask == 1, np.float32(0), MASK_MIN).astype(np.float32)


def self_attention(x: np.ndarray, mask_bias: np.ndarray, p: Params, n_heads: int, ops: Ops) -> np.ndarray:
    # [B, T, C] -> [B, T, C]
    B, T, C = x.shape
    D = C // n_heads

    def split_heads(t):  # [B, T, C] -> [B, H, T, D]
        return t.reshape(B, T, n_heads, D).transpose(0, 2, 1, 3)

    q = split_heads(linear(x, p["q_lin"], ops))
    k = split_heads(linear(x, p["k_lin"], ops))
    v = split_heads(linear(x, p["v_lin"], ops))
    scores = q @ k.transpose(0, 1, 3, 2)  # [B, H, T, T]: query t vs key s
    weights = ops.attention_softmax(scores, D**-0.5, mask_bias)  # softmax(scores/sqrt(D) + mask), rows sum to 1
    heads = weights @ v  # [B, H, T, D]: weighted mix of the values
    merged = heads.transpose(0, 2, 1, 3).reshape(B, T, C)  # [B, T, C]: heads side by side
    return linear(merged, p["out_lin"], ops)


def ffn(x: np.ndarray, p: Params, activation: str, ops: Ops) -> np.ndarray:
    # [B, T, C] -> [B, T, F] -> [B, T, C], applied to each token on its own
    act = ops.gelu if activation == "gelu" else ops.relu
    return linear(act(linear(x, p["lin1"], ops)), p["lin2"], ops)


def transformer_block(x: np.ndarray, mask_bias: np.ndarray, p: Params, cfg: DistilBertConfig, ops: Ops):
    # [B, T, C] -> [B, T, C]; post-LN: the residual sum is normalised (BERT style, not GPT-2's pre-LN)
    def norm(t, q):
        return ops.layer_norm(t, q["weight"], q["bias"], cfg.layer_norm_eps)

    x = norm(x + self_attention(x, mask_bias, p["attention"], cfg.n_heads, ops), p["sa_layer_norm"])
    x = norm(x + ffn(x, p["ffn"], cfg.activation, ops), p["output_layer_norm"])
    return x


def distilbert(
    input_ids: np.ndarray, attention_mask: np.ndarray, p: Params, cfg: DistilBertConfig, ops: Ops
) -> np.ndarray:
    # [B, T] ids, [B, T] mask -> [B, T, C] last_hidden_state
    x = embeddings(input_ids, p["embeddings"], cfg.layer_norm_eps, ops)
    mask_bias = attention_mask_bias(attention_mask)
    for i in range(cfg.n_layers):
        x = transformer_block(x, mask_bias, p["transformer"]["layer"][str(i)], cfg, ops)
    return x


def classification_head(hidden: np.ndarray, p: Params, ops: Ops) -> np.ndarray:
    # [B, T, C] -> [B, L]: the [CLS] token's final vector summarises the sequence
    cls = hidden[:, 0]  # [B, C]
    return linear(ops.relu(linear(cls, p["pre_classifier"], ops)), p["classifier"], ops)


def sinusoidal_position_embeddings(n_pos: int, dim: int) -> np.ndarray:
    # [n_pos, C]: fixed sin/cos waves (Vaswani et al.), for configs with sinusoidal_pos_embds=True.
    # Same float64 formula as transformers' create_sinusoidal_embeddings, then float32.
    pos = np.arange(n_pos, dtype=np.float64)[:, None]
    j = np.arange(dim)
    angle = pos / np.power(10000, 2 * (j // 2) / dim)
    out = np.empty((n_pos, dim), dtype=np.float32)
    out[:, 0::2] = np.sin(angle[:, 0::2])
    out[:, 1::2] = np.cos(angle[:, 1::2])
    return out


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


def load_checked(directory: Path, cfg: DistilBertConfig, with_head: bool) -> dict[str, np.ndarray]:
    """Checkpoint tensors by their names in the module tree, each checked against the config.

    Encoder keys are bare (`embeddings...`) in a saved DistilBertModel and prefixed `distilbert.`
    in a saved DistilBertForSequenceClassification; either loads. The result uses bare encoder
    names plus `pre_classifier.*` / `classifier.*` when `with_head`.
    """
    tensors, source = load_tensors(directory)
    prefix = "distilbert." if any(k.startswith("distilbert.") for k in tensors) else ""
    wanted = {prefix + k: s for k, s in encoder_shapes(cfg).items()}
    if with_head:
        wanted |= classifier_shapes(cfg)
    position_key = prefix + "embeddings.position_embeddings.weight"
    if cfg.sinusoidal_pos_embds and position_key not in tensors:
        tensors[position_key] = sinusoidal_position_embeddings(cfg.max_position_embeddings, cfg.dim)
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


# ---------------------------------------------------------------------------------------------
# Inputs and outputs.


def check_inputs(
    input_ids: object, attention_mask: object, cfg: DistilBertConfig
) -> tuple[np.ndarray, np.ndarray]:
    """Validate what a caller passes, so mistakes surface here and not as NumPy errors deep inside."""
    ids = _as_int_matrix(input_ids, "input_ids")
    B, T = ids.shape
    if B == 0 or T == 0:
        raise ValueError(f"input_ids is empty (shape {ids.shape}); pass at least one token per sequence")
    if T > cfg.max_position_embeddings:
        raise ValueError(
            f"input_ids has {T} tokens but the model has only {cfg.max_position_embeddings} positions; "
            "tokenize with truncation=True"
        )
    bad = np.argwhere((ids < 0) | (ids >= cfg.vocab_size))
    if len(bad):
        b, t = bad[0]
        raise ValueError(f"input_ids[{b}, {t}] = {ids[b, t]} is outside the vocabulary [0, {cfg.vocab_size})")
    if attention_mask is None:
        return ids, np.ones_like(ids)
    mask = _as_int_matrix(attention_mask, "attention_mask")
    if mask.shape != ids.shape:
        raise ValueError(f"attention_mask has shape {mask.shape} but input_ids has shape {ids.shape}")
    bad = np.argwhere((mask != 0) & (mask != 1))
    if len(bad):
        b, t = bad[0]
        raise ValueError(f"attention_mask[{b}, {t}] = {mask[b, t]}; it must hold only 0 and 1")
    return ids, mask


def _as_int_matrix(value: object, name: str) -> np.ndarray:
    try:
        arr = np.asarray(value)
    except ValueError as e:  # ragged nested lists
        raise ValueError(f"{name} must be rectangular [batch, seq_len]; pad the batch (padding=True)") from e
    if arr.dtype == np.bool_ or not np.issubdtype(arr.dtype, np.integer):
        raise TypeError(f"{name} must be an integer array, got dtype {arr.dtype}")
    if arr.ndim != 2:
        raise ValueError(f"{name} must be 2-D [batch, seq_len], got shape {arr.shape}; for one sequence use x[None]")
    return arr.astype(np.int64, copy=False)


class ModelOutput:
    """Dataclass outputs that also index like transformers' ModelOutput: out[0], out["logits"]."""

    def __getitem__(self, key: int | str) -> np.ndarray:
        if isinstance(key, str):
            return getattr(self, key)
        return getattr(self, fields(self)[key].name)


@dataclass
class BaseModelOutput(ModelOutput):
    last_hidden_state: np.ndarray  # [B, T, C] float32


@dataclass
class SequenceClassifierOutput(ModelOutput):
    logits: np.ndarray  # [B, L] float32


# ---------------------------------------------------------------------------------------------
# The models, with the transformers API.


M = TypeVar("M", bound="DistilBertPreTrainedModel")


class DistilBertPreTrainedModel:
    """What both models share: loading a checkpoint into a checked state dict."""

    with_head = False  # does the checkpoint need pre_classifier/classifier tensors?

    @classmethod
    def from_pretrained(
        cls: type[M], name_or_path: str | os.PathLike, *, revision: str | None = None, backend: str | None = None
    ) -> M:
        """A hub id (downloaded into the HF cache) or a local directory with config.json + model.safetensors.
        backend: "numba" (default) or "numpy" (the pure-NumPy reference path); see kernels.py."""
        directory = Path(resolve_checkpoint(name_or_path, revision))
        config = DistilBertConfig.from_pretrained(directory)
        return cls(config, load_checked(directory, config, with_head=cls.with_head), backend)


class DistilBertModel(DistilBertPreTrainedModel):
    """The encoder: token ids -> one contextual vector per token."""

    def __init__(self, config: DistilBertConfig, state_dict: dict[str, np.ndarray], backend: str | None = None):
        self.config = config
        self.state_dict = state_dict
        self.params = nest(state_dict)
        self.ops = get_ops(backend)

    def __call__(
        self, input_ids: np.ndarray, attention_mask: np.ndarray | None = None, token_type_ids: object = None
    ) -> BaseModelOutput:
        # token_type_ids is accepted so that model(**transformers_tokenizer(...)) works; DistilBERT has no
        # token-type embeddings and ignores it, exactly as transformers' DistilBertModel does.
        ids, mask = check_inputs(input_ids, attention_mask, self.config)
        return BaseModelOutput(distilbert(ids, mask, self.params, self.config, self.ops))


class DistilBertForSequenceClassification(DistilBertPreTrainedModel):
    """The encoder plus a two-layer head on [CLS]: token ids -> one logit per label."""

    with_head = True

    def __init__(self, config: DistilBertConfig, state_dict: dict[str, np.ndarray], backend: str | None = None):
        head = classifier_shapes(config)
        self.config = config
        self.state_dict = state_dict
        self.distilbert = DistilBertModel(config, {k: v for k, v in state_dict.items() if k not in head}, backend)
        self.params = nest({k: v for k, v in state_dict.items() if k in head})
        self.ops = self.distilbert.ops

    def __call__(
        self, input_ids: np.ndarray, attention_mask: np.ndarray | None = None, token_type_ids: object = None
    ) -> SequenceClassifierOutput:
        hidden = self.distilbert(input_ids, attention_mask).last_hidden_state
        return SequenceClassifierOutput(classification_head(hidden, self.params, self.ops))


class AutoModel:
    """transformers-style entry point; every checkpoint minibert runs is a DistilBERT."""

    @staticmethod
    def from_pretrained(name_or_path: str | os.PathLike, **kwargs) -> DistilBertModel:
        return DistilBertModel.from_pretrained(name_or_path, **kwargs)


class AutoModelForSequenceClassification:
    @staticmethod
    def from_pretrained(name_or_path: str | os.PathLike, **kwargs) -> DistilBertForSequenceClassification:
        return DistilBertForSequenceClassification.from_pretrained(name_or_path, **kwargs)
