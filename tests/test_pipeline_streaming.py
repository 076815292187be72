"""The pipeline's inputs and batching: any iterable of texts, streams read lazily in constant memory, and
length-sorted batches whose results come back in input order.

What each test checks against: the pipeline's own list output (same code, same batches, so exactly equal),
the tokenizer's own padding, and counts of what was read and run. Agreement with transformers (scores on the
float32 error model, generator inputs included) is in test_pipeline_parity.py; "a text's logits do not depend
on its batch" is in test_properties.py.
"""

from __future__ import annotations

import random
from collections.abc import Iterator

import numpy as np
import pytest

import minibert


@pytest.fixture(scope="module")
def clf(small_ckpt):
    return minibert.pipeline("sentiment-analysis", model=small_ckpt)


def mixed_texts(n: int, seed: int = 0) -> list[str]:
    """n texts of 1 to ~120 words, shuffled: batches in input order would pad a lot."""
    rng = random.Random(seed)
    words = "the movie was great awful long short funny sad plot actors music ending".split()
    return [" ".join(rng.choices(words, k=rng.choice([1, 3, 8, 20, 60, 120]))) for _ in range(n)]


class Recording:
    """Stands in for the pipeline's model: records each batch (input_ids, attention_mask) and runs the real one."""

    def __init__(self, model):
        self.model, self.config, self.batches = model, model.config, []

    def __call__(self, input_ids, attention_mask, token_type_ids=None):
        self.batches.append((input_ids.copy(), attention_mask.copy()))
        return self.model(input_ids, attention_mask, token_type_ids)

    def padding(self) -> int:
        return sum(int((mask == 0).sum()) for _, mask in self.batches)


def recording(clf) -> tuple[minibert.TextClassificationPipeline, Recording]:
    model = Recording(clf.model)
    return minibert.TextClassificationPipeline(model, clf.tokenizer), model


class Counted:
    """An iterator over texts that counts how many were read."""

    def __init__(self, texts):
        self.texts, self.read = iter(texts), 0

    def __iter__(self):
        return self

    def __next__(self):
        text = next(self.texts)
        self.read += 1
        return text


# --- input kinds ------------------------------------------------------------------------------


def test_every_iterable_gives_the_lists_results(clf):
    texts = mixed_texts(40)
    want = clf(texts, batch_size=8, top_k=None)
    collections = {
        "tuple": tuple(texts), "array": np.array(texts), "object array": np.array(texts, dtype=object),
        "dict keys": dict.fromkeys(texts).keys() if len(set(texts)) == len(texts) else None,
    }
    for name, inputs in collections.items():
        if inputs is None:
            continue
        got = clf(inputs, batch_size=8, top_k=None)
        assert type(got) is list and got == want, name
    streams = {"generator": (t for t in texts), "iter(list)": iter(texts), "map": map(str, texts),
               "an iterator class": Counted(texts)}
    for name, inputs in streams.items():
        got = clf(inputs, batch_size=8, top_k=None)
        assert isinstance(got, Iterator) and not isinstance(got, list), name
        assert list(got) == want, name


def test_numpy_str_items_become_plain_str(clf):
    out = clf(np.array(["I love it", "meh"]))
    assert out == clf(["I love it", "meh"])
    assert all(type(r["label"]) is str and type(r["score"]) is float for r in out)


def test_singles_pairs_and_texts_mix_in_one_stream(clf):
    inputs = ["a text", {"text": "a question", "text_pair": "an answer"}, {"text": "alone"}, "x " * 40,
              {"text": "empty pair means no pair", "text_pair": ""}]
    alone = [clf(x, top_k=None) for x in inputs]
    streamed = list(clf(iter(inputs), batch_size=1, top_k=None))
    assert streamed == alone  # batch_size=1: each text alone, the same computation


# --- streams: lazy, bounded, in order -----------------------------------------------------------


def test_a_stream_is_read_lazily_a_window_at_a_time(clf):
    texts = Counted(mixed_texts(500))
    out = clf(texts, batch_size=16, sort_window=64)
    assert texts.read == 0  # nothing is read before the first result is asked for
    next(out)
    assert texts.read == 64  # one window
    rest = list(out)
    assert len(rest) == 499 and texts.read == 500


def test_a_long_stream_holds_at_most_a_window_of_texts(clf):
    """Constant memory over any length: at every result, texts read but not yet returned <= sort_window.
    (Everything the pipeline holds -- tokenized texts waiting, results waiting for an earlier text -- is such a
    text.) And the results are the list's, in order."""
    texts = [f"review {i}: " + "good " * (i % 23) for i in range(3_000)]
    stream = Counted(texts)
    held, got = 0, []
    for result in clf(stream, batch_size=32, sort_window=128):
        got.append(result)
        held = max(held, stream.read - len(got))
    assert held <= 128
    assert got == clf(texts, batch_size=32, sort_window=128)


def test_results_come_out_steadily(clf):
    """Every batch holds the oldest text not yet run, so the n-th result never waits for more than n batches,
    and results come out from the first batch on (a killed consumer loses little)."""
    pipe, model = recording(clf)
    texts = mixed_texts(300, seed=1)
    for n, _ in enumerate(pipe(iter(texts), batch_size=8, sort_window=100), 1):
        assert len(model.batches) <= n
    assert len(model.batches) >= 300 / 8


