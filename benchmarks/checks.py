"""Correctness before timing: every competitor's output vs a float64 reference, on the float32 error model.

The truth is transformers in float64 (eager attention, `model.double()`). A competitor passes when
its max error against that truth is at most FP32_RATIO x torch-float32's own error (for logits,
pooled over the run's shapes and a fixed pool of texts: see check_all) plus a few float32 ulps of
the largest value (tests/error_model.py, the model every numeric test uses): no fixed tolerance
that a different CPU or BLAS could break. Encoder outputs are compared at real tokens only (what a
padded position holds is unspecified).
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .competitors import Competitor
from .inputs import Shape, make_inputs

ERROR_MODEL_FILE = Path(__file__).resolve().parent.parent / "tests" / "error_model.py"


def _error_model():
    spec = importlib.util.spec_from_file_location("minibert_error_model", ERROR_MODEL_FILE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


error_model = _error_model()


# The fixed pool for logits bounds: mixed lengths up to POOL_TOKENS, drawn from their own seed.
POOL_TEXTS, POOL_TOKENS, POOL_SEED = 32, 64, 1234


@dataclass
class Check:
    error: float  # max |output - float64 truth|
    torch_error: float  # torch-eager float32's, on the same input
    bound: float  # FP32_RATIO * torch_error (for logits: pooled, see check_all) + floor

    @property
    def ok(self) -> bool:
        return self.error <= self.bound


class Reference:
    """transformers eager attention, in float32 (the error scale) and float64 (the truth)."""

    def __init__(self, ckpt: Path, kind: str):
        import torch
        import transformers

        auto = transformers.AutoModelForSequenceClassification if kind == "logits" else transformers.AutoModel
        self.kind = kind
        self.fp32 = auto.from_pretrained(ckpt, attn_implementation="eager", dtype=torch.float32).eval()
        self.fp64 = auto.from_pretrained(ckpt, attn_implementation="eager", dtype=torch.float32).double().eval()

    def __call__(self, ids: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        import torch

        out = []
        for model in (self.fp32, self.fp64):
            with torch.inference_mode():
                res = model(input_ids=torch.from_numpy(ids), attention_mask=torch.from_numpy(mask))
            out.append((res.logits if self.kind == "logits" else res.last_hidden_state).numpy())
        return out[0], out[1]


def check_all(competitors: list[Competitor], reference: Reference, shapes: list[Shape],
              inputs: dict[str, tuple[np.ndarray, np.ndarray]]) -> dict[str, dict[str, Check]]:
    """{shape: {competitor: Check}} for every competitor that runs on each shape.

    Logits are a few numbers per shape (2 for one text): too few for torch's max error on them to estimate its
    error level, so, as tests/error_model.py's `pool=` does, their bound uses the larger of that shape's torch
    error and torch's error pooled over every shape of the run and a fixed pool of POOL_TEXTS more texts (so
    that a run of one short shape is judged as a run of many is). Encoder outputs (thousands of numbers a
    shape) use their own shape's."""
    where = {s.label: inputs[s.label][1] if reference.kind == "encoder" else None for s in shapes}
    refs = {s.label: reference(*inputs[s.label]) for s in shapes}
    torch_errors = {label: error_model.max_abs_error(t32, truth, where[label]) for label, (t32, truth) in refs.items()}
    pooled = 0.0
    if reference.kind == "logits":
        vocab = reference.fp32.config.vocab_size
        pool = reference(*make_inputs(POOL_TEXTS, POOL_TOKENS, True, np.random.default_rng(POOL_SEED), vocab))
        pooled = max([*torch_errors.values(), error_model.max_abs_error(*pool)])
    out: dict[str, dict[str, Check]] = {}
    for shape in shapes:
        truth = refs[shape.label][1]
        torch_error = torch_errors[shape.label]
        bound = error_model.bound_for(max(torch_error, pooled), truth)
        out[shape.label] = {}
        for c in competitors:
            if c.runs(shape):
                got = np.asarray(c.fn(*inputs[shape.label]))
                if got.shape != truth.shape:
                    raise ValueError(f"{c.name} on {shape.label}: output shape {got.shape}, expected {truth.shape}")
                error = error_model.max_abs_error(got, truth, where[shape.label])
                out[shape.label][c.name] = Check(error, torch_error, bound)
    return out
