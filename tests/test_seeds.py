"""The seed notebooks' user flow on the REAL checkpoint, reproducing the numbers they print.

The expected values below are typed in on purpose: they are the outputs torch printed in the two
seed notebooks (../shared/seeds/000_690795f9247b60fc.txt and ../shared/seeds/001_cbf8f8a2c6d44cf1.txt),
not values produced by minibert. The checkpoint is only ever taken from the local HF cache (or from a
directory named by MINIBERT_SST2_DIR); without it every test here skips, since the hub cannot be reached.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from checkpoints import BACKENDS

SST2_REPO_IDS = (
    "distilbert/distilbert-base-uncased-finetuned-sst-2-english",
    "distilbert-base-uncased-finetuned-sst-2-english",
)
REQUIRED_FILES = ("config.json", "model.safetensors", "vocab.txt", "tokenizer_config.json")
SKIP_REASON = "real checkpoint not in the local HF cache; the hub cannot be reached here"

# Printed values are rounded (4 decimals for logits/hidden states): allow the half-step on top of 1e-4.
SCORE_ATOL = 1e-4
PRINTED_ATOL = 1e-4 + 5e-5

# --- notebook 000 ---------------------------------------------------------------------------------
NB000_TEXTS = ["I've been waiting for a HuggingFace course my whole life.", "I hate this so much!"]
NB000_PIPELINE = [{"label": "POSITIVE", "score": 0.9598050713539124},
                  {"label": "NEGATIVE", "score": 0.9994558691978455}]
NB000_IDS = [[101, 1045, 1005, 2310, 2042, 3403, 2005, 1037, 17662, 12172, 2607, 2026, 2878, 2166, 1012, 102],
             [101, 1045, 5223, 2023, 2061, 2172, 999, 102, 0, 0, 0, 0, 0, 0, 0, 0]]
NB000_MASK = [[1] * 16, [1] * 8 + [0] * 8]
NB000_PROBS = [[4.0195e-02, 9.5980e-01], [9.9946e-01, 5.4418e-04]]

# --- notebook 001 ---------------------------------------------------------------------------------
NB001_TEXTS = ["I'm a good person", "I think that image is NSFW", "Wow. I love it"]
NB001_PIPELINE = [{"label": "POSITIVE", "score": 0.9998700618743896},
                  {"label": "NEGATIVE", "score": 0.9950696229934692}]
NB001_IDS = [[101, 1045, 1005, 1049, 1037, 2204, 2711, 102, 0, 0],
             [101, 1045, 2228, 2008, 3746, 2003, 24978, 2546, 2860, 102],
             [101, 10166, 1012, 1045, 2293, 2009, 102, 0, 0, 0]]
NB001_MASK = [[1] * 8 + [0] * 2, [1] * 10, [1] * 7 + [0] * 3]
NB001_LOGITS = [[-4.2700, 4.6784], [2.8783, -2.4291], [-4.3149, 4.6853]]
NB001_PROBS = [[1.2992e-04, 9.9987e-01], [9.9507e-01, 4.9304e-03], [1.2337e-04, 9.9988e-01]]
# last_hidden_state[b, t] as printed: (first 3, last 3) features, real tokens only (padded rows are skipped).
NB001_HIDDEN = {
    (0, 0): ([0.7946, 0.1293, 0.0419], [0.6159, 0.9946, -0.3216]),
    (0, 1): ([0.9947, 0.1156, -0.0252], [0.5007, 1.1025, -0.2222]),
    (0, 2): ([1.3280, -0.0156, 0.3877], [0.5459, 0.9096, -0.6583]),
    (0, 7): ([1.2875, 0.0307, 0.6650], [0.6481, 0.6350, -0.7387]),
    (1, 0): ([-0.0835, 0.2276, -0.3575], [-0.1147, 0.1530, 0.2999]),
    (1, 1): ([-0.2791, 0.3077, -0.4815], [-0.0912, 0.0457, 0.1611]),
    (1, 2): ([-0.1804, 0.4280, -0.3141], [-0.2418, -0.0639, 0.2643]),
    (1, 7): ([-0.0749, 0.4424, -0.1150], [-0.4032, -0.3183, 0.3057]),
    (1, 8): ([-0.1020, 0.2020, -0.3881], [-0.0353, -0.2167, 0.0915]),
    (1, 9): ([0.3149, 0.3561, -0.2138], [-0.2912, -0.3920, -0.1619]),
    (2, 0): ([0.5813, 0.2317, 0.0877], [0.3930, 0.9671, -0.5827]),
}
ID2LABEL = {0: "NEGATIVE", 1: "POSITIVE"}


def find_sst2() -> tuple[str | None, Path] | None:
    """(hub id or None, local dir) of the real checkpoint, without touching the network."""
    local = os.environ.get("MINIBERT_SST2_DIR")
    if local:
        return None, Path(local)
    from huggingface_hub import try_to_load_from_cache

    for repo_id in SST2_REPO_IDS:
        paths = [try_to_load_from_cache(repo_id, name) for name in REQUIRED_FILES]
        if all(isinstance(p, str) for p in paths) and len({Path(p).parent for p in paths}) == 1:
            return repo_id, Path(paths[0]).parent
    return None


@pytest.fixture(scope="module")
def sst2():
    found = find_sst2()
    if found is None:
        from huggingface_hub import constants

        pytest.skip(f"{SKIP_REASON} (looked for {', '.join(REQUIRED_FILES)} of {' / '.join(SST2_REPO_IDS)} "
                    f"in {constants.HF_HUB_CACHE}; or set MINIBERT_SST2_DIR to a local copy)")
    return found


@pytest.fixture(scope="module")
def sst2_dir(sst2) -> str:
    return str(sst2[1])


def assert_pipeline_output(got, want):
    assert isinstance(got, list) and len(got) == len(want), got
    for g, w in zip(got, want, strict=True):
        assert set(g) == {"label", "score"}, g
        assert g["label"] == w["label"], (g, w)
        assert abs(g["score"] - w["score"]) <= SCORE_ATOL, (g, w)


@pytest.mark.parametrize(("texts", "want"), [(NB000_TEXTS, NB000_PIPELINE), (NB001_TEXTS[:2], NB001_PIPELINE)],
                         ids=["notebook000", "notebook001"])
def test_pipeline(sst2_dir, texts, want):
    import minibert

    assert_pipeline_output(minibert.pipeline("sentiment-analysis", model=sst2_dir)(texts), want)


@pytest.mark.parametrize(("texts", "ids", "mask"), [(NB000_TEXTS, NB000_IDS, NB000_MASK),
                                                     (NB001_TEXTS, NB001_IDS, NB001_MASK)],
                         ids=["notebook000", "notebook001"])
def test_tokenizer(sst2_dir, texts, ids, mask):
    import minibert

    tokens = minibert.AutoTokenizer.from_pretrained(sst2_dir)(texts, padding=True, truncation=True,
                                                              return_tensors="np")
    np.testing.assert_array_equal(tokens["input_ids"], np.array(ids, dtype=np.int64))
    np.testing.assert_array_equal(tokens["attention_mask"], np.array(mask, dtype=np.int64))


@pytest.mark.parametrize("backend", BACKENDS)
def test_notebook000_step_by_step(sst2_dir, backend):
    import minibert

    tokens = minibert.AutoTokenizer.from_pretrained(sst2_dir)(NB000_TEXTS, padding=True, truncation=True,
                                                              return_tensors="np")
    hidden = minibert.AutoModel.from_pretrained(sst2_dir, backend=backend)(**tokens).last_hidden_state
    assert hidden.shape == (2, 16, 768)
    model = minibert.AutoModelForSequenceClassification.from_pretrained(sst2_dir, backend=backend)
    logits = model(**tokens).logits
    assert logits.shape == (2, 2)
    np.testing.assert_allclose(minibert.softmax(logits, axis=-1), NB000_PROBS, rtol=0, atol=SCORE_ATOL)
    assert model.config.id2label == ID2LABEL


@pytest.mark.parametrize("backend", BACKENDS)
def test_notebook001_step_by_step(sst2_dir, backend):
    import minibert

    tokens = minibert.AutoTokenizer.from_pretrained(sst2_dir)(NB001_TEXTS, padding=True, truncation=True,
                                                              return_tensors="np")
    hidden = minibert.AutoModel.from_pretrained(sst2_dir, backend=backend)(**tokens).last_hidden_state
    assert hidden.shape == (3, 10, 768)
    for (b, t), (head, tail) in NB001_HIDDEN.items():
        np.testing.assert_allclose(hidden[b, t, :3], head, rtol=0, atol=PRINTED_ATOL, err_msg=f"[{b}, {t}]")
        np.testing.assert_allclose(hidden[b, t, -3:], tail, rtol=0, atol=PRINTED_ATOL, err_msg=f"[{b}, {t}]")

    model = minibert.AutoModelForSequenceClassification.from_pretrained(sst2_dir, backend=backend)
    logits = model(**tokens).logits
    np.testing.assert_allclose(logits, NB001_LOGITS, rtol=0, atol=PRINTED_ATOL)
    probs = minibert.softmax(logits, axis=1)
    np.testing.assert_allclose(probs, NB001_PROBS, rtol=0, atol=SCORE_ATOL)
    predicted = probs.argmax(axis=1)
    assert predicted.tolist() == [1, 0, 1]
    assert model.config.id2label == ID2LABEL
    assert [model.config.id2label[int(i)] for i in predicted] == ["POSITIVE", "NEGATIVE", "POSITIVE"]


def test_hub_id_user_flow(sst2):
    """The notebooks' exact calls: a hub id (resolved from the cache, offline) and pipeline() with no model."""
    import minibert

    repo_id, _ = sst2
    if repo_id is None:
        pytest.skip("MINIBERT_SST2_DIR gives a directory, not a cached hub id")
    tokens = minibert.AutoTokenizer.from_pretrained(repo_id)(NB001_TEXTS, padding=True, truncation=True,
                                                             return_tensors="np")
    np.testing.assert_array_equal(tokens["input_ids"], NB001_IDS)
    logits = minibert.AutoModelForSequenceClassification.from_pretrained(repo_id)(**tokens).logits
    np.testing.assert_allclose(logits, NB001_LOGITS, rtol=0, atol=PRINTED_ATOL)
    assert_pipeline_output(minibert.pipeline("sentiment-analysis")(NB000_TEXTS), NB000_PIPELINE)
