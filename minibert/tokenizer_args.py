"""Checking the arguments of a tokenizer call up front, so a mistake gives a clear TypeError/ValueError naming
the bad item instead of a traceback from inside the Rust tokenizers library."""

from __future__ import annotations

from typing import Any

import numpy as np

PADDING_VALUES = "True, False, 'longest', 'max_length' or 'do_not_pad'"
TRUNCATION_VALUES = "True, False, None, 'longest_first', 'only_first', 'only_second' or 'do_not_truncate'"


def type_name(value: Any) -> str:
    return "None" if value is None else type(value).__name__


def check_str(value: Any, name: str) -> str:
    if isinstance(value, str):
        return value
    hint = ""
    if isinstance(value, (bytes, bytearray)):
        hint = " (decode it first, e.g. .decode('utf-8'))"
    elif isinstance(value, (list, tuple)):
        hint = " (pre-tokenized input is not supported; pass whole strings)"
    raise TypeError(f"{name} is {type_name(value)}, expected str{hint}")


def check_texts(text: Any, name: str, allow_batch: bool = True) -> tuple[list[str], bool]:
    """Return (texts as a list, whether the input was a batch), or raise naming the bad item."""
    if isinstance(text, str):
        return [text], False
    if allow_batch and isinstance(text, (list, tuple)):
        if len(text) == 0:
            raise ValueError(f"{name} is an empty {type(text).__name__}; pass at least one string")
        return [check_str(item, f"{name}[{i}]") for i, item in enumerate(text)], True
    expected = "a str or a list of str" if allow_batch else "a str"
    hint = " (decode it first, e.g. .decode('utf-8'))" if isinstance(text, (bytes, bytearray)) else ""
    raise TypeError(f"{name} must be {expected}, got {type_name(text)}{hint}")


def check_pairs(text_pair: Any, texts: list[str], is_batched: bool) -> list[str] | None:
    """The second texts, one per text, or None when there are no pairs."""
    if text_pair is None:
        return None
    if not is_batched:
        if not isinstance(text_pair, str):
            raise TypeError(f"text is a single str, so text_pair must be a str too, got {type_name(text_pair)}")
        # transformers quirk kept for identical ids: a single text with text_pair="" is encoded as no pair
        # (`if text_pair` in its code), while in a batch "" is a real, empty second text.
        return [text_pair] if text_pair else None
    if not isinstance(text_pair, (list, tuple)):
        raise TypeError(
            f"text is a batch, so text_pair must be a list of str of the same length, got {type_name(text_pair)}"
        )
    if len(text_pair) != len(texts):
        raise ValueError(f"text has {len(texts)} items but text_pair has {len(text_pair)}; they must match")
    return [check_str(item, f"text_pair[{i}]") for i, item in enumerate(text_pair)]


def padding_strategy(padding: Any) -> str | None:
    if padding is True or padding == "longest":
        return "longest"
    if padding is False or padding == "do_not_pad":
        return None
    if padding == "max_length":
        return "max_length"
    raise ValueError(f"padding={padding!r} is not valid; use {PADDING_VALUES}")


def truncation_strategy(truncation: Any) -> str | None:
    if truncation is True:
        return "longest_first"
    if truncation is None or truncation is False or truncation == "do_not_truncate":
        return None
    if truncation in ("longest_first", "only_first", "only_second"):
        return truncation
    raise ValueError(f"truncation={truncation!r} is not valid; use {TRUNCATION_VALUES}")


def is_int(value: Any) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


def check_positive_int(value: Any, name: str) -> None:
    if value is None:
        return
    if not is_int(value):
        raise TypeError(f"{name} must be an int, got {type_name(value)} {value!r}")
    if value <= 0:
        raise ValueError(f"{name} must be positive, got {value}")


def check_ids(ids: Any) -> list[int]:
    if isinstance(ids, np.ndarray):
        ids = ids.tolist()
    if not isinstance(ids, (list, tuple)):
        raise TypeError(f"ids must be an int or a sequence of ints, got {type_name(ids)}")
    for i, token_id in enumerate(ids):
        if not is_int(token_id):
            raise TypeError(f"ids[{i}] is {type_name(token_id)}, expected int")
        if token_id < 0:
            raise ValueError(f"ids[{i}] is {token_id}; token ids are never negative")
    return [int(token_id) for token_id in ids]


def encode_failure(
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
