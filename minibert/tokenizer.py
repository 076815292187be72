"""WordPiece tokenizer for DistilBERT / BERT checkpoints, mirroring `transformers.AutoTokenizer`.

The heavy lifting (normalising, splitting, WordPiece, adding [CLS]/[SEP], padding, truncation) is done by the
Rust `tokenizers` library, exactly as in transformers' "fast" tokenizers. This module only

* builds that Rust tokenizer from the checkpoint files the way transformers does (`from_pretrained`; the file
  reading is in tokenizer_files.py),
* translates the familiar `tokenizer(text, padding=..., truncation=..., max_length=...)` arguments into
  the library's padding/truncation settings, following transformers' rules for combining them, and
* checks the input up front (tokenizer_args.py), so mistakes give a clear message naming the bad item
  instead of a traceback from inside Rust.

Output is NumPy (or plain lists), never torch: `model(**tokenizer(texts, padding=True, return_tensors="np"))`.
"""

from __future__ import annotations

import os
import threading
import warnings
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from tokenizers import Encoding, Tokenizer

from minibert.hub import resolve_checkpoint

from .tokenizer_args import (
    check_ids,
    check_pairs,
    check_positive_int,
    check_str,
    check_texts,
    encode_failure,
    is_int,
    padding_strategy,
    truncation_strategy,
)
from .tokenizer_files import DEFAULT_MODEL_MAX_LENGTH, DEFAULT_SPECIAL_TOKENS, read_json, read_tokenizer_files

__all__ = ["AutoTokenizer", "BatchEncoding", "DistilBertTokenizer"]


_SUPPORTED_TOKENIZER_CLASSES = {"BertTokenizer", "DistilBertTokenizer"}  # with or without a "Fast" suffix
_SUPPORTED_MODEL_TYPES = {"bert", "distilbert"}


class BatchEncoding(dict):
    """The tokenizer's output: a dict (so `model(**enc)` works) whose keys are also attributes (`enc.input_ids`)."""

    def __getattr__(self, name: str) -> Any:
        try:
            return self[name]
        except KeyError:
            raise AttributeError(f"BatchEncoding has no key {name!r}; keys are {list(self)}") from None


