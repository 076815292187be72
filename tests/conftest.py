"""Shared fixtures: local checkpoints (built once per session), torch references (float32, and float64 as the
truth of the float32 error model in error_model.py), and an error record printed as a table at the end.

No test may need the network (the HF hub cannot be reached here or in CI), so the hub is switched
to offline mode before anything imports huggingface_hub.
"""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from collections.abc import Callable  # noqa: E402
from functools import cache  # noqa: E402

import numpy as np  # noqa: E402
import pytest  # noqa: E402
from checkpoints import BASE, SMALL, make_minilm_distilbert, make_random_distilbert, scale_head  # noqa: E402

CHECKPOINTS = ["base_ckpt", "small_ckpt", "small_sinusoidal_ckpt", "minilm_ckpt", "single_label_ckpt"]


# --- checkpoints -------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def base_ckpt(tmp_path_factory):
    """768/12/6/3072 like distilbert-base (random weights, ~265 MB), labels NEGATIVE/POSITIVE."""
    return make_random_distilbert(tmp_path_factory.mktemp("base"), seed=0, **BASE)


@pytest.fixture(scope="session")
def base_loud_ckpt(base_ckpt, tmp_path_factory, torch_ref):
    """base_ckpt with its classifier scaled so that its largest logit on the parity texts is 10 (as fine-tuned
    models' often are), the factor taken from transformers' own logits on those texts."""
    from test_parity import MIXED

    import minibert

    enc = minibert.AutoTokenizer.from_pretrained(base_ckpt)(MIXED, padding=True, return_tensors="np")
    logits = torch_ref(base_ckpt, True, enc["input_ids"], enc["attention_mask"], dtype="float64")
    return scale_head(base_ckpt, tmp_path_factory.mktemp("base_loud"), factor=10.0 / np.abs(logits).max())


@pytest.fixture(scope="session")
def small_ckpt(tmp_path_factory):
    """64/4/2/256, three custom labels."""
    return make_random_distilbert(tmp_path_factory.mktemp("small"), seed=1, **SMALL)


@pytest.fixture(scope="session")
def small_sinusoidal_ckpt(tmp_path_factory):
    """Sinusoidal position embeddings, 4 (default-named) labels."""
    return make_random_distilbert(
        tmp_path_factory.mktemp("small_sinusoidal"),
        dim=48, n_heads=3, n_layers=2, hidden_dim=96, num_labels=4, sinusoidal_pos_embds=True, seed=2,
    )


@pytest.fixture(scope="session")
def single_label_ckpt(tmp_path_factory):
    """num_labels=1: the pipeline's default function is sigmoid."""
    return make_random_distilbert(
        tmp_path_factory.mktemp("single_label"), dim=32, n_heads=2, n_layers=2, hidden_dim=128, num_labels=1,
        seed=3, id2label={0: "SCORE"},
    )


@pytest.fixture(scope="session")
def minilm_ckpt(tmp_path_factory):
    """Trained all-MiniLM-L6-v2 encoder mapped onto DistilBERT; random 2-label head."""
    return make_minilm_distilbert(tmp_path_factory.mktemp("minilm"), num_labels=2, seed=4)


@pytest.fixture(params=CHECKPOINTS)
def any_ckpt(request):
    """(name, dir) for every checkpoint above."""
    return request.param, request.getfixturevalue(request.param)


# --- references and models under test (cached: loading base twice per test would dominate) -----


@cache
def _torch_model(ckpt_dir: str, head: bool, dtype: str = "float32"):
    import torch
    import transformers

    auto = transformers.AutoModelForSequenceClassification if head else transformers.AutoModel
    model = auto.from_pretrained(ckpt_dir, attn_implementation="eager", dtype=torch.float32)
    assert model.config._attn_implementation == "eager"
    return (model.double() if dtype == "float64" else model).eval()


@pytest.fixture(scope="session")
def torch_ref() -> Callable:
    """torch_ref(ckpt_dir, head, input_ids, attention_mask, dtype="float32") -> ndarray from transformers, eager,
    eval mode, no grad: logits when head=True, last_hidden_state otherwise. dtype="float64" runs `model.double()`:
    the float32 error model's truth."""
    import torch

    def run(ckpt_dir, head: bool, input_ids, attention_mask, dtype: str = "float32"):
        model = _torch_model(str(ckpt_dir), head, dtype)
        with torch.no_grad():
            out = model(input_ids=torch.as_tensor(input_ids), attention_mask=torch.as_tensor(attention_mask))
        return (out.logits if head else out.last_hidden_state).numpy()

    return run


