"""DistilBertConfig: the hyper-parameters in a checkpoint's config.json, with transformers' defaults."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

ACTIVATIONS = ("gelu", "relu")


@dataclass
class DistilBertConfig:
    """Field names are config.json's keys, so reading the file is a plain keyword match."""

    vocab_size: int = 30522
    max_position_embeddings: int = 512
    sinusoidal_pos_embds: bool = False
    n_layers: int = 6
    n_heads: int = 12
    dim: int = 768
    hidden_dim: int = 4 * 768  # FFN inner size
    activation: str = "gelu"
    pad_token_id: int = 0
    id2label: dict[int, str] = field(default_factory=lambda: {0: "LABEL_0", 1: "LABEL_1"})
    problem_type: str | None = None  # "regression", "single_label_classification", "multi_label_classification"
    # DistilBERT hard-codes LayerNorm eps (nn.LayerNorm(dim, eps=1e-12)); it is not a config.json key.
    layer_norm_eps: float = 1e-12

    def __post_init__(self) -> None:
        self.id2label = {int(k): str(v) for k, v in self.id2label.items()}
        for name in ("vocab_size", "max_position_embeddings", "n_layers", "n_heads", "dim", "hidden_dim"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                raise ValueError(f"config {name} must be a positive integer, got {value!r}")
        if self.dim % self.n_heads != 0:
            raise ValueError(f"config n_heads={self.n_heads} must divide dim={self.dim} evenly")
        if self.activation not in ACTIVATIONS:
            raise ValueError(f"config activation {self.activation!r} is not supported; use one of {ACTIVATIONS}")
        if sorted(self.id2label) != list(range(len(self.id2label))):
            raise ValueError(f"config id2label keys must be 0..n-1, got {sorted(self.id2label)}")

    @property
    def num_labels(self) -> int:
        return len(self.id2label)

    @property
    def label2id(self) -> dict[str, int]:
        return {label: i for i, label in self.id2label.items()}

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> DistilBertConfig:
        model_type = raw.get("model_type", "distilbert")
        if model_type != "distilbert":
            raise ValueError(f"config.json has model_type {model_type!r}; minibert runs only 'distilbert' models")
        known = {f.name for f in fields(cls)}
        kwargs = {k: v for k, v in raw.items() if k in known}
        if "id2label" not in raw and "num_labels" in raw:  # transformers accepts num_labels alone
            kwargs["id2label"] = {i: f"LABEL_{i}" for i in range(int(raw["num_labels"]))}
        return cls(**kwargs)

    @classmethod
    def from_pretrained(cls, name_or_path: str | os.PathLike, revision: str | None = None) -> DistilBertConfig:
        from .hub import resolve_checkpoint

        path = Path(resolve_checkpoint(name_or_path, revision)) / "config.json"
        if not path.is_file():
            raise FileNotFoundError(f"no config.json in checkpoint directory {path.parent}")
        try:
            raw = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as e:
            raise ValueError(f"{path} is not valid JSON: {e}") from e
        try:
            return cls.from_dict(raw)
        except (TypeError, ValueError) as e:
            raise ValueError(f"{path}: {e}") from e
