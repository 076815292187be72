"""DistilBertConfig and BertConfig: the hyper-parameters in a checkpoint's config.json, with transformers'
defaults. `AutoConfig.from_pretrained` picks the class from config.json's `model_type`.

A BERT layer computes exactly what a DistilBERT layer computes, so BertConfig also answers to
DistilBERT's names (`dim`, `n_heads`, `n_layers`, `hidden_dim`, `activation`): model.py's functions
read one set of names for both architectures.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, ClassVar

ACTIVATIONS = ("gelu", "relu")
PROBLEM_TYPES = (None, "regression", "single_label_classification", "multi_label_classification")


def _default_labels() -> dict[int, str]:
    return {0: "LABEL_0", 1: "LABEL_1"}


class _Config:
    """What both configs share: labels, validation helpers, reading config.json."""

    model_type: ClassVar[str]
    id2label: dict[int, str]
    problem_type: str | None

    def _check_common(self, positive: tuple[str, ...], dim: str, heads: str, activation: str) -> None:
        self.id2label = {int(k): str(v) for k, v in self.id2label.items()}
        for name in positive:
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                raise ValueError(f"config {name} must be a positive integer, got {value!r}")
        if getattr(self, dim) % getattr(self, heads) != 0:
            raise ValueError(f"config {heads}={getattr(self, heads)} must divide {dim}={getattr(self, dim)} evenly")
        if getattr(self, activation) not in ACTIVATIONS:
            raise ValueError(
                f"config {activation} {getattr(self, activation)!r} is not supported; use one of {ACTIVATIONS}"
            )
        if sorted(self.id2label) != list(range(len(self.id2label))):
            raise ValueError(f"config id2label keys must be 0..n-1, got {sorted(self.id2label)}")
        if self.problem_type not in PROBLEM_TYPES:
            raise ValueError(f"config problem_type {self.problem_type!r} is not one of {PROBLEM_TYPES}")

    @property
    def num_labels(self) -> int:
        return len(self.id2label)

    @property
    def label2id(self) -> dict[str, int]:
        return {label: i for i, label in self.id2label.items()}

    @classmethod
    def from_dict(cls, raw: dict[str, Any]):
        model_type = raw.get("model_type", cls.model_type)
        if model_type != cls.model_type:
            raise ValueError(
                f"config.json has model_type {model_type!r}, but {cls.__name__} reads only {cls.model_type!r}; "
                "use AutoConfig / the Auto* classes to pick the class from the file"
            )
        known = {f.name for f in fields(cls)}
        kwargs = {k: v for k, v in raw.items() if k in known}
        if "id2label" not in raw and "num_labels" in raw:  # transformers accepts num_labels alone
            kwargs["id2label"] = {i: f"LABEL_{i}" for i in range(int(raw["num_labels"]))}
        return cls(**kwargs)

    @classmethod
    def from_pretrained(cls, name_or_path: str | os.PathLike, revision: str | None = None):
        path, raw = _read_config_json(name_or_path, revision)
        try:
            return cls.from_dict(raw)
        except (TypeError, ValueError) as e:
            raise ValueError(f"{path}: {e}") from e


@dataclass
class DistilBertConfig(_Config):
    """Field names are config.json's keys, so reading the file is a plain keyword match."""

    model_type: ClassVar[str] = "distilbert"

    vocab_size: int = 30522
    max_position_embeddings: int = 512
    sinusoidal_pos_embds: bool = False
    n_layers: int = 6
    n_heads: int = 12
    dim: int = 768
    hidden_dim: int = 4 * 768  # FFN inner size
    activation: str = "gelu"
    pad_token_id: int = 0
    id2label: dict[int, str] = field(default_factory=_default_labels)
    problem_type: str | None = None  # "regression", "single_label_classification", "multi_label_classification"
    # DistilBERT hard-codes LayerNorm eps (nn.LayerNorm(dim, eps=1e-12)); it is not a config.json key.
    layer_norm_eps: float = 1e-12
    tie_word_embeddings: bool = True  # masked LM: vocab_projector.weight is the word embedding matrix

    def __post_init__(self) -> None:
        positive = ("vocab_size", "max_position_embeddings", "n_layers", "n_heads", "dim", "hidden_dim")
        self._check_common(positive, "dim", "n_heads", "activation")