class DistilBertTokenizer:
    """BERT-style WordPiece tokenizer returning `input_ids` and `attention_mask` (DistilBERT has no token types).

    Build it with `DistilBertTokenizer.from_pretrained(dir_or_hub_id)` (or `AutoTokenizer.from_pretrained`);
    the constructor takes an already configured `tokenizers.Tokenizer`.
    """

    model_input_names = ["input_ids", "attention_mask"]

    def __init__(
        self,
        backend: Tokenizer,
        *,
        model_max_length: int = DEFAULT_MODEL_MAX_LENGTH,
        special_tokens: dict[str, str] | None = None,
        padding_side: str = "right",
        truncation_side: str = "right",
        clean_up_tokenization_spaces: bool = False,
    ) -> None:
        for name, side in (("padding_side", padding_side), ("truncation_side", truncation_side)):
            if side not in ("left", "right"):
                raise ValueError(f"{name} must be 'left' or 'right', got {side!r}")
        self._backend = backend
        # Padding and truncation are settings *on* the Rust tokenizer; every call switches them on for its
        # own duration, so the lock keeps two threads from tokenizing with each other's settings.
        self._lock = threading.Lock()
        self.model_max_length = model_max_length
        self.padding_side = padding_side
        self.truncation_side = truncation_side
        self.clean_up_tokenization_spaces = clean_up_tokenization_spaces
        tokens = {**DEFAULT_SPECIAL_TOKENS, **(special_tokens or {})}
        self.unk_token: str = tokens["unk_token"]
        self.sep_token: str = tokens["sep_token"]
        self.pad_token: str = tokens["pad_token"]
        self.cls_token: str = tokens["cls_token"]
        self.mask_token: str = tokens["mask_token"]
        self._warned_too_long = False

    # ------------------------------------------------------------------ loading

    @classmethod
    def from_pretrained(cls, name_or_path: str | os.PathLike, revision: str | None = None) -> DistilBertTokenizer:
        """Load the tokenizer of a local checkpoint directory or a Hugging Face hub id (see `minibert.hub`)."""
        return cls._from_directory(resolve_checkpoint(name_or_path, revision))

    @classmethod
    def _from_directory(cls, directory: str | os.PathLike) -> DistilBertTokenizer:
        backend, settings = read_tokenizer_files(directory)
        return cls(backend, **settings)

    # ------------------------------------------------------------------ encoding

    def __call__(
        self,
        text: str | Sequence[str],
        text_pair: str | Sequence[str] | None = None,
        *,
        padding: bool | str = False,
        truncation: bool | str | None = None,
        max_length: int | None = None,
        pad_to_multiple_of: int | None = None,
        return_tensors: str | None = None,
        return_attention_mask: bool = True,
        return_token_type_ids: bool | None = None,
        return_offsets_mapping: bool = False,
        return_special_tokens_mask: bool = False,
    ) -> BatchEncoding:
        """Tokenize one text (`str`) or a batch (`list[str]`), optionally paired with `text_pair`.

        Semantics follow transformers:
          padding     True/'longest': to the longest in the batch; 'max_length': to `max_length`
                      (default `model_max_length`); False/'do_not_pad': none.
          truncation  True/'longest_first': drop tokens from the longer text of a pair first;
                      'only_first'/'only_second': only from that text; False/'do_not_truncate': none.
                      None (the default) means no truncation, unless only `max_length` is given.
          max_length  length after adding [CLS]/[SEP]; defaults to `model_max_length` when truncating or
                      padding to 'max_length'.
          return_tensors  None: Python lists (flat for a single str); "np": int64 arrays of shape (batch, seq).
          return_token_type_ids  0 for the first text's tokens, 1 for the pair's (BERT embeds them; DistilBERT
                      ignores them). Off by default; a BERT model given none treats every token as type 0.
          return_offsets_mapping  (start, end) character span of each token in its text; (0, 0) for special tokens.
          return_special_tokens_mask  1 for the [CLS]/[SEP]/[PAD] tokens the tokenizer added, 0 for the text's.
        """
        texts, is_batched = check_texts(text, "text")
        pairs = check_pairs(text_pair, texts, is_batched)
        if return_tensors not in (None, "np"):
            raise ValueError(
                f"return_tensors={return_tensors!r} is not supported: minibert returns NumPy arrays "
                "(return_tensors='np') or Python lists (return_tensors=None)"
            )
        pad, trunc, max_length = self._resolve_strategies(padding, truncation, max_length, pad_to_multiple_of)
        if trunc is not None:
            n_special = self._backend.num_special_tokens_to_add(is_pair=pairs is not None)
            if max_length <= n_special:
                raise ValueError(
                    f"max_length={max_length} leaves no room for text: {'a pair' if pairs else 'a text'} already "
                    f"takes {n_special} special tokens ([CLS]/[SEP]); use max_length > {n_special}"
                )

        inputs = texts if pairs is None else list(zip(texts, pairs, strict=True))
        with self._lock:
            self._configure_backend(pad, trunc, max_length, pad_to_multiple_of)
            try:
                encodings = self._encode_batch(inputs, is_batched, trunc, max_length)
            finally:  # leave the backend plain for tokenize() and for users of backend_tokenizer
                self._configure_backend(None, None, None, None)

        input_ids = [encoding.ids for encoding in encodings]
        if max_length is None:
            self._warn_if_too_long(input_ids)
        output = {"input_ids": input_ids}
        if return_token_type_ids:
            output["token_type_ids"] = [encoding.type_ids for encoding in encodings]
        if return_attention_mask:
            output["attention_mask"] = [encoding.attention_mask for encoding in encodings]
        if return_offsets_mapping:
            output["offset_mapping"] = [encoding.offsets for encoding in encodings]
        if return_special_tokens_mask:
            output["special_tokens_mask"] = [encoding.special_tokens_mask for encoding in encodings]

        if return_tensors == "np":
            lengths = sorted({len(ids) for ids in input_ids})
            if len(lengths) > 1:
                raise ValueError(
                    f"cannot stack the batch into one array: its sequences have {lengths[0]} to {lengths[-1]} "
                    "tokens. Pass padding=True (and truncation=True for texts longer than the model allows)"
                )
            return BatchEncoding({key: np.asarray(value, dtype=np.int64) for key, value in output.items()})
        if not is_batched:
            return BatchEncoding({key: value[0] for key, value in output.items()})
        return BatchEncoding(output)

    def _resolve_strategies(
        self, padding: Any, truncation: Any, max_length: Any, pad_to_multiple_of: Any
    ) -> tuple[str | None, str | None, int | None]:
        """Normalise the padding/truncation arguments as transformers' `_get_padding_truncation_strategies`."""
        pad = padding_strategy(padding)
        trunc = truncation_strategy(truncation)
        check_positive_int(max_length, "max_length")
        check_positive_int(pad_to_multiple_of, "pad_to_multiple_of")

        # Backward compatibility in transformers: a bare max_length means "truncate to it".
        if max_length is not None and padding is False and truncation is None:
            trunc = "longest_first"
        if padding is True and max_length is not None and trunc is None:
            warnings.warn(
                "`max_length` is ignored when `padding`=`True` and there is no truncation strategy. "
                "To pad to max length, use `padding='max_length'`.",
                stacklevel=3,
            )
        if max_length is None and (pad == "max_length" or trunc is not None):
            max_length = self.model_max_length
        if trunc and pad and pad_to_multiple_of is not None and max_length % pad_to_multiple_of != 0:
            raise ValueError(
                f"truncation and padding are both on, but the truncation length ({max_length}) is not a "
                f"multiple of pad_to_multiple_of ({pad_to_multiple_of})"
            )
        return pad, trunc, max_length

    def _configure_backend(
        self, pad: str | None, trunc: str | None, max_length: int | None, pad_to_multiple_of: int | None
    ) -> None:
        """Set this call's padding/truncation on the Rust tokenizer (caller holds the lock)."""
        if trunc is None:
            self._backend.no_truncation()
        else:
            self._backend.enable_truncation(max_length, strategy=trunc, direction=self.truncation_side)
        if pad is None:
            self._backend.no_padding()
        else:
            self._backend.enable_padding(
                direction=self.padding_side,
                pad_id=self.pad_token_id,
                pad_type_id=0,
                pad_token=self.pad_token,
                length=max_length if pad == "max_length" else None,
                pad_to_multiple_of=pad_to_multiple_of,
            )

    def _encode_batch(
        self, inputs: list, is_batched: bool, trunc: str | None, max_length: int | None
    ) -> list[Encoding]:
        """Encode all inputs; if one cannot be encoded (bad unicode, impossible truncation), say which and why."""
        try:
            return self._backend.encode_batch(inputs)
        except Exception:  # tokenizers raises a bare Exception; find the culprit to name it
            for i, item in enumerate(inputs):
                try:
                    self._backend.encode(*item) if isinstance(item, tuple) else self._backend.encode(item)
                except Exception as err:
                    raise ValueError(encode_failure(err, i, item, is_batched, trunc, max_length)) from None
            raise

    def _warn_if_too_long(self, input_ids: list[list[int]]) -> None:
        longest = max(len(ids) for ids in input_ids)
        if longest > self.model_max_length and not self._warned_too_long:
            self._warned_too_long = True
            warnings.warn(
                f"Token indices sequence length is longer than the specified maximum sequence length for this "
                f"model ({longest} > {self.model_max_length}). Running this sequence through the model will "
                "result in indexing errors; pass truncation=True to cut it.",
                stacklevel=3,
            )

    def tokenize(self, text: str) -> list[str]:
        """Split `text` into WordPiece tokens, without [CLS]/[SEP]."""
        check_texts(text, "text", allow_batch=False)
        with self._lock:  # a concurrent __call__ may have padding/truncation switched on
            return self._backend.encode(text, add_special_tokens=False).tokens

    # ------------------------------------------------------------------ vocabulary and decoding

    def convert_tokens_to_ids(self, tokens: str | Iterable[str]) -> int | list[int]:
        """Vocabulary ids of `tokens`; tokens not in the vocabulary map to the [UNK] id."""
        if isinstance(tokens, str):
            token_id = self._backend.token_to_id(tokens)
            return self.unk_token_id if token_id is None else token_id
        return [self.convert_tokens_to_ids(check_str(token, f"tokens[{i}]")) for i, token in enumerate(tokens)]

    def convert_ids_to_tokens(
        self, ids: int | Iterable[int], skip_special_tokens: bool = False
    ) -> str | None | list[str | None]:
        """Tokens for `ids` (None for an id outside the vocabulary, as in transformers)."""
        if is_int(ids):
            return self._backend.id_to_token(int(ids))
        skip = set(self.all_special_ids) if skip_special_tokens else set()
        id_list = check_ids(ids)
        return [self._backend.id_to_token(i) for i in id_list if i not in skip]

    def decode(self, ids: Any, skip_special_tokens: bool = False) -> str | list[str]:
        """Turn ids back into text ('##' pieces glued to their word). A 2-D input gives a list of strings."""
        if (isinstance(ids, np.ndarray) and ids.ndim == 2) or (
            isinstance(ids, (list, tuple)) and ids and isinstance(ids[0], (list, tuple, np.ndarray))
        ):
            return [self._decode_one(row, skip_special_tokens) for row in ids]
        return self._decode_one(ids, skip_special_tokens)

    def batch_decode(self, sequences: Any, skip_special_tokens: bool = False) -> list[str]:
        """`decode` for each row of `sequences`."""
        result = self.decode(sequences, skip_special_tokens=skip_special_tokens)
        return [result] if isinstance(result, str) else result

    def _decode_one(self, ids: Any, skip_special_tokens: bool) -> str:
        id_list = [int(ids)] if is_int(ids) else check_ids(ids)
        text = self._backend.decode(id_list, skip_special_tokens=skip_special_tokens)
        if self.clean_up_tokenization_spaces:  # transformers' clean_up_tokenization, when the config asks
            for before, after in _CLEAN_UP_REPLACEMENTS:
                text = text.replace(before, after)
        return text

    def get_vocab(self) -> dict[str, int]:
        """Token -> id, including added tokens."""
        return self._backend.get_vocab(with_added_tokens=True)

    @property
    def vocab_size(self) -> int:
        """Size of the base vocabulary (without added tokens), as in transformers."""
        return self._backend.get_vocab_size(with_added_tokens=False)

    def __len__(self) -> int:
        return self._backend.get_vocab_size(with_added_tokens=True)

    @property
    def backend_tokenizer(self) -> Tokenizer:
        """The underlying `tokenizers.Tokenizer`, without padding/truncation (calls set them for their duration)."""
        return self._backend

    @property
    def all_special_tokens(self) -> list[str]:
        return [self.unk_token, self.sep_token, self.pad_token, self.cls_token, self.mask_token]

    @property
    def all_special_ids(self) -> list[int]:
        return [self._backend.token_to_id(token) for token in self.all_special_tokens]

    @property
    def unk_token_id(self) -> int:
        return self._backend.token_to_id(self.unk_token)

    @property
    def sep_token_id(self) -> int:
        return self._backend.token_to_id(self.sep_token)

    @property
    def pad_token_id(self) -> int:
        return self._backend.token_to_id(self.pad_token)

    @property
    def cls_token_id(self) -> int:
        return self._backend.token_to_id(self.cls_token)

    @property
    def mask_token_id(self) -> int:
        return self._backend.token_to_id(self.mask_token)

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(vocab_size={self.vocab_size}, model_max_length={self.model_max_length}, "
            f"padding_side={self.padding_side!r}, truncation_side={self.truncation_side!r})"
        )


