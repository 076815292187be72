"""pipeline("sentiment-analysis") and classify(): text in, labels and scores out.

The steps are the ones the seed notebooks take apart, and the output format is transformers'
text-classification pipeline's, nesting and all:

    tokenizer(text, text_pair, truncation=True)       -> token ids, one list per text
    length-sorted batches, padded                     -> input_ids, attention_mask   [B, T]
    model(**inputs).logits                            -> logits                      [B, L]
    softmax / sigmoid / none                          -> scores                      [B, L]
    config.id2label[argmax]                           -> {"label": ..., "score": ...}

Inputs: one text (str) or {"text", "text_pair"} dict; a list, tuple, NumPy array or any other collection of
them gives a list of results; an iterator (a generator, a file's lines, ...) gives a lazy iterator of results
that reads its input a window at a time, so a stream of any length runs in constant memory.

Batching: a batch is padded to its longest text, so texts of similar length should share a batch. The
pipeline reads `sort_window` texts ahead (tokenized, sorted by token count) and makes each batch from the
oldest text still waiting and the batch_size - 1 waiting texts nearest to it in token count; once the input
is all read, what is left is cut in length order (a list of fewer than sort_window texts is batched exactly
as sorted(texts, key=n_tokens) cut every batch_size). The oldest text is always in the next batch, so results
come out in input order, steadily, at most a window behind the input.
"""

from __future__ import annotations

import bisect
import functools
import os
from collections.abc import Iterable, Iterator
from typing import Any

import numpy as np

from .hub import DEFAULT_CHECKPOINT
from .kernels import softmax
from .modeling import (
    AutoModelForSequenceClassification,
    BertForSequenceClassification,
    DistilBertForSequenceClassification,
    check_dtype,
)
from .tokenizer import AutoTokenizer, DistilBertTokenizer

TASKS = ("sentiment-analysis", "text-classification")
FUNCTIONS = ("softmax", "sigmoid", "none")
SORT_WINDOW = 4096  # texts read ahead and sorted by length; a few MB of token ids, and plenty to pad little
_NOT_GIVEN: Any = object()  # top_k left out: transformers' "legacy" output shape (one dict per text)

Item = tuple[str, "str | None"]  # (text, text_pair)
Encoded = tuple[list[int], list[int]]  # (input_ids, token_type_ids) of one text, unpadded
Result = Any  # one text's {"label", "score"}, or its ranked list of them (top_k given)
Classifier = DistilBertForSequenceClassification | BertForSequenceClassification


def sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


