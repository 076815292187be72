"""Every bad input minibert knows of, and what it returns: one case list that the tests run and that the
README's table is rendered from, so the table cannot drift from the code.

    python tests/test_bad_inputs.py           # print the README table
    python tests/test_bad_inputs.py --write   # rewrite it in README.md (between the bad-inputs markers)
"""

from __future__ import annotations

import json
import re
import shutil
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import load_file, save_file

README = Path(__file__).resolve().parent.parent / "README.md"
START, END = "<!-- bad-inputs:start -->", "<!-- bad-inputs:end -->"


@dataclass
class Case:
    group: str
    what: str  # the input, as the README names it
    run: Callable[[Path], object]  # given a fresh copy of a good checkpoint, do the bad thing
    error: type[Exception] | None  # None: not an error; `check` says what comes back
    match: str = ""  # regex the message must match
    check: Callable[[object], bool] | None = None
    returns: str = ""  # for non-errors: what the README says comes back


def _edit_config(ckpt: Path, **changes) -> Path:
    cfg = json.loads((ckpt / "config.json").read_text())
    (ckpt / "config.json").write_text(json.dumps(cfg | changes))
    return ckpt


def _edit_tensors(ckpt: Path, edit: Callable[[dict], None]) -> Path:
    tensors = load_file(ckpt / "model.safetensors")
    edit(tensors)
    save_file(tensors, ckpt / "model.safetensors")
    return ckpt


