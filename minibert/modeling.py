"""The transformers-style classes around model.py's functions: DistilBertModel,
DistilBertForSequenceClassification, BertModel, the other heads (masked LM, token classification,
question answering), the Auto* entry points and their outputs.

A model object holds a config, the checked parameters (loading.py) and a backend's ops
(kernels.py); calling it validates the inputs and runs the encoder. With the default backend
("numba") the encoder is fast.py's: the same function as model.py's `distilbert`, on packed tokens
with fused kernels, and only the [CLS] row in the last block when a classification head needs no
more. The reference model.py runs with backend="numpy", and with the numba kernels whenever hidden_states
or attentions are asked for (the fast path keeps neither) or every position of a padded batch is
returned (the fast path computes real tokens only; transformers also computes the padded ones).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, fields
from pathlib import Path
from typing import TypeVar

import numpy as np

from . import fast
from .config import AutoConfig, BertConfig, DistilBertConfig
from .hub import resolve_checkpoint
from .kernels import BACKENDS, get_ops
from .loading import classifier_shapes, head_shapes, load_checked, nest
from .model import (
    bert_classification_head,
    classification_head,
    distilbert,
    masked_lm_head,
    pooler,
    question_answering_head,
    token_classification_head,
)

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

    config_class = DistilBertConfig
    with_head: bool | str = False  # head tensors the checkpoint needs: False, True (classifier) or a loading.HEADS key

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
        config = cls.config_class.from_pretrained(directory)
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


class _Encoder(DistilBertPreTrainedModel):
    """What DistilBertModel and BertModel share: the parameters, the backend, and the choice of forward pass."""

    def __init__(self, config, state_dict: dict[str, np.ndarray], backend: str | None = None):
        self.config = config
        self.state_dict = state_dict
        self.params = nest(state_dict)
        self.ops = get_ops(backend)
        self._fast: fast.FastParams | None = None  # fast.prepare(params), on first use of the fast path

    def check(self, input_ids: object, attention_mask: object, token_type_ids: object):
        ids, mask = check_inputs(input_ids, attention_mask, self.config)
        return ids, mask, None  # DistilBERT has no token types: ignored, as in transformers

    def encode(
        self, ids: np.ndarray, mask: np.ndarray, types: np.ndarray | None, *, cls_only: bool = False,
        real_only: bool = False, output_hidden_states: bool = False, output_attentions: bool = False,
    ):
        """Checked [B, T] inputs -> (last_hidden_state [B, T, C], hidden_states, attentions). cls_only: the caller
        reads only position 0 (a classification head); the fast path then returns [B, 1, C]. real_only: the caller
        reads only real tokens and position 0 (sentence-embedding pooling); padded positions may then be zeros.

        The fast path computes real tokens only. A caller that gets every position of a padded batch gets
        transformers' values there too (a padded query still attends to the real keys; the seed notebooks print
        such rows), so that case, like asking for the insides, runs model.py with the backend's kernels."""
        insides = bool(output_hidden_states) or bool(output_attentions)
        if self.ops is BACKENDS["numba"] and not insides and (cls_only or real_only or bool(mask.all())):
            if self._fast is None:
                self._fast = fast.prepare(self.params, self.config)
            hidden = fast.distilbert(ids, mask, self._fast, self.config, cls_only=cls_only, token_type_ids=types)
            return (hidden[:, None, :] if cls_only else hidden), None, None
        last, hidden_states, attentions = distilbert(
            ids, mask, self.params, self.config, self.ops, output_hidden_states=bool(output_hidden_states),
            output_attentions=bool(output_attentions), token_type_ids=types,
        )
        return last, _tuple(hidden_states), _tuple(attentions)


class DistilBertModel(_Encoder):
    """The encoder: token ids -> one contextual vector per token."""

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
        ids, mask, types = self.check(input_ids, attention_mask, token_type_ids)
        return BaseModelOutput(*self.encode(
            ids, mask, types, output_hidden_states=output_hidden_states, output_attentions=output_attentions
        ))


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
        ids, mask, types = self.distilbert.check(input_ids, attention_mask, token_type_ids)
        hidden, hidden_states, attentions = self.distilbert.encode(
            ids, mask, types, cls_only=True,  # the head reads [CLS] only
            output_hidden_states=output_hidden_states, output_attentions=output_attentions,
        )
        logits = classification_head(hidden, self.params, self.ops)
        return SequenceClassifierOutput(logits, hidden_states, attentions)


