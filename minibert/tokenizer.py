"""WordPiece tokenizer for DistilBERT / BERT checkpoints, mirroring `transformers.AutoTokenizer`.

The heavy lifting (normalising, splitting, WordPiece, adding [CLS]/[SEP], padding, truncation) is done by the
Rust `tokenizers` library, exactly as in transformers' "fast" tokenizers. This module only

* builds that Rust tokenizer from the checkpoint files the way transformers does (`from_pretrained`),
* translates the familiar `tokenizer(text, padding=..., truncation=..., max_length=...)` arguments into
  the library's padding/truncation settings, following transformers' rules for combining them, and
* checks the input up front, so mistakes give a clear message naming the bad item instead of a
  traceback from inside Rust.

Output is NumPy (or plain lists), never torch: `model(**tokenizer(texts, padding=True, return_tensors="np"))`.
"""

from __future__ import annotations

import json
import os
import threading
import warnings
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from tokenizers import AddedToken, Encoding, Tokenizer, decoders, normalizers, pre_tokenizers, processors
from tokenizers.models import WordPiece

from minibert.hub import resolve_checkpoint

__all__ = ["AutoTokenizer", "BatchEncoding", "DistilBertTokenizer"]

# The named special tokens, in transformers' order, with BERT's defaults.
DEFAULT_SPECIAL_TOKENS = {
    "unk_token": "[UNK]",
    "sep_token": "[SEP]",
    "pad_token": "[PAD]",
    "cls_token": "[CLS]",
    "mask_token": "[MASK]",
}
# transformers treats a model_max_length above this as "no limit" (old configs store 1e30 there).
LARGE_INTEGER = int(1e20)
# Used when neither tokenizer_config.json nor config.json says how long an input may be.
DEFAULT_MODEL_MAX_LENGTH = 512

