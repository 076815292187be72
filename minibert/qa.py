"""pipeline("question-answering"): extractive QA, following transformers 4.57 (the last version with
this pipeline; transformers 5 dropped it). The answer is a span of the context:

    tokenizer(question, context): [CLS] question [SEP] context [SEP], in windows of max_seq_len
        tokens that overlap by doc_stride when the context is too long            [W windows, T]
    model -> start_logits, end_logits per window                                 [T] each
    per window: only context tokens may be answers; softmax over them; score(s, e) = p_start[s] p_end[e]
        for s <= e < s + max_answer_len; the top_k spans
    spans -> character offsets (whole words) -> answer text; equal answers (ignoring case) add their
        scores, within and across windows; handle_impossible_answer adds "" scored by
        min over windows of p_start[CLS] p_end[CLS]; a single answer comes back as a dict.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any

import numpy as np
from tokenizers import Encoding, Tokenizer

from .embeddings import _check_batch_size
from .tokenizer import DistilBertTokenizer


def _check_int(value: object, name: str, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{name} must be an int >= {minimum}, got {value!r}")
    return value


def select_spans(
    start: np.ndarray, end: np.ndarray, allowed: np.ndarray, top_k: int, max_answer_len: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    """One window: start/end logits [T] and allowed [T] (1 for context tokens) -> the top_k spans
    (starts, ends, scores) and the empty answer's score p_start[0] * p_end[0] ([CLS])."""
    masked = allowed == 0
    start = np.where(masked, -10000.0, start)  # other tokens cannot be answers, nor weigh in the softmax
    end = np.where(masked, -10000.0, end)
    start = np.exp(start - start.max())
    start = start / start.sum()
    end = np.exp(end - end.max())
    end = end / end.sum()
    null_score = (start[0] * end[0]).item()
    start[0] = end[0] = 0.0  # the [CLS] "no answer" span is scored separately

    # score of every span: p_start[s] * p_end[e], kept only for s <= e < s + max_answer_len
    candidates = np.tril(np.triu(np.outer(start, end)), max_answer_len - 1)  # [T, T]
    flat = candidates.ravel()
    if top_k == 1:
        order = np.array([np.argmax(flat)])
    elif len(flat) < top_k:
        order = np.argsort(-flat)
    else:
        best = np.argpartition(-flat, top_k)[:top_k]
        order = best[np.argsort(-flat[best])]
    starts, ends = np.unravel_index(order, candidates.shape)
    keep = np.isin(starts, allowed.nonzero()) & np.isin(ends, allowed.nonzero())
    starts, ends = starts[keep], ends[keep]
    return starts, ends, candidates[starts, ends], null_score


