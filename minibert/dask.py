"""minibert.dask: classify a Dask DataFrame's text column on a Dask cluster, from a laptop to many machines.

    import dask.dataframe as dd
    from distributed import Client
    import minibert.dask

    client = Client()                          # a LocalCluster; Client("tcp://scheduler:8786") for a real one
    ddf = dd.read_parquet("reviews/*.parquet")
    out = minibert.dask.classify(ddf, column="text", model="/shared/ckpt")
    ddf.assign(label=out.label, score=out.score).to_parquet("labelled/")

Each partition runs through the ordinary pipeline (`minibert.pipeline`, its batching included) on the
worker that holds it. Per worker process, the model is loaded once, on the first partition, and kept
for every later partition and task (`_PIPELINES`). Every worker reads it from the same place: a hub id
(each machine's HF cache), or a directory, which must exist at the same absolute path on every worker
(a shared or copied file system).

Needs the optional extra: `pip install "minibert[dask]"`. `import minibert` never imports this module
or dask; `import minibert.dask` does.
"""

from __future__ import annotations

import math
import os
import threading
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

try:
    import dask.dataframe as dd
    import pandas as pd
except ImportError as e:
    raise ImportError(f'minibert.dask needs dask: pip install "minibert[dask]" ({e})') from e

import minibert

__all__ = ["classify", "worker_state"]

_NOT_GIVEN: Any = object()


@dataclass(frozen=True)
class _Spec:
    """Everything a worker needs to classify a partition; sent with every task (small and picklable)."""

    model: str  # hub id or absolute directory: the same string on every worker
    revision: str | None
    backend: str | None
    dtype: str  # "float32" or "float64": the model's dtype and the score columns'
    column: str
    batch_size: int
    top_k: int | None  # None: every label's score as its own column
    function_to_apply: str | None
    labels: tuple[str, ...]  # id2label in id order, read from config.json on the client


def classify(
    ddf: dd.DataFrame,
    column: str = "text",
    model: str | os.PathLike | None = None,
    *,
    batch_size: int = 32,
    top_k: int | None = 1,
    function_to_apply: str | None = None,
    revision: str | None = None,
    backend: str | None = None,
    dtype: str = "float32",
) -> dd.DataFrame:
    """Classify `ddf[column]` partition by partition; a lazy Dask DataFrame with ddf's index and partitions.

    Columns: `label` (string) and `score` (float32, or float64 with dtype="float64") for the best label;
    top_k=k adds `label_2, score_2, ..., label_k, score_k` (the next best, as the pipeline ranks them);
    top_k=None adds one `score_<label>` column per label of the model, in id order.
    model: a hub id (default: the pipeline's SST-2 DistilBERT) or a checkpoint directory that every worker
    can read at the same path. The rest means what it means in `minibert.pipeline` / `from_pretrained`.
    The index and partitions are ddf's, so `ddf.assign(label=out.label, score=out.score)` puts each result
    on its row, partition by partition (no shuffle).
    """
    if not isinstance(ddf, dd.DataFrame):
        raise TypeError(f"ddf must be a dask DataFrame, got {type(ddf).__name__} (dd.from_pandas(df) makes one)")
    if column not in ddf.columns:
        raise ValueError(f"column {column!r} is not in the DataFrame; its columns are {list(ddf.columns)}")
    if pd.api.types.is_numeric_dtype(ddf[column].dtype) or pd.api.types.is_bool_dtype(ddf[column].dtype):
        raise TypeError(f"column {column!r} holds {ddf[column].dtype} values; expected text (str)")
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive int, got {batch_size!r}")
    if top_k is not None and (isinstance(top_k, bool) or not isinstance(top_k, int) or top_k < 1):
        raise ValueError(f"top_k must be a positive int or None, got {top_k!r}")
    if dtype not in ("float32", "float64"):
        raise ValueError(f'dtype must be "float32" or "float64", got {dtype!r}')
    minibert.kernels.get_ops(backend)  # an unknown backend fails here, not on every worker
    name = _model_name(model)

    # The label set comes from the checkpoint's config.json, read here on the client: it fixes the output
    # columns (the meta) before any worker has loaded the model.
    config = minibert.AutoConfig.from_pretrained(name, revision=revision)
    labels = tuple(str(config.id2label[i]) for i in range(config.num_labels))
    if len(set(labels)) != len(labels):
        raise ValueError(f"the checkpoint's id2label has repeated labels {labels}; they cannot name columns")
    spec = _Spec(name, revision, backend, dtype, column, batch_size, top_k, function_to_apply, labels)

    meta = _frame([], ddf._meta.index, spec)
    # Only the text column goes to the workers (and is read from parquet at all).
    return ddf[[column]].map_partitions(_classify_partition, spec, meta=meta)


def _model_name(model: str | os.PathLike | None) -> str:
    """The string every worker loads: a hub id as given, a local directory made absolute."""
    if model is None:
        return minibert.DEFAULT_CHECKPOINT
    if not isinstance(model, (str, os.PathLike)):
        raise TypeError(f"model must be a hub id or a checkpoint directory, got {type(model).__name__}")
    path = Path(model)
    return str(path.resolve()) if path.is_dir() else os.fspath(model)


# --- on the workers --------------------------------------------------------------------------------

