"""The `minibert` command end to end, in subprocesses, on the small local checkpoint (the hub is unreachable here).

Every label and score is checked against transformers on the same checkpoint with the float32 error model
(error_model.py): float64 truth from transformers' `model.double()`, minibert's error <= 2x torch-fp32's + floor;
a label may differ from the reference's only in a near tie (the two probabilities within twice that bound).
Human-readable output prints 4 decimals, so its bound adds half a unit of the 4th decimal.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from error_model import check_fp32, fp32_bound

import minibert

TEXTS = ["I've been waiting for a HuggingFace course my whole life.", "I hate this so much!", "",
         "Ünïcödé, commas, \"quotes\"\tand a tab", "so-so"]
BIN = Path(sys.executable).parent


def run(*args, stdin: str | None = None, env=None, script: bool = False) -> subprocess.CompletedProcess:
    cmd = [str(BIN / "minibert")] if script else [sys.executable, "-m", "minibert"]
    return subprocess.run([*cmd, *map(str, args)], input=stdin, capture_output=True, text=True, env=env,
                          encoding="utf-8")


def json_lines(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines()]


def reference_probs(texts, ckpt, torch_ref, hf_tokenizer) -> tuple[np.ndarray, np.ndarray]:
    """transformers' softmax probabilities [N, L] for texts: (float32 run, float64 run)."""
    import torch

    enc = hf_tokenizer(ckpt)(list(texts), padding=True, truncation=True, return_tensors="np")
    probs = []
    for dtype in ("float32", "float64"):
        logits = torch_ref(ckpt, True, enc["input_ids"], enc["attention_mask"], dtype=dtype)
        probs.append(torch.softmax(torch.from_numpy(logits), dim=-1).numpy())
    return probs[0], probs[1]


def check_rows(rows: list[dict], texts, ckpt, torch_ref, hf_tokenizer, *, rounding: float = 0.0) -> None:
    """rows ({text, label, score} or {text, labels, scores}) are `texts` in order, with transformers' labels and
    probabilities within the float32 error model (plus `rounding` for printed values)."""
    assert [r["text"] for r in rows] == list(texts)
    if not rows:
        return
    p32, p64 = reference_probs(texts, ckpt, torch_ref, hf_tokenizer)
    label2id = minibert.AutoConfig.from_pretrained(ckpt).label2id
    labels = [r["labels"] if "labels" in r else [r["label"]] for r in rows]
    ids = np.array([[label2id[name] for name in row] for row in labels])  # [N, k]
    got = np.array([r["scores"] if "scores" in r else [r["score"]] for r in rows])  # [N, k]
    ref64, ref32 = np.take_along_axis(p64, ids, 1), np.take_along_axis(p32, ids, 1)
    if rounding:
        bound = fp32_bound(ref32, ref64) + rounding
        assert np.abs(got - ref64).max() <= bound
    else:
        check_fp32(got, ref32, ref64)
        bound = fp32_bound(ref32, ref64)
    ranked = -np.sort(-p64, axis=1)[:, : ids.shape[1]]  # reference probabilities, best first
    near = ref64 >= ranked - 2 * bound  # each named label is the reference's at that rank, up to a near tie
    assert near.all(), f"labels differ from transformers' beyond a near tie in rows {np.where(~near.all(1))[0]}"
    assert all(len(set(row)) == len(row) for row in ids.tolist())


def parse_human(stdout: str) -> list[dict]:
    rows = []
    for line in stdout.splitlines():
        results, text = line.split("\t", 1)
        pairs = [item.rsplit(" ", 1) for item in results.split(", ")]
        rows.append({"text": text, "labels": [p[0] for p in pairs], "scores": [float(p[1]) for p in pairs]})
    return rows


# --- texts as arguments, stdin, output formats on stdout -------------------------------------------