class TextClassificationPipeline:
    """A tokenizer and a classification model, called like transformers' pipeline."""

    def __init__(
        self, model: Classifier, tokenizer: DistilBertTokenizer, batch_size: int = 1, sort_window: int = SORT_WINDOW
    ):
        self.model = model
        self.tokenizer = tokenizer
        self.batch_size = _check_positive(batch_size, "batch_size")
        self.sort_window = _check_positive(sort_window, "sort_window")

    def __call__(
        self,
        inputs: str | dict[str, str] | Iterable[str | dict[str, str]],
        *,
        top_k: int | None = _NOT_GIVEN,
        function_to_apply: str | None = None,
        batch_size: int | None = None,
        truncation: bool | str = True,
        max_length: int | None = None,
        sort_window: int | None = None,
    ) -> list[Result] | Iterator[Result] | Result:
        """Classify one text, or {"text": ..., "text_pair": ...} pair, or many of them.

        inputs: a str or a dict gives one result (a str in the legacy format: a list of one dict, as in
        transformers); a list, tuple, NumPy array (any collection) gives a list with one result per text; an
        iterator (a generator, a file's lines) gives an iterator of results, in input order, reading the input
        lazily. top_k: left out -> one {"label", "score"} per text (the best); an int k -> the k best per
        text, sorted; None -> every label, sorted. function_to_apply: "softmax", "sigmoid" or "none"; by
        default chosen from the config as transformers does. sort_window: how many texts are read ahead and
        sorted by length to make batches that pad little (default: the pipeline's, SORT_WINDOW); at most
        batch_size means batches in input order.
        """
        legacy = top_k is _NOT_GIVEN
        if not legacy and top_k is not None and (isinstance(top_k, bool) or not isinstance(top_k, int) or top_k < 1):
            raise ValueError(f"top_k must be a positive int or None, got {top_k!r}")
        function = self._function(function_to_apply)
        batch_size = self.batch_size if batch_size is None else _check_positive(batch_size, "batch_size")
        sort_window = self.sort_window if sort_window is None else _check_positive(sort_window, "sort_window")
        self.tokenizer("", truncation=truncation, max_length=max_length)  # bad options fail now, not mid-stream
        window = 1 if batch_size == 1 else max(sort_window, batch_size)
        options = (function, top_k, legacy, batch_size, truncation, max_length, window)

        if isinstance(inputs, (str, dict)):
            (result,) = self._run(iter([(0, _item(inputs, "inputs"))]), *options)
            return [result] if isinstance(inputs, str) and legacy else result  # as transformers nests them
        _check_iterable(inputs)
        if isinstance(inputs, Iterator):
            return self._run(_items(inputs), *options)
        items = list(_items(inputs))  # a collection is checked whole: a bad item fails before any compute
        return list(self._run(iter(items), *options))

    def _run(
        self, items: Iterator[tuple[int, Item]], function: str, top_k: int | None, legacy: bool, batch_size: int,
        truncation: bool | str, max_length: int | None, window: int,
    ) -> Iterator[Result]:
        """Results in input order, from (index, item) pairs numbered 0, 1, 2, ... Keeps at most `window`
        tokenized texts; each batch holds the oldest of them, so the next result in order is always ready after
        it: while the input lasts, with the batch_size - 1 texts nearest to it in length; once all is read, the
        rest is cut in length order (as a sorted list is cut into batches)."""
        waiting: dict[int, Encoded] = {}  # read and tokenized, not yet run
        by_length: list[tuple[int, int]] = []  # the waiting texts as (n_tokens, index), sorted
        finished: dict[int, Result] = {}  # run, but an earlier text is still waiting
        next_out = 0  # the index of the next result to yield: always the oldest waiting text
        exhausted, failure = False, None
        while True:
            while not exhausted and len(waiting) + len(finished) < window:  # hold at most a window of texts
                try:
                    index, (text, pair) = next(items)
                    waiting[index] = self._encode(index, text, pair, truncation, max_length)
                except StopIteration:
                    exhausted = True
                except Exception as err:  # a bad item, or the input's own error: first finish the texts before it
                    exhausted, failure = True, err
                else:
                    bisect.insort(by_length, (len(waiting[index][0]), index))
            if not by_length:
                break
            take = _block if exhausted else _nearest
            batch = take(by_length, (len(waiting[next_out][0]), next_out), batch_size)
            input_ids, attention_mask, token_type_ids = _pad(
                [waiting.pop(index) for _, index in batch], self.tokenizer.pad_token_id, self.tokenizer.padding_side
            )
            logits = self.model(input_ids, attention_mask, token_type_ids).logits  # [b, L]
            for (_, index), row in zip(batch, logits, strict=True):
                finished[index] = self._postprocess(row, function, top_k, legacy)
            while next_out in finished:
                yield finished.pop(next_out)
                next_out += 1
        if failure is not None:
            raise failure

    def _encode(self, index: int, text: str, pair: str | None, truncation: bool | str, max_length: int | None):
        # one text -> (input_ids, token_type_ids), unpadded; errors name the item by its index in the input
        try:
            enc = self.tokenizer(text, pair, truncation=truncation, max_length=max_length, return_token_type_ids=True)
        except ValueError as err:
            raise ValueError(f"inputs[{index}]: {err}") from None
        limit = self.model.config.max_position_embeddings
        if len(enc["input_ids"]) > limit:
            raise ValueError(
                f"inputs[{index}] has {len(enc['input_ids'])} tokens but the model takes at most {limit}; "
                "leave truncation on (the default) to cut it"
            )
        return enc["input_ids"], enc["token_type_ids"]

    def _function(self, name: str | None) -> str:
        # transformers' default: regression -> none; one label or multi-label -> sigmoid; else softmax
        if name is None:
            cfg = self.model.config
            if cfg.problem_type == "regression":
                return "none"
            if cfg.problem_type == "multi_label_classification" or cfg.num_labels == 1:
                return "sigmoid"
            return "softmax"
        if not isinstance(name, str) or name.lower() not in FUNCTIONS:
            raise ValueError(f"function_to_apply must be one of {FUNCTIONS}, got {name!r}")
        return name.lower()

    def _postprocess(self, logits: np.ndarray, function: str, top_k: int | None, legacy: bool) -> Result:
        # [L] logits -> {"label", "score"} or a sorted list of them
        scores = {"softmax": softmax, "sigmoid": sigmoid, "none": lambda x: x}[function](logits)
        id2label = self.model.config.id2label
        if legacy:
            return {"label": id2label[int(scores.argmax())], "score": scores.max().item()}
        ranked = [{"label": id2label[i], "score": s.item()} for i, s in enumerate(scores)]
        ranked.sort(key=lambda d: d["score"], reverse=True)
        return ranked if top_k is None else ranked[:top_k]


