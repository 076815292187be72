"""Fresh processes: how long a one-sentence classification takes from `python` to the label, how much
memory it needs, and whether two processes on one checkpoint share the weights' pages.

Each case is a small script run in a new interpreter; it reports its phases (import, load, first and
second call) and its memory from /proc/self/status (VmRSS after the import, VmHWM = peak RSS at the
end). The whole process's wall time is measured from outside. For sharing, two minibert processes
are kept alive at once and their PSS (proportional set size: a page shared by two processes counts
half for each) is read from /proc/PID/smaps_rollup.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from .competitors import THREADS

REPO = Path(__file__).resolve().parent.parent
SENTENCE = "This film was a pleasant surprise from start to finish."

_PRELUDE = """
import json, sys, time
def _status(key):
    for line in open("/proc/self/status"):
        if line.startswith(key + ":"):
            return int(line.split()[1]) / 1024  # kB -> MiB
t0 = time.perf_counter()
"""
SCRIPTS = {
    "minibert pipeline": """
import minibert
t1 = time.perf_counter(); rss_import = _status("VmRSS")
clf = minibert.pipeline("sentiment-analysis", model=CKPT)
t2 = time.perf_counter()
label = clf(SENTENCE)[0]["label"]
t3 = time.perf_counter()
clf(SENTENCE)
t4 = time.perf_counter()
""",
    "transformers pipeline": """
import transformers
t1 = time.perf_counter(); rss_import = _status("VmRSS")
transformers.logging.set_verbosity_error()
clf = transformers.pipeline("sentiment-analysis", model=CKPT, device="cpu")
t2 = time.perf_counter()
label = clf(SENTENCE)[0]["label"]
t3 = time.perf_counter()
clf(SENTENCE)
t4 = time.perf_counter()
""",
    "onnxruntime + tokenizers": """
import numpy as np, onnxruntime as ort, tokenizers
t1 = time.perf_counter(); rss_import = _status("VmRSS")
tok = tokenizers.BertWordPieceTokenizer(CKPT + "/vocab.txt", lowercase=True)
opts = ort.SessionOptions()
opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
opts.intra_op_num_threads = THREADS
session = ort.InferenceSession(ONNX, opts, providers=["CPUExecutionProvider"])
labels = json.load(open(CKPT + "/config.json"))["id2label"]
def classify(text):
    ids = np.array([tok.encode(text).ids], dtype=np.int64)
    logits = session.run(["logits"], {"input_ids": ids, "attention_mask": np.ones_like(ids)})[0]
    return labels[str(int(logits.argmax()))]
t2 = time.perf_counter()
label = classify(SENTENCE)
t3 = time.perf_counter()
classify(SENTENCE)
t4 = time.perf_counter()
""",
}
# minibert's own dependencies do not include SciPy, but this environment has it (transformers and
# sentence-transformers need it), and Numba imports scipy.linalg on its first compile or cache load when it is
# installed (to offer np.linalg): ~0.2 s of the first call. This case hides it, as a minibert-only install is.
SCRIPTS["minibert pipeline, SciPy not installed"] = (
    '\nsys.modules["scipy"] = None  # `import scipy` now raises ImportError, as where it is not installed\n'
    + SCRIPTS["minibert pipeline"])
_REPORT = """
print("RESULT " + json.dumps({"import": t1 - t0, "load": t2 - t1, "first": t3 - t2, "second": t4 - t3,
                              "rss_import": rss_import, "peak_rss": _status("VmHWM"), "label": label}), flush=True)
if HOLD:
    sys.stdin.read()  # stay alive (weights mapped) until the parent closes our stdin
"""


def _code(case: str, ckpt: Path, onnx_logits: Path, hold: bool) -> str:
    head = (f"CKPT = {str(ckpt)!r}\nONNX = {str(onnx_logits)!r}\nSENTENCE = {SENTENCE!r}\nTHREADS = {THREADS}\n"
            f"HOLD = {hold}\n")
    return head + _PRELUDE + SCRIPTS[case] + _REPORT


def _result(case: str, stdout: str, stderr: str) -> dict:
    line = next((x for x in stdout.splitlines() if x.startswith("RESULT ")), None)
    if line is None:
        raise RuntimeError(f"fresh-process run of {case!r} failed:\n{stderr[-3000:]}")
    return json.loads(line.removeprefix("RESULT "))


def run_once(case: str, ckpt: Path, onnx_logits: Path, env: dict[str, str] | None = None) -> dict:
    """One fresh process: its phases (s), memory (MiB) and whole wall time ("process", s)."""
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", _code(case, ckpt, onnx_logits, hold=False)],
                          capture_output=True, text=True, env=env, cwd=REPO, check=False)
    wall = time.perf_counter() - t0
    if proc.returncode:
        raise RuntimeError(f"fresh-process run of {case!r} exited {proc.returncode}:\n{proc.stderr[-3000:]}")
    return {**_result(case, proc.stdout, proc.stderr), "process": wall}


def start_and_memory(cases: list[str], ckpt: Path, onnx_logits: Path, repeats: int,
                     with_empty_numba_cache: bool = True) -> dict[str, dict]:
    """{case: the run with the median wall time, plus "process_all": every run's wall time}; runs interleaved."""
    runs: dict[str, list[dict]] = {}
    variants: dict[str, tuple[str, dict[str, str] | None]] = {c: (c, None) for c in cases}  # name: (script, env)
    with tempfile.TemporaryDirectory(prefix="minibert-numba-cache-") as empty:
        if with_empty_numba_cache and "minibert pipeline" in cases:
            variants["minibert pipeline, empty Numba cache (compiles)"] = (
                "minibert pipeline", {**os.environ, "NUMBA_CACHE_DIR": empty})
        for _ in range(repeats):
            for name, (case, env) in variants.items():
                if env is not None:  # a compile every time: empty the cache directory
                    for f in Path(empty).rglob("*"):
                        if f.is_file():
                            f.unlink()
                runs.setdefault(name, []).append(run_once(case, ckpt, onnx_logits, env))
    out = {}
    for name, rs in runs.items():
        walls = [r["process"] for r in rs]
        mid = sorted(rs, key=lambda r: r["process"])[len(rs) // 2]
        out[name] = {**mid, "process_median": statistics.median(walls), "process_all": walls}
    return out


def smaps_rollup(pid: int) -> dict[str, float]:
    """Rss, Pss, Pss_Anon, Pss_File, ... of a live process, in MiB."""
    out = {}
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines()[1:]:
        key, value, *_ = line.split()
        out[key.rstrip(":")] = int(value) / 1024
    return out


def shared_pss(ckpt: Path, onnx_logits: Path, n: int = 2, timeout_s: float = 300) -> list[dict[str, float]]:
    """n minibert one-sentence processes alive at once on one checkpoint: each one's smaps_rollup (MiB)."""
    code = _code("minibert pipeline", ckpt, onnx_logits, hold=True)
    procs = [subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True, cwd=REPO) for _ in range(n)]
    try:
        deadline = time.monotonic() + timeout_s
        for p in procs:  # wait until each has loaded and classified (it then blocks on stdin)
            line = p.stdout.readline()
            if not line.startswith("RESULT ") or time.monotonic() > deadline:
                p.kill()
                raise RuntimeError(f"PSS process failed: {line!r} {p.stderr.read()[-3000:]}")
        return [smaps_rollup(p.pid) for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.stdin.close()
        for p in procs:
            try:
                p.wait(timeout=30)
            except subprocess.TimeoutExpired:
                p.kill()
