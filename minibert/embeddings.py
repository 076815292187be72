"""Sentence embeddings: `minibert.encode(texts, model=...)` and `pipeline("feature-extraction")`.

A sentence-transformers model (all-MiniLM-L6-v2 and friends) is a BERT or DistilBERT encoder plus
two small steps, described by files beside the weights:

    tokenizer(texts, truncation to max_seq_length)       sentence_bert_config.json    [B, T]
    encoder -> last_hidden_state                          config.json + weights        [B, T, C]
    pooling over the real tokens (mean, cls, max, ...)    1_Pooling/config.json        [B, C]
    L2 normalisation (if the model lists Normalize)       modules.json                 [B, C]

Without those files (a plain transformers checkpoint) the defaults are mean pooling, no
normalisation, and the model's own maximum length. `pipeline("feature-extraction")` returns the
token vectors before pooling, in transformers' format: per text a [1, T, C] nested list.
"""

from __future__ import annotations

import functools
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .hub import resolve_checkpoint
from .tokenizer import AutoTokenizer, DistilBertTokenizer

POOLING_MODES = ("mean", "cls", "max", "mean_sqrt_len_tokens")
# sentence-transformers' older 1_Pooling/config.json: one boolean per mode
_LEGACY_POOLING_KEYS = {  # in sentence-transformers' order, which is the order several modes are concatenated in
    "pooling_mode_cls_token": "cls",
    "pooling_mode_max_tokens": "max",
    "pooling_mode_mean_tokens": "mean",
    "pooling_mode_mean_sqrt_len_tokens": "mean_sqrt_len_tokens",
    "pooling_mode_weightedmean_tokens": "weightedmean",
    "pooling_mode_lasttoken": "lasttoken",
}


# ---------------------------------------------------------------------------------------------
# Pooling: token vectors [B, T, C] and the attention mask [B, T] -> one vector per text.


def mean_pooling(hidden: np.ndarray, mask: np.ndarray, sqrt_len: bool = False) -> np.ndarray:
    # [B, T, C], [B, T] -> [B, C]: the average of the real tokens' vectors (padding excluded);
    # mean_sqrt_len_tokens divides by sqrt(n) instead of n. The count is clamped as in sentence-transformers.
    m = mask[..., None].astype(hidden.dtype)  # [B, T, 1]
    total = (hidden * m).sum(axis=1)  # [B, C]
    count = np.maximum(m.sum(axis=1), 1e-9)  # [B, 1]
    return (total / (np.sqrt(count) if sqrt_len else count)).astype(hidden.dtype, copy=False)


def cls_pooling(hidden: np.ndarray, mask: np.ndarray) -> np.ndarray:
    # [B, T, C] -> [B, C]: the first real token (the [CLS] token with right padding)
    first = mask.argmax(axis=1)
    return hidden[np.arange(len(hidden)), first]


def max_pooling(hidden: np.ndarray, mask: np.ndarray) -> np.ndarray:
    # [B, T, C] -> [B, C]: per feature, the largest value over the real tokens
    return np.where(mask[..., None] == 1, hidden, -np.inf).max(axis=1).astype(hidden.dtype, copy=False)


def pool(hidden: np.ndarray, mask: np.ndarray, modes: Sequence[str]) -> np.ndarray:
    # [B, T, C] -> [B, C * len(modes)]: several modes are concatenated, as in sentence-transformers
    run = {
        "mean": lambda: mean_pooling(hidden, mask),
        "mean_sqrt_len_tokens": lambda: mean_pooling(hidden, mask, sqrt_len=True),
        "cls": lambda: cls_pooling(hidden, mask),
        "max": lambda: max_pooling(hidden, mask),
    }
    return np.concatenate([run[mode]() for mode in modes], axis=-1)


def l2_normalize(x: np.ndarray, eps: float = 1e-12) -> np.ndarray:
    # [B, C] -> [B, C] of unit length (so a dot product is the cosine similarity); eps as torch's F.normalize
    norm = np.sqrt((x.astype(np.float64) ** 2).sum(axis=-1, keepdims=True))
    return (x / np.maximum(norm, eps)).astype(x.dtype, copy=False)


# ---------------------------------------------------------------------------------------------
# Reading a sentence-transformers checkpoint's own description of those steps.


