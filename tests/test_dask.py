"""minibert.dask on a real dask.distributed LocalCluster (worker processes, as on a real cluster).

- parquet in several partitions -> the same labels and bit-identical scores as in-process minibert.classify on
  each partition's texts (same texts, same batching, same one BLAS thread => the same float32 operations);
- the model is loaded once per worker process, however many partitions it classifies;
- each worker runs BLAS and Numba on its own thread budget (nthreads), not the machine's cores;
- a worker killed mid-job: the job still finishes, every row written exactly once;
- bad rows name their partition and row; `import minibert` never imports dask.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import numpy as np
import pytest

pd = pytest.importorskip("pandas")
dd = pytest.importorskip("dask.dataframe")
distributed = pytest.importorskip("distributed")
pytest.importorskip("pyarrow")
threadpoolctl = pytest.importorskip("threadpoolctl")

import cloudpickle  # noqa: E402  (a dependency of distributed)

import minibert  # noqa: E402
import minibert.dask  # noqa: E402

# The gate below is defined here, and the workers cannot import this test module: ship it by value.
cloudpickle.register_pickle_by_value(sys.modules[__name__])

N_ROWS = 240
N_PARTITIONS = 6
BATCH_SIZE = 8
WORDS = ("the film is good bad great awful dull moving slow sharp funny plot cast music ending, but and so "
         "really quite never café naïve 東京 !").split()


def corpus(n: int, seed: int = 0) -> list[str]:
    """Texts of 0-60 words (an empty one too), so batches within a partition pad differently."""
    rng = random.Random(seed)
    return [" ".join(rng.choice(WORDS) for _ in range(rng.choice([0, 1, 3, 8, 15, 30, 60]))) for _ in range(n)]


@pytest.fixture(scope="module")
def parquet_dir(tmp_path_factory):
    """N_ROWS texts in N_PARTITIONS parquet files, with an id column and a non-trivial index."""
    path = tmp_path_factory.mktemp("dask_in")
    df = pd.DataFrame({"id": np.arange(N_ROWS), "text": corpus(N_ROWS)}, index=np.arange(N_ROWS) * 7 + 100)
    df.index.name = "row"
    dd.from_pandas(df, npartitions=N_PARTITIONS, sort=False).to_parquet(path)
    return path


@pytest.fixture(scope="module")
def client():
    with distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, dashboard_address=":0", processes=True
    ) as cluster, distributed.Client(cluster) as c:
        yield c


def reference(texts: list[str], model, top_k=None) -> list[list[dict]]:
    """In-process minibert.classify, on the workers' budget of one BLAS thread."""
    with threadpoolctl.threadpool_limits(limits=1, user_api="blas"):
        return minibert.classify(texts, model, top_k=top_k, batch_size=BATCH_SIZE)


def test_parquet_partitions_match_in_process_classify_row_for_row(client, parquet_dir, small_ckpt):
    ddf = dd.read_parquet(parquet_dir)
    assert ddf.npartitions == N_PARTITIONS
    out = minibert.dask.classify(ddf, model=small_ckpt, batch_size=BATCH_SIZE, top_k=None)
    labels = [minibert.AutoConfig.from_pretrained(small_ckpt).id2label[i] for i in range(3)]
    assert list(out.columns) == ["label", "score"] + [f"score_{label}" for label in labels]
    assert dict(out.dtypes) == {**{c: np.dtype("float32") for c in out.columns[1:]}, "label": out.dtypes["label"]}
    assert pd.api.types.is_string_dtype(out.dtypes["label"])

    # Dask may merge small parquet files into fewer partitions once only the text column is read; each output
    # partition keeps its input rows' index, which gives the texts that partition held.
    parts = client.compute(out.to_delayed(), sync=True)
    full = pd.read_parquet(parquet_dir)
    assert len(parts) >= 2
    assert pd.concat(parts).index.equals(full.index)  # every row once, in order, under the input's index
    for got in parts:
        want = reference(full.loc[got.index, "text"].tolist(), small_ckpt)
        assert got["label"].tolist() == [r[0]["label"] for r in want]
        np.testing.assert_array_equal(got["score"].to_numpy(), np.float32([r[0]["score"] for r in want]))
        for label in labels:
            want_scores = np.float32([next(d["score"] for d in r if d["label"] == label) for r in want])
            np.testing.assert_array_equal(got[f"score_{label}"].to_numpy(), want_scores)

    # Joined back onto the input, each text carries its own result (labels from the legacy call, one per text).
    joined = ddf.assign(label=out.label, score=out.score).compute()
    assert len(joined) == N_ROWS and joined.index.is_unique
    legacy = reference(joined["text"].tolist(), small_ckpt, top_k=1)
    assert joined["label"].tolist() == [r[0]["label"] for r in legacy]

    # Loaded once per worker process, although each worker classified several partitions (twice over).
    states = client.run(minibert.dask.worker_state)
    assert len(states) == 2
    assert sum(s["rows"] for s in states.values()) == 2 * N_ROWS
    assert max(s["partitions"] for s in states.values()) >= 2
    for s in states.values():
        if s["partitions"]:
            assert s["loads"] == {f"{Path(small_ckpt).resolve()}|None|None|float32": 1}, s
        assert s["blas_threads"] in (None, 1) and s["numba_threads"] in (None, 1), s
    assert len({s["pid"] for s in states.values()}) == 2 and os.getpid() not in {s["pid"] for s in states.values()}


