"""Every head (and the base model) of DistilBERT and BERT vs transformers, at two sizes, both backends.

Float32 results are held to the float32 error model (error_model.py): minibert's max error against
transformers' `model.double()` at most 2x torch-fp32's, plus a floor of a few ulps. Per-token outputs
(hidden states, MLM / token / span logits) are compared on real tokens only. The float64 mode must
agree with `model.double()` to 1e-10. BERT runs on text pairs with token_type_ids, so token-type
embeddings are exercised; DistilBERT ignores them (its transformers forward does not take them).
"""

from __future__ import annotations

import numpy as np
import pytest
from checkpoints import BACKENDS
from checkpoints_heads import HEADS, SIZES, make_head_checkpoint, torch_outputs
from error_model import check_fp32, max_abs_error

import minibert

FLOAT64_ATOL = 1e-10
TEXTS = [
    "Ada Lovelace wrote the first program in London.",
    "Hi!",
    "naïve café owners in Zürich serve crème brûlée for 12.50 CHF!!!",
    "The [MASK] sat on the mat, and nobody minded.",
]
PAIRS = ["Who wrote it?", "hello", "Where is the café?", "What sat on the mat?"]
CASES = [(arch, size, head) for arch in SIZES for size in SIZES[arch] for head in HEADS]
EXPECTED_CLASS = {
    "base": "Model", "sequence_classification": "ForSequenceClassification", "masked_lm": "ForMaskedLM",
    "token_classification": "ForTokenClassification", "question_answering": "ForQuestionAnswering",
}
AUTO = {
    "base": minibert.AutoModel,
    "sequence_classification": minibert.AutoModelForSequenceClassification,
    "masked_lm": minibert.AutoModelForMaskedLM,
    "token_classification": minibert.AutoModelForTokenClassification,
    "question_answering": minibert.AutoModelForQuestionAnswering,
}


@pytest.fixture(scope="module")
def ckpts(tmp_path_factory):
    """{(arch, size, head): directory}, built on first use."""
    built = {}

    def get(arch, size, head):
        if (arch, size, head) not in built:
            seed = 10 * list(SIZES).index(arch) + 3 * list(SIZES[arch]).index(size) + HEADS.index(head)
            out = tmp_path_factory.mktemp(f"{arch}_{size}_{head}")
            built[arch, size, head] = make_head_checkpoint(out, arch, size, head, seed=seed)
        return built[arch, size, head]

    return get


def inputs_for(arch, ckpt):
    tok = minibert.AutoTokenizer.from_pretrained(ckpt)
    if arch == "bert":
        return dict(tok(TEXTS, PAIRS, padding=True, truncation=True, return_token_type_ids=True, return_tensors="np"))
    return dict(tok(TEXTS, padding=True, truncation=True, return_tensors="np"))


def fields_of(out) -> dict[str, np.ndarray]:
    names = ("last_hidden_state", "pooler_output", "logits", "start_logits", "end_logits")
    return {f: getattr(out, f) for f in names if getattr(out, f, None) is not None}


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("arch, size, head", CASES)
def test_head_matches_transformers(ckpts, arch, size, head, backend, record_error):
    ckpt = ckpts(arch, size, head)
    model = AUTO[head].from_pretrained(ckpt, backend=backend)
    prefix = "DistilBert" if arch == "distilbert" else "Bert"
    assert type(model).__name__ == prefix + EXPECTED_CLASS[head]
    inputs = inputs_for(arch, ckpt)
    got = fields_of(model(**inputs))
    want32 = torch_outputs(ckpt, head, inputs)
    want64 = torch_outputs(ckpt, head, inputs, dtype="float64")
    assert set(got) == set(want32), f"fields {sorted(got)} vs transformers' {sorted(want32)}"
    for field, value in got.items():
        assert value.dtype == np.float32 and value.shape == want32[field].shape, field
        assert np.isfinite(value).all(), field
        per_token = value.ndim >= 2 and value.shape[:2] == inputs["input_ids"].shape
        mask = inputs["attention_mask"] if per_token else None
        err, torch_err, _ = check_fp32(value, want32[field], want64[field], mask=mask)
        record_error(f"{arch}-{size}", head, backend, field, err, torch_err)


@pytest.mark.parametrize("arch, size, head", [c for c in CASES if c[1] == "small"])
def test_float64_mode_matches_double(ckpts, arch, size, head):
    ckpt = ckpts(arch, size, head)
    model = AUTO[head].from_pretrained(ckpt, backend="numpy", dtype="float64")
    inputs = inputs_for(arch, ckpt)
    got = fields_of(model(**inputs))
    want = torch_outputs(ckpt, head, inputs, dtype="float64")
    for field, value in got.items():
        assert value.dtype == np.float64, field
        per_token = value.ndim >= 2 and value.shape[:2] == inputs["input_ids"].shape
        assert max_abs_error(value, want[field], inputs["attention_mask"] if per_token else None) <= FLOAT64_ATOL


def test_tied_and_untied_masked_lm(ckpts):
    """DistilBERT small ties vocab_projector to the word embeddings (not stored); BERT tiny stores its own decoder."""
    tied = minibert.AutoModelForMaskedLM.from_pretrained(ckpts("distilbert", "small", "masked_lm"))
    assert tied.params["vocab_projector"]["weight"] is tied.distilbert.params["embeddings"]["word_embeddings"]["weight"]
    untied = minibert.AutoModelForMaskedLM.from_pretrained(ckpts("bert", "tiny", "masked_lm"))
    assert untied.config.tie_word_embeddings is False
    words = untied.bert.params["embeddings"]["word_embeddings"]["weight"]
    assert not np.array_equal(untied.params["vocab_projector"]["weight"], words)


@pytest.mark.parametrize("arch", list(SIZES))
@pytest.mark.parametrize("head", ["masked_lm", "token_classification", "question_answering"])
def test_base_checkpoint_has_no_head(ckpts, arch, head):
    """A base model's checkpoint loaded for a task says which head is missing instead of inventing weights."""
    with pytest.raises(ValueError, match=r"has no .*head.*does not invent random head weights"):
        AUTO[head].from_pretrained(ckpts(arch, "tiny", "base"))


def test_head_models_load_as_base_models(ckpts):
    """A checkpoint with any head also loads as the plain encoder, as in transformers (the head is unused)."""
    ckpt = ckpts("bert", "tiny", "question_answering")
    inputs = inputs_for("bert", ckpt)
    got = minibert.AutoModel.from_pretrained(ckpt)(**inputs).last_hidden_state
    qa = minibert.AutoModelForQuestionAnswering.from_pretrained(ckpt)
    np.testing.assert_array_equal(got, qa.bert(**inputs).last_hidden_state)