def test_arguments_print_label_and_score_per_line(small_ckpt, torch_ref, hf_tokenizer):
    out = run("classify", "--model", small_ckpt, *TEXTS)
    assert out.returncode == 0, out.stderr
    assert out.stderr == ""
    check_rows(parse_human(out.stdout), TEXTS, small_ckpt, torch_ref, hf_tokenizer, rounding=0.5e-4)


def test_json_top_k_and_all_labels(small_ckpt, torch_ref, hf_tokenizer):
    out = run("classify", "--model", small_ckpt, "--json", *TEXTS)
    assert out.returncode == 0, out.stderr
    rows = json_lines(out.stdout)
    assert all(set(r) == {"text", "label", "score"} for r in rows)
    check_rows(rows, TEXTS, small_ckpt, torch_ref, hf_tokenizer)

    out = run("classify", "--model", small_ckpt, "--json", "--top-k", "all", *TEXTS)
    assert out.returncode == 0, out.stderr
    rows = json_lines(out.stdout)
    assert all(set(r) == {"text", "labels", "scores"} and len(r["labels"]) == 3 for r in rows)
    assert all(r["scores"] == sorted(r["scores"], reverse=True) for r in rows)
    check_rows(rows, TEXTS, small_ckpt, torch_ref, hf_tokenizer)

    human = run("classify", "--model", small_ckpt, "--top-k", "2", *TEXTS)
    rows = parse_human(human.stdout)
    assert all(len(r["labels"]) == 2 for r in rows)
    check_rows(rows, TEXTS, small_ckpt, torch_ref, hf_tokenizer, rounding=0.5e-4)


def test_stdin_one_text_per_line_and_options(small_ckpt, torch_ref, hf_tokenizer):
    texts = [t for t in TEXTS if "\t" not in t] * 7  # 28 lines, several batches of 3
    stdin = "\n".join(texts) + "\n"
    out = run("classify", "--model", small_ckpt, "--json", "--batch-size", "3", "--backend", "numpy",
              stdin=stdin)
    assert out.returncode == 0, out.stderr
    assert out.stderr == ""  # stderr is not a terminal: no progress bar unless asked
    check_rows(json_lines(out.stdout), texts, small_ckpt, torch_ref, hf_tokenizer)

    out = run("classify", "--model", small_ckpt, "--json", "--batch-size", "3", "--progress", stdin=stdin)
    assert out.returncode == 0, out.stderr
    check_rows(json_lines(out.stdout), texts, small_ckpt, torch_ref, hf_tokenizer)  # stdout: rows only
    assert "28 texts" in out.stderr and "texts/s" in out.stderr


def test_float64_mode_matches_transformers_double(small_ckpt, torch_ref, hf_tokenizer):
    from test_parity import FLOAT64_ATOL

    out = run("classify", "--model", small_ckpt, "--json", "--top-k", "all", "--dtype", "float64", *TEXTS)
    assert out.returncode == 0, out.stderr
    rows = json_lines(out.stdout)
    _, p64 = reference_probs(TEXTS, small_ckpt, torch_ref, hf_tokenizer)
    label2id = minibert.AutoConfig.from_pretrained(small_ckpt).label2id
    for row, ref in zip(rows, p64, strict=True):
        assert row["labels"] == [minibert.AutoConfig.from_pretrained(small_ckpt).id2label[i] for i in
                                 np.argsort(-ref)]
        np.testing.assert_allclose(row["scores"], ref[[label2id[la] for la in row["labels"]]], rtol=0,
                                   atol=FLOAT64_ATOL)


def test_console_script_and_module_are_the_same_command(small_ckpt):
    if not (BIN / "minibert").exists():
        pytest.skip("the console script is installed by `pip install -e .`")
    a = run("classify", "--model", small_ckpt, "--json", *TEXTS, script=True)
    b = run("classify", "--model", small_ckpt, "--json", *TEXTS)
    assert a.returncode == b.returncode == 0
    assert a.stdout == b.stdout
    version = run("--version", script=True)
    assert version.stdout.strip() == f"minibert {minibert.__version__}"


