"""classify_file and `minibert classify --input/--output` at corpus scale: every format in and out, resume after a
partial write or a SIGKILL (every row exactly once, same results), bad rows, the missing-pyarrow message, the
progress bar's ETA, and peak RSS that stays flat while a file 100x larger streams.

Results are checked against transformers with the float32 error model (test_cli.check_rows).
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from test_cli import check_rows, one_error_line, read_output, run, write_input

from minibert import corpus
from minibert.corpus import classify_file

NASTY = ["plain", "", "a, comma", 'a "quoted" word', "two\nlines", "ünï\tcödé", "  spaces  ", "\r\nmixed\r\n",
         "I love it", "I hate it"]


# One BLAS thread in the subprocesses: tiny matrices gain nothing from more, and on a busy machine OpenBLAS's
# spinning threads slow a run down many times over.
ONE_THREAD = os.environ | {"OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"}


@pytest.fixture(scope="module")
def clf(small_ckpt):
    return corpus.load_pipeline(small_ckpt, batch_size=4)


def words(n: int, seed: int = 0) -> list[str]:
    """n short review-like texts drawn from a pool of 200 (so the reference runs on few distinct texts)."""
    rng = random.Random(seed)
    vocab = "the a movie film plot was is great terrible good bad boring loved hated acting it this so very".split()
    pool = [" ".join(rng.choice(vocab) for _ in range(rng.randint(1, 12))) for _ in range(200)]
    return [rng.choice(pool) for _ in range(n)]


# --- formats ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind_in", [".jsonl", ".csv", ".parquet"])
@pytest.mark.parametrize("kind_out", [".jsonl", ".csv", ".parquet"])
def test_every_format_in_and_out(kind_in, kind_out, clf, small_ckpt, tmp_path, torch_ref, hf_tokenizer):
    texts = NASTY * 3  # newlines, quotes, commas, tabs, CR LF inside texts: only .txt cannot hold a newline
    src = write_input(tmp_path / f"in{kind_in}", texts, key="body")
    for top_k in (1, None):
        dst = tmp_path / f"out{top_k}{kind_out}"
        n = classify_file(src, dst, model=clf, column="body", batch_size=4, top_k=top_k, progress=False)
        assert n == len(texts)
        check_rows(read_output(dst), texts, small_ckpt, torch_ref, hf_tokenizer)


def test_txt_lines_field_alias_and_returned_count(clf, small_ckpt, tmp_path, torch_ref, hf_tokenizer):
    texts = [t.replace("\n", " ").replace("\r", "") for t in NASTY]
    src = tmp_path / "in.txt"
    src.write_bytes("".join(t + "\r\n" for t in texts[:-1]).encode() + texts[-1].encode())  # CRLF, no final newline
    assert corpus.count_rows(src) == len(texts)
    assert classify_file(src, tmp_path / "o.jsonl", model=clf, top_k=2) == len(texts)
    rows = read_output(tmp_path / "o.jsonl")
    assert all(len(r["labels"]) == 2 for r in rows)
    check_rows(rows, texts, small_ckpt, torch_ref, hf_tokenizer)

    write_input(tmp_path / "in.jsonl", texts, key="review")
    assert classify_file(tmp_path / "in.jsonl", tmp_path / "o2.jsonl", model=clf, field="review") == len(texts)
    check_rows(read_output(tmp_path / "o2.jsonl"), texts, small_ckpt, torch_ref, hf_tokenizer)


def test_bad_rows_and_files_name_what_is_wrong(clf, tmp_path):
    def fails(path, match, **kw):
        with pytest.raises((ValueError, FileNotFoundError), match=match):
            classify_file(path, tmp_path / "o.jsonl", model=clf, **kw)

    fails(tmp_path / "none.csv", "input file .*none.csv does not exist")
    fails(tmp_path / "x.tsv", r"cannot read \.tsv; use one of \.txt, \.jsonl, \.csv, \.parquet")
    (tmp_path / "a.jsonl").write_text('{"text": "ok"}\n[1, 2]\n')
    fails(tmp_path / "a.jsonl", r"a.jsonl line 2 has no field 'text' \(it has list\)")
    (tmp_path / "b.jsonl").write_text('{"text": "ok"}\n\n')
    fails(tmp_path / "b.jsonl", "b.jsonl line 2 is not valid JSON")
    (tmp_path / "c.csv").write_text("id,body\n1,x\n")
    fails(tmp_path / "c.csv", r"c.csv has no column 'text' \(its columns: \['id', 'body'\]\)")
    (tmp_path / "d.csv").write_text("id,text\n1,x\n2,y,z\n")
    fails(tmp_path / "d.csv", "d.csv line 3 has 3 fields, the header has 2")
    pq.write_table(pa.table({"text": ["a", None, "c"]}), tmp_path / "e.parquet")
    fails(tmp_path / "e.parquet", "column 'text' is null in row 1")
    pq.write_table(pa.table({"text": [1, 2]}), tmp_path / "f.parquet")
    fails(tmp_path / "f.parquet", "column 'text' has type int64, not string")
    (tmp_path / "g.txt").write_bytes(b"fine\n\xff\xfe\n")
    fails(tmp_path / "g.txt", r"g.txt line 2 is not valid UTF-8 \(invalid start byte at byte 0\)")
    with pytest.raises(ValueError, match="top_k must be a positive int or None, got 0"):
        classify_file(tmp_path / "g.txt", tmp_path / "o.jsonl", model=clf, top_k=0)
    with pytest.raises(ValueError, match=r"o.txt: cannot write \.txt; use one of \.jsonl, \.csv, \.parquet"):
        classify_file(tmp_path / "g.txt", tmp_path / "o.txt", model=clf)


# --- resume ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", [".jsonl", ".csv"])
def test_resume_cuts_a_partial_last_row_and_appends(kind, clf, tmp_path, small_ckpt, torch_ref, hf_tokenizer):
    """A run 'killed' inside row k (the file cut mid-record; for CSV also inside a quoted field, after the
    newline it holds): resume keeps rows < k untouched, recomputes from k, and gives every row once."""
    texts = NASTY * 4
    src = write_input(tmp_path / "in.jsonl", texts)
    full = tmp_path / f"full{kind}"
    classify_file(src, full, model=clf, batch_size=4, top_k=None)
    data, want = full.read_bytes(), read_output(full)
    k = 2 * len(NASTY) + NASTY.index("two\nlines")
    needle = b"two\nlines" if kind == ".csv" else b"two\\nlines"
    start = data.index(needle, data.index(needle, data.index(needle) + 1) + 1)  # its third occurrence: row k
    for cut in (start + 2, start + 5):  # before and after the newline inside the quoted field
        part = tmp_path / f"part{kind}"
        part.write_bytes(data[:cut])
        n = classify_file(src, part, model=clf, batch_size=4, top_k=None, resume=True)
        assert n == len(texts) - k
        got = read_output(part)
        assert got[:k] == want[:k]  # kept as they were
        assert [r["labels"] for r in got] == [r["labels"] for r in want]
        check_rows(got, texts, small_ckpt, torch_ref, hf_tokenizer)  # every text once, in order, right results
    # resuming a finished output does nothing; resuming with a shorter input is refused
    before = part.read_bytes()
    assert classify_file(src, part, model=clf, batch_size=4, top_k=None, resume=True) == 0
    assert part.read_bytes() == before
    short = write_input(tmp_path / "short.jsonl", texts[:5])
    with pytest.raises(ValueError, match=f"output already has {len(texts)} rows, the input only 5"):
        classify_file(short, part, model=clf, top_k=None, resume=True)
    if kind == ".csv":  # a CSV written with other columns (top_k) cannot be continued
        with pytest.raises(ValueError, match="header"):
            classify_file(src, part, model=clf, top_k=1, resume=True)


def test_parquet_resume_counts_whole_parts(clf, tmp_path, monkeypatch, small_ckpt, torch_ref, hf_tokenizer):
    monkeypatch.setattr(corpus, "PARQUET_ROWS", 8)
    texts = NASTY * 5
    src = write_input(tmp_path / "in.parquet", texts)
    out = tmp_path / "out.parquet"

    def failing(n):  # the input fails after n rows (a bad row); the pipeline first finishes the rows before it
        yield from texts[:n]
        raise ValueError("row 21 is bad")

    writer = corpus.open_output(out, top_k=1, num_labels=3)
    with pytest.raises(ValueError, match="row 21 is bad"):
        corpus.run(clf, failing(21), writer, batch_size=4)
    assert not out.exists()  # never a footer-less file: the rows done are whole part files
    parts = sorted((tmp_path / "out.parquet.parts").iterdir())
    sizes = [pq.read_metadata(p).num_rows for p in parts]
    assert sizes == [8, 8, 5]
    assert [r["text"] for p in parts for r in pq.read_table(p).to_pylist()] == texts[: sum(sizes)]
    (tmp_path / "out.parquet.parts" / "part-00000009.parquet.tmp").write_bytes(b"PAR1 half a part")

    assert classify_file(src, out, model=clf, batch_size=4, resume=True) == len(texts) - sum(sizes)
    check_rows(read_output(out), texts, small_ckpt, torch_ref, hf_tokenizer)
    assert pq.ParquetFile(out).metadata.num_row_groups == len(parts) + -(-(len(texts) - sum(sizes)) // 8)
    assert not (tmp_path / "out.parquet.parts").exists()

    more = write_input(tmp_path / "more.parquet", texts + texts[:7])  # the input grew: a finished output continues
    assert classify_file(more, out, model=clf, batch_size=4, resume=True) == 7
    check_rows(read_output(out), texts + texts[:7], small_ckpt, torch_ref, hf_tokenizer)


@pytest.mark.parametrize("kind", [".jsonl", ".parquet"])
def test_sigkill_then_resume_gives_every_row_once(kind, small_ckpt, tmp_path, torch_ref, hf_tokenizer):
    """The command SIGKILLed mid-run, then --resume: the output has every input row exactly once, in order, with
    the same results as an uninterrupted run (both within the error model of transformers, labels equal)."""
    texts = words(6_000)  # the parquet run is killed after its first part of 4096 rows
    src = write_input(tmp_path / "in.txt", texts)
    args = [sys.executable, "-m", "minibert", "classify", "--model", str(small_ckpt), "-i", str(src),
            "--batch-size", "32"]
    out = tmp_path / f"out{kind}"
    proc = subprocess.Popen([*args, "-o", str(out)], stderr=subprocess.PIPE, env=ONE_THREAD)
    progress = out.with_name(out.name + ".parts") / "part-00000000.parquet" if kind == ".parquet" else out
    deadline = time.monotonic() + 120
    while not (progress.exists() and progress.stat().st_size > 10_000) and time.monotonic() < deadline:
        assert proc.poll() is None, proc.stderr.read()
        time.sleep(0.02)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL
    if kind == ".jsonl":
        done = out.read_bytes().count(b"\n")
        assert 0 < done < len(texts), "the kill must land mid-run"
    else:
        assert not out.exists() and len(list(progress.parent.glob("part-*.parquet"))) == 1

    resumed = subprocess.run([*args, "-o", str(out), "--resume"], capture_output=True, text=True, env=ONE_THREAD)
    assert resumed.returncode == 0, resumed.stderr
    whole = tmp_path / f"whole{kind}"
    uninterrupted = subprocess.run([*args, "-o", str(whole)], capture_output=True, text=True, env=ONE_THREAD)
    assert uninterrupted.returncode == 0, uninterrupted.stderr

    got, want = read_output(out), read_output(whole)
    assert [r["text"] for r in got] == texts  # every row exactly once, in input order
    assert [r["label"] for r in got] == [r["label"] for r in want]
    check_rows(got, texts, small_ckpt, torch_ref, hf_tokenizer)
    check_rows(want, texts, small_ckpt, torch_ref, hf_tokenizer)


# --- the command: progress, missing extra, memory ------------------------------------------------------------


def test_progress_bar_with_eta_from_parquet_metadata(small_ckpt, tmp_path):
    src = write_input(tmp_path / "in.parquet", NASTY * 4)
    out = run("classify", "--model", small_ckpt, "-i", src, "--json", "--batch-size", "4", "--progress")
    assert out.returncode == 0, out.stderr
    assert len(out.stdout.splitlines()) == 40  # the bar never reaches stdout
    assert "40/40" in out.stderr and "texts/s" in out.stderr


def test_missing_pyarrow_names_the_extra(small_ckpt, tmp_path):
    blocker = (
        "import sys\n"
        "class Block:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name == 'pyarrow' or name.startswith('pyarrow.'):\n"
        "            raise ImportError(f'No module named {name!r} (blocked by the test)')\n"
        "sys.meta_path.insert(0, Block())\n"
        "from minibert.cli import main\n"
        "sys.exit(main(sys.argv[1:]))\n"
    )
    src = write_input(tmp_path / "in.parquet", ["a", "b"])
    write_input(tmp_path / "in.txt", ["a", "b"])
    for io_args in (["-i", src], ["-i", tmp_path / "in.txt", "-o", tmp_path / "o.parquet"]):
        out = subprocess.run([sys.executable, "-c", blocker, "classify", "--model", str(small_ckpt),
                              *map(str, io_args)], capture_output=True, text=True)
        line = one_error_line(out)
        assert 'pip install "minibert[parquet]"' in line
    assert not (tmp_path / "o.parquet").exists()


@pytest.fixture(scope="module")
def tiny_ckpt(tmp_path_factory):
    """dim 32, 1 layer: the memory test measures the streaming, not the model."""
    from checkpoints import make_random_distilbert

    return make_random_distilbert(tmp_path_factory.mktemp("tiny"), dim=32, n_heads=2, n_layers=1, hidden_dim=64,
                                  num_labels=2, seed=7)


REPORT_PEAK = """
import sys
from minibert.cli import main
code = main(sys.argv[1:])
print(next(line for line in open("/proc/self/status") if line.startswith("VmHWM")), file=sys.stderr)
sys.exit(code)
"""


def peak_rss_mb(args: list[str]) -> float:
    """Peak RSS of one `minibert` run: its own VmHWM at exit. (Not the child's rusage: ru_maxrss also counts the
    pages the child had right after fork, i.e. this big pytest process's.)"""
    out = subprocess.run([sys.executable, "-c", REPORT_PEAK, *args], capture_output=True, text=True, env=ONE_THREAD)
    assert out.returncode == 0, out.stderr
    return int(out.stderr.split("VmHWM:")[1].split()[0]) / 1024  # kB


def test_peak_rss_flat_while_a_big_file_streams(tiny_ckpt, tmp_path):
    """24 MB of lines vs 100x fewer: peak RSS may grow by at most half the big file's size. Reading the input
    whole, or keeping the rows (they hold the texts), would grow it by at least the file's size.

    Each line is three 330-letter words: WordPiece turns a word of more than 100 characters into [UNK] at once,
    so a line is 5 tokens and the run is bound by reading and writing bytes, not by the model."""
    rng = random.Random(0)
    pool = [" ".join("".join(rng.choices("abcdefghijklmnopqrstuvwxyz", k=330)) for _ in range(3)) + "\n"
            for _ in range(500)]
    big, small = tmp_path / "big.txt", tmp_path / "small.txt"
    with open(big, "w") as f:
        for _ in range(48):
            f.writelines(pool)
    with open(small, "w") as f:
        f.writelines(pool[:240])
    size_mb = big.stat().st_size / 2**20
    assert size_mb > 20
    common = ["classify", "--model", str(tiny_ckpt), "--batch-size", "64", "--no-progress"]
    rss_small = peak_rss_mb([*common, "-i", str(small), "-o", str(tmp_path / "small.jsonl")])
    rss_big = peak_rss_mb([*common, "-i", str(big), "-o", str(tmp_path / "big.jsonl")])
    print(f"peak RSS {rss_small:.0f} MB on {small.stat().st_size / 2**20:.2f} MB, {rss_big:.0f} MB on {size_mb:.0f} MB")
    assert rss_big - rss_small < size_mb / 2, (rss_small, rss_big)
    with open(tmp_path / "big.jsonl", "rb") as f:
        assert sum(1 for _ in f) == 48 * 500
    assert json.loads((tmp_path / "big.jsonl").read_text().splitlines()[-1])["text"] == pool[-1].rstrip("\n")


def test_classify_file_is_exported():
    import minibert

    assert minibert.classify_file is classify_file and "classify_file" in minibert.__all__