def test_two_streams_at_once_do_not_mix(clf):
    a, b = mixed_texts(50, seed=2), mixed_texts(50, seed=3)
    ia, ib = clf(iter(a), batch_size=4, sort_window=16), clf(iter(b), batch_size=4, sort_window=16)
    got_a, got_b = [], []
    for ra, rb in zip(ia, ib, strict=True):
        got_a.append(ra)
        got_b.append(rb)
    assert got_a == clf(a, batch_size=4, sort_window=16) and got_b == clf(b, batch_size=4, sort_window=16)


def test_classify_streams_too(small_ckpt):
    texts = mixed_texts(30)
    got = minibert.classify(iter(texts), model=small_ckpt, batch_size=4)
    assert isinstance(got, Iterator)
    assert list(got) == minibert.classify(texts, model=small_ckpt, batch_size=4)


def test_dtype_and_backend_reach_the_model_and_classify_keeps_one_pipeline_per_dtype(small_ckpt):
    from minibert.kernels import get_ops
    from minibert.pipeline import _cached_pipeline

    pipe = minibert.pipeline("sentiment-analysis", model=small_ckpt, dtype="float64", backend="numpy")
    assert pipe.model.dtype == np.float64 and pipe.model.ops is get_ops("numpy")
    texts = mixed_texts(6)
    kwargs = {"function_to_apply": "none", "top_k": None}
    as64 = minibert.classify(texts, model=small_ckpt, dtype="float64", **kwargs)
    assert minibert.classify(texts, model=small_ckpt, dtype=np.float64, **kwargs) == as64  # one entry, any spelling
    assert as64 == minibert.pipeline("sentiment-analysis", model=small_ckpt, dtype="float64")(texts, **kwargs)
    as32 = minibert.classify(texts, model=small_ckpt, **kwargs)
    assert as32 == minibert.classify(texts, model=small_ckpt, dtype="float32", **kwargs)
    assert as32 != as64  # float32 logits are not the float64 ones: the cache did not mix them up
    assert _cached_pipeline(str(small_ckpt), None, None, "float64").model.dtype == np.float64
    assert _cached_pipeline(str(small_ckpt), None, None, "float32").model.dtype == np.float32


# --- batching: padded as the tokenizer pads, sorted by length, input order restored ----------------------------


def test_batches_are_padded_as_the_tokenizer_pads(clf, mb_tokenizer, small_ckpt):
    """Each text's row is exactly the tokenizer's padding=True output for it at the batch's length."""
    tok = mb_tokenizer(small_ckpt)
    pipe, model = recording(clf)
    texts = ["short", "a much longer text than the first one", {"text": "a question", "text_pair": "its answer"}]
    pipe(texts, batch_size=3)
    ((input_ids, attention_mask),) = model.batches
    rows = {tuple(ids): mask.tolist() for ids, mask in zip(input_ids.tolist(), attention_mask, strict=True)}
    for text in texts:
        args = [text] if isinstance(text, str) else [text["text"], text["text_pair"]]
        enc = tok(*args, padding="max_length", max_length=input_ids.shape[1])
        assert rows[tuple(enc["input_ids"])] == enc["attention_mask"], text


def test_texts_of_equal_length_share_batches_without_padding(clf, mb_tokenizer, small_ckpt):
    """4 lengths x 8 texts, shuffled: with batch_size 8, every batch is one length, no padding at all; in
    input order they would pad."""
    tok = mb_tokenizer(small_ckpt)
    texts = [" ".join(["word"] * n + [str(i)]) for n in (1, 5, 17, 40) for i in range(8)]
    assert len({len(tok(t)["input_ids"]) for t in texts}) == 4
    random.Random(4).shuffle(texts)
    pipe, model = recording(clf)
    got = pipe(texts, batch_size=8)
    assert len(got) == 32 and len(model.batches) == 4 and model.padding() == 0
    unsorted, model_unsorted = recording(clf)
    unsorted(texts, batch_size=8, sort_window=1)
    assert model_unsorted.padding() > 0


def test_a_list_is_batched_as_sorted_by_length_and_cut(clf, mb_tokenizer, small_ckpt):
    """A list shorter than the window: batches are exactly sorted(texts, key=token count) cut every batch_size
    (so its padding is that of the sorted cut), far below input-order batches; results in input order."""
    tok = mb_tokenizer(small_ckpt)
    texts = mixed_texts(200, seed=5)
    ids = [tok(t, truncation=True)["input_ids"] for t in texts]
    order = sorted(range(200), key=lambda i: (len(ids[i]), i))
    pipe, model = recording(clf)
    got = pipe(texts, batch_size=16)
    batches = [[row[m == 1].tolist() for row, m in zip(rows, mask, strict=True)] for rows, mask in model.batches]
    assert sorted(batches) == sorted([ids[i] for i in order[start : start + 16]] for start in range(0, 200, 16))
    plain_pipe, plain_model = recording(clf)
    plain = plain_pipe(texts, batch_size=16, sort_window=16)
    assert model.padding() * 10 < plain_model.padding()
    assert len(got) == len(plain) == 200


def test_a_window_of_one_batch_keeps_input_order(clf, mb_tokenizer, small_ckpt):
    """sort_window <= batch_size: batches are consecutive texts, as an unsorted pipeline makes them."""
    tok = mb_tokenizer(small_ckpt)
    texts = mixed_texts(37, seed=6)
    pipe, model = recording(clf)
    pipe(texts, batch_size=8, sort_window=3)
    assert [len(ids) for ids, _ in model.batches] == [8, 8, 8, 8, 5]
    for b, (ids, mask) in enumerate(model.batches):
        rows = sorted(row[m == 1].tolist() for row, m in zip(ids, mask, strict=True))
        assert rows == sorted(tok(t, truncation=True)["input_ids"] for t in texts[8 * b : 8 * b + 8])
