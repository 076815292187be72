"""classify_file(): a corpus file in, one result per row out, streamed with constant memory.

    rows of the input file          .txt (a text a line), .jsonl (field), .csv (column), .parquet (column)
      -> the pipeline               texts in, ranked {"label", "score"} lists out, input order kept
      -> rows of the output file    .jsonl, .csv or .parquet: text, label, score (or labels, scores)

Nothing is read or kept whole: readers are generators, the pipeline consumes an iterator, and results are
written and flushed every `batch_size` rows, so a killed run loses at most the rows not yet flushed.
`resume=True` counts the complete rows already in the output, skips that many input rows and appends.

Parquet needs pyarrow (pip install "minibert[parquet]"). A Parquet file is unreadable until its footer
is written at the very end, so a Parquet output is built as complete part files in `OUTPUT.parts/`
(one per PARQUET_ROWS rows, each written to a temporary name and renamed, so a part is either whole
or absent) and merged into OUTPUT, one row group per part, when the input is done. The part is the
unit of resume: a killed run loses the rows of the part it was filling and recomputes them.
"""

from __future__ import annotations

import csv
import itertools
import json
import os
import shutil
import sys
from collections import deque
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, BinaryIO, TextIO

INPUTS = (".txt", ".jsonl", ".csv", ".parquet")
OUTPUTS = (".jsonl", ".csv", ".parquet")
PARQUET_EXTRA = 'pip install "minibert[parquet]"'
PARQUET_ROWS = 4096  # rows per Parquet part (= row group of the output): the unit of resume
READ_ROWS = 1024  # rows per record batch read from a Parquet input

Ranked = list[dict[str, Any]]  # one text's [{"label", "score"}, ...], best first (the pipeline's top_k output)


# ---------------------------------------------------------------------------------------------
# Formats.


def _format(path: str | os.PathLike, allowed: tuple[str, ...], what: str) -> str:
    ext = Path(path).suffix.lower()
    if ext not in allowed:
        raise ValueError(f"{path}: cannot {what} {ext or 'a file without extension'}; use one of {', '.join(allowed)}")
    return ext


def _pyarrow():
    try:
        import pyarrow
        import pyarrow.parquet
    except ImportError as e:
        raise ImportError(f"reading or writing .parquet files needs pyarrow: {PARQUET_EXTRA}") from e
    return pyarrow, pyarrow.parquet


# ---------------------------------------------------------------------------------------------
# Reading: generators of texts, one per row, with errors that name the file and the row.


def read_lines(f: BinaryIO, name: str) -> Iterator[str]:
    """A text a line of a binary stream, decoded as UTF-8. Only "\n" ends a line (a "\r" before it is
    dropped, so CRLF files work); an empty line is an empty text."""
    for i, line in enumerate(f, 1):
        try:
            yield line.removesuffix(b"\n").removesuffix(b"\r").decode("utf-8")
        except UnicodeDecodeError as e:
            raise ValueError(f"{name} line {i} is not valid UTF-8 ({e.reason} at byte {e.start})") from None


def _read_txt(path: Path, column: str) -> Iterator[str]:
    with open(path, "rb") as f:
        yield from read_lines(f, str(path))


def _read_jsonl(path: Path, field: str) -> Iterator[str]:
    with open(path, "rb") as f:
        for i, line in enumerate(read_lines(f, str(path)), 1):
            try:
                row = json.loads(line)
            except json.JSONDecodeError as e:
                raise ValueError(f"{path} line {i} is not valid JSON: {e.msg}") from None
            if not isinstance(row, dict) or field not in row:
                keys = sorted(row) if isinstance(row, dict) else type(row).__name__
                raise ValueError(f"{path} line {i} has no field {field!r} (it has {keys}); choose one with --field")
            if not isinstance(row[field], str):
                raise ValueError(f"{path} line {i}: field {field!r} is {type(row[field]).__name__}, not a string")
            yield row[field]