# ---------------------------------------------------------------------------------------------
# BERT, and the other heads. Each head class holds its base model as `self.distilbert` or `self.bert`
# (as transformers does) and its head's parameters in `self.params`.


@dataclass
class BaseModelOutputWithPooling(ModelOutput):
    last_hidden_state: np.ndarray  # [B, T, C]
    pooler_output: np.ndarray | None = None  # [B, C]: tanh(dense(h[:, 0])); None if the checkpoint has no pooler
    hidden_states: tuple[np.ndarray, ...] | None = None
    attentions: tuple[np.ndarray, ...] | None = None


@dataclass
class MaskedLMOutput(ModelOutput):
    logits: np.ndarray  # [B, T, V]: a score per vocabulary word at every position
    hidden_states: tuple[np.ndarray, ...] | None = None
    attentions: tuple[np.ndarray, ...] | None = None


@dataclass
class TokenClassifierOutput(ModelOutput):
    logits: np.ndarray  # [B, T, L]
    hidden_states: tuple[np.ndarray, ...] | None = None
    attentions: tuple[np.ndarray, ...] | None = None


@dataclass
class QuestionAnsweringModelOutput(ModelOutput):
    start_logits: np.ndarray  # [B, T]
    end_logits: np.ndarray  # [B, T]
    hidden_states: tuple[np.ndarray, ...] | None = None
    attentions: tuple[np.ndarray, ...] | None = None


def check_token_type_ids(token_type_ids: object, ids: np.ndarray, cfg: BertConfig) -> np.ndarray | None:
    """None (all type 0, as in transformers) or an integer [B, T] array of types below type_vocab_size."""
    if token_type_ids is None:
        return None
    types = _as_int_matrix(token_type_ids, "token_type_ids")
    if types.shape != ids.shape:
        raise ValueError(f"token_type_ids has shape {types.shape} but input_ids has shape {ids.shape}")
    bad = np.argwhere((types < 0) | (types >= cfg.type_vocab_size))
    if len(bad):
        b, t = bad[0]
        raise ValueError(f"token_type_ids[{b}, {t}] = {types[b, t]} is outside [0, {cfg.type_vocab_size})")
    return types


class BertModel(_Encoder):
    """BERT's encoder: model.py's DistilBERT encoder on renamed keys, plus token types and the pooler."""

    config_class = BertConfig

    def check(self, input_ids: object, attention_mask: object, token_type_ids: object):
        ids, mask = check_inputs(input_ids, attention_mask, self.config)
        return ids, mask, check_token_type_ids(token_type_ids, ids, self.config)

    def __call__(
        self,
        input_ids: np.ndarray,
        attention_mask: np.ndarray | None = None,
        token_type_ids: np.ndarray | None = None,
        *,
        output_hidden_states: bool = False,
        output_attentions: bool = False,
    ) -> BaseModelOutputWithPooling:
        ids, mask, types = self.check(input_ids, attention_mask, token_type_ids)
        last, hidden_states, attentions = self.encode(
            ids, mask, types, output_hidden_states=output_hidden_states, output_attentions=output_attentions
        )
        pooled = pooler(last, self.params["pooler"], self.ops) if "pooler" in self.params else None
        return BaseModelOutputWithPooling(last, pooled, hidden_states, attentions)


class _ModelWithHead(DistilBertPreTrainedModel):
    """A base model (DistilBertModel or BertModel) and one head of model.py applied to its output."""

    base_class: type = DistilBertModel
    cls_only = False  # does the head read only position 0 ([CLS])? Then the fast path skips the rest.

    def __init__(self, config, state_dict: dict[str, np.ndarray], backend: str | None = None):
        head = head_shapes(config, self.with_head)
        self.config = config
        self.state_dict = state_dict
        base = self.base_class(config, {k: v for k, v in state_dict.items() if k not in head}, backend)
        setattr(self, config.model_type, base)  # self.distilbert / self.bert, as in transformers
        self.base_model = base
        self.params = nest({k: v for k, v in state_dict.items() if k in head})
        self.ops = base.ops

    def __call__(
        self,
        input_ids: np.ndarray,
        attention_mask: np.ndarray | None = None,
        token_type_ids: np.ndarray | None = None,
        *,
        output_hidden_states: bool = False,
        output_attentions: bool = False,
    ):
        ids, mask, types = self.base_model.check(input_ids, attention_mask, token_type_ids)
        return self._head(*self.base_model.encode(
            ids, mask, types, cls_only=self.cls_only,
            output_hidden_states=output_hidden_states, output_attentions=output_attentions,
        ))


