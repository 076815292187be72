"""Reading a checkpoint's tokenizer files the way transformers does: tokenizer.json, or vocab.txt with
tokenizer_config.json, special_tokens_map.json, added_tokens.json and config.json, each optional key with
transformers' default. tokenizer.py builds its DistilBertTokenizer from what `read_tokenizer_files` returns.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from tokenizers import AddedToken, Tokenizer, decoders, normalizers, pre_tokenizers, processors
from tokenizers.models import WordPiece

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


def read_tokenizer_files(directory: str | os.PathLike) -> tuple[Tokenizer, dict[str, Any]]:
    """The Rust tokenizer, and the settings for DistilBertTokenizer, built as transformers builds them: from
    `tokenizer.json`, or else from `vocab.txt` + `tokenizer_config.json`.

    Files read (all optional except one of tokenizer.json / vocab.txt):
      tokenizer_config.json   do_lower_case, strip_accents, tokenize_chinese_chars, model_max_length,
                              special tokens, added_tokens_decoder, padding_side, truncation_side,
                              clean_up_tokenization_spaces - missing keys get transformers' defaults
      special_tokens_map.json overrides the special tokens (legacy format, as in transformers)
      added_tokens.json       extra tokens (legacy format, only without added_tokens_decoder)
      config.json             max_position_embeddings, when model_max_length is not given
    """
    directory = Path(directory)
    config = read_json(directory / "tokenizer_config.json")

    special_tokens = {key: token_content(config[key]) for key in DEFAULT_SPECIAL_TOKENS if config.get(key)}
    if "added_tokens_decoder" not in config:  # transformers only reads the legacy map in that case
        token_map = read_json(directory / "special_tokens_map.json")
        special_tokens.update(
            {key: token_content(token_map[key]) for key in DEFAULT_SPECIAL_TOKENS if token_map.get(key)}
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
        check_vocab(vocab_file, tokens)
        backend = build_wordpiece(vocab_file, config, tokens["unk_token"])
    else:
        raise FileNotFoundError(f"{directory} has neither tokenizer.json nor vocab.txt; cannot build a tokenizer")

    add_extra_tokens(backend, directory, config, tokens)
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

    return backend, dict(
        model_max_length=model_max_length(directory, config),
        special_tokens=tokens,
        # Same precedence as transformers: tokenizer_config.json, then the file's baked-in direction.
        padding_side=config.get("padding_side") or (file_padding or {}).get("direction") or "right",
        truncation_side=config.get("truncation_side") or (file_truncation or {}).get("direction") or "right",
        clean_up_tokenization_spaces=bool(config.get("clean_up_tokenization_spaces", False)),
    )


def read_json(path: Path) -> dict:
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


def token_content(value: Any) -> str:
    """A special token as stored in the configs: a plain string or a serialised AddedToken dict."""
    return value["content"] if isinstance(value, dict) else str(value)


def check_vocab(vocab_file: Path, tokens: dict[str, str]) -> None:
    """An empty vocab.txt, or one without its unknown token, would fail on every call deep inside tokenizers."""
    with open(vocab_file, encoding="utf-8") as f:
        vocab = {line.rstrip("\n") for line in f}
    vocab.discard("")
    if not vocab:
        raise ValueError(f"{vocab_file} is empty; it must list the WordPiece vocabulary, one token per line")
    if tokens["unk_token"] not in vocab:
        raise ValueError(f"{vocab_file} lacks the unknown token {tokens['unk_token']!r} that WordPiece needs")


def build_wordpiece(vocab_file: Path, config: dict, unk_token: str) -> Tokenizer:
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


def add_extra_tokens(backend: Tokenizer, directory: Path, config: dict, tokens: dict[str, str]) -> None:
    """Register the added tokens listed in tokenizer_config.json (or the legacy added_tokens.json)."""
    if "added_tokens_decoder" in config:
        decoder = config["added_tokens_decoder"]
        added = [AddedToken(**added_token_fields(decoder[key])) for key in sorted(decoder, key=int)]
    else:
        legacy = read_json(directory / "added_tokens.json")
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


def added_token_fields(entry: Any) -> dict:
    if isinstance(entry, str):
        return {"content": entry}
    fields = ("content", "single_word", "lstrip", "rstrip", "normalized", "special")
    return {key: entry[key] for key in fields if key in entry}


def model_max_length(directory: Path, config: dict) -> int:
    """tokenizer_config.json's model_max_length, else config.json's max_position_embeddings, else 512.

    transformers would use "unlimited" in the last two cases (and for the 1e30 some old configs store),
    so `truncation=True` would silently not truncate; minibert's model cannot run past its position
    embeddings, so it falls back to that limit instead.
    """
    value = config.get("model_max_length", config.get("max_len"))
    if isinstance(value, int) and 0 < value <= LARGE_INTEGER:
        return value
    positions = read_json(directory / "config.json").get("max_position_embeddings")
    if isinstance(positions, int) and positions > 0:
        return positions
    return DEFAULT_MODEL_MAX_LENGTH
