"""In-process minibert vs minibert.dask on a LocalCluster: texts/s per core on a mixed corpus.

    python scripts/make_checkpoint.py base /tmp/base_ckpt       # random distilbert-base-size checkpoint
    python benchmarks/dask_corpus.py --checkpoint /tmp/base_ckpt            # 20,000 texts, 2 rounds
    python benchmarks/dask_corpus.py --checkpoint /tmp/base_ckpt --texts 2000 --rounds 3

The corpus is benchmarks/corpus.py's mixed_corpus (deterministic: SST-2-like one-liners of 5-60 tokens and
one long review of 100-512 tokens for every ten of them). Two ways to classify it, on the same cores:

- in-process: `minibert.pipeline(model=ckpt, batch_size=B)(texts)` in this process, BLAS on --threads threads;
- dask: `minibert.dask.classify(ddf, model=ckpt, batch_size=B)` on LocalCluster(n_workers=--workers,
  threads_per_worker=1, processes=True), the corpus in --partitions partitions of a Dask DataFrame.

Each round times both, in alternating order (the machine may be busy with other work; the first of a pair
does not always get the quieter moment). The model is loaded before timing on both sides (every worker
classifies a few texts first), so the numbers are steady-state throughput; loading is reported apart.
Before any timing, the two ways' labels are checked to agree (scores differ only by float32 rounding: the
length-sorted batches differ with the partitioning) and the largest score difference is printed.

The same code on a real cluster: start `dask scheduler` on one machine and `dask worker tcp://scheduler:8786
--nthreads K` on each worker machine (one worker process per machine, or several with --nworkers, each with
its K threads), put the checkpoint at the same path on every machine (or pass a hub id), then
`--scheduler tcp://scheduler:8786` (in your own code: `Client("tcp://scheduler:8786")` before
`minibert.dask.classify`). Per core is then texts/s divided by the sum of the workers' nthreads.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if __name__ == "__main__":  # run as a script: import `benchmarks` from the repo, not benchmarks/'s own modules
    sys.path = [p for p in sys.path if Path(p).resolve() != REPO / "benchmarks"]
    sys.path.insert(0, str(REPO))

import numpy as np  # noqa: E402

from benchmarks.corpus import mixed_corpus  # noqa: E402


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--checkpoint", required=True, help="checkpoint directory (same path on every worker) or hub id")
    p.add_argument("--texts", type=int, default=20_000, help="corpus size; one in eleven is a long review")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--threads", type=int, default=2, help="in-process BLAS threads (= cores used)")
    p.add_argument("--workers", type=int, default=2, help="LocalCluster worker processes, 1 thread each")
    p.add_argument("--partitions", type=int, default=8)
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--scheduler", help="address of an existing cluster, e.g. tcp://scheduler:8786 (no LocalCluster)")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    import dask.dataframe as dd
    import distributed
    import pandas as pd
    from threadpoolctl import threadpool_limits

    import minibert
    import minibert.dask

    n_long = args.texts // 11
    corpus = mixed_corpus(n_short=args.texts - n_long, n_long=n_long, seed=0)
    texts = corpus.texts
    print(f"corpus: {corpus.describe()}")
    ddf = dd.from_pandas(pd.DataFrame({"text": texts}), npartitions=args.partitions, sort=False)

    if args.scheduler:
        client = distributed.Client(args.scheduler)
    else:
        cluster = distributed.LocalCluster(
            n_workers=args.workers, threads_per_worker=1, processes=True, dashboard_address=":0"
        )
        client = distributed.Client(cluster)
    cluster_cores = sum(client.nthreads().values())
    print(f"cluster: {len(client.nthreads())} workers, {cluster_cores} threads; in-process: {args.threads} threads")

    t = time.perf_counter()
    with threadpool_limits(limits=args.threads, user_api="blas"):
        pipe = minibert.pipeline(model=args.checkpoint, batch_size=args.batch_size)
        pipe(texts[:16])
    print(f"in-process load + warm-up: {time.perf_counter() - t:.1f} s")
    t = time.perf_counter()
    n_workers = len(client.nthreads())
    warm = dd.from_pandas(pd.DataFrame({"text": texts[: 16 * n_workers]}), npartitions=4 * n_workers)
    for _ in range(5):  # until every worker has loaded the model (the scheduler decides who runs what)
        minibert.dask.classify(warm, model=args.checkpoint, batch_size=args.batch_size).compute()
        if all(s["loads"] for s in client.run(minibert.dask.worker_state).values()):
            break
    print(f"cluster load + warm-up: {time.perf_counter() - t:.1f} s")

    # CPU seconds as well as wall time: on a machine shared with other work, wall time measures the neighbours as
    # much as minibert; CPU seconds per text (this process's, or the workers' summed) much less so.
    def in_process() -> tuple[float, float, list]:
        with threadpool_limits(limits=args.threads, user_api="blas"):
            t, cpu = time.perf_counter(), time.process_time()
            out = pipe(texts)
            return time.perf_counter() - t, time.process_time() - cpu, out

    def workers_cpu() -> float:
        return sum(client.run(lambda: sum(__import__("psutil").Process().cpu_times()[:2])).values())

    def on_dask() -> tuple[float, float, object]:
        t, cpu = time.perf_counter(), workers_cpu()
        out = minibert.dask.classify(ddf, model=args.checkpoint, batch_size=args.batch_size).compute()
        return time.perf_counter() - t, workers_cpu() - cpu, out

    rows = []
    for r in range(args.rounds):
        order = [("in-process", in_process), ("dask", on_dask)]
        times = {}
        for name, run in order if r % 2 == 0 else order[::-1]:
            seconds, cpu, out = run()
            times[name], times[name + " cpu"] = seconds, cpu
            print(f"round {r + 1} {name}: {seconds:.1f} s, {len(texts) / seconds:.1f} texts/s, {cpu:.1f} CPU s",
                  flush=True)
            if name == "in-process":
                local = out
            else:
                remote = out
        if r == 0:
            assert list(remote.index) == list(range(len(texts))), "dask lost, duplicated or reordered rows"
            same = [a["label"] == b for a, b in zip(local, remote["label"], strict=True)]
            delta = np.abs(np.float64([a["score"] for a in local]) - remote["score"].to_numpy(np.float64)).max()
            print(f"labels agree on {sum(same)}/{len(same)} texts; max |score difference| {delta:.2e}")
            assert all(same), "in-process and dask labels differ"
        rows.append(times)

    per_core = {
        name: [len(texts) / t[name] / cores for t in rows]
        for name, cores in (("in-process", args.threads), ("dask", cluster_cores))
    }
    print()
    print(f"{len(texts)} texts, batch {args.batch_size}, {args.partitions} partitions, checkpoint {args.checkpoint}")
    print("| round | in-process texts/s | per core | dask texts/s | per core | dask / in-process per core "
          "| in-process texts per CPU s | dask texts per CPU s |")
    print("|---|---|---|---|---|---|---|---|")
    for r, times in enumerate(rows):
        a, b = per_core["in-process"][r], per_core["dask"][r]
        a_cpu, b_cpu = len(texts) / times["in-process cpu"], len(texts) / times["dask cpu"]
        print(f"| {r + 1} | {a * args.threads:.1f} | {a:.2f} | {b * cluster_cores:.1f} | {b:.2f} | {b / a:.2f} "
              f"| {a_cpu:.2f} | {b_cpu:.2f} |")
    ratio = statistics.median(b / a for a, b in zip(per_core["in-process"], per_core["dask"], strict=True))
    print(f"median dask / in-process per core: {ratio:.2f} (goal >= 0.90); cpu count {os.cpu_count()}")
    client.close()


if __name__ == "__main__":
    main()