def _shard_and_drop_one(ckpt: Path) -> Path:
    tensors = load_file(ckpt / "model.safetensors")
    keys = sorted(tensors)
    halves = {"model-00001-of-00002.safetensors": keys[: len(keys) // 2],
              "model-00002-of-00002.safetensors": keys[len(keys) // 2 :]}
    for name, part in halves.items():
        save_file({k: tensors[k] for k in part}, ckpt / name)
    index = {"metadata": {}, "weight_map": {k: name for name, part in halves.items() for k in part}}
    (ckpt / "model.safetensors.index.json").write_text(json.dumps(index))
    (ckpt / "model.safetensors").unlink()
    (ckpt / "model-00002-of-00002.safetensors").unlink()
    return ckpt


def _model(ckpt: Path):
    import minibert

    return minibert.AutoModelForSequenceClassification.from_pretrained(ckpt)


def _tokenizer(ckpt: Path):
    import minibert

    return minibert.AutoTokenizer.from_pretrained(ckpt)


def _call_model(ckpt: Path, ids, mask=None):
    return _model(ckpt)(np.asarray(ids), None if mask is None else np.asarray(mask))


def _classify(ckpt: Path, inputs, **kwargs):
    import minibert

    return minibert.pipeline("text-classification", model=ckpt)(inputs, **kwargs)


IDS = [[101, 7592, 102]]
CASES = [
    # --- checkpoints ---
    Case("checkpoint", "no `config.json`", lambda d: ((d / "config.json").unlink(), _model(d)),
         FileNotFoundError, r"no config\.json"),
    Case("checkpoint", "`config.json` that is not JSON",
         lambda d: ((d / "config.json").write_text("{dim: 768"), _model(d)),
         ValueError, r"config\.json is not valid JSON"),
    Case("checkpoint", '`"dim": "768"` (a string)', lambda d: _model(_edit_config(d, dim="768")),
         ValueError, r"config\.json: config dim must be a positive integer, got '768'"),
    Case("checkpoint", '`"n_layers": -1`', lambda d: _model(_edit_config(d, n_layers=-1)),
         ValueError, r"config\.json: config n_layers must be a positive integer, got -1"),
    Case("checkpoint", '`"model_type": "gpt2"`', lambda d: _model(_edit_config(d, model_type="gpt2")),
         ValueError, r"model_type 'gpt2'.*distilbert"),
    Case("checkpoint", "no `model.safetensors`, only `pytorch_model.bin`",
         lambda d: ((d / "model.safetensors").rename(d / "pytorch_model.bin"), _model(d)),
         FileNotFoundError, r"never unpickles pytorch_model\.bin"),
    Case("checkpoint", "a truncated `model.safetensors`",
         lambda d: ((d / "model.safetensors").write_bytes((d / "model.safetensors").read_bytes()[:1000]), _model(d)),
         ValueError, r"model\.safetensors is not a readable safetensors file"),
    Case("checkpoint", "a sharded checkpoint missing a shard", lambda d: _model(_shard_and_drop_one(d)),
         FileNotFoundError, r"names shards that are not there: \['model-00002-of-00002\.safetensors'\]"),
    Case("checkpoint", "a tensor missing",
         lambda d: _model(_edit_tensors(d, lambda t: t.pop("distilbert.transformer.layer.1.ffn.lin2.bias"))),
         ValueError, r"lacks 1 tensor\(s\) that config\.json implies, e\.g\. distilbert\.transformer\.layer\.1\.ffn"),
    Case("checkpoint", "a tensor of the wrong shape",
         lambda d: _model(_edit_tensors(d, lambda t: t.update(
             {"distilbert.transformer.layer.0.attention.q_lin.weight": np.zeros((64, 16), np.float32)}))),
         ValueError, r"model\.safetensors: tensor distilbert\.transformer\.layer\.0\.attention\.q_lin\.weight has "
                     r"shape \(64, 16\), but config\.json implies \(64, 64\)"),
    Case("checkpoint", "integer weights",
         lambda d: _model(_edit_tensors(d, lambda t: t.update({"classifier.bias": np.zeros(3, np.int32)}))),
         ValueError, r"tensor classifier\.bias has dtype I32; weights must be floating point"),
    Case("checkpoint", "no `vocab.txt` and no `tokenizer.json`", lambda d: ((d / "vocab.txt").unlink(), _tokenizer(d)),
         FileNotFoundError, r"has neither tokenizer\.json nor vocab\.txt"),
    Case("checkpoint", "an empty `vocab.txt`", lambda d: ((d / "vocab.txt").write_text(""), _tokenizer(d)),
         ValueError, r"vocab\.txt is empty"),
    Case("checkpoint", "a corrupt `tokenizer.json`",
         lambda d: ((d / "tokenizer.json").write_text('{"version": "1.0", "model": nul'), _tokenizer(d)),
         ValueError, r"tokenizer\.json is not a readable tokenizer\.json"),
    # --- model inputs ---
    Case("model call", "`input_ids` 1-D", lambda d: _call_model(d, [101, 102]),
         ValueError, r"input_ids must be 2-D \[batch, seq_len\], got shape \(2,\)"),
    Case("model call", "`input_ids` of floats", lambda d: _call_model(d, [[101.0, 102.0]]),
         TypeError, r"input_ids must be an integer array, got dtype float64"),
    Case("model call", "ragged `input_ids` (unpadded lists)", lambda d: _model(d)([[101, 7592, 102], [101, 102]]),
         ValueError, r"input_ids must be rectangular"),
    Case("model call", "a token id outside the vocabulary", lambda d: _call_model(d, [[101, 99999, 102]]),
         ValueError, r"input_ids\[0, 1\] = 99999 is outside the vocabulary \[0, 30522\)"),
    Case("model call", "more tokens than positions (513)", lambda d: _call_model(d, np.full((1, 513), 100)),
         ValueError, r"513 tokens but the model has only 512 positions; tokenize with truncation=True"),
    Case("model call", "`attention_mask` with a 2", lambda d: _call_model(d, IDS, [[1, 2, 1]]),
         ValueError, r"attention_mask\[0, 1\] = 2; it must hold only 0 and 1"),
    Case("model call", "`attention_mask` of another shape", lambda d: _call_model(d, IDS, [[1, 1]]),
         ValueError, r"attention_mask has shape \(1, 2\) but input_ids has shape \(1, 3\)"),
    Case("model call", "`attention_mask` all 0 (every token padding)", lambda d: _call_model(d, IDS, [[0, 0, 0]]),
         None, check=lambda out: bool(np.isfinite(out.logits).all()),
         returns="finite logits, as transformers gives (uniform attention; never NaN)"),
    # --- pipeline ---
    Case("pipeline", "`None` among the texts", lambda d: _classify(d, ["fine", None]),
         TypeError, r"inputs\[1\]"),
    Case("pipeline", "`b'bytes'` as the input", lambda d: _classify(d, b"bytes"), TypeError, r"bytes"),
    Case("pipeline", "`top_k=0`", lambda d: _classify(d, "fine", top_k=0), ValueError, r"top_k must be"),
    Case("pipeline", "`batch_size=0`", lambda d: _classify(d, ["fine"], batch_size=0),
         ValueError, r"batch_size must be a positive int"),
    Case("pipeline", '`function_to_apply="relu"`', lambda d: _classify(d, "fine", function_to_apply="relu"),
         ValueError, r"function_to_apply must be one of"),
    Case("pipeline", 'the empty string `""`', lambda d: _classify(d, [""]), None,
         check=lambda out: len(out) == 1 and 0 <= out[0]["score"] <= 1,
         returns="a label and score, like transformers ([CLS] [SEP] is classified)"),
    Case("pipeline", "a 600-word text", lambda d: _classify(d, [" ".join(["word"] * 600)]), None,
         check=lambda out: len(out) == 1 and 0 <= out[0]["score"] <= 1,
         returns="a label and score: truncated to the model's 512 tokens (truncation is on by default)"),
]


def _message(e: BaseException, ckpt: Path) -> str:
    text = str(e).replace(str(ckpt), "<ckpt>").splitlines()[0]
    return text if len(text) <= 160 else text[:157] + "..."


def outcome(case: Case, ckpt: Path) -> str:
    """Run one case on `ckpt` (a fresh copy of a good checkpoint); assert it does what the case says; describe it."""
    if case.error is None:
        result = case.run(ckpt)
        assert case.check(result), f"{case.what}: unexpected result {result!r}"
        return case.returns
    with pytest.raises(case.error) as info:
        case.run(ckpt)
    assert re.search(case.match, str(info.value)), f"{case.what}: message {info.value!s} does not match {case.match!r}"
    return f"`{case.error.__name__}`: {_message(info.value, ckpt)}"


def table(outcomes: list[str]) -> str:
    rows = ["| where | bad input | what you get |", "|---|---|---|"]
    for case, text in zip(CASES, outcomes, strict=True):
        rows.append(f"| {case.group} | {case.what} | {text.replace('|', '/')} |")
    return "\n".join(rows)


@pytest.fixture
def fresh_ckpt(small_ckpt, tmp_path):
    d = tmp_path / "ckpt"
    shutil.copytree(small_ckpt, d)
    return d


@pytest.mark.parametrize("case", CASES, ids=[f"{c.group}: {c.what}" for c in CASES])
def test_bad_input(case, fresh_ckpt):
    outcome(case, fresh_ckpt)


def test_readme_table_is_current(small_ckpt, tmp_path):
    """README.md's table of bad inputs is exactly what the cases give today (regenerate: see the module doc)."""
    outcomes = []
    for i, case in enumerate(CASES):
        d = tmp_path / str(i)
        shutil.copytree(small_ckpt, d)
        outcomes.append(outcome(case, d).replace(str(d), "<ckpt>"))
    text = README.read_text(encoding="utf-8")
    assert START in text and END in text, f"README.md lacks the {START} ... {END} section"
    current = text.split(START)[1].split(END)[0].strip()
    stale = "README's bad-inputs table is stale: run `python tests/test_bad_inputs.py --write`"
    assert current == table(outcomes), stale


def main() -> None:
    import tempfile

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from checkpoints import SMALL, make_random_distilbert

    with tempfile.TemporaryDirectory() as tmp:
        good = make_random_distilbert(Path(tmp) / "good", seed=1, **SMALL)
        outcomes = []
        for i, case in enumerate(CASES):
            d = Path(tmp) / str(i)
            shutil.copytree(good, d)
            outcomes.append(outcome(case, d).replace(str(d), "<ckpt>"))
    rendered = table(outcomes)
    if "--write" in sys.argv:
        text = README.read_text(encoding="utf-8")
        before, rest = text.split(START)
        README.write_text(f"{before}{START}\n{rendered}\n{END}{rest.split(END)[1]}", encoding="utf-8")
    print(rendered)


if __name__ == "__main__":
    main()