class DistilBertForMaskedLM(_ModelWithHead):
    """The encoder plus the masked-LM head: a score for every vocabulary word at every position."""

    with_head = "masked_lm"

    def _head(self, hidden, hidden_states, attentions) -> MaskedLMOutput:
        cfg = self.config
        logits = masked_lm_head(hidden, self.params, cfg.activation, cfg.layer_norm_eps, self.ops)
        return MaskedLMOutput(logits, hidden_states, attentions)


class DistilBertForTokenClassification(_ModelWithHead):
    """The encoder plus a linear layer on every token: one logit per label per token."""

    with_head = "token_classification"

    def _head(self, hidden, hidden_states, attentions) -> TokenClassifierOutput:
        logits = token_classification_head(hidden, self.params, self.ops)
        return TokenClassifierOutput(logits, hidden_states, attentions)


class DistilBertForQuestionAnswering(_ModelWithHead):
    """The encoder plus a linear layer giving each token a start and an end logit for the answer span."""

    with_head = "question_answering"

    def _head(self, hidden, hidden_states, attentions) -> QuestionAnsweringModelOutput:
        start, end = question_answering_head(hidden, self.params, self.ops)
        return QuestionAnsweringModelOutput(start, end, hidden_states, attentions)


class BertForSequenceClassification(_ModelWithHead):
    """BERT plus its classification head: the pooler on [CLS], then one linear layer."""

    config_class = BertConfig
    base_class = BertModel
    with_head = "sequence_classification"
    cls_only = True

    def _head(self, hidden, hidden_states, attentions) -> SequenceClassifierOutput:
        logits = bert_classification_head(hidden, self.params, self.ops)
        return SequenceClassifierOutput(logits, hidden_states, attentions)


class BertForMaskedLM(DistilBertForMaskedLM):
    config_class = BertConfig
    base_class = BertModel


class BertForTokenClassification(DistilBertForTokenClassification):
    config_class = BertConfig
    base_class = BertModel


class BertForQuestionAnswering(DistilBertForQuestionAnswering):
    config_class = BertConfig
    base_class = BertModel


# ---------------------------------------------------------------------------------------------
# Auto*: the class for a task, picked from config.json's model_type.

MODEL_CLASSES: dict[str, dict[str, type]] = {
    "distilbert": {
        "base": DistilBertModel,
        "sequence_classification": DistilBertForSequenceClassification,
        "masked_lm": DistilBertForMaskedLM,
        "token_classification": DistilBertForTokenClassification,
        "question_answering": DistilBertForQuestionAnswering,
    },
    "bert": {
        "base": BertModel,
        "sequence_classification": BertForSequenceClassification,
        "masked_lm": BertForMaskedLM,
        "token_classification": BertForTokenClassification,
        "question_answering": BertForQuestionAnswering,
    },
}


def model_class(name_or_path: str | os.PathLike, task: str, revision: str | None = None) -> type:
    """The class that runs `task` for the checkpoint's model_type (an unsupported type names the supported ones)."""
    config = AutoConfig.from_pretrained(name_or_path, revision)
    return MODEL_CLASSES[config.model_type][task]


class _Auto:
    task = "base"

    @classmethod
    def from_pretrained(cls, name_or_path: str | os.PathLike, **kwargs):
        """Like transformers: the checkpoint's config.json model_type ("distilbert", "bert") picks the class;
        kwargs (revision, backend, dtype) go to its from_pretrained."""
        return model_class(name_or_path, cls.task, kwargs.get("revision")).from_pretrained(name_or_path, **kwargs)


class AutoModel(_Auto):
    """DistilBertModel or BertModel."""


class AutoModelForSequenceClassification(_Auto):
    task = "sequence_classification"


class AutoModelForMaskedLM(_Auto):
    task = "masked_lm"


class AutoModelForTokenClassification(_Auto):
    task = "token_classification"


class AutoModelForQuestionAnswering(_Auto):
    task = "question_answering"