def test_bare_command_prints_help_and_version():
    out = run()
    assert out.returncode == 0
    assert out.stdout.startswith("usage: minibert") and "classify" in out.stdout and "explain" in out.stdout
    assert run("--version").stdout.strip() == f"minibert {minibert.__version__}"


# --- files in and out (more in test_corpus.py) -------------------------------------------------------


def write_input(path: Path, texts: list[str], key: str = "text") -> Path:
    import csv

    if path.suffix == ".txt":
        path.write_text("".join(t + "\n" for t in texts), encoding="utf-8")
    elif path.suffix == ".jsonl":
        path.write_text("".join(json.dumps({"id": i, key: t}) + "\n" for i, t in enumerate(texts)), encoding="utf-8")
    elif path.suffix == ".csv":
        with open(path, "w", newline="", encoding="utf-8") as f:
            w = csv.writer(f)
            w.writerow(["id", key])
            w.writerows(enumerate(texts))
    else:
        import pyarrow as pa
        import pyarrow.parquet as pq

        pq.write_table(pa.table({"id": list(range(len(texts))), key: texts}), path, row_group_size=4)
    return path


def read_output(path: Path) -> list[dict]:
    import csv

    if path.suffix == ".jsonl":
        return json_lines(path.read_text(encoding="utf-8"))
    if path.suffix == ".csv":
        with open(path, newline="", encoding="utf-8") as f:
            rows = list(csv.DictReader(f))
        if "label" in rows[0]:
            return [{"text": r["text"], "label": r["label"], "score": float(r["score"])} for r in rows]
        k = (len(rows[0]) - 1) // 2
        return [{"text": r["text"], "labels": [r[f"label_{i}"] for i in range(1, k + 1)],
                 "scores": [float(r[f"score_{i}"]) for i in range(1, k + 1)]} for r in rows]
    import pyarrow.parquet as pq

    return pq.read_table(path).to_pylist()


@pytest.mark.parametrize("kind_in, kind_out, top_k", [
    (".txt", ".jsonl", "1"),
    (".jsonl", ".csv", "all"),
    (".csv", ".parquet", "2"),
    (".parquet", None, "1"),  # stdout, JSON lines
])
def test_each_file_kind_in_and_out(kind_in, kind_out, top_k, small_ckpt, tmp_path, torch_ref, hf_tokenizer):
    texts = TEXTS * 2  # in .txt too: an empty line is an empty text
    col = {".txt": [], ".jsonl": ["--field", "review"]}.get(kind_in, ["--column", "review"])
    path = write_input(tmp_path / f"in{kind_in}", texts, key="review")
    out_args = ["--json"] if kind_out is None else ["-o", tmp_path / f"out{kind_out}"]
    out = run("classify", "--model", small_ckpt, "--batch-size", "3", "--top-k", top_k, "-i", path, *col, *out_args)
    assert out.returncode == 0, out.stderr
    if kind_out is None:
        rows = json_lines(out.stdout)
    else:
        assert out.stdout == ""
        rows = read_output(tmp_path / f"out{kind_out}")
        assert not (tmp_path / f"out{kind_out}.parts").exists()
    assert all(("label" in r) == (top_k == "1") for r in rows)
    assert all(len(r.get("labels", [0])) == {"1": 1, "2": 2, "all": 3}[top_k] for r in rows)
    check_rows(rows, texts, small_ckpt, torch_ref, hf_tokenizer)


# --- empty input, usage errors (exit 2) and runtime errors (exit 1, one line) -----------------------------


