"""`minibert explain`: every returned and printed value against transformers (eager, output_hidden_states and
output_attentions) on the same local checkpoint.

Tokens, ids, mask, the argmax and its label must be equal; numbers follow the float32 error model (error_model.py:
float64 truth = transformers' model.double(); error <= 2x torch-fp32's + floor), or FLOAT64_ATOL in float64 mode.
Printed numbers are rounded, so the printed-output test adds half a unit of the last printed digit to that bound.
Derived quantities use derived bounds: a norm moves by at most the Frobenius norm of the error (triangle
inequality), and a top-attended key may differ from the reference's only where the two weights are within
twice the weights' bound of each other (a near tie).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from functools import cache

import numpy as np
import pytest
import torch
from checkpoints import BACKENDS
from error_model import check_fp32, fp32_bound, max_abs_error
from test_insides import torch_insides
from test_parity import FLOAT64_ATOL

import minibert
from minibert.explain import (
    MAX_PLOT_TOKENS,
    PLOT_EXTRA,
    attention_figure,
    explain,
    format_explanation,
    plot_attention,
)
from minibert.model import linear

TEXTS = ["I've been waiting for a HuggingFace course my whole life.", "I hate this so much!", ""]


def reference(hf_tokenizer, ckpt, text: str, dtype: str) -> dict:
    """transformers' insides for one text (cached: both backends compare against the same reference)."""
    return _reference(str(ckpt), text, dtype, hf_tokenizer)


@cache
def _reference(ckpt: str, text: str, dtype: str, hf_tokenizer) -> dict:
    tok = hf_tokenizer(ckpt)
    enc = tok(text, truncation=True, return_tensors="np")
    ref = torch_insides(ckpt, True, enc["input_ids"], enc["attention_mask"], dtype)
    ref["probs"] = torch.softmax(torch.from_numpy(ref["logits"]), dim=-1).numpy()
    ref["input_ids"], ref["attention_mask"] = enc["input_ids"][0], enc["attention_mask"][0]
    ref["tokens"] = tok.convert_ids_to_tokens(enc["input_ids"][0].tolist())
    return ref


def check_top(top: list[tuple[int, float]], got_att: np.ndarray, ref_att: np.ndarray, bound: float) -> None:
    """Per head, the reported (key, weight) is the model's own maximum of [CLS]'s row, and the reference's weight
    for that key is the reference maximum, up to a near tie of 2 x bound."""
    for h, (k, w) in enumerate(top):
        assert w == got_att[h, 0, k] == got_att[h, 0].max()
        row = ref_att[h, 0].astype(np.float64)
        assert row[k] >= row.max() - 2 * bound, f"head {h}: key {k} is not transformers' top key {row.argmax()}"


@pytest.fixture(scope="module")
def bert_ckpt(tmp_path_factory):
    """A tiny random BERT with a sequence-classification head: explain's head step is then BERT's pooler."""
    from checkpoints_heads import make_head_checkpoint

    return make_head_checkpoint(tmp_path_factory.mktemp("bert_seq"), "bert", "tiny", "sequence_classification", seed=7)


@pytest.fixture(params=["small_ckpt", "minilm_ckpt", "bert_ckpt"])
def ckpt(request):
    return request.param, request.getfixturevalue(request.param)


def torch_pool(refs32: list[dict], refs64: list[dict], pick) -> tuple[np.ndarray, np.ndarray]:
    """(torch32, ref64) of one quantity over every text, flattened: one text's attention map or logits are too few
    numbers for their max error to estimate torch's (error_model.py's `pool=`)."""
    flat = [np.concatenate([np.ravel(pick(r)) for r in refs]) for refs in (refs32, refs64)]
    return flat[0], flat[1]