# One lock per process guards both the model cache and every forward pass. Loading under it means two
# threads of a worker never load the same model twice. Running under it means one forward pass at a
# time per process, using the worker's whole thread budget through BLAS (below): the Numba kernels hold
# the GIL, so a second task thread in the same process would only contend, and two tasks each running
# `nthreads` BLAS threads would oversubscribe the cores nthreads-fold.
_LOCK = threading.Lock()
_PIPELINES: dict[tuple, minibert.TextClassificationPipeline] = {}
_LOADS: Counter = Counter()  # how often each model was loaded in this process (once, if the cache works)
_DONE = {"partitions": 0, "rows": 0, "numba_threads": None, "blas_threads": None}


def _classify_partition(df: pd.DataFrame, spec: _Spec, partition_info: dict | None = None) -> pd.DataFrame:
    number = partition_info["number"] if partition_info else "?"
    texts = df[spec.column].tolist()
    for i, text in enumerate(texts):
        if not isinstance(text, str):
            where = f"partition {number}, row {df.index[i]!r} (position {i} in the partition)"
            if text is None or text is pd.NA or (isinstance(text, float) and math.isnan(text)):
                raise ValueError(
                    f"{spec.column!r} is missing (None/NaN) at {where}; drop such rows first, "
                    f"e.g. ddf.dropna(subset=[{spec.column!r}])"
                )
            raise TypeError(f"{spec.column!r} at {where} is {type(text).__name__} {text!r}; expected str")
    if not texts:
        return _frame([], df.index, spec)
    with _LOCK:
        pipe = _pipeline(spec)
        _use_thread_budget()
        ranked = pipe(
            texts, top_k=None, batch_size=spec.batch_size, function_to_apply=spec.function_to_apply
        )  # per text: every label's {"label", "score"}, best first
        _DONE["partitions"] += 1
        _DONE["rows"] += len(texts)
    return _frame(ranked, df.index, spec)


def _pipeline(spec: _Spec) -> minibert.TextClassificationPipeline:
    """This process's pipeline for spec's model: loaded on first use, then kept. Call under _LOCK."""
    key = (spec.model, spec.revision, spec.backend, spec.dtype)
    if key not in _PIPELINES:
        model = minibert.AutoModelForSequenceClassification.from_pretrained(
            spec.model, revision=spec.revision, backend=spec.backend, dtype=spec.dtype
        )
        tokenizer = minibert.AutoTokenizer.from_pretrained(spec.model, revision=spec.revision)
        _PIPELINES[key] = minibert.pipeline("sentiment-analysis", model=model, tokenizer=tokenizer)
        _LOADS[key] += 1
    return _PIPELINES[key]


def _use_thread_budget() -> None:
    """Let BLAS and Numba use this worker's `nthreads`, not the machine's core count.

    A cluster packs N worker processes onto a machine, each told how many cores it may use (`nthreads`,
    e.g. `dask worker --nthreads 2`, or LocalCluster's threads_per_worker). Libraries left alone size their
    pools by the core count: N workers x all cores threads fight for the cores, and on a busy machine
    that costs far more than the threads could gain. The Nanny starts workers with OPENBLAS_NUM_THREADS=1
    and friends, which is too few for a worker given several threads; so set both pools to exactly the
    worker's budget. Outside a distributed worker (dask's local schedulers) nothing is changed.
    """
    try:
        from distributed import get_worker

        nthreads = get_worker().state.nthreads
    except (ImportError, ValueError):  # ValueError: not running in a distributed worker
        return
    if _DONE["blas_threads"] != nthreads:
        from threadpoolctl import threadpool_limits

        threadpool_limits(limits=nthreads, user_api="blas")  # process-wide, kept after this call
        _DONE["blas_threads"] = nthreads
    import numba

    # Numba's thread count is per calling thread, so it is set in the task's own thread, every time (cheap).
    numba.set_num_threads(min(nthreads, numba.config.NUMBA_NUM_THREADS))
    _DONE["numba_threads"] = numba.get_num_threads()


def _frame(ranked: list[list[dict[str, Any]]], index: pd.Index, spec: _Spec) -> pd.DataFrame:
    """The output columns from the pipeline's ranked results (an empty list gives the meta)."""
    score_dtype = np.dtype(spec.dtype)
    columns: dict[str, Any] = {}
    k = len(spec.labels) if spec.top_k is None else min(spec.top_k, len(spec.labels))
    for rank in range(1 if spec.top_k is None else k):
        suffix = "" if rank == 0 else f"_{rank + 1}"
        columns["label" + suffix] = pd.array([r[rank]["label"] for r in ranked], dtype="string")
        columns["score" + suffix] = np.array([r[rank]["score"] for r in ranked], dtype=score_dtype)
    if spec.top_k is None:
        by_label = [{d["label"]: d["score"] for d in r} for r in ranked]
        for label in spec.labels:
            columns[f"score_{label}"] = np.array([s[label] for s in by_label], dtype=score_dtype)
    return pd.DataFrame(columns, index=index)


def worker_state() -> dict[str, Any]:
    """This process's view: pid, models loaded (and how often), partitions and rows classified, and the thread
    budget applied. Ask every worker with `client.run(minibert.dask.worker_state)`."""
    return {
        "pid": os.getpid(),
        "loads": {"|".join(map(str, key)): n for key, n in _LOADS.items()},
        **_DONE,
    }
