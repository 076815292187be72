"""Checkpoint resolution: a local directory, or a Hugging Face hub id downloaded into the HF cache."""
# STUB — being written by a helper.
from __future__ import annotations

import os
from pathlib import Path


def resolve_checkpoint(name_or_path: str | os.PathLike, revision: str | None = None) -> Path:
    path = Path(name_or_path)
    if path.is_dir():
        return path
    raise NotImplementedError