def _read_csv(path: Path, column: str) -> Iterator[str]:
    with open(path, encoding="utf-8", newline="") as f:
        reader = csv.reader(f)
        try:
            header = next(reader, None)
            if header is None:
                return
            if column not in header:
                raise ValueError(f"{path} has no column {column!r} (its columns: {header}); choose one with --column")
            j = header.index(column)
            for row in reader:
                if len(row) != len(header):
                    raise ValueError(
                        f"{path} line {reader.line_num} has {len(row)} fields, the header has {len(header)}"
                    )
                yield row[j]
        except UnicodeDecodeError as e:
            raise ValueError(f"{path}: the text after line {reader.line_num} is not valid UTF-8 ({e.reason})") from None


def _read_parquet(path: Path, column: str) -> Iterator[str]:
    pa, pq = _pyarrow()
    pf = pq.ParquetFile(path)
    field = pf.schema_arrow.field(column) if column in pf.schema_arrow.names else None
    if field is None:
        raise ValueError(f"{path} has no column {column!r} (its columns: {pf.schema_arrow.names}); use --column")
    if not (pa.types.is_string(field.type) or pa.types.is_large_string(field.type)):
        raise ValueError(f"{path}: column {column!r} has type {field.type}, not string")
    start = 0
    for batch in pf.iter_batches(batch_size=READ_ROWS, columns=[column]):
        texts = batch.column(0)
        if texts.null_count:
            raise ValueError(f"{path}: column {column!r} is null in row {start + texts.is_null().index(True).as_py()}")
        yield from texts.to_pylist()
        start += len(texts)


READERS = {".txt": _read_txt, ".jsonl": _read_jsonl, ".csv": _read_csv, ".parquet": _read_parquet}


def count_rows(path: str | os.PathLike) -> int | None:
    """The input's row count when it is cheap to know (for the progress bar's ETA), else None.
    Parquet: from the footer. .txt and .jsonl: newlines counted in 1 MB chunks (about a second per GB).
    CSV: None (a quoted field may hold newlines, so only parsing counts rows)."""
    path = Path(path)
    ext = path.suffix.lower()
    if ext == ".parquet":
        return _pyarrow()[1].ParquetFile(path).metadata.num_rows
    if ext not in (".txt", ".jsonl"):
        return None
    n, last = 0, b"\n"
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            n, last = n + chunk.count(b"\n"), chunk[-1:]
    return n + (last != b"\n")  # a last line without its newline is a row too


def read_texts(path: str | os.PathLike, column: str = "text") -> Iterator[str]:
    """The texts of a .txt, .jsonl (field `column`), .csv or .parquet (column `column`) file, lazily, in order."""
    path = Path(path)
    ext = _format(path, INPUTS, "read")
    if not path.is_file():
        raise FileNotFoundError(f"input file {path} does not exist" if not path.exists() else f"{path} is not a file")
    if ext == ".parquet":
        _pyarrow()  # the missing-extra message before anything else
    return READERS[ext](path, column)


# ---------------------------------------------------------------------------------------------
# Writing: one row per text, flushed on demand. `done` is the number of complete rows already there (resume).


def result_row(text: str, ranked: Ranked, top_k: int | None) -> dict[str, Any]:
    """The row written for one text: {"text", "label", "score"} for top_k=1, else {"text", "labels", "scores"}."""
    if top_k == 1:
        return {"text": text, "label": ranked[0]["label"], "score": ranked[0]["score"]}
    return {"text": text, "labels": [r["label"] for r in ranked], "scores": [r["score"] for r in ranked]}


class LinesWriter:
    """stdout: `LABEL score<TAB>text` per text (top-k: `A 0.9, B 0.1<TAB>text`), or JSON lines with json=True."""

    def __init__(self, stream: TextIO, *, json: bool = False):
        self.stream, self.json, self.done = stream, json, 0

    def write(self, row: dict[str, Any]) -> None:
        if self.json:
            line = json.dumps(row, ensure_ascii=False)
        elif "label" in row:
            line = f"{row['label']} {row['score']:.4f}\t{row['text']}"
        else:
            line = ", ".join(f"{la} {s:.4f}" for la, s in zip(row["labels"], row["scores"], strict=True))
            line += f"\t{row['text']}"
        self.stream.write(line + "\n")

    def flush(self) -> None:
        self.stream.flush()

    def close(self) -> None:
        self.flush()

    abort = close


