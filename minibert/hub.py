"""Checkpoint resolution: a local directory, or a Hugging Face hub repo id fetched into the HF cache.

``resolve_checkpoint`` turns what a user passes as ``model=`` into a directory holding ``config.json``,
``*.safetensors`` and the tokenizer files. Hub downloads go through ``huggingface_hub.snapshot_download``,
so the standard cache (``HF_HOME`` / ``HF_HUB_CACHE``), offline mode (``HF_HUB_OFFLINE``), mirrors
(``HF_ENDPOINT``) and tokens (``HF_TOKEN``) behave exactly as they do for transformers, and a model that
transformers already downloaded is reused from the same cache.

huggingface_hub reads those environment variables once, when it is first imported
(``huggingface_hub.constants``). It is imported lazily here, so ``import minibert`` alone does not freeze
them: setting them any time before the first hub resolution in the process is enough.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

__all__ = [
    "CHECKPOINT_FILES",
    "DEFAULT_CHECKPOINT",
    "DEFAULT_REVISION",
    "CheckpointNotFoundError",
    "resolve_checkpoint",
]

DEFAULT_CHECKPOINT = "distilbert/distilbert-base-uncased-finetuned-sst-2-english"
# Full commit of what transformers' sentiment-analysis pipeline pins as "714eb0f". huggingface_hub only treats
# a full 40-hex sha as an immutable commit: with it a cached snapshot is found directly (offline too) and no
# network round trip is needed to resolve the revision. A short sha would need the hub to expand it, or a
# refs/714eb0f file in the cache, so it could not be served from a plain cache while offline.
DEFAULT_REVISION = "714eb0fa89d2f80546fda750413ed43d93601a13"
# The pre-2024 id, from before the model moved into the `distilbert` org. The hub redirects it, but
# caches written under it live in a different folder (models--distilbert-base-uncased-...).
_LEGACY_DEFAULT_CHECKPOINT = "distilbert-base-uncased-finetuned-sst-2-english"
_DEFAULT_ALIASES = (DEFAULT_CHECKPOINT, _LEGACY_DEFAULT_CHECKPOINT)

# Only what minibert reads. This deliberately leaves out pytorch_model.bin / tf_model.h5 / onnx/, which
# would multiply the download size. `*.safetensors` does not match the shard index, so it is listed as well.
CHECKPOINT_FILES: tuple[str, ...] = (
    "config.json",
    "*.safetensors",
    "model.safetensors.index.json",
    "tokenizer.json",
    "vocab.txt",
    "tokenizer_config.json",
    "special_tokens_map.json",
)

_FULL_SHA = re.compile(r"[0-9a-fA-F]{40}")

_LOCAL_DIR_HINT = (
    "To run without the hub, pass a local directory instead, e.g. "
    'minibert.pipeline("sentiment-analysis", model="/path/to/dir"), where the directory holds '
    "config.json, model.safetensors and vocab.txt or tokenizer.json "
    "(for instance a copy of the files from a machine that has them in its Hugging Face cache)."
)


class CheckpointNotFoundError(OSError):
    """No usable checkpoint directory could be found or downloaded for the requested name.

    An ``OSError`` like the errors transformers raises from ``from_pretrained``, so code that already
    catches those keeps working.
    """


def resolve_checkpoint(
    name_or_path: str | os.PathLike[str],
    revision: str | None = None,
    *,
    cache_dir: str | os.PathLike[str] | None = None,
    local_files_only: bool = False,
) -> Path:
    """Return the directory holding the checkpoint files for ``name_or_path``.

    Args:
        name_or_path: An existing local directory (returned resolved, ``revision`` is ignored), or a hub repo
            id such as ``"distilbert/distilbert-base-uncased-finetuned-sst-2-english"``. An ``os.PathLike``
            is always taken as a local path; pass hub ids as ``str``.
        revision: Branch, tag or full commit sha on the hub. ``None`` means the default branch, except for
            :data:`DEFAULT_CHECKPOINT` (and its legacy id without org), which is pinned to
            :data:`DEFAULT_REVISION` like in transformers.
        cache_dir: Hub cache to use instead of ``HF_HUB_CACHE`` (mostly for tests and tooling).
        local_files_only: Never contact the hub, only use the cache (``HF_HUB_OFFLINE=1`` does the same).

    Returns:
        The resolved local directory, or the cache snapshot directory of the repo at that revision.

    Raises:
        TypeError: ``name_or_path`` or ``revision`` has the wrong type.
        CheckpointNotFoundError: The local path does not exist, the name is not a valid repo id, the repo
            or revision does not exist on the hub, or the hub cannot be reached and nothing is cached.
    """
    if not isinstance(name_or_path, (str, os.PathLike)):
        raise TypeError(
            f"name_or_path must be a str (hub repo id or local path) or an os.PathLike, "
            f"not {type(name_or_path).__name__}: {name_or_path!r}"
        )
    if revision is not None and not isinstance(revision, str):
        raise TypeError(f"revision must be a str or None, not {type(revision).__name__}: {revision!r}")
    name = os.fspath(name_or_path)
    if not isinstance(name, str):  # a PathLike whose __fspath__ returns bytes
        raise TypeError(f"name_or_path must be a text path, not {type(name).__name__}: {name!r}")
    if not name.strip():
        # Checked first because Path("") means the current directory.
        raise CheckpointNotFoundError("Empty model name: pass a hub repo id or a local checkpoint directory.")

    path = Path(name).expanduser()
    if path.is_dir():
        return path.resolve()
    if path.exists():
        raise CheckpointNotFoundError(
            f"{name!r} is a file, not a directory. Pass the directory that contains config.json, "
            "model.safetensors and vocab.txt or tokenizer.json."
        )
    if not isinstance(name_or_path, str) or _looks_like_local_path(name):
        raise CheckpointNotFoundError(
            f"Local checkpoint directory {name!r} does not exist (resolved to {path.absolute()}). "
            "If you meant a Hugging Face hub repo id, use the form 'org/name' as a str."
        )

    from huggingface_hub.errors import HFValidationError
    from huggingface_hub.utils import validate_repo_id

    try:
        validate_repo_id(name)
    except HFValidationError as e:
        raise CheckpointNotFoundError(
            f"{name!r} is neither an existing local directory nor a valid Hugging Face hub repo id "
            f"('name' or 'org/name'): {e}"
        ) from e

    if revision is not None and _FULL_SHA.fullmatch(revision):
        # huggingface_hub only recognises lowercase shas as commits (and cache folders are lowercase).
        revision = revision.lower()
    candidates = [name]
    if name in _DEFAULT_ALIASES:
        if revision is None:
            revision = DEFAULT_REVISION
        # Same repo under two ids: also accept a cache written under the other spelling.
        candidates += [alias for alias in _DEFAULT_ALIASES if alias != name]
    return _from_hub(candidates, revision, cache_dir=cache_dir, local_files_only=local_files_only)


def _looks_like_local_path(name: str) -> bool:
    """True if ``name`` can only be meant as a filesystem path (hub ids are 'name' or 'org/name')."""
    if name in (".", "..") or name.startswith(("./", "../", "~", "/", ".\\", "..\\", "\\")):
        return True
    if os.path.isabs(name) or Path(name).drive:  # also C:\... on Windows
        return True
    if name.count("/") > 1 or name.endswith("/") or "\\" in name:
        return True
    return os.altsep is not None and os.sep in name  # Windows separators never appear in repo ids


def _from_hub(
    repo_ids: list[str],
    revision: str | None,
    *,
    cache_dir: str | os.PathLike[str] | None,
    local_files_only: bool,
) -> Path:
    """``snapshot_download`` the first repo id that works; later ids are only tried from the cache."""
    import huggingface_hub
    from huggingface_hub import constants
    from huggingface_hub.errors import (
        GatedRepoError,
        LocalEntryNotFoundError,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )

    repo_id = repo_ids[0]
    shown_revision = revision or "main (default branch)"
    first_error: LocalEntryNotFoundError | None = None
    for attempt, candidate in enumerate(repo_ids):
        try:
            folder = huggingface_hub.snapshot_download(
                candidate,
                revision=revision,
                allow_patterns=list(CHECKPOINT_FILES),
                cache_dir=cache_dir,
                # An alias is only a second chance at the cache: don't download the same repo twice.
                local_files_only=local_files_only or attempt > 0,
            )
        except LocalEntryNotFoundError as e:
            # huggingface_hub already fell back to the cache (connection error, timeout, hub 5xx, offline
            # mode): this means the hub could not be used AND the snapshot is missing or incomplete.
            first_error = first_error or e
            continue
        except GatedRepoError as e:  # before RepositoryNotFoundError, its base class
            raise CheckpointNotFoundError(
                f"{repo_id!r} is a gated repo on the Hugging Face hub: accept its terms on the model page "
                f"and authenticate (`hf auth login` or HF_TOKEN). {_LOCAL_DIR_HINT}"
            ) from e
        except RepositoryNotFoundError as e:
            raise CheckpointNotFoundError(
                f"Repo {repo_id!r} was not found on the Hugging Face hub (misspelled, or private and no "
                f"valid token given via `hf auth login` / HF_TOKEN), and it is not a local directory either. "
                f"{_LOCAL_DIR_HINT}"
            ) from e
        except RevisionNotFoundError as e:
            raise CheckpointNotFoundError(
                f"Revision {shown_revision!r} does not exist in repo {repo_id!r} on the Hugging Face hub. "
                "Pass an existing branch, tag or full 40-character commit sha."
            ) from e

        snapshot = Path(folder)
        # snapshot_download returns the folder path even when no file matched the patterns (then it does
        # not exist), e.g. a repo that only has pytorch_model.bin weights.
        if not snapshot.is_dir() or not any(snapshot.iterdir()):
            raise CheckpointNotFoundError(
                f"Repo {candidate!r} at revision {shown_revision!r} contains none of the files minibert "
                f"reads ({', '.join(CHECKPOINT_FILES)}); minibert needs safetensors weights, not "
                f"pytorch_model.bin. {_LOCAL_DIR_HINT}"
            )
        return snapshot

    assert first_error is not None
    where = (
        "offline mode is enabled (HF_HUB_OFFLINE=1 or local_files_only=True)"
        if local_files_only or constants.is_offline_mode()
        else "the Hugging Face hub could not be reached"
    )
    raise CheckpointNotFoundError(
        f"Cannot load {repo_id!r} at revision {shown_revision!r}: {where}, and no complete copy of it is in "
        f"the local Hugging Face cache ({cache_dir or huggingface_hub.constants.HF_HUB_CACHE}). "
        f"Connect to the internet once to download it (or set HF_HOME / HF_HUB_CACHE to a cache that has "
        f"it). {_LOCAL_DIR_HINT}\nhuggingface_hub said: {first_error}"
    ) from first_error