_SUPPORTED_TOKENIZER_CLASSES = {"BertTokenizer", "DistilBertTokenizer"}  # with or without a "Fast" suffix
_SUPPORTED_MODEL_TYPES = {"bert", "distilbert"}
_PADDING_VALUES = "True, False, 'longest', 'max_length' or 'do_not_pad'"
_TRUNCATION_VALUES = "True, False, None, 'longest_first', 'only_first', 'only_second' or 'do_not_truncate'"


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
        """Build the tokenizer from `tokenizer.json`, or else from `vocab.txt` + `tokenizer_config.json`.

        Files read (all optional except one of tokenizer.json / vocab.txt):
          tokenizer_config.json   do_lower_case, strip_accents, tokenize_chinese_chars, model_max_length,
                                  special tokens, added_tokens_decoder, padding_side, truncation_side,
                                  clean_up_tokenization_spaces - missing keys get transformers' defaults
          special_tokens_map.json overrides the special tokens (legacy format, as in transformers)
          added_tokens.json       extra tokens (legacy format, only without added_tokens_decoder)
          config.json             max_position_embeddings, when model_max_length is not given
        """
        directory = Path(directory)
        config = _read_json(directory / "tokenizer_config.json")

        special_tokens = {key: _token_content(config[key]) for key in DEFAULT_SPECIAL_TOKENS if config.get(key)}
        if "added_tokens_decoder" not in config:  # transformers only reads the legacy map in that case
            token_map = _read_json(directory / "special_tokens_map.json")
            special_tokens.update(
                {key: _token_content(token_map[key]) for key in DEFAULT_SPECIAL_TOKENS if token_map.get(key)}
            )
        tokens = {**DEFAULT_SPECIAL_TOKENS, **special_tokens}

        json_file, vocab_file = directory / "tokenizer.json", directory / "vocab.txt"
        file_padding = file_truncation = None
        if json_file.is_file():
            try:
                backend = Tokenizer.from_file(str(json_file))
            except Exception as e:  # the tokenizers library raises a bare Exception for a corrupt file
                raise ValueError(f"{json_file} is not a readable tokenizer.json: {e}") from e
            if type(backend.model).__name__ != "WordPiece":
                raise ValueError(
                    f"{json_file} holds a {type(backend.model).__name__} tokenizer; minibert only supports "
                    "BERT-style WordPiece tokenizers"
                )
            # Some tokenizer.json files have padding/truncation baked in (e.g. fixed at 128). transformers
            # overrides them on every call, and so do we: they only survive as the default padding side.
            file_padding, file_truncation = backend.padding, backend.truncation
            backend.no_padding()
            backend.no_truncation()
        elif vocab_file.is_file():
            _check_vocab(vocab_file, tokens)
            backend = _build_wordpiece(vocab_file, config, tokens["unk_token"])
        else:
            raise FileNotFoundError(f"{directory} has neither tokenizer.json nor vocab.txt; cannot build a tokenizer")

        _add_extra_tokens(backend, directory, config, tokens)
        # transformers registers the named special tokens as "special added tokens": they are matched in the
        # raw text before normalisation (so a literal "[SEP]" in the text becomes the [SEP] id) and
        # decode(skip_special_tokens=True) drops them. Tokens already registered are left as they are.
        registered = {token.content for token in backend.get_added_tokens_decoder().values()}
        backend.add_special_tokens(
            [AddedToken(t, special=True, normalized=False) for t in tokens.values() if t not in registered]
        )
        if backend.post_processor is None or not json_file.is_file():  # vocab.txt: BERT's template
            cls_token, sep_token = tokens["cls_token"], tokens["sep_token"]
            backend.post_processor = processors.TemplateProcessing(
                single=f"{cls_token}:0 $A:0 {sep_token}:0",
                pair=f"{cls_token}:0 $A:0 {sep_token}:0 $B:1 {sep_token}:1",
                special_tokens=[
                    (cls_token, backend.token_to_id(cls_token)),
                    (sep_token, backend.token_to_id(sep_token)),
                ],
            )

        return cls(
            backend,
            model_max_length=_model_max_length(directory, config),
            special_tokens=tokens,
            # Same precedence as transformers: tokenizer_config.json, then the file's baked-in direction.
            padding_side=config.get("padding_side") or (file_padding or {}).get("direction") or "right",
            truncation_side=config.get("truncation_side") or (file_truncation or {}).get("direction") or "right",
            clean_up_tokenization_spaces=bool(config.get("clean_up_tokenization_spaces", False)),
        )

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
        texts, is_batched = _check_texts(text, "text")
        pairs = _check_pairs(text_pair, texts, is_batched)
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
        pad = _padding_strategy(padding)
        trunc = _truncation_strategy(truncation)
        _check_positive_int(max_length, "max_length")
        _check_positive_int(pad_to_multiple_of, "pad_to_multiple_of")

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
                    raise ValueError(_encode_failure(err, i, item, is_batched, trunc, max_length)) from None
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
        _check_texts(text, "text", allow_batch=False)
        with self._lock:  # a concurrent __call__ may have padding/truncation switched on
            return self._backend.encode(text, add_special_tokens=False).tokens

    # ------------------------------------------------------------------ vocabulary and decoding

    def convert_tokens_to_ids(self, tokens: str | Iterable[str]) -> int | list[int]:
        """Vocabulary ids of `tokens`; tokens not in the vocabulary map to the [UNK] id."""
        if isinstance(tokens, str):
            token_id = self._backend.token_to_id(tokens)
            return self.unk_token_id if token_id is None else token_id
        return [self.convert_tokens_to_ids(_check_str(token, f"tokens[{i}]")) for i, token in enumerate(tokens)]

    def convert_ids_to_tokens(
        self, ids: int | Iterable[int], skip_special_tokens: bool = False
    ) -> str | None | list[str | None]:
        """Tokens for `ids` (None for an id outside the vocabulary, as in transformers)."""
        if _is_int(ids):
            return self._backend.id_to_token(int(ids))
        skip = set(self.all_special_ids) if skip_special_tokens else set()
        id_list = _check_ids(ids)
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
        id_list = [int(ids)] if _is_int(ids) else _check_ids(ids)
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
        tokenizer_class = _read_json(Path(directory) / "tokenizer_config.json").get("tokenizer_class")
        model_type = _read_json(Path(directory) / "config.json").get("model_type")
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


# ---------------------------------------------------------------------- loading helpers


def _read_json(path: Path) -> dict:
    """The JSON object in `path`, or {} when the file does not exist."""
    if not path.is_file():
        return {}
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except json.JSONDecodeError as err:
        raise ValueError(f"{path} is not valid JSON: {err}") from None
    if not isinstance(data, dict):
        raise ValueError(f"{path} should hold a JSON object, got {type(data).__name__}")
    return data