def _truncate_to(path: Path, size: int) -> None:
    with open(path, "r+b") as f:
        f.truncate(size)


def _complete_records(path: Path, *, quoted: bool) -> tuple[int, int]:
    """(records, bytes) of the complete "\\n"-terminated records at the start of the file. quoted=True: a newline
    inside a double-quoted CSV field does not end a record (quotes are balanced at a record's end, since the
    csv module doubles quotes inside quoted fields)."""
    records, end, pos, inside = 0, 0, 0, False
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            if not quoted:
                n = chunk.count(b"\n")
                if n:
                    records, end = records + n, pos + chunk.rindex(b"\n") + 1
            else:
                start = 0
                for segment in chunk.split(b"\n")[:-1]:  # each segment is followed by a newline
                    inside ^= segment.count(b'"') % 2 == 1
                    start += len(segment) + 1
                    if not inside:
                        records, end = records + 1, pos + start
                inside ^= chunk[start:].count(b'"') % 2 == 1
            pos += len(chunk)
    return records, end


class JsonlWriter:
    """One JSON object a line. Resume: complete lines are kept, a partial last line is cut off."""

    def __init__(self, path: Path, top_k: int | None, num_labels: int, resume: bool):
        self.done = 0
        if resume and path.exists():
            self.done, size = _complete_records(path, quoted=False)
            _truncate_to(path, size)
        self.f = open(path, "a" if resume else "w", encoding="utf-8", newline="\n")

    def write(self, row: dict[str, Any]) -> None:
        self.f.write(json.dumps(row, ensure_ascii=False) + "\n")

    def flush(self) -> None:
        self.f.flush()

    def close(self) -> None:
        self.f.close()

    abort = close  # what was written stays: resume continues after it


class CsvWriter:
    """text,label,score; with top_k: text,label_1,score_1,...,label_k,score_k (best first). Resume: the complete
    records are kept (a newline inside a quoted text does not end a record), a partial last one is cut off."""

    def __init__(self, path: Path, top_k: int | None, num_labels: int, resume: bool):
        k = num_labels if top_k is None else min(top_k, num_labels)
        self.header = ["text", "label", "score"] if top_k == 1 else ["text"] + [
            f"{name}_{i}" for i in range(1, k + 1) for name in ("label", "score")
        ]
        self.done = 0
        if resume and path.exists():
            records, size = _complete_records(path, quoted=True)
            if records:
                with open(path, encoding="utf-8", newline="") as f:
                    header = next(csv.reader(f))
                if header != self.header:
                    raise ValueError(f"cannot resume {path}: its header {header} is not {self.header} (other --top-k?)")
                self.done = records - 1
            _truncate_to(path, size)
            resume = records > 0
        self.f = open(path, "a" if resume else "w", encoding="utf-8", newline="")
        self.writer = csv.writer(self.f, lineterminator="\n")
        if not resume:
            self.writer.writerow(self.header)

    def write(self, row: dict[str, Any]) -> None:
        if "label" in row:
            self.writer.writerow([row["text"], row["label"], row["score"]])
        else:
            self.writer.writerow([row["text"], *itertools.chain(*zip(row["labels"], row["scores"], strict=True))])

    def flush(self) -> None:
        self.f.flush()

    def close(self) -> None:
        self.f.close()

    abort = close  # what was written stays: resume continues after it