@pytest.mark.parametrize("backend", BACKENDS)
def test_explanation_values_equal_transformers_float32(ckpt, backend, mb_model, mb_tokenizer, hf_tokenizer):
    name, path = ckpt
    model = mb_model(path, backend, True)
    refs32 = [reference(hf_tokenizer, path, text, "float32") for text in TEXTS]
    refs64 = [reference(hf_tokenizer, path, text, "float64") for text in TEXTS]

    def check(got, pick, t32, t64):  # pick: reference dict -> the quantity `got` is
        return check_fp32(got, pick(t32), pick(t64), pool=torch_pool(refs32, refs64, pick))

    for text, t32, t64 in zip(TEXTS, refs32, refs64, strict=True):
        e = explain(text, model, mb_tokenizer(path))
        T, C = e.embeddings.shape

        assert e.text == text
        assert e.tokens == t32["tokens"]
        np.testing.assert_array_equal(e.input_ids, t32["input_ids"])
        np.testing.assert_array_equal(e.attention_mask, t32["attention_mask"])
        assert e.special == [t in ("[CLS]", "[SEP]") for t in t32["tokens"]]
        assert e.special[0] and e.special[-1]

        _, _, bound = check(e.embeddings, lambda r: r["hidden_states"][0][0], t32, t64)
        assert abs(e.embeddings_norm - np.linalg.norm(t64["hidden_states"][0][0])) <= np.sqrt(T * C) * bound
        assert len(e.blocks) == len(t32["attentions"])
        for i, b in enumerate(e.blocks):
            ref_h = t64["hidden_states"][i + 1][0]
            _, _, bound = check(b.hidden_state, lambda r, i=i: r["hidden_states"][i + 1][0], t32, t64)
            assert abs(b.norm - np.linalg.norm(ref_h)) <= np.sqrt(T * C) * bound
            assert abs(b.cls_norm - np.linalg.norm(ref_h[0])) <= np.sqrt(C) * bound
            _, _, bound = check(b.attentions, lambda r, i=i: r["attentions"][i][0], t32, t64)
            check_top(b.cls_top, b.attentions, t64["attentions"][i][0], bound)

        check(e.cls, lambda r: r["hidden_states"][-1][0, 0], t32, t64)
        check(e.classifier_input, lambda r: r["classifier_input"][0], t32, t64)
        check(e.logits, lambda r: r["logits"][0], t32, t64)
        _, _, bound = check(e.probs, lambda r: r["probs"][0], t32, t64)
        check_top([(e.label_id, e.probs[e.label_id])], e.probs[None, None], t64["probs"][0][None, None], bound)
        assert e.label == _torch_label(path, e.label_id)


@pytest.mark.parametrize("backend", BACKENDS)
def test_explanation_values_equal_transformers_double_in_float64(ckpt, backend, mb_model, mb_tokenizer, hf_tokenizer):
    _, path = ckpt
    e = explain(TEXTS[0], mb_model(path, backend, True, "float64"), mb_tokenizer(path))
    t64 = reference(hf_tokenizer, path, TEXTS[0], "float64")
    assert e.tokens == t64["tokens"]
    pairs = [(e.embeddings, t64["hidden_states"][0][0]), (e.cls, t64["hidden_states"][-1][0, 0]),
             (e.classifier_input, t64["classifier_input"][0]), (e.logits, t64["logits"][0]), (e.probs, t64["probs"][0])]
    pairs += [(b.hidden_state, h[0]) for b, h in zip(e.blocks, t64["hidden_states"][1:], strict=True)]
    pairs += [(b.attentions, a[0]) for b, a in zip(e.blocks, t64["attentions"], strict=True)]
    for got, want in pairs:
        assert got.dtype == np.float64
        assert max_abs_error(got, want) <= FLOAT64_ATOL
    for b, a in zip(e.blocks, t64["attentions"], strict=True):
        check_top(b.cls_top, b.attentions, a[0], FLOAT64_ATOL)
    assert e.label_id == int(t64["probs"][0].argmax())


def test_explanation_holds_the_models_own_values(small_ckpt, mb_model, mb_tokenizer):
    """Nothing is recomputed on the side: the values are the model call's, and classifier_input is what the head
    used (the classifier applied to it gives the model's logits bit for bit)."""
    model, tok = mb_model(small_ckpt, "numba", True), mb_tokenizer(small_ckpt)
    e = explain(TEXTS[0], model, tok)
    out = model(**tok(TEXTS[0], return_tensors="np"), output_hidden_states=True, output_attentions=True)
    np.testing.assert_array_equal(e.logits, out.logits[0])
    np.testing.assert_array_equal(e.cls, out.hidden_states[-1][0, 0])
    np.testing.assert_array_equal(e.embeddings, out.hidden_states[0][0])
    for b, h, a in zip(e.blocks, out.hidden_states[1:], out.attentions, strict=True):
        np.testing.assert_array_equal(b.hidden_state, h[0])
        np.testing.assert_array_equal(b.attentions, a[0])
    np.testing.assert_array_equal(linear(e.classifier_input[None], model.params["classifier"], model.ops)[0], e.logits)
    np.testing.assert_array_equal(e.probs, minibert.softmax(out.logits, axis=-1)[0])