def _token_content(value: Any) -> str:
    """A special token as stored in the configs: a plain string or a serialised AddedToken dict."""
    return value["content"] if isinstance(value, dict) else str(value)


def _check_vocab(vocab_file: Path, tokens: dict[str, str]) -> None:
    """An empty vocab.txt, or one without its unknown token, would fail on every call deep inside tokenizers."""
    with open(vocab_file, encoding="utf-8") as f:
        vocab = {line.rstrip("\n") for line in f}
    vocab.discard("")
    if not vocab:
        raise ValueError(f"{vocab_file} is empty; it must list the WordPiece vocabulary, one token per line")
    if tokens["unk_token"] not in vocab:
        raise ValueError(f"{vocab_file} lacks the unknown token {tokens['unk_token']!r} that WordPiece needs")


def _build_wordpiece(vocab_file: Path, config: dict, unk_token: str) -> Tokenizer:
    """The pipeline transformers' BertTokenizer builds from vocab.txt, with the same defaults."""
    backend = Tokenizer(WordPiece.from_file(str(vocab_file), unk_token=unk_token, max_input_chars_per_word=100))
    backend.normalizer = normalizers.BertNormalizer(
        clean_text=True,
        handle_chinese_chars=config.get("tokenize_chinese_chars", True),
        strip_accents=config.get("strip_accents"),  # None: strip accents iff lowercasing, as original BERT
        lowercase=config.get("do_lower_case", True),
    )
    backend.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    backend.decoder = decoders.WordPiece(prefix="##")
    return backend


def _add_extra_tokens(backend: Tokenizer, directory: Path, config: dict, tokens: dict[str, str]) -> None:
    """Register the added tokens listed in tokenizer_config.json (or the legacy added_tokens.json)."""
    if "added_tokens_decoder" in config:
        decoder = config["added_tokens_decoder"]
        added = [AddedToken(**_added_token_fields(decoder[key])) for key in sorted(decoder, key=int)]
    else:
        legacy = _read_json(directory / "added_tokens.json")
        special = set(tokens.values())
        added = [
            AddedToken(content, normalized=content not in special, special=content in special)
            for content, _ in sorted(legacy.items(), key=lambda item: item[1])
        ]
    for token in added:
        if token.special:
            backend.add_special_tokens([token])
        else:
            backend.add_tokens([token])


def _added_token_fields(entry: Any) -> dict:
    if isinstance(entry, str):
        return {"content": entry}
    fields = ("content", "single_word", "lstrip", "rstrip", "normalized", "special")
    return {key: entry[key] for key in fields if key in entry}


def _model_max_length(directory: Path, config: dict) -> int:
    """tokenizer_config.json's model_max_length, else config.json's max_position_embeddings, else 512.

    transformers would use "unlimited" in the last two cases (and for the 1e30 some old configs store),
    so `truncation=True` would silently not truncate; minibert's model cannot run past its position
    embeddings, so it falls back to that limit instead.
    """
    value = config.get("model_max_length", config.get("max_len"))
    if isinstance(value, int) and 0 < value <= LARGE_INTEGER:
        return value
    positions = _read_json(directory / "config.json").get("max_position_embeddings")
    if isinstance(positions, int) and positions > 0:
        return positions
    return DEFAULT_MODEL_MAX_LENGTH


# ---------------------------------------------------------------------- argument checking


def _type_name(value: Any) -> str:
    return "None" if value is None else type(value).__name__


def _check_str(value: Any, name: str) -> str:
    if isinstance(value, str):
        return value
    hint = ""
    if isinstance(value, (bytes, bytearray)):
        hint = " (decode it first, e.g. .decode('utf-8'))"
    elif isinstance(value, (list, tuple)):
        hint = " (pre-tokenized input is not supported; pass whole strings)"
    raise TypeError(f"{name} is {_type_name(value)}, expected str{hint}")


