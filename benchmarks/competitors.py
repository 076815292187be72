"""Every engine as a function (input_ids, attention_mask) int64 [B, T] -> float32 output.

Two kinds of output: "logits" [B, labels] (sequence classification) and "encoder" [B, T, C]
(last_hidden_state, every token). All engines load the same checkpoint; ONNX Runtime and OpenVINO
run the same ONNX export of it (artifacts.py).

The sentence-embeddings workload (texts -> pooled vectors, on the real all-MiniLM-L6-v2) has its
engines and its float64 check in embeddings.py.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .inputs import Shape

ALL_COMPETITORS = ["minibert-numba", "minibert-numpy", "torch-eager", "torch-sdpa", "onnxruntime", "openvino"]
BASELINE = "minibert-numba"  # ratio denominator (else the first competitor)
KINDS = ("logits", "encoder")
THREADS = os.cpu_count() or 1  # intra-op threads given to torch, ONNX Runtime and OpenVINO

# ONNX Runtime and OpenVINO as a user who wants their fastest float32 CPU inference sets them up.
ORT_SETTINGS = f"CPUExecutionProvider, graph_optimization_level ORT_ENABLE_ALL, intra_op_num_threads {THREADS}"
OPENVINO_CONFIG = {"INFERENCE_PRECISION_HINT": "f32", "PERFORMANCE_HINT": "LATENCY"}


@dataclass
class Competitor:
    name: str
    fn: Callable[[np.ndarray, np.ndarray], np.ndarray]
    max_tokens: int | None = None  # only shapes with at most this many tokens (batch × seq)

    def runs(self, shape: Shape) -> bool:
        return self.max_tokens is None or shape.tokens <= self.max_tokens


def ort_session(path: Path):
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    opts.intra_op_num_threads = THREADS
    return ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])


def openvino_model(path: Path) -> Callable[[np.ndarray, np.ndarray], np.ndarray]:
    """The ONNX file compiled by OpenVINO for the CPU in float32 (its default on bf16-capable CPUs is bf16)."""
    import openvino as ov

    compiled = ov.Core().compile_model(str(path), "CPU", OPENVINO_CONFIG)
    request = compiled.create_infer_request()
    output = compiled.output(0)

    def run(ids: np.ndarray, mask: np.ndarray) -> np.ndarray:
        result = request.infer({"input_ids": ids, "attention_mask": mask})
        return np.array(result[output])  # a copy: the request reuses its output buffer

    return run


def load(name: str, kind: str, ckpt: Path, onnx: dict[str, Path], numpy_max_tokens: int) -> Competitor:
    """Competitor `name` producing `kind` ("logits" or "encoder") outputs."""
    if name.startswith("minibert-"):
        import minibert

        backend = name.removeprefix("minibert-")
        if kind == "logits":
            model = minibert.AutoModelForSequenceClassification.from_pretrained(ckpt, backend=backend)
            fn = lambda i, m: model(i, m).logits  # noqa: E731
        else:
            model = minibert.AutoModel.from_pretrained(ckpt, backend=backend)
            fn = lambda i, m: model(i, m).last_hidden_state  # noqa: E731
        return Competitor(name, fn, numpy_max_tokens if backend == "numpy" else None)
    if name.startswith("torch-"):
        import torch
        import transformers

        torch.set_num_threads(THREADS)
        attn = name.removeprefix("torch-")
        auto = transformers.AutoModelForSequenceClassification if kind == "logits" else transformers.AutoModel
        model = auto.from_pretrained(ckpt, attn_implementation=attn).eval()
        assert model.config._attn_implementation == attn, model.config._attn_implementation

        def run(i, m):
            with torch.inference_mode():
                out = model(input_ids=torch.from_numpy(i), attention_mask=torch.from_numpy(m))
                return (out.logits if kind == "logits" else out.last_hidden_state).numpy()

        return Competitor(name, run)
    if name == "onnxruntime":
        session = ort_session(onnx[kind])
        output = session.get_outputs()[0].name
        return Competitor(name, lambda i, m: session.run([output], {"input_ids": i, "attention_mask": m})[0])
    if name == "openvino":
        return Competitor(name, openvino_model(onnx[kind]))
    raise ValueError(f"unknown competitor {name!r}; choose from {ALL_COMPETITORS}")


def load_all(names: list[str], kind: str, ckpt: Path, onnx: dict[str, Path], numpy_max_tokens: int
             ) -> list[Competitor]:
    return [load(n, kind, ckpt, onnx, numpy_max_tokens) for n in names]