@dataclass(frozen=True)
class SentenceConfig:
    pooling: tuple[str, ...] = ("mean",)
    normalize: bool = False  # modules.json lists a Normalize module
    max_seq_length: int | None = None  # sentence_bert_config.json; None: the tokenizer's model_max_length

    @classmethod
    def from_directory(cls, directory: str | os.PathLike) -> SentenceConfig:
        directory = Path(directory)
        modules = _read_json(directory / "modules.json", default=[])
        if not isinstance(modules, list) or not all(isinstance(m, dict) for m in modules):
            raise ValueError(f"{directory / 'modules.json'} must be a list of module objects")
        types = [str(m.get("type", "")).rsplit(".", 1)[-1] for m in modules]
        supported = {"Transformer", "Pooling", "Normalize"}
        if set(types) - supported:
            raise ValueError(
                f"{directory / 'modules.json'} lists modules {sorted(set(types) - supported)}; minibert runs "
                f"sentence-transformers models made of {sorted(supported)} only"
            )
        pooling: tuple[str, ...] = ("mean",)
        for module, kind in zip(modules, types, strict=True):
            if kind == "Pooling":
                path = directory / str(module.get("path", "")) / "config.json"
                pooling = _pooling_modes(_read_json(path, default={}), path)
        st_config = _read_json(directory / "sentence_bert_config.json", default={})
        max_seq_length = st_config.get("max_seq_length") if isinstance(st_config, dict) else None
        if max_seq_length is not None and (
            isinstance(max_seq_length, bool) or not isinstance(max_seq_length, int) or max_seq_length < 2
        ):
            raise ValueError(f"{directory / 'sentence_bert_config.json'}: max_seq_length must be an int >= 2, "
                             f"got {max_seq_length!r}")
        return cls(pooling=pooling, normalize="Normalize" in types, max_seq_length=max_seq_length)


def _pooling_modes(raw: Any, path: Path) -> tuple[str, ...]:
    if not isinstance(raw, dict):
        raise ValueError(f"{path} must hold a JSON object")
    if "pooling_mode" in raw:  # newer sentence-transformers: a name or a list of names
        value = raw["pooling_mode"]
        modes = (value,) if isinstance(value, str) else tuple(value)
    else:
        modes = tuple(mode for key, mode in _LEGACY_POOLING_KEYS.items() if raw.get(key))
    bad = [m for m in modes if m not in POOLING_MODES]
    if bad or not modes:
        raise ValueError(
            f"{path}: pooling {list(modes) or 'none'} is not supported; minibert pools with {POOLING_MODES}"
        )
    return modes


def _read_json(path: Path, default: Any) -> Any:
    if not path.is_file():
        return default
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise ValueError(f"{path} is not valid JSON: {e}") from e


# ---------------------------------------------------------------------------------------------
# encode(): texts -> embeddings.


def _check_texts(texts: object, name: str = "texts") -> tuple[list[str], bool]:
    if isinstance(texts, str):
        return [texts], True
    if isinstance(texts, (bytes, np.ndarray, dict)) or not isinstance(texts, Sequence):
        raise TypeError(f"{name} must be a str or a list of str, got {type(texts).__name__}")
    for i, text in enumerate(texts):
        if not isinstance(text, str):
            raise TypeError(f"{name}[{i}] is {type(text).__name__}; expected str")
    return list(texts), False


def _check_batch_size(batch_size: object) -> int:
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive int, got {batch_size!r}")
    return batch_size