@cache
def _hf_tokenizer(ckpt_dir: str):
    import transformers

    return transformers.AutoTokenizer.from_pretrained(ckpt_dir)


@pytest.fixture(scope="session")
def hf_tokenizer() -> Callable:
    return lambda ckpt_dir: _hf_tokenizer(str(ckpt_dir))


@cache
def _minibert(ckpt_dir: str, backend: str, head: bool, dtype: str = "float32"):
    import minibert

    auto = minibert.AutoModelForSequenceClassification if head else minibert.AutoModel
    return auto.from_pretrained(ckpt_dir, backend=backend, dtype=dtype)


@pytest.fixture(scope="session")
def mb_model() -> Callable:
    """mb_model(ckpt_dir, backend, head, dtype="float32") -> the minibert model (cached per session)."""
    return lambda ckpt_dir, backend, head, dtype="float32": _minibert(str(ckpt_dir), backend, head, dtype)


@cache
def _mb_tokenizer(ckpt_dir: str):
    import minibert

    return minibert.AutoTokenizer.from_pretrained(ckpt_dir)


@pytest.fixture(scope="session")
def mb_tokenizer() -> Callable:
    return lambda ckpt_dir: _mb_tokenizer(str(ckpt_dir))


# --- error records, printed at the end of every run ----------------------------------------------

_DELTAS: dict[tuple[str, str, str, str], float] = {}
_ERRORS: dict[tuple[str, str, str, str], tuple[float, float]] = {}


@pytest.fixture(scope="session")
def record_error() -> Callable:
    """record_error(checkpoint, shape, backend, quantity, error, torch_error): minibert's and torch's float32 max
    error against the float64 reference, kept for the end-of-run table with their ratio."""

    def record(ckpt: str, shape: str, backend: str, quantity: str, error: float, torch_error: float) -> None:
        _ERRORS[(ckpt, shape, backend, quantity)] = (float(error), float(torch_error))

    return record


@pytest.fixture(scope="session")
def record_delta() -> Callable:
    """record_delta(checkpoint, shape, backend, quantity, value): kept for the end-of-run table."""

    def record(ckpt: str, shape: str, backend: str, quantity: str, value: float) -> None:
        _DELTAS[(ckpt, shape, backend, quantity)] = float(value)
        print(f"max|Δ| {quantity:<17} {ckpt:<22} {shape:<22} {backend:<6} {value:.3e}")

    return record


def pytest_terminal_summary(terminalreporter):
    tr = terminalreporter
    if _ERRORS:
        tr.section("float32 error vs float64 (torch model.double()): minibert and torch, and their ratio")
        tr.write_line("| checkpoint | shape | backend | quantity | minibert | torch | minibert / torch |")
        tr.write_line("|---|---|---|---|---|---|---|")
        for key in sorted(_ERRORS):
            err, torch_err = _ERRORS[key]
            ratio = f"{err / torch_err:.2f}" if torch_err > 0 else ("0" if err == 0 else "inf")
            tr.write_line(f"| {' | '.join(key)} | {err:.2e} | {torch_err:.2e} | {ratio} |")
        ratios = [e / t for e, t in _ERRORS.values() if t > 0]
        if ratios:
            tr.write_line(f"worst ratio {max(ratios):.2f}, median {sorted(ratios)[len(ratios) // 2]:.2f} "
                          f"over {len(ratios)} comparisons")
    if not _DELTAS:
        return
    quantities = sorted({k[3] for k in _DELTAS})
    tr.section("max|Δ| minibert vs torch (eager, fp32)")
    tr.write_line("| checkpoint | shape | backend | " + " | ".join(quantities) + " |")
    tr.write_line("|---|---|---|" + "---|" * len(quantities))
    rows = sorted({k[:3] for k in _DELTAS})
    for row in rows:
        cells = [_DELTAS.get((*row, q)) for q in quantities]
        tr.write_line(
            f"| {' | '.join(row)} | " + " | ".join("" if c is None else f"{c:.2e}" for c in cells) + " |"
        )