def test_explain_rejects_what_it_cannot_walk(small_ckpt, mb_model, mb_tokenizer):
    with pytest.raises(TypeError, match="text must be a str"):
        explain(["a", "b"], mb_model(small_ckpt, "numba", True), mb_tokenizer(small_ckpt))
    with pytest.raises(ValueError, match="sequence-classification head"):
        explain("a", mb_model(small_ckpt, "numba", False), mb_tokenizer(small_ckpt))


def _torch_label(path, i: int) -> str:
    import transformers

    return transformers.AutoConfig.from_pretrained(str(path)).id2label[i]


# --- the printed form ---------------------------------------------------------------------------

NUM = r"-?\d+\.?\d*(?:e[+-]\d+)?"


def numbers(s: str) -> list[tuple[float, float]]:
    """(value, half a unit of its last printed digit) for every number printed in s."""
    out = []
    for m in re.finditer(NUM, s):
        text = m.group()
        mantissa, _, exp = text.partition("e")
        decimals = len(mantissa.partition(".")[2])
        out.append((float(text), 0.5 * 10.0 ** (int(exp or 0) - decimals)))
    return out


def parse(stdout: str) -> dict:
    """The printed explanation back into values (the format_explanation layout)."""
    got: dict = {"table": [], "blocks": []}
    step = None
    for line in stdout.splitlines():
        if m := re.match(r"(\d)\. ", line):
            step = int(m.group(1))
        if step == 1 and (m := re.fullmatch(r"\s+(\d+)\s+(\S+)\s+(\d+)(  \*)?", line)):
            got["table"].append((int(m.group(1)), m.group(2), int(m.group(3)), bool(m.group(4))))
        elif m := re.match(r"\s+input_ids\s+= (\[.*\])", line):
            got["input_ids"] = eval(m.group(1))
        elif m := re.match(r"\s+attention_mask = (\[[^\]]*\])", line):
            got["attention_mask"] = eval(m.group(1))
        elif step == 2 and (m := re.match(r"\s+shape (\(.*?\)).*‖h‖_F = (\S+)", line)):
            got["embeddings"] = (eval(m.group(1)), numbers(m.group(2))[0])
        elif m := re.match(r"\s+block (\d+) .*: shape (\(.*?\))\s+‖h‖_F = (\S+)\s+‖h\[CLS\]‖₂ = (\S+)", line):
            got["blocks"].append({"shape": eval(m.group(2)), "norm": numbers(m.group(3))[0],
                                  "cls_norm": numbers(m.group(4))[0], "top": []})
        elif m := re.findall(r"head\s+(\d+): (\S+) \((" + NUM + r")\)", line):
            got["blocks"][-1]["top"] += [(int(h), tok, numbers(w)[0]) for h, tok, w in m]
        elif step in (4, 5, 6, 7) and line.startswith("   ["):
            got[{4: "cls", 5: "classifier_input", 6: "logits", 7: "probs"}[step]] = numbers(line)
        elif m := re.match(r"8\. argmax = (\d+) → id2label\[\d+\] = '(.*)' \(score", line):
            got["label_id"], got["label"] = int(m.group(1)), m.group(2)
    return got


def within(printed: list[tuple[float, float]], ref64: np.ndarray, bound: float) -> None:
    ref64 = np.asarray(ref64, dtype=np.float64).ravel()
    assert len(printed) == len(ref64)
    for (value, half_unit), want in zip(printed, ref64, strict=True):
        assert abs(value - want) <= half_unit + bound, (value, want, half_unit, bound)


def run_explain(*args, env=None):
    return subprocess.run([sys.executable, "-m", "minibert.explain", *args], capture_output=True, text=True, env=env)


def check_printed_head(got: dict, t32: dict, t64: dict, ckpt) -> None:
    """The printed logits, softmax, argmax and label against transformers (printed rounding + error model)."""
    for key in ("logits", "probs"):
        bound = fp32_bound(t32[key], t64[key])
        within(got[key], t64[key][0], bound)
    assert got["label_id"] == int(t64["probs"][0].argmax())
    assert got["label"] == _torch_label(ckpt, got["label_id"])


