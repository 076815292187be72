"""pipeline("sentiment-analysis") and classify(): text in, labels and scores out.

The steps are the ones the seed notebooks take apart, and the output format is transformers'
text-classification pipeline's, nesting and all:

    tokenizer(texts, padding=True, truncation=True)   -> input_ids, attention_mask   [B, T]
    model(**inputs).logits                            -> logits                      [B, L]
    softmax / sigmoid / none                          -> scores                      [B, L]
    config.id2label[argmax]                           -> {"label": ..., "score": ...}
"""

from __future__ import annotations

import functools
import os
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np

from .hub import DEFAULT_CHECKPOINT
from .kernels import softmax
from .modeling import DistilBertForSequenceClassification
from .tokenizer import AutoTokenizer, DistilBertTokenizer

TASKS = ("sentiment-analysis", "text-classification")
FUNCTIONS = ("softmax", "sigmoid", "none")
_NOT_GIVEN: Any = object()  # top_k left out: transformers' "legacy" output shape (one dict per text)

Item = tuple[str, "str | None"]  # (text, text_pair)


def sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


class TextClassificationPipeline:
    """A tokenizer and a classification model, called like transformers' pipeline."""

    def __init__(
        self, model: DistilBertForSequenceClassification, tokenizer: DistilBertTokenizer, batch_size: int = 1
    ):
        self.model = model
        self.tokenizer = tokenizer
        self.batch_size = _check_batch_size(batch_size)

    def __call__(
        self,
        inputs: str | dict[str, str] | Sequence[str | dict[str, str]],
        *,
        top_k: int | None = _NOT_GIVEN,
        function_to_apply: str | None = None,
        batch_size: int | None = None,
        truncation: bool | str = True,
        max_length: int | None = None,
    ) -> list[dict[str, Any]] | list[list[dict[str, Any]]] | dict[str, Any]:
        """Classify one text, a list of texts, or {"text": ..., "text_pair": ...} pairs.

        top_k: left out -> one {"label", "score"} per text (the best); an int k -> the k best per
        text, sorted; None -> every label, sorted. function_to_apply: "softmax", "sigmoid" or
        "none"; by default chosen from the config as transformers does.
        """
        legacy = top_k is _NOT_GIVEN
        if not legacy and top_k is not None and (isinstance(top_k, bool) or not isinstance(top_k, int) or top_k < 1):
            raise ValueError(f"top_k must be a positive int or None, got {top_k!r}")
        function = self._function(function_to_apply)
        batch_size = self.batch_size if batch_size is None else _check_batch_size(batch_size)
        single = isinstance(inputs, (str, dict))
        items = _items([inputs] if single else inputs)

        results = []
        for chunk in _chunks(items, batch_size):
            texts = [text for text, _ in chunk]
            pairs = [pair for _, pair in chunk] if chunk[0][1] is not None else None
            enc = self.tokenizer(
                texts, pairs, padding=True, truncation=truncation, max_length=max_length, return_tensors="np"
            )
            logits = self.model(enc["input_ids"], enc["attention_mask"]).logits  # [b, L] float32
            results += [self._postprocess(row, function, top_k, legacy) for row in logits]

        if single and isinstance(inputs, str) and legacy:
            return results  # transformers: a single text still gives a list of one dict
        return results[0] if single else results

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

    def _postprocess(self, logits: np.ndarray, function: str, top_k: int | None, legacy: bool):
        # [L] float32 logits -> {"label", "score"} or a sorted list of them
        scores = {"softmax": softmax, "sigmoid": sigmoid, "none": lambda x: x}[function](logits)
        id2label = self.model.config.id2label
        if legacy:
            return {"label": id2label[int(scores.argmax())], "score": scores.max().item()}
        ranked = [{"label": id2label[i], "score": s.item()} for i, s in enumerate(scores)]
        ranked.sort(key=lambda d: d["score"], reverse=True)
        return ranked if top_k is None else ranked[:top_k]


def _check_batch_size(batch_size: object) -> int:
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive int, got {batch_size!r}")
    return batch_size