@pytest.mark.parametrize("top_k", [1, 2])
def test_top_k_columns(client, parquet_dir, small_ckpt, top_k):
    ddf = dd.read_parquet(parquet_dir)
    got = minibert.dask.classify(ddf, model=small_ckpt, batch_size=BATCH_SIZE, top_k=top_k).compute()
    want = reference(ddf["text"].compute().tolist(), small_ckpt, top_k=top_k)
    assert list(got.columns) == ["label", "score", "label_2", "score_2"][: 2 * top_k]
    for rank in range(top_k):
        suffix = "" if rank == 0 else f"_{rank + 1}"
        assert got["label" + suffix].tolist() == [r[rank]["label"] for r in want]
    # the whole column in one process: different batches than per partition, so labels only (scores agree
    # only within float32 rounding, which the partition-wise test above pins down exactly)


def test_thread_budget_is_the_workers_nthreads_not_the_cores(small_ckpt):
    """One worker with 3 threads on this 2-core machine: BLAS gets 3 (not the Nanny's default 1, not the core
    count), Numba min(3, its maximum); three task threads share one model, loaded once. The worker runs in this
    process (quick to start); threadpool_limits() restores this process's BLAS threads afterwards."""
    before = minibert.dask.worker_state()
    with threadpoolctl.threadpool_limits(), distributed.LocalCluster(
        n_workers=1, threads_per_worker=3, dashboard_address=":0", processes=False
    ) as cluster, distributed.Client(cluster) as c:
        ddf = dd.from_pandas(pd.DataFrame({"text": corpus(120, seed=1)}), npartitions=12)
        minibert.dask.classify(ddf, model=small_ckpt, batch_size=BATCH_SIZE).compute()

        def blas_threads():
            return {d["num_threads"] for d in threadpoolctl.threadpool_info() if d["user_api"] == "blas"}

        (state,) = c.run(minibert.dask.worker_state).values()
        (blas,) = c.run(blas_threads).values()
        numba_max = c.submit(lambda: __import__("numba").config.NUMBA_NUM_THREADS).result()
    assert blas == {3}
    assert state["blas_threads"] == 3 and state["numba_threads"] == min(3, numba_max)
    assert state["partitions"] - before["partitions"] == 12
    assert state["loads"][f"{Path(small_ckpt).resolve()}|None|None|float32"] == 1


def test_bad_rows_name_partition_and_row(client, small_ckpt):
    texts = corpus(40, seed=2)
    texts[27] = None
    ddf = dd.from_pandas(pd.DataFrame({"text": texts}), npartitions=4)
    with pytest.raises(ValueError, match=r"'text' is missing \(None/NaN\) at partition 2, row 27 \(position 7"):
        minibert.dask.classify(ddf, model=small_ckpt).compute()

    texts = corpus(40, seed=2)
    ddf = dd.from_pandas(pd.DataFrame({"text": pd.Series(texts, dtype=object)}), npartitions=4)
    ddf = ddf.map_partitions(lambda df: df.assign(text=df.text.astype(object).where(df.index != 13, 5)),
                             meta=pd.DataFrame({"text": pd.Series([], dtype=object)}))
    with pytest.raises(TypeError, match=r"'text' at partition 1, row 13 \(position 3 in the partition\) is int 5"):
        minibert.dask.classify(ddf, model=small_ckpt).compute()


