"""Checkpoint resolution: a local directory, or a Hugging Face hub repo id fetched into the HF cache.

``resolve_checkpoint`` turns what a user passes as ``model=`` into a directory holding ``config.json``,
``*.safetensors`` and the tokenizer files. Hub downloads go through ``huggingface_hub.snapshot_download``,
so the standard cache (``HF_HOME`` / ``HF_HUB_CACHE``), offline mode (``HF_HUB_OFFLINE``), mirrors
(``HF_ENDPOINT``) and tokens (``HF_TOKEN``) behave exactly as they do for transformers, and a model that
transformers already downloaded is reused from the same cache.

huggingface_hub reads those environment variables once, when it is first imported
(``huggingface_hub.constants``). This module imports it lazily, so importing it does not freeze them:
setting them before the first hub resolution in the process is enough (unless some other code imported
huggingface_hub earlier; it is safest to set them before starting Python).
"""

from __future__ import annotations

import json
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
# The id from before the model moved into the `distilbert` org (still used by many tutorials). The hub
# redirects renamed repos, but caches written under it live in models--distilbert-base-uncased-... .
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
    "added_tokens.json",  # legacy list of extra tokens, read by the tokenizer when present
    # a sentence-transformers checkpoint's own pooling and normalisation (minibert.encode reads them)
    "modules.json",
    "sentence_bert_config.json",
    "1_Pooling/config.json",
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

    from huggingface_hub.utils import HFValidationError, validate_repo_id

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
    # Repo ids have at most one "/" and never a backslash.
    return name.count("/") > 1 or name.endswith("/") or "\\" in name


def _from_hub(
    repo_ids: list[str],
    revision: str | None,
    *,
    cache_dir: str | os.PathLike[str] | None,
    local_files_only: bool,
) -> Path:
    """Snapshot of ``repo_ids[0]``; the other ids are spellings of the same repo, only looked up in the cache."""
    import huggingface_hub
    from huggingface_hub import constants
    from huggingface_hub.utils import (
        GatedRepoError,
        HfHubHTTPError,
        LocalEntryNotFoundError,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )

    repo_id = repo_ids[0]
    shown_revision = revision or "main"
    offline = local_files_only or constants.is_offline_mode()
    is_commit = revision is not None and _FULL_SHA.fullmatch(revision) is not None

    def cached() -> tuple[Path | None, LocalEntryNotFoundError | None]:
        """First non-empty cached snapshot among the repo ids (no network), else why the first one failed."""
        first_error = None
        for candidate in repo_ids:
            try:
                folder = Path(_snapshot(candidate, revision, cache_dir, local_files_only=True))
            except LocalEntryNotFoundError as e:  # includes IncompleteSnapshotError (known to miss files)
                first_error = first_error or e
                continue
            if folder.is_dir() and any(folder.iterdir()):
                return folder, None
        return None, first_error

    def unreachable(error: BaseException | None) -> CheckpointNotFoundError:
        reason = (
            "offline mode is enabled (HF_HUB_OFFLINE=1 or local_files_only=True)"
            if offline
            else "the Hugging Face hub could not be reached"
        )
        detail = f"\nhuggingface_hub said: {type(error).__name__}: {error}" if error is not None else ""
        return CheckpointNotFoundError(
            f"Cannot load {repo_id!r} at revision {shown_revision!r}: {reason}, and the local Hugging Face "
            f"cache ({cache_dir or constants.HF_HUB_CACHE}) has no complete copy of it. Connect to the internet "
            f"once to download it, or point HF_HOME / HF_HUB_CACHE at a cache that has it. "
            f"{_LOCAL_DIR_HINT}{detail}"
        )

    # A commit is immutable, so a complete cached snapshot of it is the answer: no need to ask the hub. This
    # also avoids snapshot_download's tree listing, which retries connection errors with backoff (~25 s)
    # before falling back to the same cache.
    snapshot, cache_error = cached() if offline or is_commit else (None, None)
    if snapshot is not None and (offline or _is_complete(snapshot)):
        return snapshot
    if offline:
        raise unreachable(cache_error) from cache_error

    try:
        if is_commit:
            # Fail fast when the hub is unreachable: repo_info is a single request, no retries.
            try:
                huggingface_hub.HfApi().repo_info(repo_id, revision=revision, timeout=constants.HF_HUB_ETAG_TIMEOUT)
            except HfHubHTTPError as e:
                status = getattr(getattr(e, "response", None), "status_code", None)
                if not (status is None or status >= 500):
                    raise  # the hub answered (not found, gated, no access): handled below
                if snapshot is not None:
                    return snapshot
                raise unreachable(e) from e
            except Exception as e:  # connection refused, DNS, timeout, proxy, OfflineModeIsEnabled, ...
                if snapshot is not None:
                    return snapshot  # an incomplete cache beats nothing; the loaders name missing files
                raise unreachable(e) from e
        folder = Path(_snapshot(repo_id, revision, cache_dir, local_files_only=False))
    except LocalEntryNotFoundError as e:
        # snapshot_download fell back to the cache by itself (connection error, timeout, hub 5xx) and the
        # snapshot is missing or incomplete there. Other spellings of the repo id may still be cached.
        snapshot, _ = cached()
        if snapshot is not None:
            return snapshot
        raise unreachable(e) from e
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

    # snapshot_download returns the folder path even when no file matched the patterns (the folder then
    # does not exist), e.g. for a repo that only has pytorch_model.bin weights.
    if not folder.is_dir() or not any(folder.iterdir()):
        raise CheckpointNotFoundError(
            f"Repo {repo_id!r} at revision {shown_revision!r} contains none of the files minibert reads "
            f"({', '.join(CHECKPOINT_FILES)}); minibert needs safetensors weights, not pytorch_model.bin. "
            f"{_LOCAL_DIR_HINT}"
        )
    return folder


def _snapshot(
    repo_id: str,
    revision: str | None,
    cache_dir: str | os.PathLike[str] | None,
    *,
    local_files_only: bool,
) -> str:
    import huggingface_hub

    return huggingface_hub.snapshot_download(
        repo_id,
        revision=revision,
        allow_patterns=list(CHECKPOINT_FILES),
        cache_dir=cache_dir,
        local_files_only=local_files_only,
    )


def _is_complete(folder: Path) -> bool:
    """Whether a snapshot has everything a DistilBERT checkpoint needs (config, all weights, vocabulary)."""
    if not (folder / "config.json").is_file():
        return False
    if not ((folder / "vocab.txt").is_file() or (folder / "tokenizer.json").is_file()):
        return False
    index = folder / "model.safetensors.index.json"
    if index.is_file():
        try:
            shards = set(json.loads(index.read_text(encoding="utf-8"))["weight_map"].values())
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            return False
        return bool(shards) and all((folder / shard).is_file() for shard in shards)
    return (folder / "model.safetensors").is_file()