@dataclass
class BertConfig(_Config):
    """BERT's config.json keys (transformers' BertConfig defaults). The properties below give the same
    numbers under DistilBERT's names, which is all model.py's encoder functions read."""

    model_type: ClassVar[str] = "bert"

    vocab_size: int = 30522
    hidden_size: int = 768
    num_hidden_layers: int = 12
    num_attention_heads: int = 12
    intermediate_size: int = 3072
    hidden_act: str = "gelu"
    max_position_embeddings: int = 512
    type_vocab_size: int = 2  # token types (segments): 0 for the first text, 1 for the pair's second
    layer_norm_eps: float = 1e-12  # a config.json key in BERT, unlike in DistilBERT
    pad_token_id: int = 0
    position_embedding_type: str = "absolute"
    id2label: dict[int, str] = field(default_factory=_default_labels)
    problem_type: str | None = None
    tie_word_embeddings: bool = True  # masked LM: cls.predictions.decoder.weight is the word embedding matrix

    def __post_init__(self) -> None:
        positive = ("vocab_size", "hidden_size", "num_hidden_layers", "num_attention_heads", "intermediate_size",
                    "max_position_embeddings", "type_vocab_size")
        self._check_common(positive, "hidden_size", "num_attention_heads", "hidden_act")
        if self.position_embedding_type != "absolute":
            raise ValueError(
                f"config position_embedding_type {self.position_embedding_type!r} is not supported; "
                "minibert runs learned 'absolute' positions"
            )
        if isinstance(self.layer_norm_eps, bool) or not isinstance(self.layer_norm_eps, (int, float)) or not (
            self.layer_norm_eps > 0
        ):
            raise ValueError(f"config layer_norm_eps must be a positive number, got {self.layer_norm_eps!r}")

    # DistilBERT's names for the same numbers (model.py reads these).
    dim = property(lambda self: self.hidden_size)
    n_heads = property(lambda self: self.num_attention_heads)
    n_layers = property(lambda self: self.num_hidden_layers)
    hidden_dim = property(lambda self: self.intermediate_size)
    activation = property(lambda self: self.hidden_act)
    sinusoidal_pos_embds = False


CONFIG_CLASSES: dict[str, type[_Config]] = {"distilbert": DistilBertConfig, "bert": BertConfig}


class AutoConfig:
    """`AutoConfig.from_pretrained(dir_or_id)`: DistilBertConfig or BertConfig, by config.json's model_type."""

    @staticmethod
    def from_pretrained(name_or_path: str | os.PathLike, revision: str | None = None) -> DistilBertConfig | BertConfig:
        path, raw = _read_config_json(name_or_path, revision)
        model_type = raw.get("model_type")
        if model_type not in CONFIG_CLASSES:
            raise ValueError(
                f"{path}: model_type {model_type!r} is not supported; minibert runs {sorted(CONFIG_CLASSES)}"
            )
        try:
            return CONFIG_CLASSES[model_type].from_dict(raw)
        except (TypeError, ValueError) as e:
            raise ValueError(f"{path}: {e}") from e


def _read_config_json(name_or_path: str | os.PathLike, revision: str | None) -> tuple[Path, dict[str, Any]]:
    from .hub import resolve_checkpoint

    path = Path(resolve_checkpoint(name_or_path, revision)) / "config.json"
    if not path.is_file():
        raise FileNotFoundError(f"no config.json in checkpoint directory {path.parent}")
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise ValueError(f"{path} is not valid JSON: {e}") from e
    if not isinstance(raw, dict):
        raise ValueError(f"{path} must hold a JSON object, got {type(raw).__name__}")
    return path, raw
