"""Weights are read-only and shareable: a forward pass never writes into them, and one loaded model serves
forked children, spawned processes and concurrent threads with exactly the results it gives alone."""

from __future__ import annotations

import multiprocessing as mp
import pickle
import threading

import numpy as np
import pytest
from error_model import check_fp32
from test_parity import MIXED, SHORT

import minibert

TEXTS = [SHORT, *MIXED]


@pytest.fixture(scope="module")
def model(small_ckpt):
    return minibert.AutoModelForSequenceClassification.from_pretrained(small_ckpt)


@pytest.fixture(scope="module")
def batches(small_ckpt):
    """250 calls of varied shapes: 1 to 8 texts, each padded to its own batch's length."""
    tok = minibert.AutoTokenizer.from_pretrained(small_ckpt)
    rng = np.random.default_rng(0)
    out = []
    for _ in range(250):
        texts = [TEXTS[i] for i in rng.integers(0, len(TEXTS), size=rng.integers(1, 9))]
        enc = tok(texts, padding=True, truncation=True, return_tensors="np")
        out.append((enc["input_ids"], enc["attention_mask"]))
    return out


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_weights_are_read_only(small_ckpt, dtype):
    m = minibert.AutoModelForSequenceClassification.from_pretrained(small_ckpt, dtype=dtype)
    assert m.state_dict and all(not w.flags.writeable for w in m.state_dict.values())
    weight = m.state_dict["transformer.layer.0.ffn.lin1.weight"]
    assert weight.dtype == np.dtype(dtype)
    with pytest.raises(ValueError, match="read-only"):
        weight[0, 0] = 1.0
    with pytest.raises(ValueError, match="read-only"):
        weight += 1.0


def test_float32_weights_are_views_of_the_file(model, small_ckpt):
    """Zero-copy: float32 tensors view one read-only memory map of model.safetensors (no private copy)."""
    import mmap

    weight = model.state_dict["transformer.layer.0.ffn.lin1.weight"]
    base = weight
    while isinstance(base, (np.ndarray, memoryview)):
        base = base.obj if isinstance(base, memoryview) else base.base
    assert isinstance(base, mmap.mmap)
    assert len(base) == (small_ckpt / "model.safetensors").stat().st_size


def _child_logits(model, ids, mask, queue):
    queue.put(model(ids, mask).logits)


def test_model_loaded_before_fork_gives_identical_results(model, batches):
    ids, mask = batches[0]
    want = model(ids, mask).logits
    ctx = mp.get_context("fork")
    queue = ctx.Queue()
    child = ctx.Process(target=_child_logits, args=(model, ids, mask, queue))
    child.start()
    got = queue.get(timeout=120)
    child.join(timeout=60)
    assert child.exitcode == 0
    np.testing.assert_array_equal(got, want)


def _spawned_logits(args):
    model, ids, mask = args
    writeable = any(w.flags.writeable for w in model.state_dict.values())
    return model(ids, mask).logits, writeable


def test_model_travels_to_spawned_processes(model, batches, small_ckpt, torch_ref):
    """A new process computes the same function; not necessarily to the bit (OpenBLAS's small-matrix kernels may
    round differently with the buffers' alignment), so the child is held to the float32 error model."""
    ids, mask = batches[1]
    assert len(pickle.dumps(model)) < 1000  # pickled as "load this directory", not as a copy of the weights
    with mp.get_context("spawn").Pool(1) as pool:
        got, writeable = pool.map(_spawned_logits, [(model, ids, mask)])[0]
    check_fp32(got, torch_ref(small_ckpt, True, ids, mask), torch_ref(small_ckpt, True, ids, mask, dtype="float64"))
    assert not writeable


def test_four_threads_share_one_model(model, batches):
    want = [model(ids, mask).logits for ids, mask in batches]
    got: dict[tuple[int, int], np.ndarray] = {}
    errors = []

    def work(t):
        try:
            order = np.random.default_rng(t).permutation(len(batches))  # every thread its own order
            for i in order:
                got[(t, int(i))] = model(*batches[i]).logits
        except Exception as e:  # noqa: BLE001 - surfaced below
            errors.append(e)

    threads = [threading.Thread(target=work, args=(t,)) for t in range(4)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert not errors, errors
    assert len(got) == 4 * len(batches)
    for (_, i), logits in got.items():
        np.testing.assert_array_equal(logits, want[i])