class ParquetWriter:
    """Complete part files in OUTPUT.parts/ (PARQUET_ROWS rows each), merged into OUTPUT at close, one row group
    per part. Resume: the whole parts count (a finished OUTPUT becomes the first part), the rest is recomputed."""

    def __init__(self, path: Path, top_k: int | None, num_labels: int, resume: bool):
        self.pa, self.pq = _pyarrow()
        pa = self.pa
        self.path, self.parts = path, path.with_name(path.name + ".parts")
        self.schema = pa.schema(
            [("text", pa.string()), ("label", pa.string()), ("score", pa.float64())] if top_k == 1 else
            [("text", pa.string()), ("labels", pa.list_(pa.string())), ("scores", pa.list_(pa.float64()))]
        )
        self.rows: list[dict[str, Any]] = []
        if not resume:
            shutil.rmtree(self.parts, ignore_errors=True)
        self.parts.mkdir(parents=True, exist_ok=True)
        for tmp in self.parts.glob("*.tmp"):
            tmp.unlink()  # a part a killed run was writing
        if resume and path.exists() and not any(self.parts.iterdir()):
            path.rename(self.parts / "part-00000000.parquet")  # a finished output: continue after its rows
        self.n_parts = len(self._part_files())
        self.done = 0
        for part in self._part_files():
            schema = self.pq.read_schema(part)
            if not schema.equals(self.schema):
                raise ValueError(f"cannot resume {path}: {part} has columns {schema.names}, not {self.schema.names}")
            self.done += self.pq.read_metadata(part).num_rows

    def _part_files(self) -> list[Path]:
        return sorted(self.parts.glob("part-*.parquet"))

    def write(self, row: dict[str, Any]) -> None:
        self.rows.append(row)
        if len(self.rows) == PARQUET_ROWS:
            self._write_part()

    def _write_part(self) -> None:
        part = self.parts / f"part-{self.n_parts:08d}.parquet"
        self.pq.write_table(self.pa.Table.from_pylist(self.rows, schema=self.schema), f"{part}.tmp")
        os.replace(f"{part}.tmp", part)  # atomic: a part is whole or absent
        self.n_parts, self.rows = self.n_parts + 1, []

    def flush(self) -> None:
        pass  # rows reach the disk a whole part at a time

    def close(self) -> None:
        if self.rows:
            self._write_part()
        tmp = self.path.with_name(self.path.name + ".tmp")
        with self.pq.ParquetWriter(tmp, self.schema) as writer:
            for part in self._part_files():
                writer.write_table(self.pq.read_table(part))  # one part in memory at a time
        os.replace(tmp, self.path)
        shutil.rmtree(self.parts)

    def abort(self) -> None:
        """A failed or interrupted run: keep the rows done as parts, for resume; no merge."""
        if self.rows:
            self._write_part()


WRITERS = {".jsonl": JsonlWriter, ".csv": CsvWriter, ".parquet": ParquetWriter}


def check_output(path: str | os.PathLike) -> None:
    """A ValueError for an unknown output format, an ImportError naming the extra when pyarrow is missing."""
    if _format(path, OUTPUTS, "write") == ".parquet":
        _pyarrow()


def open_output(path: str | os.PathLike, *, top_k: int | None, num_labels: int, resume: bool = False):
    """A writer for `path` by its extension; `.done` is the number of complete rows kept from a previous run."""
    path = Path(path)
    return WRITERS[_format(path, OUTPUTS, "write")](path, top_k, num_labels, resume)


# ---------------------------------------------------------------------------------------------
# The stream: texts -> pipeline -> rows.


def load_pipeline(
    model: Any = None,
    *,
    revision: str | None = None,
    backend: str | None = None,
    dtype: str = "float32",
    batch_size: int = 32,
):
    """A TextClassificationPipeline: `model` is a hub id, a local directory, None (the default checkpoint), or
    an already built pipeline (returned as is)."""
    import minibert

    if isinstance(model, minibert.TextClassificationPipeline):
        return model
    return minibert.pipeline("text-classification", model, revision=revision, backend=backend, dtype=dtype,
                             batch_size=batch_size)