def _items(inputs: object) -> list[Item]:
    """Normalise the pipeline's inputs to (text, text_pair) tuples, naming any bad item."""
    if isinstance(inputs, (bytes, np.ndarray)) or not isinstance(inputs, Sequence):
        raise TypeError(
            f"inputs must be a str, a {{'text', 'text_pair'}} dict or a list of them, got {type(inputs).__name__}"
        )
    items = []
    for i, x in enumerate(inputs):
        if isinstance(x, str):
            items.append((x, None))
        elif isinstance(x, dict):
            if set(x) - {"text", "text_pair"} or not isinstance(x.get("text"), str) or not isinstance(
                x.get("text_pair"), str
            ):
                raise ValueError(f"inputs[{i}] must be {{'text': str, 'text_pair': str}}, got keys {sorted(x)}")
            # An empty pair means "no pair", as in transformers (it tokenizes each dict on its own).
            items.append((x["text"], x["text_pair"] or None))
        else:
            raise TypeError(f"inputs[{i}] is {type(x).__name__}; expected str or {{'text', 'text_pair'}} dict")
    return items


def _chunks(items: list[Item], size: int) -> Iterator[list[Item]]:
    # Batches of at most `size`; single texts and pairs are never mixed in one tokenizer call.
    chunk: list[Item] = []
    for item in items:
        if chunk and (len(chunk) == size or (item[1] is None) != (chunk[0][1] is None)):
            yield chunk
            chunk = []
        chunk.append(item)
    if chunk:
        yield chunk


def pipeline(
    task: str = "sentiment-analysis",
    model: str | os.PathLike | DistilBertForSequenceClassification | None = None,
    tokenizer: str | os.PathLike | DistilBertTokenizer | None = None,
    *,
    revision: str | None = None,
    backend: str | None = None,
    batch_size: int = 1,
) -> TextClassificationPipeline:
    """transformers.pipeline for text classification. model: a hub id (default: the SST-2 DistilBERT
    at its pinned revision), a local checkpoint directory, or a loaded model (then pass tokenizer).
    The other tasks (fill-mask, token-classification/ner, question-answering, feature-extraction) are
    built by tasks.py."""
    from . import tasks  # the other heads' pipelines (issue 9); kept apart from text classification

    if task in tasks.TASKS:
        return tasks.task_pipeline(task, model, tokenizer, revision=revision, backend=backend, batch_size=batch_size)
    if task not in TASKS:
        raise ValueError(f"minibert supports the tasks {TASKS}, not {task!r}")
    if model is None:
        model = DEFAULT_CHECKPOINT
    if isinstance(model, DistilBertForSequenceClassification):
        if tokenizer is None:
            raise ValueError("pass tokenizer= with a loaded model (or pass the model as an id/directory)")
    elif isinstance(model, (str, os.PathLike)):
        tokenizer = model if tokenizer is None else tokenizer
        model = DistilBertForSequenceClassification.from_pretrained(model, revision=revision, backend=backend)
    else:
        raise TypeError(f"model must be a hub id, a directory or a DistilBertForSequenceClassification, got {model!r}")
    if isinstance(tokenizer, (str, os.PathLike)):
        tokenizer = AutoTokenizer.from_pretrained(tokenizer, revision=revision)
    return TextClassificationPipeline(model, tokenizer, batch_size=batch_size)


@functools.lru_cache(maxsize=4)
def _cached_pipeline(model: str, revision: str | None, backend: str | None) -> TextClassificationPipeline:
    return pipeline("sentiment-analysis", model, revision=revision, backend=backend)


def classify(
    texts: str | Sequence[str],
    model: str | os.PathLike | None = None,
    *,
    revision: str | None = None,
    backend: str | None = None,
    **kwargs: Any,
) -> list[dict[str, Any]] | list[list[dict[str, Any]]]:
    """One call from text to labels: `classify(["I love it", "I hate it"])`. The pipeline for each
    model is built once and kept, so repeated calls pay only for the forward pass.
    kwargs go to the pipeline call: top_k, function_to_apply, batch_size, truncation, max_length."""
    clf = _cached_pipeline(os.fspath(model) if model is not None else DEFAULT_CHECKPOINT, revision, backend)
    return clf(texts, **kwargs)