class AutoTokenizer:
    """`AutoTokenizer.from_pretrained(...)` as in transformers, for the checkpoints minibert supports."""

    @classmethod
    def from_pretrained(cls, name_or_path: str | os.PathLike, revision: str | None = None) -> DistilBertTokenizer:
        """Return a `DistilBertTokenizer` for a DistilBERT or BERT checkpoint (both use the same WordPiece)."""
        directory = resolve_checkpoint(name_or_path, revision)
        tokenizer_class = read_json(Path(directory) / "tokenizer_config.json").get("tokenizer_class")
        model_type = read_json(Path(directory) / "config.json").get("model_type")
        # Like transformers, an explicit tokenizer_class wins over the model type.
        if tokenizer_class:
            if tokenizer_class.removesuffix("Fast") not in _SUPPORTED_TOKENIZER_CLASSES:
                raise ValueError(
                    f"{name_or_path}: tokenizer_class {tokenizer_class!r} is not supported; minibert handles "
                    f"{sorted(_SUPPORTED_TOKENIZER_CLASSES)}"
                )
        elif model_type and model_type not in _SUPPORTED_MODEL_TYPES:
            raise ValueError(
                f"{name_or_path}: model_type {model_type!r} is not supported; minibert handles "
                f"{sorted(_SUPPORTED_MODEL_TYPES)}"
            )
        return DistilBertTokenizer._from_directory(directory)


# transformers' `clean_up_tokenization`, applied by decode when tokenizer_config.json enables it.
_CLEAN_UP_REPLACEMENTS = [
    (" .", "."),
    (" ?", "?"),
    (" !", "!"),
    (" ,", ","),
    (" ' ", "'"),
    (" n't", "n't"),
    (" 'm", "'m"),
    (" 's", "'s"),
    (" 've", "'ve"),
    (" 're", "'re"),
]
