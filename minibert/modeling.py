"""The transformers-style classes around model.py's functions: DistilBertModel,
DistilBertForSequenceClassification, the Auto* entry points and their outputs.

A model object holds a config, the checked parameters (loading.py) and a backend's ops
(kernels.py); calling it validates the inputs and runs model.py's `distilbert` forward pass.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, fields
from pathlib import Path
from typing import TypeVar

import numpy as np

from .config import DistilBertConfig
from .hub import resolve_checkpoint
from .kernels import get_ops
from .loading import classifier_shapes, load_checked, nest
from .model import classification_head, distilbert

DTYPES = ("float32", "float64")


def check_dtype(dtype: object) -> np.dtype:
    """"float32" (default, the fast path) or "float64" (the exact reference), as a name or NumPy type."""
    try:
        name = np.dtype(dtype).name
    except TypeError:
        name = None
    if name not in DTYPES:
        raise ValueError(f"dtype must be one of {DTYPES}, got {dtype!r}")
    return np.dtype(name)


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
    """Dataclass outputs that also index like transformers' ModelOutput: out[0], out["logits"].
    As there, fields that are None (hidden_states/attentions not asked for) are skipped by integer indexing."""

    def __getitem__(self, key: int | str) -> np.ndarray:
        if isinstance(key, str):
            return getattr(self, key)
        return [getattr(self, f.name) for f in fields(self) if getattr(self, f.name) is not None][key]


@dataclass
class BaseModelOutput(ModelOutput):
    last_hidden_state: np.ndarray  # [B, T, C]
    hidden_states: tuple[np.ndarray, ...] | None = None  # embeddings + one per layer, [B, T, C] each
    attentions: tuple[np.ndarray, ...] | None = None  # one per layer, [B, H, T, T] each


@dataclass
class SequenceClassifierOutput(ModelOutput):
    logits: np.ndarray  # [B, L]
    hidden_states: tuple[np.ndarray, ...] | None = None
    attentions: tuple[np.ndarray, ...] | None = None


# ---------------------------------------------------------------------------------------------
# The models, with the transformers API.


M = TypeVar("M", bound="DistilBertPreTrainedModel")


class DistilBertPreTrainedModel:
    """What both models share: loading a checkpoint into a checked state dict."""

    with_head = False  # does the checkpoint need pre_classifier/classifier tensors?

    @classmethod
    def from_pretrained(
        cls: type[M],
        name_or_path: str | os.PathLike,
        *,
        revision: str | None = None,
        backend: str | None = None,
        dtype: str | np.dtype = "float32",
    ) -> M:
        """A hub id (downloaded into the HF cache) or a local directory with config.json + model.safetensors.
        backend: "numba" (default) or "numpy" (the pure-NumPy reference path); see kernels.py.
        dtype: "float32" (default) or "float64": weights upcast once here, every step in float64."""
        dtype = check_dtype(dtype)
        directory = Path(resolve_checkpoint(name_or_path, revision))
        config = DistilBertConfig.from_pretrained(directory)
        model = cls(config, load_checked(directory, config, with_head=cls.with_head, dtype=dtype), backend)
        model._source = (directory, backend, dtype.name)
        return model

    @property
    def dtype(self) -> np.dtype:
        return next(iter(self.state_dict.values())).dtype

    def __reduce_ex__(self, protocol: int):
        # A model read from a directory travels to another process (multiprocessing's spawn, Dask) as "load this
        # directory": the child maps the same file read-only and shares its pages, instead of unpickling a
        # writeable copy of every weight. A model built from arrays pickles its arrays.
        source = getattr(self, "_source", None)
        if source is None:
            return super().__reduce_ex__(protocol)
        directory, backend, dtype = source
        return _load, (type(self), str(directory), backend, dtype)


def _load(cls: type[M], directory: str, backend: str | None, dtype: str) -> M:
    return cls.from_pretrained(directory, backend=backend, dtype=dtype)


def _tuple(arrays: list[np.ndarray] | None) -> tuple[np.ndarray, ...] | None:
    return None if arrays is None else tuple(arrays)


class DistilBertModel(DistilBertPreTrainedModel):
    """The encoder: token ids -> one contextual vector per token."""

    def __init__(self, config: DistilBertConfig, state_dict: dict[str, np.ndarray], backend: str | None = None):
        self.config = config
        self.state_dict = state_dict
        self.params = nest(state_dict)
        self.ops = get_ops(backend)

    def __call__(
        self,
        input_ids: np.ndarray,
        attention_mask: np.ndarray | None = None,
        token_type_ids: object = None,
        *,
        output_hidden_states: bool = False,
        output_attentions: bool = False,
    ) -> BaseModelOutput:
        # token_type_ids is accepted so that model(**transformers_tokenizer(...)) works; DistilBERT has no
        # token-type embeddings and ignores it, exactly as transformers' DistilBertModel does.
        ids, mask = check_inputs(input_ids, attention_mask, self.config)
        last, hidden_states, attentions = distilbert(
            ids, mask, self.params, self.config, self.ops,
            output_hidden_states=bool(output_hidden_states), output_attentions=bool(output_attentions),
        )
        return BaseModelOutput(last, _tuple(hidden_states), _tuple(attentions))


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
        self,
        input_ids: np.ndarray,
        attention_mask: np.ndarray | None = None,
        token_type_ids: object = None,
        *,
        output_hidden_states: bool = False,
        output_attentions: bool = False,
    ) -> SequenceClassifierOutput:
        out = self.distilbert(
            input_ids, attention_mask, output_hidden_states=output_hidden_states, output_attentions=output_attentions
        )
        logits = classification_head(out.last_hidden_state, self.params, self.ops)
        return SequenceClassifierOutput(logits, out.hidden_states, out.attentions)


class AutoModel:
    """transformers-style entry point; every checkpoint minibert runs is a DistilBERT."""

    @staticmethod
    def from_pretrained(name_or_path: str | os.PathLike, **kwargs) -> DistilBertModel:
        return DistilBertModel.from_pretrained(name_or_path, **kwargs)


class AutoModelForSequenceClassification:
    @staticmethod
    def from_pretrained(name_or_path: str | os.PathLike, **kwargs) -> DistilBertForSequenceClassification:
        return DistilBertForSequenceClassification.from_pretrained(name_or_path, **kwargs)
