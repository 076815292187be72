"""scripts/walkthrough.py, run in a subprocess on local checkpoints: every value it prints is parsed back and
compared with transformers on the same checkpoint and inputs.

Token ids, masks, shapes, labels and argmaxes must be equal; float values (printed at full float32 precision)
follow the float32 error model (error_model.py) against transformers' model.double().
"""

from __future__ import annotations

import ast
import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import transformers
from conftest import _torch_model
from error_model import check_fp32

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "walkthrough.py"
NUM = r"-?\d+\.?\d*(?:e[+-]\d+)?"
EDGE = 3  # the script prints arrays summarised to their first and last 3 entries per axis


def load_script():
    spec = importlib.util.spec_from_file_location("walkthrough", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


script = load_script()


def run(*args, env=None):
    return subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True, env=env)


def parse(stdout: str) -> dict[tuple[str, str], str | None]:
    """{(notebook, code): printed value}, from '# Notebook NNN' headers, '>>> code' lines and the lines under them."""
    blocks: dict[tuple[str, str], str | None] = {}
    notebook, key, value = None, None, []

    def flush():
        if key is not None:
            assert (notebook, key) not in blocks or not "".join(value).strip(), f"{key} printed twice"
            text = "\n".join(value).strip()
            blocks[(notebook, key)] = text or None

    for line in stdout.splitlines():
        if m := re.match(r"# Notebook (\d+)", line):
            flush()
            notebook, key, value = m.group(1), None, []
        elif line.startswith(">>> "):
            flush()
            key, value = line[4:], []
        elif line.startswith("#"):
            flush()
            key, value = None, []
        elif key is not None:  # blank lines too: a 3-D array prints one between its matrices
            value.append(line)
    flush()
    return blocks


def numbers(text: str) -> np.ndarray:
    return np.array([float(x) for x in re.findall(NUM, text)])


def summarised(a: np.ndarray) -> np.ndarray:
    """The entries of `a` that NumPy prints when it summarises (size > 100): first and last EDGE per long axis."""
    if a.size <= 100:
        return a.ravel()
    for axis, n in enumerate(a.shape):
        if n > 2 * EDGE:
            a = np.take(a, [*range(EDGE), *range(n - EDGE, n)], axis=axis)
    return a.ravel()


def arrays_in_dict(text: str) -> dict[str, np.ndarray]:
    """{'input_ids': array([[...]]), 'attention_mask': array(...)} as printed -> flat int arrays."""
    return {k: numbers(v).astype(np.int64) for k, v in re.findall(r"'(\w+)': array\((.*?)\)", text, flags=re.S)}


def torch_run(ckpt, head: bool, enc, dtype: str = "float32") -> np.ndarray:
    model = _torch_model(str(ckpt), head, dtype)
    with torch.no_grad():
        out = model(input_ids=torch.as_tensor(enc["input_ids"]), attention_mask=torch.as_tensor(enc["attention_mask"]))
    return (out.logits if head else out.last_hidden_state).numpy()


def softmax64(x: np.ndarray, dim: int) -> np.ndarray:
    return torch.softmax(torch.from_numpy(x), dim=dim).numpy()


@pytest.mark.parametrize("name", ["small_ckpt", "minilm_ckpt"])
def test_walkthrough_prints_what_transformers_computes(name, request, hf_tokenizer):
    ckpt = request.getfixturevalue(name)
    out = run("--model", str(ckpt))
    assert out.returncode == 0, out.stderr
    got = parse(out.stdout)
    tok = hf_tokenizer(ckpt)
    config = transformers.AutoConfig.from_pretrained(str(ckpt))
    hf_pipe = transformers.pipeline("text-classification", model=str(ckpt))

    def check_pipeline(nb: str, code: str, texts: list[str]):
        printed = ast.literal_eval(got[(nb, code)])
        want = hf_pipe(texts)
        assert [p["label"] for p in printed] == [w["label"] for w in want]
        enc = tok(texts, padding=True, truncation=True, return_tensors="np")
        best64 = softmax64(torch_run(ckpt, True, enc, "float64"), -1).max(-1)
        check_fp32([p["score"] for p in printed], [w["score"] for w in want], best64)

    def check_inputs(text: str, enc):
        arrays = arrays_in_dict(text)
        assert list(arrays) == ["input_ids", "attention_mask"]
        for key, values in arrays.items():
            np.testing.assert_array_equal(values, enc[key].ravel())

    # Notebook 000
    check_pipeline("000", "classifier(raw_inputs)", script.NOTEBOOK_000)
    enc = tok(script.NOTEBOOK_000, padding=True, truncation=True, return_tensors="np")
    check_inputs(got[("000", "print(inputs)")], enc)
    hidden32 = torch_run(ckpt, False, enc)
    assert ast.literal_eval(got[("000", "outputs.last_hidden_state.shape")]) == hidden32.shape
    logits32, logits64 = torch_run(ckpt, True, enc), torch_run(ckpt, True, enc, "float64")
    assert ast.literal_eval(got[("000", "outputs.logits.shape")]) == logits32.shape
    predictions = numbers(got[("000", "predictions")]).reshape(logits32.shape)
    check_fp32(predictions, softmax64(logits32, -1), softmax64(logits64, -1))
    assert ast.literal_eval(got[("000", "model.config.id2label")]) == config.id2label

    # Notebook 001
    check_pipeline("001", "classi(pipeline_inputs)", script.NOTEBOOK_001_PIPELINE)
    enc = tok(script.NOTEBOOK_001, padding=True, truncation=True, return_tensors="np")
    check_inputs(got[("001", "tokens")], enc)
    hidden32, hidden64 = torch_run(ckpt, False, enc), torch_run(ckpt, False, enc, "float64")
    printed = numbers(got[("001", "model_output.last_hidden_state")])
    check_fp32(printed, summarised(hidden32), summarised(hidden64))
    assert ast.literal_eval(got[("001", "model_output.last_hidden_state.shape")]) == hidden32.shape
    logits32, logits64 = torch_run(ckpt, True, enc), torch_run(ckpt, True, enc, "float64")
    check_fp32(numbers(got[("001", "output.logits")]).reshape(logits32.shape), logits32, logits64)
    assert ast.literal_eval(got[("001", "output.logits.shape")]) == logits32.shape
    preds64 = softmax64(logits64, 1)
    check_fp32(numbers(got[("001", "preds")]).reshape(logits32.shape), softmax64(logits32, 1), preds64)
    result = numbers(got[("001", "result")]).astype(int)
    np.testing.assert_array_equal(result, preds64.argmax(1))
    assert ast.literal_eval(got[("001", "model.config.id2label")]) == config.id2label
    assert ast.literal_eval(got[("001", "input")]) == script.NOTEBOOK_001
    assert ast.literal_eval(got[("001", "[model.config.id2label[i] for i in result]")]) == [
        config.id2label[int(i)] for i in preds64.argmax(1)
    ]


def test_walkthrough_without_hub_or_cache_says_to_pass_a_directory(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("HF_")}
    env |= {"HF_HOME": str(tmp_path / "hf"), "HF_HUB_OFFLINE": "1"}
    out = run(env=env)  # the default: the notebooks' SST-2 checkpoint, not in this empty cache
    assert out.returncode == 1
    assert "distilbert/distilbert-base-uncased-finetuned-sst-2-english" in out.stderr
    assert "--model DIR" in out.stderr
    assert "Traceback" not in out.stderr