def classify_stream(
    clf,
    texts: Iterable[str],
    writer,
    *,
    top_k: int | None = 1,
    batch_size: int = 32,
    progress: bool | None = None,
    total: int | None = None,
) -> int:
    """Classify `texts` (skipping the writer's `done` rows), write a row per text in order, flush every
    `batch_size` rows; returns the number of rows written now. progress: True/False, or None for a bar when
    stderr is a terminal and the input is longer than one batch."""
    texts = iter(texts)
    skipped = sum(1 for _ in itertools.islice(texts, writer.done))
    if skipped < writer.done:
        raise ValueError(f"cannot resume: the output already has {writer.done} rows, the input only {skipped}")
    pending: deque[str] = deque()  # texts handed to the pipeline, whose results have not come back yet

    def feed() -> Iterator[str]:
        for text in texts:
            pending.append(text)
            yield text

    auto = progress is None and sys.stderr.isatty()
    bar = _bar(total, writer.done) if progress else None
    n = shown = 0  # rows written, rows counted on the bar
    try:
        # The pipeline streams: it reads a window of texts ahead, batches them by length, yields in input order.
        for n, ranked in enumerate(clf(feed(), top_k=top_k, batch_size=batch_size), 1):
            writer.write(result_row(pending.popleft(), ranked, top_k))
            if n == batch_size + 1 and auto:  # longer than one batch: worth a bar
                bar = _bar(total, writer.done + shown)
            if n % batch_size == 0:
                writer.flush()
                if bar is not None:
                    bar.update(n - shown)
                shown = n
        writer.flush()
        if bar is not None:
            bar.update(n - shown)
    finally:
        if bar is not None:
            bar.close()
    return n


def _bar(total: int | None, initial: int):
    from tqdm import tqdm

    return tqdm(total=total, initial=initial, unit=" texts", file=sys.stderr, dynamic_ncols=True,
                smoothing=0.1)


def classify_file(
    input: str | os.PathLike,
    output: str | os.PathLike,
    *,
    model: Any = None,
    column: str = "text",
    field: str | None = None,
    batch_size: int = 32,
    top_k: int | None = 1,
    resume: bool = False,
    revision: str | None = None,
    backend: str | None = None,
    dtype: str = "float32",
    progress: bool | None = None,
) -> int:
    """Classify every row of `input` into `output`, streamed; returns the number of rows classified in this call.

    input: .txt (a text a line), .jsonl (`field`, default "text"), .csv or .parquet (`column`, default "text").
    output: .jsonl ({"text", "label", "score"} a line), .csv (text,label,score) or .parquet (the same columns).
    top_k=1 (default) writes the best label and its score; an int k > 1, or None for every label, writes the
    k best as `labels`/`scores` lists, best first (CSV: label_1,score_1,...). model: a hub id, a local
    directory, a TextClassificationPipeline, or None for the default checkpoint. resume=True keeps the
    complete rows already in `output` and classifies only the rest. progress: a tqdm bar on stderr
    (None: when stderr is a terminal and the input is longer than one batch)."""
    if top_k is not None and (isinstance(top_k, bool) or not isinstance(top_k, int) or top_k < 1):
        raise ValueError(f"top_k must be a positive int or None, got {top_k!r}")
    column = field if field is not None else column
    texts = read_texts(input, column)  # fails on a missing file or an unknown format before the model loads
    check_output(output)
    clf = load_pipeline(model, revision=revision, backend=backend, dtype=dtype, batch_size=batch_size)
    total = count_rows(input) if progress or (progress is None and sys.stderr.isatty()) else None
    writer = open_output(output, top_k=top_k, num_labels=clf.model.config.num_labels, resume=resume)
    return run(clf, texts, writer, top_k=top_k, batch_size=batch_size, progress=progress, total=total)


def run(clf, texts: Iterable[str], writer, **kwargs: Any) -> int:
    """classify_stream, then close the writer (a Parquet output is merged); on any error or interrupt the
    writer keeps what is done for resume instead."""
    try:
        n = classify_stream(clf, texts, writer, **kwargs)
    except BaseException:
        writer.abort()
        raise
    writer.close()
    return n


def stdin_texts() -> Iterator[str]:
    """One text per line of stdin (UTF-8, only "\\n" ends a line), lazily."""
    return read_lines(sys.stdin.buffer, "stdin")