def _check_positive(value: object, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be a positive int, got {value!r}")
    return value


def _check_iterable(inputs: object) -> None:
    """Many inputs: any iterable of texts, except the ones that iterate over something else than texts."""
    expected = "inputs must be a str, a {'text', 'text_pair'} dict or an iterable of them"
    if isinstance(inputs, (bytes, bytearray, memoryview)):
        raise TypeError(f"{expected}, got {type(inputs).__name__} (decode it first, e.g. .decode('utf-8'))")
    if isinstance(inputs, np.ndarray) and inputs.ndim != 1:
        raise TypeError(f"{expected}; a NumPy array of texts must be 1-D, got shape {inputs.shape}")
    if not isinstance(inputs, Iterable):
        raise TypeError(f"{expected}, got {type(inputs).__name__}")


def _items(inputs: Iterable) -> Iterator[tuple[int, Item]]:
    """(index, (text, text_pair)) for each input, checked as it is read."""
    for i, x in enumerate(inputs):
        yield i, _item(x, f"inputs[{i}]")


def _item(x: object, where: str) -> Item:
    """One input as (text, text_pair), or a clear error naming it (`where`)."""
    if isinstance(x, str):
        text, pair = x, None
    elif isinstance(x, dict):
        if set(x) - {"text", "text_pair"} or not isinstance(x.get("text"), str) or not isinstance(
            x.get("text_pair", ""), str
        ):
            shown = {k: type(v).__name__ for k, v in x.items()}
            raise ValueError(f"{where} must be {{'text': str, 'text_pair': str}} (text_pair optional), got {shown}")
        # An empty pair means "no pair", as in transformers (it tokenizes each dict on its own).
        text, pair = x["text"], x.get("text_pair") or None
    else:
        hint = " (decode it first, e.g. .decode('utf-8'))" if isinstance(x, (bytes, bytearray)) else ""
        raise TypeError(f"{where} is {type(x).__name__}; expected str or {{'text', 'text_pair'}} dict{hint}")
    for name, s in ((where, text), (f"{where}['text_pair']", pair)):
        if s is not None and not s.isascii():
            try:
                s.encode("utf-8")
            except UnicodeEncodeError as bad:  # tokenizers (and so transformers) cannot take these either
                raise ValueError(
                    f"{name} cannot be encoded as UTF-8: lone surrogate {s[bad.start]!r} at position {bad.start} "
                    "(was it decoded with errors='surrogateescape'?)"
                ) from None
    return str(text), None if pair is None else str(pair)  # str(): NumPy's np.str_ items become plain str


def _nearest(by_length: list[tuple[int, int]], key: tuple[int, int], size: int) -> list[tuple[int, int]]:
    """Remove `key` and the size - 1 keys nearest to it in length from the sorted list; return them, sorted."""
    lo = bisect.bisect_left(by_length, key)
    hi = lo + 1
    while hi - lo < size and (lo > 0 or hi < len(by_length)):
        left_nearer = hi == len(by_length) or (lo > 0 and key[0] - by_length[lo - 1][0] <= by_length[hi][0] - key[0])
        lo, hi = (lo - 1, hi) if left_nearer else (lo, hi + 1)
    batch = by_length[lo:hi]
    del by_length[lo:hi]
    return batch


def _block(by_length: list[tuple[int, int]], key: tuple[int, int], size: int) -> list[tuple[int, int]]:
    """Remove and return the key's block when the sorted list is cut into blocks of `size` from the shortest."""
    start = bisect.bisect_left(by_length, key) // size * size
    batch = by_length[start : start + size]
    del by_length[start : start + size]
    return batch


def _pad(encoded: list[Encoded], pad_id: int, side: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    # b texts' token ids -> input_ids, attention_mask, token_type_ids [b, T], padded to the longest (T) as the
    # tokenizer's padding=True pads: pad_id, mask 0, type 0, on the tokenizer's padding side
    longest = max(len(ids) for ids, _ in encoded)
    input_ids = np.full((len(encoded), longest), pad_id, dtype=np.int64)
    attention_mask = np.zeros((len(encoded), longest), dtype=np.int64)
    token_type_ids = np.zeros((len(encoded), longest), dtype=np.int64)
    for row, (ids, types) in enumerate(encoded):
        cols = slice(0, len(ids)) if side == "right" else slice(longest - len(ids), longest)
        input_ids[row, cols], attention_mask[row, cols], token_type_ids[row, cols] = ids, 1, types
    return input_ids, attention_mask, token_type_ids


def pipeline(
    task: str = "sentiment-analysis",
    model: str | os.PathLike | Classifier | None = None,
    tokenizer: str | os.PathLike | DistilBertTokenizer | None = None,
    *,
    revision: str | None = None,
    backend: str | None = None,
    dtype: str | None = None,
    batch_size: int = 1,
    sort_window: int = SORT_WINDOW,
) -> TextClassificationPipeline:
    """transformers.pipeline for text classification. model: a hub id (default: the SST-2 DistilBERT
    at its pinned revision), a local checkpoint directory, or a loaded model (then pass tokenizer).
    dtype: "float32" (default) or "float64" (the exact reference), as in from_pretrained. sort_window: see
    TextClassificationPipeline.__call__. The other tasks (fill-mask, token-classification/ner,
    question-answering, feature-extraction) are built by tasks.py."""
    from . import tasks  # the other heads' pipelines (issue 9); kept apart from text classification

    if task in tasks.TASKS:
        kwargs = {} if dtype is None else {"dtype": dtype}
        return tasks.task_pipeline(
            task, model, tokenizer, revision=revision, backend=backend, batch_size=batch_size, **kwargs
        )
    if task not in TASKS:
        raise ValueError(f"minibert supports the tasks {TASKS}, not {task!r}")
    if model is None:
        model = DEFAULT_CHECKPOINT
    if isinstance(model, (DistilBertForSequenceClassification, BertForSequenceClassification)):
        if tokenizer is None:
            raise ValueError("pass tokenizer= with a loaded model (or pass the model as an id/directory)")
        if dtype is not None and check_dtype(dtype) != model.dtype:
            raise ValueError(f"dtype={dtype!r} but the model passed is already loaded as {model.dtype}")
    elif isinstance(model, (str, os.PathLike)):
        tokenizer = model if tokenizer is None else tokenizer
        kwargs = {} if dtype is None else {"dtype": dtype}
        model = AutoModelForSequenceClassification.from_pretrained(model, revision=revision, backend=backend, **kwargs)
    else:
        raise TypeError(f"model must be a hub id, a directory or a DistilBertForSequenceClassification, got {model!r}")
    if isinstance(tokenizer, (str, os.PathLike)):
        tokenizer = AutoTokenizer.from_pretrained(tokenizer, revision=revision)
    return TextClassificationPipeline(model, tokenizer, batch_size=batch_size, sort_window=sort_window)


@functools.lru_cache(maxsize=4)
def _cached_pipeline(model: str, revision: str | None, backend: str | None, dtype: str) -> TextClassificationPipeline:
    return pipeline("sentiment-analysis", model, revision=revision, backend=backend, dtype=dtype)


def classify(
    texts: str | Iterable[str],
    model: str | os.PathLike | None = None,
    *,
    revision: str | None = None,
    backend: str | None = None,
    dtype: str | None = None,
    **kwargs: Any,
) -> list[Result] | Iterator[Result]:
    """One call from text to labels: `classify(["I love it", "I hate it"])`. The pipeline for each
    model is built once and kept, so repeated calls pay only for the forward pass. texts: as the
    pipeline's inputs (a list gives a list, an iterator an iterator). kwargs go to the pipeline call:
    top_k, function_to_apply, batch_size, truncation, max_length, sort_window."""
    dtype = check_dtype("float32" if dtype is None else dtype).name  # one cache entry per dtype, however named
    clf = _cached_pipeline(os.fspath(model) if model is not None else DEFAULT_CHECKPOINT, revision, backend, dtype)
    return clf(texts, **kwargs)