class SentenceEncoder:
    """A base model (BertModel / DistilBertModel), its tokenizer and the checkpoint's SentenceConfig."""

    def __init__(self, model: Any, tokenizer: DistilBertTokenizer, config: SentenceConfig | None = None):
        self.model = model
        self.tokenizer = tokenizer
        self.config = config or SentenceConfig()

    @classmethod
    def from_pretrained(
        cls, name_or_path: str | os.PathLike, *, revision: str | None = None, backend: str | None = None,
        dtype: str = "float32",
    ) -> SentenceEncoder:
        from .modeling import AutoModel

        directory = Path(resolve_checkpoint(name_or_path, revision))
        model = AutoModel.from_pretrained(directory, backend=backend, dtype=dtype)
        return cls(model, AutoTokenizer.from_pretrained(directory), SentenceConfig.from_directory(directory))

    @property
    def dim(self) -> int:
        return self.model.config.dim * len(self.config.pooling)

    def encode(self, texts: str | Sequence[str], *, normalize: bool | None = None, batch_size: int = 32) -> np.ndarray:
        """[N, dim] embeddings (a [dim] vector for a single str). normalize: None follows the checkpoint
        (its modules.json lists Normalize), True/False forces unit length or not."""
        items, single = _check_texts(texts)
        batch_size = _check_batch_size(batch_size)
        if normalize is None:
            normalize = self.config.normalize
        max_length = self.config.max_seq_length
        if max_length is not None:
            max_length = min(max_length, self.model.config.max_position_embeddings)
        out = np.empty((len(items), self.dim), dtype=self.model.dtype)
        for start in range(0, len(items), batch_size):
            chunk = items[start : start + batch_size]
            enc = self.tokenizer(chunk, padding=True, truncation=True, max_length=max_length, return_tensors="np")
            ids, mask, types = self.model.check(enc["input_ids"], enc["attention_mask"], enc.get("token_type_ids"))
            # pooling reads only real tokens (and [CLS]), so the fast path may skip the padding
            hidden, _, _ = self.model.encode(ids, mask, types, real_only=True)  # [b, T, C]
            pooled = pool(hidden, enc["attention_mask"], self.config.pooling)  # [b, dim]
            out[start : start + len(chunk)] = l2_normalize(pooled) if normalize else pooled
        return out[0] if single else out


@functools.lru_cache(maxsize=4)
def _cached_encoder(model: str, revision: str | None, backend: str | None) -> SentenceEncoder:
    return SentenceEncoder.from_pretrained(model, revision=revision, backend=backend)


def encode(
    texts: str | Sequence[str],
    model: str | os.PathLike | SentenceEncoder,
    *,
    normalize: bool | None = None,
    batch_size: int = 32,
    revision: str | None = None,
    backend: str | None = None,
) -> np.ndarray:
    """Sentence embeddings, as sentence-transformers' `SentenceTransformer(model).encode(texts)`:
    `minibert.encode(["A man is eating.", "A man eats."], model="sentence-transformers/all-MiniLM-L6-v2")`
    gives a [2, 384] float32 array. model: a hub id, a local directory (loaded once and kept) or a
    SentenceEncoder. normalize: None follows the checkpoint's modules.json; True gives unit vectors."""
    if not isinstance(model, SentenceEncoder):
        if not isinstance(model, (str, os.PathLike)):
            raise TypeError(f"model must be a hub id, a directory or a SentenceEncoder, got {model!r}")
        model = _cached_encoder(os.fspath(model), revision, backend)
    return model.encode(texts, normalize=normalize, batch_size=batch_size)


# ---------------------------------------------------------------------------------------------
# pipeline("feature-extraction"): the token vectors themselves, in transformers' format.


class FeatureExtractionPipeline:
    """Per text, the encoder's last_hidden_state as a [1, T, C] nested list (or a [1, T, C] array with
    return_tensors=True), exactly as transformers' feature-extraction pipeline returns it."""

    def __init__(self, model: Any, tokenizer: DistilBertTokenizer, batch_size: int = 1):
        self.model = model
        self.tokenizer = tokenizer
        self.batch_size = _check_batch_size(batch_size)

    def __call__(
        self,
        inputs: str | Sequence[str],
        *,
        truncation: bool = True,
        return_tensors: bool = False,
        batch_size: int | None = None,
        tokenize_kwargs: dict[str, Any] | None = None,
    ) -> list | np.ndarray:
        """truncation is on by default (unlike transformers), so a long text is cut to the model's length.
        With batch_size > 1 texts are padded to the longest in their batch and, as in transformers, each
        text's output keeps those padded positions."""
        items, single = _check_texts(inputs, "inputs")
        batch_size = self.batch_size if batch_size is None else _check_batch_size(batch_size)
        kwargs = {"truncation": truncation, **(tokenize_kwargs or {})}
        results: list = []
        for start in range(0, len(items), batch_size):
            enc = self.tokenizer(items[start : start + batch_size], padding=True, return_tensors="np", **kwargs)
            types = {"token_type_ids": enc["token_type_ids"]} if "token_type_ids" in enc else {}
            hidden = self.model(enc["input_ids"], enc["attention_mask"], **types).last_hidden_state
            results += [row[None] if return_tensors else row[None].tolist() for row in hidden]
        return results[0] if single else results