def test_cli_prints_every_step_equal_to_transformers(minilm_ckpt, hf_tokenizer):
    text = TEXTS[0]
    out = run_explain(text, "--model", str(minilm_ckpt), "--backend", "numpy")
    assert out.returncode == 0, out.stderr
    got = parse(out.stdout)
    t32 = reference(hf_tokenizer, minilm_ckpt, text, "float32")
    t64 = reference(hf_tokenizer, minilm_ckpt, text, "float64")
    T, C = t64["hidden_states"][0].shape[1:]

    assert [row[0] for row in got["table"]] == list(range(T))
    assert [row[1] for row in got["table"]] == t64["tokens"]
    assert [row[2] for row in got["table"]] == got["input_ids"] == t64["input_ids"].tolist()
    assert [row[3] for row in got["table"]] == [t in ("[CLS]", "[SEP]") for t in t64["tokens"]]
    assert got["attention_mask"] == t64["attention_mask"].tolist()

    def bound(key, i):  # the float32 error model's bound for transformers' tensor key[i] of the one text
        return fp32_bound(t32[key][i][0], t64[key][i][0])

    shape, norm = got["embeddings"]
    assert shape == t64["hidden_states"][0].shape
    within([norm], np.linalg.norm(t64["hidden_states"][0][0]), np.sqrt(T * C) * bound("hidden_states", 0))
    assert len(got["blocks"]) == len(t64["attentions"])
    for i, b in enumerate(got["blocks"]):
        h = t64["hidden_states"][i + 1][0]
        assert b["shape"] == t64["hidden_states"][i + 1].shape
        within([b["norm"]], np.linalg.norm(h), np.sqrt(T * C) * bound("hidden_states", i + 1))
        within([b["cls_norm"]], np.linalg.norm(h[0]), np.sqrt(C) * bound("hidden_states", i + 1))
        att, att_bound = t64["attentions"][i][0], bound("attentions", i)
        assert [head for head, _, _ in b["top"]] == list(range(att.shape[0]))
        for head, token, (weight, half_unit) in b["top"]:
            row = att[head, 0]
            candidates = [t64["tokens"][k] for k in np.flatnonzero(row >= row.max() - 2 * att_bound)]
            assert token in candidates
            assert abs(weight - row.max()) <= half_unit + 2 * att_bound

    n = len(got["cls"])
    assert 0 < n <= C
    within(got["cls"], t64["hidden_states"][-1][0, 0, :n], bound("hidden_states", -1))
    pre_bound = fp32_bound(t32["classifier_input"], t64["classifier_input"])
    within(got["classifier_input"], t64["classifier_input"][0, :n], pre_bound)
    check_printed_head(got, t32, t64, minilm_ckpt)