def _check_texts(text: Any, name: str, allow_batch: bool = True) -> tuple[list[str], bool]:
    """Return (texts as a list, whether the input was a batch), or raise naming the bad item."""
    if isinstance(text, str):
        return [text], False
    if allow_batch and isinstance(text, (list, tuple)):
        if len(text) == 0:
            raise ValueError(f"{name} is an empty {type(text).__name__}; pass at least one string")
        return [_check_str(item, f"{name}[{i}]") for i, item in enumerate(text)], True
    expected = "a str or a list of str" if allow_batch else "a str"
    hint = " (decode it first, e.g. .decode('utf-8'))" if isinstance(text, (bytes, bytearray)) else ""
    raise TypeError(f"{name} must be {expected}, got {_type_name(text)}{hint}")


def _check_pairs(text_pair: Any, texts: list[str], is_batched: bool) -> list[str] | None:
    """The second texts, one per text, or None when there are no pairs."""
    if text_pair is None:
        return None
    if not is_batched:
        if not isinstance(text_pair, str):
            raise TypeError(f"text is a single str, so text_pair must be a str too, got {_type_name(text_pair)}")
        # transformers quirk kept for identical ids: a single text with text_pair="" is encoded as no pair
        # (`if text_pair` in its code), while in a batch "" is a real, empty second text.
        return [text_pair] if text_pair else None
    if not isinstance(text_pair, (list, tuple)):
        raise TypeError(
            f"text is a batch, so text_pair must be a list of str of the same length, got {_type_name(text_pair)}"
        )
    if len(text_pair) != len(texts):
        raise ValueError(f"text has {len(texts)} items but text_pair has {len(text_pair)}; they must match")
    return [_check_str(item, f"text_pair[{i}]") for i, item in enumerate(text_pair)]


def _padding_strategy(padding: Any) -> str | None:
    if padding is True or padding == "longest":
        return "longest"
    if padding is False or padding == "do_not_pad":
        return None
    if padding == "max_length":
        return "max_length"
    raise ValueError(f"padding={padding!r} is not valid; use {_PADDING_VALUES}")


def _truncation_strategy(truncation: Any) -> str | None:
    if truncation is True:
        return "longest_first"
    if truncation is None or truncation is False or truncation == "do_not_truncate":
        return None
    if truncation in ("longest_first", "only_first", "only_second"):
        return truncation
    raise ValueError(f"truncation={truncation!r} is not valid; use {_TRUNCATION_VALUES}")


def _is_int(value: Any) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


def _check_positive_int(value: Any, name: str) -> None:
    if value is None:
        return
    if not _is_int(value):
        raise TypeError(f"{name} must be an int, got {_type_name(value)} {value!r}")
    if value <= 0:
        raise ValueError(f"{name} must be positive, got {value}")


def _check_ids(ids: Any) -> list[int]:
    if isinstance(ids, np.ndarray):
        ids = ids.tolist()
    if not isinstance(ids, (list, tuple)):
        raise TypeError(f"ids must be an int or a sequence of ints, got {_type_name(ids)}")
    for i, token_id in enumerate(ids):
        if not _is_int(token_id):
            raise TypeError(f"ids[{i}] is {_type_name(token_id)}, expected int")
        if token_id < 0:
            raise ValueError(f"ids[{i}] is {token_id}; token ids are never negative")
    return [int(token_id) for token_id in ids]


def _encode_failure(
    err: Exception, i: int, item: Any, is_batched: bool, trunc: str | None, max_length: int | None
) -> str:
    """Explain why tokenizers could not encode input `i`: bad unicode, or an impossible truncation."""
    parts = item if isinstance(item, tuple) else (item,)
    names = ["text", "text_pair"][: len(parts)]
    if is_batched:
        names = [f"{name}[{i}]" for name in names]
    for name, part in zip(names, parts, strict=True):
        try:
            part.encode("utf-8")
        except UnicodeEncodeError as bad:
            return (
                f"{name} cannot be encoded as UTF-8: lone surrogate {part[bad.start]!r} at index {bad.start} "
                "(was it decoded with errors='surrogateescape'?)"
            )
    where = " + ".join(names)
    if "Second sequence not provided" in str(err):
        reason = "there is no text_pair to cut from; pass text_pair or use truncation=True"
    elif "too short" in str(err):
        which = "first text" if trunc == "only_first" else "text_pair"
        reason = (
            f"even removing all of the {which} does not make it fit; "
            "use truncation=True ('longest_first') or a larger max_length"
        )
    else:
        return f"tokenizers could not encode {where}: {err}"
    return f"cannot truncate {where} to max_length={max_length} with truncation={trunc!r}: {reason}"


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