class QuestionAnsweringPipeline:
    """Answers as {"score", "start", "end", "answer"} (character offsets into the context)."""

    def __init__(self, model: Any, tokenizer: DistilBertTokenizer, batch_size: int = 1):
        self.model = model
        self.tokenizer = tokenizer
        self.batch_size = _check_batch_size(batch_size)  # accepted for a uniform API; windows run one by one
        if tokenizer.padding_side != "right":
            raise ValueError("question-answering needs a tokenizer with padding_side='right' (question first)")
        # A private copy of the Rust tokenizer: windows need truncation with a stride, set per call.
        self._backend = Tokenizer.from_str(tokenizer.backend_tokenizer.to_str())
        self._lock = threading.Lock()

    def __call__(
        self,
        *args: Any,
        question: str | Sequence[str] | None = None,
        context: str | Sequence[str] | None = None,
        top_k: int = 1,
        doc_stride: int | None = None,
        max_answer_len: int = 15,
        max_seq_len: int | None = None,
        max_question_len: int = 64,
        handle_impossible_answer: bool = False,
        align_to_words: bool = True,
    ) -> dict | list:
        """qa(question=..., context=...), qa({"question": ..., "context": ...}), a list of such dicts, or
        qa(question, context). top_k answers per example (fewer if the context has fewer spans);
        max_seq_len (default min(model_max_length, 384)) and doc_stride (default min(max_seq_len // 2, 128))
        set the windows; max_question_len is accepted for compatibility (the fast path never used it)."""
        examples = _examples(args, question, context)
        top_k = _check_int(top_k, "top_k", 1)
        max_answer_len = _check_int(max_answer_len, "max_answer_len", 1)
        _check_int(max_question_len, "max_question_len", 1)
        if max_seq_len is None:
            max_seq_len = min(self.tokenizer.model_max_length, 384)
        max_seq_len = _check_int(max_seq_len, "max_seq_len", 4)
        if doc_stride is None:
            doc_stride = min(max_seq_len // 2, 128)
        doc_stride = _check_int(doc_stride, "doc_stride", 0)
        if doc_stride > max_seq_len:
            raise ValueError(f"doc_stride ({doc_stride}) is larger than max_seq_len ({max_seq_len})")

        results = []
        for i, (q, c) in enumerate(examples):
            windows = self._windows(i, q, c, max_seq_len, doc_stride)
            results.append(self._answer(c, windows, top_k, max_answer_len, handle_impossible_answer, align_to_words))
        return results[0] if len(results) == 1 else results

    def _windows(self, i: int, question: str, context: str, max_seq_len: int, doc_stride: int) -> list[Encoding]:
        # [CLS] question [SEP] context-window [SEP], windows overlapping by doc_stride tokens
        with self._lock:
            self._backend.no_padding()
            self._backend.enable_truncation(max_seq_len, stride=doc_stride, strategy="only_second")
            try:
                first = self._backend.encode(question, context)
            except Exception as e:  # tokenizers raises a bare Exception, e.g. when the question alone is too long
                raise ValueError(
                    f"inputs[{i}] cannot be split into windows of max_seq_len={max_seq_len} with "
                    f"doc_stride={doc_stride}: {e}. Use a shorter question, a larger max_seq_len or a smaller "
                    "doc_stride"
                ) from None
            finally:
                self._backend.no_truncation()
        return [first, *first.overflowing]

    def _answer(self, context: str, windows: list[Encoding], top_k: int, max_answer_len: int,
                handle_impossible: bool, align_to_words: bool) -> dict | list:
        min_null_score = 1000000.0  # large and positive
        answers: list[dict] = []
        for enc in windows:
            ids = np.array([enc.ids])
            out = self.model(ids, np.array([enc.attention_mask]), np.array([enc.type_ids]))
            # allowed: context tokens, and [CLS] (some models answer "impossible" there)
            allowed = np.array([s == 1 for s in enc.sequence_ids], dtype=np.int64)
            allowed[ids[0] == self.tokenizer.cls_token_id] = 1
            allowed &= np.array(enc.attention_mask)
            starts, ends, scores, null = select_spans(
                out.start_logits[0], out.end_logits[0], allowed, top_k, max_answer_len
            )
            min_null_score = min(min_null_score, null)
            for s, e, score in zip(starts, ends, scores, strict=True):
                first, last = _char_span(enc, int(s), int(e), align_to_words)
                text = context[first:last]
                same = next((a for a in answers if a["answer"].lower() == text.lower()), None)
                if same:  # the same answer from another span or window: its probabilities add up
                    same["score"] += score.item()
                else:
                    answers.append({"score": score.item(), "start": first, "end": last, "answer": text})
        if handle_impossible:
            answers.append({"score": min_null_score, "start": 0, "end": 0, "answer": ""})
        answers = sorted(answers, key=lambda a: a["score"], reverse=True)[:top_k]
        return answers[0] if len(answers) == 1 else answers


def _char_span(enc: Encoding, s: int, e: int, align_to_words: bool) -> tuple[int, int]:
    # token span -> character span in the context; by default widened to whole words
    if align_to_words:
        start_word, end_word = enc.token_to_word(s), enc.token_to_word(e)
        if start_word is not None and end_word is not None:
            return enc.word_to_chars(start_word, 1)[0], enc.word_to_chars(end_word, 1)[1]
    return enc.offsets[s][0], enc.offsets[e][1]


def _examples(args: tuple, question: Any, context: Any) -> list[tuple[str, str]]:
    """(question, context) pairs from the call forms transformers accepts, naming any bad item."""
    if args and (question is not None or context is not None):
        raise TypeError("pass either positional inputs or question=/context=, not both")
    if len(args) == 2 and all(isinstance(a, str) for a in args):
        items: list = [{"question": args[0], "context": args[1]}]
    elif len(args) == 1:
        items = [args[0]] if isinstance(args[0], dict) else args[0]
    elif args:
        items = list(args)
    elif question is not None and context is not None:
        if isinstance(question, str) and isinstance(context, str):
            items = [{"question": question, "context": context}]
        elif isinstance(question, list) and isinstance(context, str):
            items = [{"question": q, "context": context} for q in question]
        elif isinstance(question, list) and isinstance(context, list):
            if len(question) != len(context):
                raise ValueError(f"question has {len(question)} items but context has {len(context)}")
            items = [{"question": q, "context": c} for q, c in zip(question, context, strict=True)]
        else:
            raise TypeError("question/context must be str, or lists of str (a list of questions for one context)")
    else:
        raise TypeError("pass question= and context=, a {'question', 'context'} dict, or a list of such dicts")
    if isinstance(items, (str, bytes)) or not isinstance(items, Sequence):
        raise TypeError(
            f"inputs must be a {{'question', 'context'}} dict or a list of them, got {type(items).__name__}"
        )
    pairs = []
    for i, item in enumerate(items):
        if not isinstance(item, dict) or set(item) != {"question", "context"}:
            keys = sorted(item) if isinstance(item, dict) else type(item).__name__
            raise ValueError(f"inputs[{i}] must be {{'question': str, 'context': str}}, got {keys}")
        for key in ("question", "context"):
            if not isinstance(item[key], str) or not item[key]:
                raise ValueError(f"inputs[{i}][{key!r}] must be a non-empty str, got {item[key]!r}")
        pairs.append((item["question"], item["context"]))
    return pairs
