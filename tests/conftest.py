"""Shared fixtures: local checkpoints (built once per session), torch references, a max|Δ| record.

No test may need the network (the HF hub cannot be reached here or in CI), so the hub is switched
to offline mode before anything imports huggingface_hub.
"""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from collections.abc import Callable  # noqa: E402
from functools import cache  # noqa: E402

import pytest  # noqa: E402
from checkpoints import BASE, SMALL, make_minilm_distilbert, make_random_distilbert  # noqa: E402

CHECKPOINTS = ["base_ckpt", "small_ckpt", "small_sinusoidal_ckpt", "minilm_ckpt", "single_label_ckpt"]


# --- checkpoints -------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def base_ckpt(tmp_path_factory):
    """768/12/6/3072 like distilbert-base (random weights, ~265 MB), labels NEGATIVE/POSITIVE."""
    return make_random_distilbert(tmp_path_factory.mktemp("base"), seed=0, **BASE)


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
def _torch_model(ckpt_dir: str, head: bool):
    import torch
    import transformers

    auto = transformers.AutoModelForSequenceClassification if head else transformers.AutoModel
    model = auto.from_pretrained(ckpt_dir, attn_implementation="eager", dtype=torch.float32)
    assert model.config._attn_implementation == "eager"
    return model.eval()


@pytest.fixture(scope="session")
def torch_ref() -> Callable:
    """torch_ref(ckpt_dir, head, input_ids, attention_mask) -> float32 ndarray from transformers, eager fp32,
    eval mode, no grad: logits when head=True, last_hidden_state otherwise."""
    import torch

    def run(ckpt_dir, head: bool, input_ids, attention_mask):
        model = _torch_model(str(ckpt_dir), head)
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
def _minibert(ckpt_dir: str, backend: str, head: bool):
    import minibert

    auto = minibert.AutoModelForSequenceClassification if head else minibert.AutoModel
    return auto.from_pretrained(ckpt_dir, backend=backend)


@pytest.fixture(scope="session")
def mb_model() -> Callable:
    """mb_model(ckpt_dir, backend, head) -> the minibert model (cached per session)."""
    return lambda ckpt_dir, backend, head: _minibert(str(ckpt_dir), backend, head)


@cache
def _mb_tokenizer(ckpt_dir: str):
    import minibert

    return minibert.AutoTokenizer.from_pretrained(ckpt_dir)


@pytest.fixture(scope="session")
def mb_tokenizer() -> Callable:
    return lambda ckpt_dir: _mb_tokenizer(str(ckpt_dir))


# --- max|Δ| record, printed at the end of every run ---------------------------------------------

_DELTAS: dict[tuple[str, str, str, str], float] = {}


@pytest.fixture(scope="session")
def record_delta() -> Callable:
    """record_delta(checkpoint, shape, backend, quantity, value): kept for the end-of-run table."""

    def record(ckpt: str, shape: str, backend: str, quantity: str, value: float) -> None:
        _DELTAS[(ckpt, shape, backend, quantity)] = float(value)
        print(f"max|Δ| {quantity:<17} {ckpt:<22} {shape:<22} {backend:<6} {value:.3e}")

    return record


def pytest_terminal_summary(terminalreporter):
    if not _DELTAS:
        return
    quantities = sorted({k[3] for k in _DELTAS})
    tr = terminalreporter
    tr.section("max|Δ| minibert vs torch (eager, fp32)")
    tr.write_line("| checkpoint | shape | backend | " + " | ".join(quantities) + " |")
    tr.write_line("|---|---|---|" + "---|" * len(quantities))
    rows = sorted({k[:3] for k in _DELTAS})
    for row in rows:
        cells = [_DELTAS.get((*row, q)) for q in quantities]
        tr.write_line(
            f"| {' | '.join(row)} | " + " | ".join("" if c is None else f"{c:.2e}" for c in cells) + " |"
        )
