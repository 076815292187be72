"""pipeline("fill-mask"), pipeline("token-classification") (alias "ner"), and the factory that builds
every pipeline of the other heads (feature-extraction in embeddings.py, question-answering in qa.py).

Each pipeline is: tokenizer -> model head (modeling.py) -> the same post-processing as transformers'
pipeline of that task, with the same output format (keys, nesting, value types):

    fill-mask             logits [T, V] at each [MASK] -> softmax -> top_k words, the filled-in sequence
    token-classification  logits [T, L] -> softmax per token -> labels, optionally merged into words/entities
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np

from .embeddings import FeatureExtractionPipeline, _check_batch_size, _check_texts
from .kernels import softmax
from .tokenizer import AutoTokenizer, DistilBertTokenizer

# task name -> the head it needs (a key of modeling.MODEL_CLASSES)
TASKS = {
    "feature-extraction": "base",
    "fill-mask": "masked_lm",
    "token-classification": "token_classification",
    "ner": "token_classification",
    "question-answering": "question_answering",
}
AGGREGATION_STRATEGIES = ("none", "simple", "first", "average", "max")


def _encode(tokenizer: DistilBertTokenizer, texts: list[str], truncation: bool, **kwargs: Any) -> dict:
    # token_type_ids always: BERT embeds them (all 0 for single texts), DistilBERT ignores them
    return dict(tokenizer(texts, padding=True, truncation=truncation, return_token_type_ids=True,
                          return_tensors="np", **kwargs))


def _model_inputs(enc: dict) -> dict:
    return {k: enc[k] for k in ("input_ids", "attention_mask", "token_type_ids")}


def _check_top_k(top_k: object) -> int:
    if isinstance(top_k, bool) or not isinstance(top_k, int) or top_k < 1:
        raise ValueError(f"top_k must be a positive int, got {top_k!r}")
    return top_k


# ---------------------------------------------------------------------------------------------
# fill-mask


class FillMaskPipeline:
    """The most likely words for each [MASK] in a text, as transformers' fill-mask pipeline:
    per text a list of {"score", "token", "token_str", "sequence"} (a list of such lists when the
    text has several masks)."""

    def __init__(self, model: Any, tokenizer: DistilBertTokenizer, batch_size: int = 1):
        self.model = model
        self.tokenizer = tokenizer
        self.batch_size = _check_batch_size(batch_size)

    def __call__(
        self,
        inputs: str | Sequence[str],
        *,
        top_k: int = 5,
        targets: str | Sequence[str] | None = None,
        batch_size: int | None = None,
        truncation: bool = True,
    ) -> list:
        """top_k: how many words per mask. targets: score only these words (a word not in the vocabulary
        is replaced by its first wordpiece, with a warning, as in transformers)."""
        texts, single = _check_texts(inputs, "inputs")
        top_k = _check_top_k(top_k)
        batch_size = self.batch_size if batch_size is None else _check_batch_size(batch_size)
        target_ids = None if targets is None else self._target_ids(targets)
        if target_ids is not None:
            top_k = min(top_k, len(target_ids))
        tok = self.tokenizer
        results = []
        for start in range(0, len(texts), batch_size):
            enc = _encode(tok, texts[start : start + batch_size], truncation)
            for i, ids in enumerate(enc["input_ids"]):
                if not (ids == tok.mask_token_id).any():
                    raise ValueError(
                        f"inputs[{start + i}] has no {tok.mask_token} token (after truncation); fill-mask needs one"
                    )
            logits = self.model(**_model_inputs(enc)).logits  # [b, T, V]
            for ids, mask, row in zip(enc["input_ids"], enc["attention_mask"], logits, strict=True):
                results.append(self._postprocess(ids[mask == 1], row[mask == 1], top_k, target_ids))
        if single or len(texts) == 1:  # transformers: a one-text list also gives the bare result
            return results[0]
        return results

    def _postprocess(self, ids: np.ndarray, logits: np.ndarray, top_k: int, target_ids: np.ndarray | None) -> list:
        # ids [T], logits [T, V] of one text -> per mask the top_k {"score", "token", "token_str", "sequence"}
        tok = self.tokenizer
        masked = np.flatnonzero(ids == tok.mask_token_id)
        probs = softmax(logits[masked], axis=-1)  # [M, V]
        if target_ids is not None:
            probs = probs[:, target_ids]
        single_mask = len(masked) == 1
        per_mask = []
        for position, p in zip(masked, probs, strict=True):
            best = np.argsort(-p, kind="stable")[:top_k]
            row = []
            for j in best:
                token = int(target_ids[j]) if target_ids is not None else int(j)
                filled = ids.copy()
                filled[position] = token
                filled = filled[filled != tok.pad_token_id]
                # transformers keeps the other [MASK]s visible when there are several (skip_special_tokens=False)
                sequence = tok.decode(filled, skip_special_tokens=single_mask)
                row.append(
                    {"score": p[j].item(), "token": token, "token_str": tok.decode([token]), "sequence": sequence}
                )
            per_mask.append(row)
        return per_mask[0] if single_mask else per_mask

    def _target_ids(self, targets: str | Sequence[str]) -> np.ndarray:
        if isinstance(targets, str):
            targets = [targets]
        if isinstance(targets, (bytes, dict)) or not isinstance(targets, Sequence):
            raise TypeError(f"targets must be a str or a list of str, got {type(targets).__name__}")
        vocab = self.tokenizer.get_vocab()
        ids = []
        for i, target in enumerate(targets):
            if not isinstance(target, str):
                raise TypeError(f"targets[{i}] is {type(target).__name__}; expected str")
            if target in vocab:
                ids.append(vocab[target])
                continue
            pieces = self.tokenizer.tokenize(target)
            if not pieces:
                warnings.warn(f"target {target!r} does not exist in the vocabulary and has no wordpiece; ignoring it",
                              stacklevel=3)
                continue
            ids.append(self.tokenizer.convert_tokens_to_ids(pieces[0]))
            warnings.warn(f"target {target!r} is not in the vocabulary; using its first wordpiece {pieces[0]!r}",
                          stacklevel=3)
        if not ids:
            raise ValueError("targets: none of the given targets can be scored; pass at least one word")
        return np.array(sorted(set(ids)))


# ---------------------------------------------------------------------------------------------
# token-classification / ner


class TokenClassificationPipeline:
    """A label per token, or per word / entity with aggregation_strategy, as transformers' pipeline:
    per text a list of {"entity", "score", "index", "word", "start", "end"} ("none"), or of
    {"entity_group", "score", "word", "start", "end"} (the other strategies). start/end are character
    offsets into the text."""

    def __init__(self, model: Any, tokenizer: DistilBertTokenizer, batch_size: int = 1):
        self.model = model
        self.tokenizer = tokenizer
        self.batch_size = _check_batch_size(batch_size)

    def __call__(
        self,
        inputs: str | Sequence[str],
        *,
        aggregation_strategy: str = "none",
        ignore_labels: Sequence[str] | None = None,
        batch_size: int | None = None,
    ) -> list:
        """aggregation_strategy: "none" (every token), "simple" (adjacent tokens with the same entity
        merged), or "first" / "average" / "max" (words first get one label from their first wordpiece /
        the average of their wordpieces' scores / the wordpiece with the highest score, then merge).
        ignore_labels: labels left out of the output (default ["O"])."""
        texts, single = _check_texts(inputs, "inputs")
        if not isinstance(aggregation_strategy, str) or aggregation_strategy.lower() not in AGGREGATION_STRATEGIES:
            raise ValueError(
                f"aggregation_strategy must be one of {AGGREGATION_STRATEGIES}, got {aggregation_strategy!r}"
            )
        strategy = aggregation_strategy.lower()
        ignore = ["O"] if ignore_labels is None else list(ignore_labels)
        batch_size = self.batch_size if batch_size is None else _check_batch_size(batch_size)
        results = []
        for start in range(0, len(texts), batch_size):
            chunk = texts[start : start + batch_size]
            enc = _encode(self.tokenizer, chunk, True, return_offsets_mapping=True, return_special_tokens_mask=True)
            logits = self.model(**_model_inputs(enc)).logits  # [b, T, L]
            for b, sentence in enumerate(chunk):
                real = enc["attention_mask"][b] == 1
                row = logits[b][real]
                # softmax per token, written as transformers' pipeline writes it (in the logits' dtype)
                shifted = np.exp(row - row.max(axis=-1, keepdims=True))
                scores = shifted / shifted.sum(axis=-1, keepdims=True)
                pre = self._gather(sentence, enc["input_ids"][b][real], scores, enc["offset_mapping"][b][real],
                                   enc["special_tokens_mask"][b][real])
                entities = self._aggregate(pre, strategy)
                results.append([e for e in entities if e.get("entity", e.get("entity_group")) not in ignore])
        return results[0] if single else results

    def _gather(self, sentence, input_ids, scores, offsets, special) -> list[dict]:
        # one dict per real (non-special) token: its wordpiece, scores [L], character span, subword flag
        tok = self.tokenizer
        pre = []
        for idx, token_scores in enumerate(scores):
            if special[idx]:
                continue
            word = tok.convert_ids_to_tokens(int(input_ids[idx]))
            start, end = int(offsets[idx][0]), int(offsets[idx][1])
            word_ref = sentence[start:end]
            # WordPiece marks continuations with "##": a token longer than its span of text is a subword
            is_subword = len(word) != len(word_ref)
            if int(input_ids[idx]) == tok.unk_token_id:
                word, is_subword = word_ref, False
            pre.append({"word": word, "scores": token_scores, "start": start, "end": end, "index": idx,
                        "is_subword": is_subword})
        return pre

    def _aggregate(self, pre: list[dict], strategy: str) -> list[dict]:
        id2label = self.model.config.id2label
        if strategy in ("none", "simple"):
            entities = []
            for p in pre:
                best = p["scores"].argmax()
                entities.append({"entity": id2label[int(best)], "score": p["scores"][best], "index": p["index"],
                                 "word": p["word"], "start": p["start"], "end": p["end"]})
        else:
            entities = self._aggregate_words(pre, strategy)
        return entities if strategy == "none" else self._group_entities(entities)

    def _aggregate_words(self, pre: list[dict], strategy: str) -> list[dict]:
        # the wordpieces of one word (a token and the subwords after it) get one label
        words, group = [], None
        for p in pre:
            if group is None:
                group = [p]
            elif p["is_subword"]:
                group.append(p)
            else:
                words.append(self._aggregate_word(group, strategy))
                group = [p]
        if group is not None:
            words.append(self._aggregate_word(group, strategy))
        return words

    def _aggregate_word(self, pieces: list[dict], strategy: str) -> dict:
        id2label = self.model.config.id2label
        if strategy == "first":
            scores = pieces[0]["scores"]
        elif strategy == "max":
            scores = max(pieces, key=lambda p: p["scores"].max())["scores"]
        else:  # average
            scores = np.nanmean(np.stack([p["scores"] for p in pieces]), axis=0)
        best = scores.argmax()
        return {"entity": id2label[int(best)], "score": scores[best], "word": self._join([p["word"] for p in pieces]),
                "start": pieces[0]["start"], "end": pieces[-1]["end"]}

    def _group_entities(self, entities: list[dict]) -> list[dict]:
        # adjacent tokens/words with the same tag merge, unless the next one begins a new entity (B-)
        groups, current = [], []
        for entity in entities:
            if current:
                bi, tag = _bio_tag(entity["entity"])
                _, last_tag = _bio_tag(current[-1]["entity"])
                if not (tag == last_tag and bi != "B"):
                    groups.append(self._group(current))
                    current = []
            current.append(entity)
        if current:
            groups.append(self._group(current))
        return groups

    def _group(self, entities: list[dict]) -> dict:
        scores = np.nanmean([e["score"] for e in entities])
        return {"entity_group": entities[0]["entity"].split("-", 1)[-1], "score": np.mean(scores),
                "word": self._join([e["word"] for e in entities]), "start": entities[0]["start"],
                "end": entities[-1]["end"]}

    def _join(self, tokens: list[str]) -> str:
        # wordpieces -> text with the tokenizer's own decoder ("hell", "##o" -> "hello"), as transformers
        decoder = self.tokenizer.backend_tokenizer.decoder
        return decoder.decode(tokens) if decoder is not None else " ".join(tokens).replace(" ##", "")


def _bio_tag(label: str) -> tuple[str, str]:
    # "B-PER" -> ("B", "PER"), "I-PER" -> ("I", "PER"), "PER" -> ("I", "PER")
    if label.startswith(("B-", "I-")):
        return label[0], label[2:]
    return "I", label


# ---------------------------------------------------------------------------------------------
# The factory behind pipeline(task) for these tasks.


def task_pipeline(
    task: str,
    model: str | os.PathLike | Any,
    tokenizer: str | os.PathLike | DistilBertTokenizer | None = None,
    *,
    revision: str | None = None,
    backend: str | None = None,
    batch_size: int = 1,
) -> Any:
    """pipeline(task, model=...) for the tasks in TASKS. model: a hub id or local directory (its
    config.json's model_type picks DistilBERT or BERT), or a loaded model of the right head (then pass
    tokenizer=)."""
    from .modeling import MODEL_CLASSES
    from .qa import QuestionAnsweringPipeline

    if task not in TASKS:
        raise ValueError(f"unknown task {task!r}; these are built here: {sorted(TASKS)}")
    head = TASKS[task]
    classes = tuple(by_head[head] for by_head in MODEL_CLASSES.values())
    if model is None:
        raise ValueError(f"pipeline({task!r}) needs model=: a hub id or a local checkpoint directory")
    if isinstance(model, (str, os.PathLike)):
        from .modeling import model_class

        tokenizer = model if tokenizer is None else tokenizer
        model = model_class(model, head, revision).from_pretrained(model, revision=revision, backend=backend)
    elif isinstance(model, classes):
        if tokenizer is None:
            raise ValueError("pass tokenizer= with a loaded model (or pass the model as an id/directory)")
    else:
        names = ", ".join(c.__name__ for c in classes)
        raise TypeError(f"model for {task!r} must be a hub id, a directory or one of {names}; got {model!r}")
    if isinstance(tokenizer, (str, os.PathLike)):
        tokenizer = AutoTokenizer.from_pretrained(tokenizer, revision=revision)
    pipeline_class = {
        "base": FeatureExtractionPipeline,
        "masked_lm": FillMaskPipeline,
        "token_classification": TokenClassificationPipeline,
        "question_answering": QuestionAnsweringPipeline,
    }[head]
    return pipeline_class(model, tokenizer, batch_size=batch_size)
