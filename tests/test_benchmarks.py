"""The benchmark harness cannot rot: `benchmarks/run.py --smoke` runs end to end (tiny model, every competitor,
every mode), and its parts are checked against real references (transformers' tokenizer, torch's FLOP counter).

Timings are never asserted: only that every measurement ran, every competitor's output passed the float32 error
model's check, and the report has every section.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
import types
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))  # `benchmarks` as a package, as run.py imports it

from benchmarks import artifacts, corpus, embeddings, profiling, timing, workloads  # noqa: E402
from benchmarks.competitors import ALL_COMPETITORS  # noqa: E402

SECTIONS = [
    "## Machine",
    "## Classification logits: median ms per call",
    "### Classification detail",
    "## Encoder alone (last_hidden_state, every token)",
    "### Encoder detail",
    "## The products alone: the model's 12 linear layers at T tokens",
    "## End-to-end pipeline: 64 sentences",
    "## Mixed corpus:",
    "## Sentence embeddings: all-MiniLM-L6-v2",
    "## Start and memory: one fresh process",
    "minibert processes alive at once on one checkpoint",
    "## First call in this process",
    "## Profile 1×16: where minibert-numba's time goes",
]


@pytest.fixture(scope="module")
def smoke(tmp_path_factory):
    """(report text, summary dict, output dir, seconds) of one `run.py --smoke` in a fresh process."""
    out = tmp_path_factory.mktemp("bench")
    t0 = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, str(REPO / "benchmarks" / "run.py"), "--smoke", "--workdir", str(out / "work"),
         "--output", str(out / "results.md")],
        capture_output=True, text=True, cwd=REPO, timeout=600, check=False,
    )
    seconds = time.perf_counter() - t0
    assert proc.returncode == 0, proc.stderr[-5000:]
    print(f"benchmarks/run.py --smoke: {seconds:.1f} s")
    return (out / "results.md").read_text(), json.loads((out / "results.json").read_text()), out, seconds


def test_smoke_report_has_every_section(smoke):
    text, _, out, _ = smoke
    for section in SECTIONS:
        assert section in text, f"report lacks {section!r}"
    assert "![classification" in text
    assert (out / "results.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_smoke_every_competitor_checked_and_timed(smoke):
    _, summary, _, _ = smoke
    assert summary["competitors"] == ALL_COMPETITORS
    for kind, expected in (("logits", ALL_COMPETITORS), ("encoder", [n for n in ALL_COMPETITORS
                                                                     if n != "minibert-numpy"])):
        checks, timings = summary[kind]["checks"], summary[kind]["timings_ms"]
        assert checks and set(checks) == set(timings)
        for shape, by_name in checks.items():
            assert sorted(by_name) == sorted(expected), (kind, shape)
            failed = {n: c for n, c in by_name.items() if not c["ok"]}
            assert not failed, f"{kind} {shape}: outside the float32 error model's bound: {failed}"
            assert sorted(timings[shape]) == sorted(expected)
            assert all(ms > 0 for ms in timings[shape].values())


def test_smoke_workloads_processes_and_profile(smoke):
    _, summary, _, _ = smoke
    assert set(summary["corpus_texts_per_s"]) == {"minibert pipeline", "onnxruntime, input order",
                                                  "onnxruntime, length-sorted", "transformers pipeline"}
    assert {n: len(s) for n, s in summary["corpus_seconds"].items()} == dict.fromkeys(summary["corpus_texts_per_s"], 1)
    agreement = summary["corpus_agreement"]  # vs the transformers pipeline
    assert set(agreement) == set(summary["corpus_texts_per_s"]) - {"transformers pipeline"}
    assert all(a["top_label_flips"] == 0 for a in agreement.values()), agreement
    assert set(summary["start"]) >= {"minibert pipeline", "transformers pipeline",
                                      "minibert pipeline, empty Numba cache (compiles)",
                                      "minibert pipeline, SciPy not installed"}
    for case in summary["start"].values():
        assert case["peak_rss"] >= case["rss_import"] > 0
    assert len(summary["pss"]) == 2
    for p in summary["pss"]:
        assert 0 < p["Pss"] <= p["Rss"]
    assert summary["gemm_gflops"] > 0
    # The profile sees every step of the fast path, as often as the architecture runs it (call counts, not
    # timings: a shared machine makes any time ratio flaky): per block 6 products (Q, K, V, out_lin, lin1, lin2),
    # one attention and two bias+residual+LayerNorms.
    calls = {name: n for name, _, n in summary["profile"]["1×16"]}
    L = artifacts.SMOKE_CONFIG["n_layers"]
    assert calls["fast.distilbert"] == 1
    assert calls["fast.transformer_block"] == calls["fast.attention_heads"] == L, calls
    assert calls["fast.linear"] == 6 * L, calls
    assert calls["fast_kernels.bias_residual_layer_norm"] == 2 * L, calls
    assert all(ms >= 0 for _, ms, _ in summary["profile"]["1×16"]), summary["profile"]["1×16"]


def test_smoke_products_alone_every_engine_computes_the_chain(smoke):
    # The products-alone rows: minibert's GEMMs (fast_gemm's kernel at 16 tokens, BLAS at 80), ONNX Runtime's and
    # OpenVINO's, each within the float32 error model's bound of the float64 chain; their FLOPs are the encoder's
    # minus attention's (the encoder's formula is checked against torch's flop counter below).
    _, summary, _, _ = smoke
    cfg = artifacts.SMOKE_CONFIG
    rows = summary["products"]
    assert sorted(rows, key=int) == ["16", "80"]
    for tokens, row in rows.items():
        T = int(tokens)
        attention = cfg["n_layers"] * 4 * T * T * cfg["dim"]
        assert row["gflop"] * 1e9 == pytest.approx(timing.encoder_flops(cfg, 1, T) - attention)
        assert set(row["errors"]) == set(row["timings_ms"]) == {"minibert", "onnxruntime", "openvino"}
        assert row["bound"] > 0 and all(0 <= e <= row["bound"] for e in row["errors"].values()), row
        assert all(ms > 0 for ms in row["timings_ms"].values())


def test_smoke_embeddings_every_engine_agrees(smoke):
    _, summary, _, _ = smoke
    engines = set(embeddings.ENGINES)
    assert engines == {"minibert.encode", "sentence-transformers", "onnxruntime"}
    assert set(summary["embeddings_sentences_per_s"]) == engines
    assert all(v > 0 for v in summary["embeddings_sentences_per_s"].values())
    agreement = summary["embeddings_agreement"]
    assert set(agreement) == engines
    failed = {n: a for n, a in agreement.items() if not (a["ok"] and a["error"] <= a["bound"])}
    assert not failed, f"embeddings outside the float32 error model's bound: {failed}"
    assert agreement["sentence-transformers"]["max_abs_diff"] == 0.0  # the float32 reference itself


# --- the parts, against real references ---------------------------------------------------------------


def test_corpus_token_counts_match_the_real_tokenizer():
    import transformers

    from benchmarks.artifacts import vocab_file

    mixed = corpus.mixed_corpus(300, 30, seed=3)
    assert mixed == corpus.mixed_corpus(300, 30, seed=3)  # deterministic
    assert mixed != corpus.mixed_corpus(300, 30, seed=4)
    tok = transformers.BertTokenizerFast(vocab_file=str(vocab_file()), do_lower_case=True)
    lengths = [len(ids) for ids in tok(mixed.texts)["input_ids"]]
    assert lengths == mixed.tokens
    short = [n for n in lengths if n <= corpus.SHORT_TOKENS[1]]
    long = [n for n in lengths if n > corpus.SHORT_TOKENS[1]]
    assert len(short) == 300 and len(long) == 30
    assert min(short) >= corpus.SHORT_TOKENS[0] and corpus.LONG_TOKENS[0] <= min(long) <= max(long) <= 512
    first_long = next(i for i, n in enumerate(lengths) if n > corpus.SHORT_TOKENS[1])
    assert first_long < 100, "long reviews are shuffled in, not appended"


def test_time_workload_gives_each_runner_its_passes_in_rotated_rounds():
    calls = []

    def runner(name):
        def run(texts):
            calls.append((name, len(texts)))
            return [{"POSITIVE": float(len(calls))} for _ in texts]
        return run

    texts = ["a text"] * 5
    runners = {n: runner(n) for n in ("close 1", "slow", "close 2")}
    seconds, outputs = workloads.time_workload(runners, texts, {"close 1": 3, "slow": 1, "close 2": 3}, 0.0,
                                               warmup_texts=2)
    assert calls[:3] == [("close 1", 2), ("slow", 2), ("close 2", 2)]  # warm-up on the first texts
    passes = [name for name, n in calls[3:]]
    assert all(n == 5 for _, n in calls[3:])
    # round r starts at runner r (rotated) and skips a runner whose passes are done
    assert passes == ["close 1", "slow", "close 2", "close 2", "close 1", "close 2", "close 1"]
    assert {n: len(s) for n, s in seconds.items()} == {"close 1": 3, "slow": 1, "close 2": 3}
    assert outputs["slow"] == [{"POSITIVE": 5.0}] * 5  # each runner's first pass is kept
    assert outputs["close 2"] == [{"POSITIVE": 6.0}] * 5
    with pytest.raises(ValueError, match="at least 1 pass"):
        workloads.time_workload(runners, texts, {"close 1": 3, "slow": 0, "close 2": 3}, 0.0)
    with pytest.raises(ValueError, match="at least 1 pass"):
        workloads.time_workload(runners, texts, {"close 1": 3}, 0.0)


def test_run_rejects_a_corpus_without_passes(capsys):
    from benchmarks import run

    assert run.parse_args([]).corpus_repeats == run.CORPUS_REPEATS
    assert run.parse_args(["--smoke"]).corpus_repeats == 1
    with pytest.raises(SystemExit):
        run.parse_args(["--corpus-repeats", "0"])
    assert "--corpus-repeats takes a positive number of passes, got 0" in capsys.readouterr().err


def test_run_rejects_bad_products_token_counts(capsys):
    from benchmarks import run

    assert run.parse_args([]).products_list == [16, 128, 512]
    assert run.parse_args(["--quick"]).products_list == []
    assert run.parse_args(["--products", "none"]).products_list == []
    for bad in ("0", "16,x", ""):
        with pytest.raises(SystemExit):
            run.parse_args(["--products", bad])
        assert "--products takes positive token counts" in capsys.readouterr().err


def test_encoder_flops_equal_torch_flop_counter(small_ckpt):
    import torch
    import transformers
    from torch.utils.flop_counter import FlopCounterMode

    model = transformers.AutoModel.from_pretrained(small_ckpt, attn_implementation="eager").eval()
    config = json.loads((Path(small_ckpt) / "config.json").read_text())
    for batch, seq in ((1, 16), (3, 40)):
        ids = torch.randint(1000, 2000, (batch, seq))
        with torch.inference_mode(), FlopCounterMode(display=False) as counter:
            model(input_ids=ids, attention_mask=torch.ones_like(ids))
        assert timing.encoder_flops(config, batch, seq) == counter.get_total_flops()


def _toy_module() -> types.ModuleType:
    """A module the profiler has never seen, with functions of any signature calling each other via globals."""
    mod = types.ModuleType("minibert._toy_profiled")
    exec(
        "import time, numba\n"
        "def inner(x, *, wait):\n    time.sleep(wait)\n    return x + 1\n"
        "def outer(x):\n    time.sleep(0.002)\n    return inner(x, wait=0.1) * 2 + jitted(x)\n"
        "@numba.njit\ndef jitted(x):\n    return _twice(x)\n"
        "@numba.njit\ndef _twice(x):\n    return 2 * x\n"
        "def _private(x):\n    return x\n",
        mod.__dict__,
    )
    return mod


def test_profile_times_any_module_by_name_and_restores_it():
    mod = _toy_module()
    sys.modules[mod.__name__] = mod
    try:
        originals = (mod.outer, mod.inner, mod.jitted)

        class Model:  # holds a function as an attribute, as a model holds its backend's ops
            def __init__(self):
                self.step = mod.inner

        model = Model()
        rows = profiling.profile_calls(model, lambda: mod.outer(1) + model.step(1, wait=0.0), [mod], calls=3)
        by_name = {name: (ms, calls) for name, ms, calls in rows}
        assert set(by_name) >= {"_toy_profiled.outer", "_toy_profiled.inner", "_toy_profiled.jitted", "total forward"}
        assert "_toy_profiled._private" not in by_name and "_toy_profiled._twice" not in by_name
        assert by_name["_toy_profiled.inner"][1] == 2  # via outer's global lookup and via the model's attribute
        assert by_name["_toy_profiled.inner"][0] >= 100.0  # its sleep is its own time ...
        assert 2.0 <= by_name["_toy_profiled.outer"][0] < 50.0  # ... and not outer's (a loaded machine oversleeps)
        assert (mod.outer, mod.inner, mod.jitted) == originals and model.step is mod.inner
    finally:
        del sys.modules[mod.__name__]


def test_profile_leaves_minibert_outputs_and_functions_unchanged(small_ckpt):
    import minibert
    import minibert.model

    model = minibert.AutoModelForSequenceClassification.from_pretrained(small_ckpt, backend="numba")
    ids = np.array([[101, 2023, 2003, 1037, 3231, 102]])
    before = model(ids).logits
    modules = profiling.import_existing(profiling.DEFAULT_MODULES)
    saved = {m.__name__: dict(vars(m)) for m in modules}
    ops = model.ops
    rows = profiling.profile_calls(model, lambda: np.testing.assert_array_equal(model(ids).logits, before),
                                   modules, calls=2)
    assert len(rows) > 2, rows  # some wrapped function ran, beside (unaccounted) and the total
    assert model.ops is ops
    for m in modules:
        assert dict(vars(m)) == saved[m.__name__], f"{m.__name__} not restored"