def test_bad_arguments_fail_on_the_client(small_ckpt):
    ddf = dd.from_pandas(pd.DataFrame({"text": ["a", "b"], "n": [1, 2]}), npartitions=1)
    with pytest.raises(ValueError, match=r"column 'body' is not in the DataFrame; its columns are \['text', 'n'\]"):
        minibert.dask.classify(ddf, column="body", model=small_ckpt)
    with pytest.raises(TypeError, match="column 'n' holds int64 values"):
        minibert.dask.classify(ddf, column="n", model=small_ckpt)
    with pytest.raises(TypeError, match="ddf must be a dask DataFrame, got DataFrame"):
        minibert.dask.classify(ddf.compute(), model=small_ckpt)
    with pytest.raises(ValueError, match="top_k must be a positive int or None, got 0"):
        minibert.dask.classify(ddf, model=small_ckpt, top_k=0)
    with pytest.raises(ValueError, match="batch_size must be a positive int"):
        minibert.dask.classify(ddf, model=small_ckpt, batch_size=0)
    with pytest.raises(ValueError, match='dtype must be "float32" or "float64"'):
        minibert.dask.classify(ddf, model=small_ckpt, dtype="float16")


def _gate(df, event_name: str, open_partitions: int, partition_info=None):
    """Partitions from `open_partitions` on, once classified, wait for the test to set the event: whatever order
    the scheduler picks, each worker classifies something and then the job is mid-way for sure."""
    if partition_info["number"] >= open_partitions:
        assert distributed.Event(event_name).wait(timeout=60)
    return df


def test_worker_killed_mid_job_every_row_exactly_once(client, parquet_dir, small_ckpt, tmp_path):
    """Partitions 0 and 1 finish, the rest wait at a gate once classified; SIGKILL a worker that classified a
    partition, then open the gate. The scheduler recomputes what died with the worker (finished or in flight);
    the parquet output has every row exactly once.
    (Last in this module: the cluster carries on with the Nanny's replacement worker.)"""
    event = f"go-{uuid.uuid4()}"
    before = {s["pid"]: s["partitions"] for s in client.run(minibert.dask.worker_state).values()}
    out = minibert.dask.classify(dd.read_parquet(parquet_dir), model=small_ckpt, batch_size=BATCH_SIZE)
    gated = out.map_partitions(_gate, event, 2, meta=out._meta)
    job = client.compute(gated.to_parquet(tmp_path / "out", compute=False))

    deadline = time.monotonic() + 30
    while True:
        done = {s["pid"]: s["partitions"] - before[s["pid"]] for s in client.run(minibert.dask.worker_state).values()}
        if sum(done.values()) >= 2:
            break
        assert time.monotonic() < deadline, done
        time.sleep(0.05)
    victim = next(pid for pid, n in done.items() if n)  # its finished partition dies with it
    os.kill(victim, signal.SIGKILL)
    distributed.Event(event, client=client).set()
    job.result(timeout=60)
    client.wait_for_workers(2, timeout=30)
    assert victim not in {s["pid"] for s in client.run(minibert.dask.worker_state).values()}  # really replaced

    full = pd.read_parquet(parquet_dir)
    files = sorted((tmp_path / "out").glob("*.parquet"))
    got = pd.concat(pd.read_parquet(f) for f in files)
    assert got.index.is_unique and got.sort_index().index.equals(full.sort_index().index)
    for path in files:  # one file per partition, as the worker classified it
        part = pd.read_parquet(path)
        want = reference(full.loc[part.index, "text"].tolist(), small_ckpt)
        assert part["label"].tolist() == [r[0]["label"] for r in want]
        np.testing.assert_array_equal(part["score"].to_numpy(), np.float32([r[0]["score"] for r in want]))


IMPORT_CHECK = """
import sys
import minibert
loaded = sorted(m for m in sys.modules if m.split(".")[0] in ("dask", "distributed", "pandas") or m == "minibert.dask")
assert not loaded, f"import minibert imported {loaded}"
print("ok")
"""

MISSING_CHECK = """
import sys
sys.modules["dask"] = None  # as if dask were not installed
try:
    import minibert.dask
except ImportError as e:
    print(e)
"""


def test_import_minibert_does_not_import_dask():
    out = subprocess.run([sys.executable, "-c", IMPORT_CHECK], capture_output=True, text=True)
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr


def test_missing_dask_says_which_extra_to_install():
    out = subprocess.run([sys.executable, "-c", MISSING_CHECK], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert 'minibert.dask needs dask: pip install "minibert[dask]"' in out.stdout
