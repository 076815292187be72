"""from_pretrained: every key and shape checked, dtypes upcast, pickles refused, clear errors."""

import json
import shutil

import numpy as np
import pytest
import torch
import transformers
from error_model import check_fp32
from safetensors.numpy import load_file, save_file
from safetensors.torch import save_file as save_torch

import minibert

TINY = dict(dim=32, n_heads=4, n_layers=2, hidden_dim=64, vocab_size=120, max_position_embeddings=40)


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory):
    """A tiny DistilBertForSequenceClassification saved by transformers (3 labels)."""
    torch.manual_seed(0)
    cfg = transformers.DistilBertConfig(**TINY, num_labels=3, attn_implementation="eager")
    out = tmp_path_factory.mktemp("tiny")
    transformers.DistilBertForSequenceClassification(cfg).eval().save_pretrained(out)
    return out


@pytest.fixture
def tiny_copy(tiny_dir, tmp_path):
    d = tmp_path / "ckpt"
    shutil.copytree(tiny_dir, d)
    return d


IDS = np.array([[1, 5, 7, 9, 2], [1, 8, 2, 0, 0]])
MASK = np.array([[1, 1, 1, 1, 1], [1, 1, 1, 0, 0]])


def logits_of(directory):
    return minibert.AutoModelForSequenceClassification.from_pretrained(directory)(IDS, MASK).logits


def torch_logits(directory, mask=MASK, double=False, head=True):
    auto = transformers.AutoModelForSequenceClassification if head else transformers.AutoModel
    ref = auto.from_pretrained(directory, attn_implementation="eager").eval()
    ref = ref.double() if double else ref
    with torch.no_grad():
        out = ref(input_ids=torch.tensor(IDS), attention_mask=torch.tensor(mask))
    return (out.logits if head else out.last_hidden_state).numpy()


def test_loads_the_transformers_file_and_matches_torch(tiny_dir):
    model = minibert.AutoModelForSequenceClassification.from_pretrained(tiny_dir)
    assert model.config.num_labels == 3 and model.config.n_layers == 2
    check_fp32(model(IDS, MASK).logits, torch_logits(tiny_dir), torch_logits(tiny_dir, double=True))


def test_automodel_reads_encoder_of_classification_checkpoint_and_bare_checkpoint(tiny_dir, tmp_path):
    enc = minibert.AutoModel.from_pretrained(tiny_dir)
    torch_enc = transformers.AutoModel.from_pretrained(tiny_dir, attn_implementation="eager").eval()
    torch_enc.save_pretrained(tmp_path / "bare")  # keys without the "distilbert." prefix
    bare = minibert.AutoModel.from_pretrained(tmp_path / "bare")
    np.testing.assert_array_equal(enc(IDS, MASK).last_hidden_state, bare(IDS, MASK).last_hidden_state)
    with pytest.raises(ValueError, match="no sequence-classification head"):
        minibert.AutoModelForSequenceClassification.from_pretrained(tmp_path / "bare")


def test_missing_key_is_named(tiny_copy):
    path = tiny_copy / "model.safetensors"
    tensors = load_file(path)
    del tensors["distilbert.transformer.layer.1.ffn.lin2.bias"]
    save_file(tensors, path)
    with pytest.raises(ValueError, match=r"distilbert\.transformer\.layer\.1\.ffn\.lin2\.bias"):
        logits_of(tiny_copy)


def test_wrong_shape_names_file_and_key(tiny_copy):
    path = tiny_copy / "model.safetensors"
    tensors = load_file(path)
    tensors["distilbert.transformer.layer.0.attention.q_lin.weight"] = np.zeros((32, 16), np.float32)
    save_file(tensors, path)
    with pytest.raises(ValueError, match=r"model\.safetensors: tensor distilbert\.transformer\.layer\.0\.attention"
                       r"\.q_lin\.weight has shape \(32, 16\), but config\.json implies \(32, 32\)"):
        logits_of(tiny_copy)


