"""End-to-end text workloads, tokenization and post-processing included.

- the 64 sentences of inputs.py, minibert's pipeline vs transformers' (batch_size 8);
- the mixed corpus of corpus.py (batch_size 32): minibert's pipeline; ONNX Runtime fed batches in
  input order (what a user writes); ONNX Runtime fed length-sorted batches (what minibert's pipeline
  does, so the comparison is engine against engine); transformers' pipeline.

Every runner returns, per text, {label: score} for all labels, so that the outputs are checked to
agree before anything is timed.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from .competitors import ort_session

Scores = list[dict[str, float]]  # per text: {label: score}


def _softmax_rows(logits: np.ndarray, id2label: dict[int, str]) -> Scores:
    e = np.exp(logits - logits.max(axis=-1, keepdims=True))
    p = e / e.sum(axis=-1, keepdims=True)
    return [{id2label[j]: float(row[j]) for j in range(len(row))} for row in p]


def _pipeline_scores(results: list[list[dict]]) -> Scores:
    return [{d["label"]: d["score"] for d in row} for row in results]


def pipelines(ckpt: Path, batch_size: int) -> dict[str, Callable[[list[str]], Scores]]:
    """minibert's and transformers' sentiment-analysis pipelines on the checkpoint."""
    import transformers

    import minibert

    transformers.logging.set_verbosity_error()
    mb = minibert.pipeline("sentiment-analysis", model=ckpt, backend="numba", batch_size=batch_size)
    hf = transformers.pipeline("sentiment-analysis", model=str(ckpt), device="cpu", batch_size=batch_size)
    return {
        "minibert pipeline": lambda texts: _pipeline_scores(mb(texts, top_k=None)),
        "transformers pipeline": lambda texts: _pipeline_scores(hf(texts, top_k=None)),
    }


def ort_runners(ckpt: Path, onnx_logits: Path, batch_size: int) -> dict[str, Callable[[list[str]], Scores]]:
    """ONNX Runtime behind transformers' fast tokenizer, in input order and length-sorted."""
    import transformers

    tok = transformers.AutoTokenizer.from_pretrained(ckpt)
    session = ort_session(onnx_logits)
    id2label = transformers.AutoConfig.from_pretrained(ckpt).id2label

    def run(ids: np.ndarray, mask: np.ndarray) -> np.ndarray:
        return session.run(["logits"], {"input_ids": ids, "attention_mask": mask})[0]

    def input_order(texts: list[str]) -> Scores:
        out: Scores = []
        for i in range(0, len(texts), batch_size):
            enc = tok(texts[i:i + batch_size], padding=True, truncation=True, return_tensors="np")
            out += _softmax_rows(run(enc["input_ids"], enc["attention_mask"]), id2label)
        return out

    def length_sorted(texts: list[str]) -> Scores:
        ids = tok(texts, truncation=True)["input_ids"]  # tokenized once, unpadded
        order = sorted(range(len(texts)), key=lambda i: len(ids[i]))
        out: Scores = [{}] * len(texts)
        for start in range(0, len(order), batch_size):
            chunk = order[start:start + batch_size]
            width = max(len(ids[i]) for i in chunk)
            batch = np.zeros((len(chunk), width), dtype=np.int64)  # [PAD] = 0
            mask = np.zeros_like(batch)
            for row, i in enumerate(chunk):
                batch[row, :len(ids[i])] = ids[i]
                mask[row, :len(ids[i])] = 1
            for i, scores in zip(chunk, _softmax_rows(run(batch, mask), id2label), strict=True):
                out[i] = scores
        return out

    return {"onnxruntime, input order": input_order, "onnxruntime, length-sorted": length_sorted}


def agreement(outputs: dict[str, Scores], reference: str) -> dict[str, tuple[float, int]]:
    """{runner: (max |score - reference's|, number of texts whose top label differs where the reference's top two
    scores are not tied)} for every runner but the reference."""
    ref = outputs[reference]
    out = {}
    for name, scores in outputs.items():
        if name == reference:
            continue
        if len(scores) != len(ref):
            raise ValueError(f"{name} returned {len(scores)} results for {len(ref)} texts")
        delta = max(abs(a[k] - b[k]) for a, b in zip(scores, ref, strict=True) for k in b)
        flips = 0
        for a, b in zip(scores, ref, strict=True):
            top = sorted(b.values(), reverse=True)
            if max(a, key=a.get) != max(b, key=b.get) and top[0] - top[1] > 1e-5:
                flips += 1
        out[name] = (delta, flips)
    return out


def time_workload(runners: dict[str, Callable[[list[str]], Scores]], texts: list[str], repeats: int | dict[str, int],
                  gap_s: float, warmup_texts: int = 64) -> tuple[dict[str, list[float]], dict[str, Scores]]:
    """({runner: [seconds per pass over all texts]}, {runner: its outputs of the first pass}): each runner is
    warmed up on the first `warmup_texts` texts, then rotated rounds; `repeats` passes per runner, or {runner:
    passes} (round r runs the runners with more than r passes), so that the close contenders get several passes
    while a runner whose pass takes minutes gets one. The outputs are kept so that they can be checked without
    another pass (a pass over the full corpus takes minutes on the base model)."""
    names = list(runners)
    passes = repeats if isinstance(repeats, dict) else dict.fromkeys(names, repeats)
    if set(passes) != set(names) or min(passes.values()) < 1:
        raise ValueError(f"repeats: at least 1 pass for each of {names}, got {passes}")
    for run in runners.values() if warmup_texts else ():
        run(texts[:warmup_texts])
    samples: dict[str, list[float]] = {n: [] for n in names}
    outputs: dict[str, Scores] = {}
    for r in range(max(passes.values())):
        k = r % len(names)
        for name in names[k:] + names[:k]:
            if passes[name] <= r:
                continue
            time.sleep(gap_s)
            t0 = time.perf_counter()
            out = runners[name](texts)
            samples[name].append(time.perf_counter() - t0)
            outputs.setdefault(name, out)
    return samples, outputs


def median(xs: list[float]) -> float:
    return statistics.median(xs)