def test_empty_input_no_output(small_ckpt, tmp_path):
    out = run("classify", "--model", small_ckpt, stdin="")
    assert (out.returncode, out.stdout, out.stderr) == (0, "", "")
    empty = tmp_path / "empty.txt"
    empty.write_text("")
    out = run("classify", "--model", small_ckpt, "--json", "-i", empty)
    assert (out.returncode, out.stdout, out.stderr) == (0, "", "")
    out = run("classify", "--model", small_ckpt, "-i", empty, "-o", tmp_path / "o.jsonl")
    assert (out.returncode, out.stderr) == (0, "")
    assert (tmp_path / "o.jsonl").read_text() == ""


USAGE_ERRORS = [
    ["--bogus"],
    ["classify", "--bogus", "x"],
    ["classify", "--top-k", "0", "x"],
    ["classify", "--top-k", "many", "x"],
    ["classify", "--batch-size", "0", "x"],
    ["classify", "--dtype", "float16", "x"],
    ["classify", "--backend", "torch", "x"],
    ["classify", "--input", "a.txt", "x"],  # texts and a file
    ["classify", "--resume", "x"],  # resume without an output
    ["nosuchcommand"],
]


@pytest.mark.parametrize("args", USAGE_ERRORS)
def test_usage_errors_exit_2(args, capsys):
    """argparse's own exit 2, in-process (each case in a subprocess would only add interpreter start-ups)."""
    from minibert.cli import main

    with pytest.raises(SystemExit) as e:
        main(args)
    assert e.value.code == 2
    out = capsys.readouterr()
    assert out.out == "" and "usage: minibert" in out.err


def test_usage_error_in_a_subprocess():
    out = run("classify", "--top-k", "0", "x")
    assert out.returncode == 2 and out.stdout == ""
    assert "usage: minibert classify" in out.stderr and "--top-k: must be a positive integer" in out.stderr
    assert "Traceback" not in out.stderr


def one_error_line(out: subprocess.CompletedProcess, stdout: str = "") -> str:
    assert out.returncode == 1, out
    assert out.stdout == stdout
    lines = out.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), out.stderr
    return lines[0]


def test_runtime_errors_exit_1_with_one_line(small_ckpt, tmp_path):
    line = one_error_line(run("classify", "--model", small_ckpt, "-i", tmp_path / "missing.txt"))
    assert "missing.txt" in line and "does not exist" in line

    bad = tmp_path / "bad_model"
    shutil.copytree(small_ckpt, bad)
    (bad / "config.json").unlink()
    line = one_error_line(run("classify", "--model", bad, "x"))
    assert "config.json" in line and str(bad) in line

    line = one_error_line(run("classify", "--model", small_ckpt, "-i", tmp_path / "in.xml"))
    assert ".xml" in line and ".parquet" in line
    line = one_error_line(run("classify", "--model", small_ckpt, "-o", tmp_path / "out.txt", "x"))
    assert "out.txt" in line and ".jsonl" in line

    rows = tmp_path / "rows.jsonl"
    rows.write_text('{"text": "fine"}\n{"text": 3}\n')
    out = run("classify", "--model", small_ckpt, "-i", rows, "--json")
    line = one_error_line(out, stdout=out.stdout)
    assert [r["text"] for r in json_lines(out.stdout)] == ["fine"]  # the rows before the bad one, then the error
    assert "line 2" in line and "'text'" in line and "int" in line
    line = one_error_line(run("classify", "--model", small_ckpt, "-i", rows, "--field", "body"))
    assert "no field 'body'" in line

    debug = run("classify", "--model", bad, "x", "--debug")
    assert debug.returncode == 1 and "Traceback" in debug.stderr and "config.json" in debug.stderr
    assert run("--debug", "classify", "--model", bad, "x").stderr.count("Traceback") == 1


def test_checkpoint_not_found_offline_exits_1(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("HF_")}
    env |= {"HF_HOME": str(tmp_path / "hf"), "HF_HUB_OFFLINE": "1"}
    line = one_error_line(run("classify", "I love it", env=env))  # the default checkpoint, not in this empty cache
    assert "distilbert/distilbert-base-uncased-finetuned-sst-2-english" in line
    assert "local directory" in line