def test_config_with_fewer_layers_than_file_is_refused(tiny_copy):
    cfg = json.loads((tiny_copy / "config.json").read_text())
    cfg["n_layers"] = 1
    (tiny_copy / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(ValueError, match=r"transformer\.layer\.1\..* is not part of the model"):
        logits_of(tiny_copy)


HALF_UNIT_ROUNDOFF = {torch.float16: 2.0**-11, torch.bfloat16: 2.0**-8}


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_half_precision_files_are_upcast_exactly(tiny_copy, dtype):
    path = tiny_copy / "model.safetensors"
    fp32 = load_file(path)
    tensors = {k: torch.from_numpy(v).to(dtype) for k, v in fp32.items()}
    save_torch(tensors, path)
    model = minibert.AutoModelForSequenceClassification.from_pretrained(tiny_copy)
    u = HALF_UNIT_ROUNDOFF[dtype]
    for key, t in tensors.items():
        got = model.state_dict[key.removeprefix("distilbert.")]
        assert got.dtype == np.float32
        np.testing.assert_array_equal(got, t.float().numpy())  # torch's own upcast is the reference
        # and the half-precision file holds the float32 weights to within its rounding (plus fp16's subnormals)
        assert (np.abs(got - fp32[key]) <= u * np.abs(fp32[key]) + 2.0**-24).all(), key
    # the model computes with those weights as torch does with the same file: the float32 error model
    check_fp32(model(IDS, MASK).logits, torch_logits(tiny_copy), torch_logits(tiny_copy, double=True))


def test_pickle_only_checkpoint_is_refused(tiny_copy):
    (tiny_copy / "model.safetensors").rename(tiny_copy / "pytorch_model.bin")
    with pytest.raises(FileNotFoundError, match="never unpickles pytorch_model.bin"):
        logits_of(tiny_copy)


def test_sharded_checkpoint(tiny_dir, tmp_path):
    torch_model = transformers.AutoModelForSequenceClassification.from_pretrained(tiny_dir)
    torch_model.save_pretrained(tmp_path / "sharded", max_shard_size="20KB")
    assert (tmp_path / "sharded" / "model.safetensors.index.json").is_file()
    np.testing.assert_array_equal(logits_of(tmp_path / "sharded"), logits_of(tiny_dir))


def test_integer_weights_are_refused(tiny_copy):
    path = tiny_copy / "model.safetensors"
    tensors = load_file(path)
    tensors["classifier.bias"] = np.zeros(3, np.int32)
    save_file(tensors, path)
    with pytest.raises(ValueError, match="classifier.bias has dtype I32"):
        logits_of(tiny_copy)


@pytest.mark.parametrize(
    "edit, message",
    [
        ({"model_type": "gpt2"}, "model_type 'gpt2'"),
        ({"n_heads": 5}, "must divide dim"),
        ({"activation": "swish"}, "activation 'swish'"),
        ({"dim": -3}, "dim must be a positive integer"),
    ],
)
def test_bad_config_is_named(tiny_copy, edit, message):
    cfg = json.loads((tiny_copy / "config.json").read_text())
    (tiny_copy / "config.json").write_text(json.dumps(cfg | edit))
    with pytest.raises(ValueError, match=message):
        logits_of(tiny_copy)


def test_missing_directory_contents(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="no config.json"):
        minibert.AutoModel.from_pretrained(tmp_path / "empty")


@pytest.mark.parametrize(
    "ids, mask, error, message",
    [
        (np.array([1, 5, 2]), None, ValueError, r"2-D \[batch, seq_len\]"),
        (np.array([[1.0, 5.0]]), None, TypeError, "input_ids must be an integer array"),
        ([[1, 5, 2], [1, 2]], None, ValueError, "rectangular"),
        (np.array([[1, 500, 2]]), None, ValueError, r"input_ids\[0, 1\] = 500 is outside the vocabulary \[0, 120\)"),
        (np.array([[1, -1, 2]]), None, ValueError, r"input_ids\[0, 1\] = -1"),
        (np.zeros((1, 41), np.int64), None, ValueError, "41 tokens but the model has only 40 positions"),
        (np.zeros((1, 0), np.int64), None, ValueError, "empty"),
        (IDS, MASK[:, :3], ValueError, r"attention_mask has shape \(2, 3\)"),
        (IDS, MASK * 2, ValueError, r"attention_mask\[0, 0\] = 2"),
        (IDS, MASK.astype(bool), TypeError, "attention_mask must be an integer array"),
    ],
)
def test_bad_model_inputs_are_named(tiny_dir, ids, mask, error, message):
    model = minibert.AutoModelForSequenceClassification.from_pretrained(tiny_dir)
    with pytest.raises(error, match=message):
        model(ids, mask)


def test_fully_masked_row_is_finite_and_equals_torch(tiny_dir):
    mask = MASK.copy()
    mask[1] = 0
    want32 = torch_logits(tiny_dir, mask, head=False)
    want64 = torch_logits(tiny_dir, mask, double=True, head=False)
    for backend in ("numpy", "numba"):
        got = minibert.AutoModel.from_pretrained(tiny_dir, backend=backend)(IDS, mask).last_hidden_state
        assert np.isfinite(got).all()
        check_fp32(got, want32, want64)


def test_transformers_tokenizer_output_is_accepted(tiny_dir):
    # transformers 5's tokenizer also returns token_type_ids; DistilBERT ignores them, in torch and here.
    model = minibert.AutoModelForSequenceClassification.from_pretrained(tiny_dir)
    types = np.zeros_like(IDS)
    types[0, 3:] = 1
    np.testing.assert_array_equal(model(IDS, MASK, token_type_ids=types).logits, model(IDS, MASK).logits)