def test_minibert_command_explain_subcommand(small_ckpt, hf_tokenizer):
    """`python -m minibert explain` (the `minibert` console script's main) is the same command."""
    out = subprocess.run([sys.executable, "-m", "minibert", "explain", TEXTS[1], "--model", str(small_ckpt)],
                         capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    got = parse(out.stdout)
    t32 = reference(hf_tokenizer, small_ckpt, TEXTS[1], "float32")
    t64 = reference(hf_tokenizer, small_ckpt, TEXTS[1], "float64")
    assert [row[1] for row in got["table"]] == t64["tokens"]
    assert len(got["blocks"]) == len(t64["attentions"])
    check_printed_head(got, t32, t64, small_ckpt)
    out = subprocess.run([sys.executable, "-m", "minibert", "explain"], capture_output=True, text=True)
    assert out.returncode == 2 and "text" in out.stderr  # argparse's usage error: the text is required


def test_cli_plot_writes_the_image_and_names_it(small_ckpt, tmp_path):
    png = tmp_path / "attention.png"
    out = run_explain("I love it", "--model", str(small_ckpt), "--plot", str(png))
    assert out.returncode == 0, out.stderr
    assert out.stdout.rstrip().endswith(f"attention maps written to {png}")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    out = run_explain("I love it", "--model", str(small_ckpt), "--plot", str(tmp_path / "no" / "such" / "dir.png"))
    assert out.returncode == 1 and out.stdout == ""
    assert out.stderr.startswith("error: ") and "Traceback" not in out.stderr


def test_plot_draws_each_blocks_and_heads_attention_with_tokens_on_the_axes(small_ckpt, mb_model, mb_tokenizer,
                                                                          tmp_path):
    import matplotlib.image
    import matplotlib.pyplot as plt

    e = explain("a short text", mb_model(small_ckpt, "numba", True), mb_tokenizer(small_ckpt))
    fig = attention_figure(e)
    n_layers, H = len(e.blocks), e.blocks[0].attentions.shape[0]
    maps = [ax for ax in fig.axes if ax.images]
    assert len(maps) == n_layers * H
    for n, ax in enumerate(maps):  # row-major: block i, head h
        i, h = divmod(n, H)
        np.testing.assert_array_equal(ax.images[0].get_array(), e.blocks[i].attentions[h])
    assert [t.get_text() for t in maps[0].get_yticklabels()] == e.tokens  # queries on the left column
    assert [t.get_text() for t in maps[-1].get_xticklabels()] == e.tokens  # keys on the bottom row
    plt.close(fig)

    path = plot_attention(e, tmp_path / "maps.png")
    image = matplotlib.image.imread(path)
    assert image.ndim == 3 and min(image.shape[:2]) > 200
    assert not plt.get_fignums(), "plot_attention must close its figure"

    long = explain(" ".join(["word"] * (MAX_PLOT_TOKENS - 1)), mb_model(small_ckpt, "numba", True),
                   mb_tokenizer(small_ckpt))
    assert len(long.tokens) == MAX_PLOT_TOKENS + 1
    with pytest.raises(ValueError, match=f"up to {MAX_PLOT_TOKENS} tokens and this text has {MAX_PLOT_TOKENS + 1}"):
        plot_attention(long, tmp_path / "long.png")
    assert not (tmp_path / "long.png").exists()


def test_cli_without_matplotlib_names_the_extra(small_ckpt, tmp_path):
    """matplotlib made unimportable by a finder at the front of sys.meta_path, in a fresh interpreter."""
    blocker = (
        "import sys\n"
        "class Block:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name == 'matplotlib' or name.startswith('matplotlib.'):\n"
        "            raise ImportError(f'No module named {name!r} (blocked by the test)')\n"
        "sys.meta_path.insert(0, Block())\n"
        "from minibert.explain import main\n"
        "sys.exit(main(sys.argv[1:]))\n"
    )
    png = tmp_path / "never.png"
    out = subprocess.run([sys.executable, "-c", blocker, "hello", "--model", str(small_ckpt), "--plot", str(png)],
                         capture_output=True, text=True)
    assert out.returncode == 1
    assert PLOT_EXTRA in out.stderr and 'pip install "minibert[plot]"' in out.stderr
    assert "Traceback" not in out.stderr
    assert out.stdout == "" and not png.exists()
    # Without --plot, the same interpreter explains fine: matplotlib is only needed for the image
    out = subprocess.run([sys.executable, "-c", blocker, "hello", "--model", str(small_ckpt)],
                         capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert "argmax" in out.stdout


def test_cli_bad_model_is_one_line_exit_1(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("HF_")}
    env |= {"HF_HOME": str(tmp_path / "hf"), "HF_HUB_OFFLINE": "1"}
    out = run_explain("hello", "--model", str(tmp_path / "missing"), env=env)
    assert out.returncode == 1
    assert "missing" in out.stderr and len(out.stderr.strip().splitlines()) == 1
    assert "Traceback" not in out.stderr


def test_format_explanation_prints_the_returned_values(small_ckpt, mb_model, mb_tokenizer):
    e = explain(TEXTS[1], mb_model(small_ckpt, "numba", True), mb_tokenizer(small_ckpt))
    got = parse(format_explanation(e))
    assert [row[1] for row in got["table"]] == e.tokens
    assert got["input_ids"] == e.input_ids.tolist()
    within(got["logits"], e.logits, 0.0)
    within(got["probs"], e.probs, 0.0)
    for b, printed in zip(e.blocks, got["blocks"], strict=True):
        within([printed["norm"]], b.norm, 0.0)
        assert [tok for _, tok, _ in printed["top"]] == [e.tokens[k] for k, _ in b.cls_top]
    assert (got["label_id"], got["label"]) == (e.label_id, e.label)
