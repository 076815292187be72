"""The benchmark harness: `python benchmarks/run.py` (see run.py's docstring and benchmarks/README.md).

One module per responsibility:
    inputs.py       shapes, random token ids, the 64 sentences
    corpus.py       the deterministic mixed corpus (short SST-2-like texts + long reviews)
    artifacts.py    the random-init checkpoint and its ONNX exports (logits and encoder), MiniLM's, cached
    competitors.py  every engine as a function (input_ids, attention_mask) -> logits or last_hidden_state
    checks.py       correctness first: every competitor vs a float64 reference, on the float32 error model
    timing.py       interleaved timing, the numpy sgemm rate and the GEMM limit, foreign CPU load
    workloads.py    end-to-end text workloads: the 64-sentence pipeline and the mixed corpus
    embeddings.py   sentence embeddings (all-MiniLM-L6-v2): minibert.encode vs sentence-transformers vs ORT
    processes.py    fresh processes: start time, peak RSS, PSS of two processes on one checkpoint
    profiling.py    self time per function of any module (minibert.model, minibert.kernels, ...)
    machine.py      CPU, threads, versions, git revision
    report.py       the markdown report and the bar chart
"""
