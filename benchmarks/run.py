#!/usr/bin/env python
"""minibert vs torch vs ONNX Runtime vs OpenVINO: DistilBERT inference, float32, on this CPU.

    pip install -e ".[bench]"
    python benchmarks/run.py --smoke     # the harness itself on a tiny model, every mode (~1 min; CI runs it)
    python benchmarks/run.py --quick     # base model, 3 shapes, 3 repeats, no corpus/embeddings/processes
    python benchmarks/run.py             # full run: 6 shapes, 7 repeats, encoder, corpus, embeddings, start, memory

Competitors (same checkpoint, same inputs, float32):
    minibert-numba   minibert.AutoModelForSequenceClassification(..., backend="numba"); the ratios' baseline
    minibert-numpy   backend="numpy" (exact erf GELU in Python: slow by design, small shapes only)
    torch-eager      transformers, attn_implementation="eager", torch.inference_mode()
    torch-sdpa       transformers, default attention (scaled_dot_product_attention)
    onnxruntime      the model exported to ONNX (legacy TorchScript exporter, opset 17), CPUExecutionProvider,
                     ORT_ENABLE_ALL graph optimisations, one intra-op thread per core
    openvino         the same ONNX file compiled for the CPU with INFERENCE_PRECISION_HINT f32, LATENCY hint

Measurements, in this order:
    classification   logits on every shape; every output is first checked against transformers in float64
    encoder          last_hidden_state (every token), with the fraction of the GEMM limit (timing.py)
    products         the model's linear layers alone at T tokens: minibert's, ONNX Runtime's and OpenVINO's GEMMs
                     on the checkpoint's weights (products.py): whether a peer's lead is its GEMM
    pipeline         64 sentences through minibert's and transformers' pipelines (batch_size 8)
    corpus           the mixed corpus (corpus.py), batch_size 32: minibert's pipeline, ORT in input order,
                     ORT length-sorted, transformers' pipeline
    embeddings       N short sentences embedded with the real all-MiniLM-L6-v2 (normalize, batch_size 32):
                     minibert.encode, sentence-transformers, ORT + tokenizers; checked against float64 first
    processes        fresh processes classifying one sentence: wall time, peak RSS, and the PSS of two alive at once
    profile          --profile SHAPES: self time per function of minibert's modules, next to torch's profiler

Method: every competitor's very first call is timed on its own ("first call": lazy init, Numba cache load or
compile). After warm-up, each of R repeats runs every competitor once, in an order rotated each repeat, so that
machine noise is spread over all of them. A sample is n back-to-back calls (n chosen in warm-up so that a sample
lasts >= --min-sample-ms), reported per call, with a --gap-ms pause before each sample so the previous
competitor's busy-waiting thread pool is idle.

The markdown report goes to stdout and to --output (default benchmarks/results.md), with a JSON summary
(results.json) and a bar chart of the classification table (results.png) next to it.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import shlex
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
if __package__ in (None, ""):  # run as a script: make `benchmarks` importable as a package
    if str(HERE) in sys.path:  # not benchmarks/ itself: its module names (timing, report, ...) are generic
        sys.path.remove(str(HERE))
    sys.path.insert(0, str(REPO))

import numpy as np  # noqa: E402

from benchmarks import (  # noqa: E402
    artifacts,
    checks,
    competitors,
    corpus,
    embeddings,
    machine,
    processes,
    products,
    profiling,
    report,
    timing,
    workloads,
)
from benchmarks.artifacts import log  # noqa: E402
from benchmarks.inputs import SENTENCES, Shape, make_inputs, parse_shapes  # noqa: E402

FULL_SHAPES = "1x16,1x128,8x64,1x512,32x128,8x128p"
QUICK_SHAPES = "1x16,1x128,8x128p"
SMOKE_SHAPES = "1x16,2x32p"
# The pause before each sample. OpenBLAS's threads poll for 2^28 cycles after a threaded product (~0.1 s at
# 2.6 GHz, longer at a lower clock). Measured at 1x16 right after a threaded numpy product, median ms with a
# 50 ms / 150 ms pause: minibert 18.7 / 13.4, ONNX Runtime 29.1 / 11.9, OpenVINO 22.0 / 10.5: 50 ms (the old
# default) left the next competitor sharing a core with the previous one's spinning threads.
GAP_MS = 200.0
SMOKE_CORPUS = "16,2"
# The corpus runners whose texts/s are close (the target: minibert's pipeline >= 1.2x ORT fed the same
# length-sorted batches): they get CORPUS_REPEATS passes each; ORT in input order and transformers' pipeline,
# several times slower and minutes per pass, get one.
CLOSE_CORPUS_RUNNERS = ("minibert pipeline", "onnxruntime, length-sorted")
CORPUS_REPEATS = 3
FULL_PRODUCTS = "16,128,512"  # tokens: fast_gemm's range, BLAS's, and the longest sequence
SMOKE_PRODUCTS = "16,80"  # both of minibert's product paths (fast_gemm up to 64 tokens, BLAS above)
FULL_EMBEDDINGS = 1000
SMOKE_EMBEDDINGS = 40  # one full batch of 32 and a partial one


def numba_cache_files() -> list[Path]:
    import minibert.kernels

    return sorted((Path(minibert.kernels.__file__).parent / "__pycache__").glob("*.nbi"))


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--workdir", type=Path, default=HERE / ".cache",
                    help="checkpoint + ONNX export cache (default: %(default)s)")
    ap.add_argument("--output", type=Path, default=None,
                    help="markdown report; .json and .png written next to it (default: benchmarks/results.md; "
                         "--smoke: WORKDIR/smoke/results.md)")
    mode = ap.add_mutually_exclusive_group()
    mode.add_argument("--smoke", action="store_true",
                      help=f"test the harness: tiny random model, shapes {SMOKE_SHAPES}, 1 repeat, every competitor "
                           f"and mode (encoder, pipeline, corpus {SMOKE_CORPUS}, embeddings {SMOKE_EMBEDDINGS}, "
                           "processes, --profile 1x16)")
    mode.add_argument("--quick", action="store_true",
                      help=f"shapes {QUICK_SHAPES}, 3 repeats, 1 warm-up; no encoder, corpus, embeddings or processes")
    ap.add_argument("--repeats", type=int, default=None, help="interleaved repeats (default 7; --quick 3; --smoke 1)")
    ap.add_argument("--warmup", type=int, default=None, help="warm-up calls per competitor and shape (default 2)")
    ap.add_argument("--min-sample-ms", type=float, default=None, help="a timing sample lasts at least this (20)")
    ap.add_argument("--gap-ms", type=float, default=None,
                    help=f"pause before each sample, so spinning worker threads go idle (default {GAP_MS:g})")
    ap.add_argument("--shapes", default=None, help=f"BxT list, 'p' = padded mixed lengths (default {FULL_SHAPES})")
    ap.add_argument("--encoder-shapes", default=None,
                    help="shapes for the encoder-alone rows (default: the non-padded --shapes; 'none' to skip)")
    ap.add_argument("--competitors", default=",".join(competitors.ALL_COMPETITORS), help="comma list (default: all)")
    ap.add_argument("--numpy-max-tokens", type=int, default=128,
                    help="run minibert-numpy only on shapes with at most this many tokens (default %(default)s)")
    ap.add_argument("--no-pipeline", action="store_true", help="skip the 64-sentence pipeline")
    ap.add_argument("--corpus", default=None, metavar="N_SHORT,N_LONG",
                    help="mixed corpus size (default 2000,200; --smoke 16,2; --quick: skipped); 'none' to skip")
    ap.add_argument("--corpus-repeats", type=int, default=None,
                    help="passes over the corpus for the close pair, minibert's pipeline and ORT length-sorted "
                         "(default 3; --smoke 1); the other two runners make one pass (minutes on the base model)")
    ap.add_argument("--products", default=None, metavar="TOKENS",
                    help=f"token counts for the products-alone rows (default {FULL_PRODUCTS}; --smoke "
                         f"{SMOKE_PRODUCTS}; --quick: skipped); 'none' to skip")
    ap.add_argument("--embeddings", default=None, metavar="N",
                    help=f"sentences for the embeddings workload (default {FULL_EMBEDDINGS}; --smoke "
                         f"{SMOKE_EMBEDDINGS}; --quick: skipped); 'none' to skip")
    ap.add_argument("--no-processes", action="store_true", help="skip the fresh-process start/memory/PSS runs")
    ap.add_argument("--process-repeats", type=int, default=None, help="fresh processes per case (default 3)")
    ap.add_argument("--profile", default=None, metavar="SHAPES",
                    help="profile minibert-numba per function (and torch-sdpa per aten op) on these shapes, "
                         "e.g. 1x128 (--smoke: 1x16)")
    ap.add_argument("--profile-modules", default=",".join(profiling.DEFAULT_MODULES),
                    help="modules whose public functions --profile times, those that exist (default %(default)s)")
    args = ap.parse_args(argv)

    args.repeats = args.repeats or (1 if args.smoke else 3 if args.quick else 7)
    args.warmup = args.warmup if args.warmup is not None else (1 if args.smoke or args.quick else 2)
    args.min_sample_ms = args.min_sample_ms if args.min_sample_ms is not None else (0.0 if args.smoke else 20.0)
    args.gap_ms = args.gap_ms if args.gap_ms is not None else (0.0 if args.smoke else GAP_MS)
    if args.corpus_repeats is None:
        args.corpus_repeats = 1 if args.smoke else CORPUS_REPEATS
    args.shapes = args.shapes or (SMOKE_SHAPES if args.smoke else QUICK_SHAPES if args.quick else FULL_SHAPES)
    if args.corpus is None:
        args.corpus = SMOKE_CORPUS if args.smoke else "none" if args.quick else "2000,200"
    if args.products is None:
        args.products = SMOKE_PRODUCTS if args.smoke else "none" if args.quick else FULL_PRODUCTS
    if args.embeddings is None:
        args.embeddings = str(SMOKE_EMBEDDINGS) if args.smoke else "none" if args.quick else str(FULL_EMBEDDINGS)
    if args.smoke and args.profile is None:
        args.profile = "1x16"
    args.no_processes = args.no_processes or (args.quick and not args.smoke)
    args.process_repeats = args.process_repeats or (1 if args.smoke else 3)
    if args.output is None:
        args.output = args.workdir / "smoke" / "results.md" if args.smoke else HERE / "results.md"
    try:
        args.shape_list = parse_shapes(args.shapes)
        spec = args.encoder_shapes
        if spec is None:
            args.encoder_list = [] if args.quick else [s for s in args.shape_list if not s.padded]
        else:
            args.encoder_list = [] if spec == "none" else parse_shapes(spec)
        args.profile_list = parse_shapes(args.profile) if args.profile else []
        args.corpus_size = None if args.corpus == "none" else tuple(int(x) for x in args.corpus.split(","))
        if args.corpus_size is not None and len(args.corpus_size) != 2:
            raise ValueError("--corpus takes N_SHORT,N_LONG")
        if args.corpus_repeats < 1:
            raise ValueError(f"--corpus-repeats takes a positive number of passes, got {args.corpus_repeats}")
        tokens = [] if args.products == "none" else args.products.split(",")
        if not all(t.strip().isdigit() and int(t) > 0 for t in tokens):
            raise ValueError(f"--products takes positive token counts (e.g. 16,128) or 'none', got {args.products!r}")
        args.products_list = [int(t) for t in tokens]
        args.embeddings_n = None if args.embeddings == "none" else int(args.embeddings)
        if args.embeddings_n is not None and args.embeddings_n < 1:
            raise ValueError("--embeddings takes a positive number of sentences or 'none'")
    except ValueError as e:
        ap.error(str(e))
    args.names = [n.strip() for n in args.competitors.split(",") if n.strip()]
    unknown = sorted(set(args.names) - set(competitors.ALL_COMPETITORS))
    if unknown or not args.names:
        ap.error(f"--competitors: unknown {unknown}; choose from {competitors.ALL_COMPETITORS}")
    return args


def measure(kind: str, shapes: list[Shape], comps: list[competitors.Competitor], ckpt: Path, args,
            vocab_size: int) -> tuple[dict, list[str]]:
    """Check every competitor on every shape against the float64 reference, then time them interleaved."""
    reference = checks.Reference(ckpt, kind)
    rng = np.random.default_rng(artifacts.SEED)
    inputs = {s.label: make_inputs(s.batch, s.seq, s.padded, rng, vocab_size) for s in shapes}
    results, failed = checks.check_all(comps, reference, shapes, inputs), []
    for shape in shapes:
        log(f"{kind} {shape.label}: error vs float64 (bound {next(iter(results[shape.label].values())).bound:.1e}): "
            + ", ".join(f"{n} {c.error:.1e}" for n, c in results[shape.label].items()))
        failed += [f"{kind} {shape.label} {n}: error {c.error:.2e} > bound {c.bound:.2e}"
                   for n, c in results[shape.label].items() if not c.ok]
    del reference
    timings = {}
    if failed:  # reported (FAILED in the tables, exit status 1), but timed anyway: a long run is not thrown away
        log("outputs outside the float32 error model's bound:\n  " + "\n  ".join(failed))
    for shape in shapes:
        ids, mask = inputs[shape.label]
        runners = {c.name: (lambda c=c, i=ids, m=mask: c.fn(i, m)) for c in comps if c.runs(shape)}
        log(f"timing {kind} {shape.label} ({', '.join(runners)}) ...")
        timings[shape.label] = timing.interleaved(runners, args.repeats, args.warmup, args.min_sample_ms / 1e3,
                                                  args.gap_ms / 1e3)
        log("   " + ", ".join(f"{n} {t.median_ms:.2f} ms" for n, t in timings[shape.label].items()))
    lengths = {s.label: inputs[s.label][1].sum(axis=1).tolist() for s in shapes if s.padded}
    return {"timings": timings, "checks": results, "competitors": [c.name for c in comps], "lengths": lengths}, failed


def run_corpus(ckpt: Path, onnx: dict[str, Path], size: tuple[int, int], repeats: int, gap_s: float) -> dict:
    mixed = corpus.mixed_corpus(*size)
    log(f"mixed corpus: {mixed.describe()} ...")
    batch_size = 32
    pipes = workloads.pipelines(ckpt, batch_size)
    runners = {"minibert pipeline": pipes["minibert pipeline"], **workloads.ort_runners(ckpt, onnx["logits"],
               batch_size), "transformers pipeline": pipes["transformers pipeline"]}
    # One pass each can flip the close comparison on a noisy machine (2026-12-06: ORT length-sorted took 48 s in
    # one full run and 71 s in the next, minibert 52 and 50), so that pair gets `repeats` passes, medians reported.
    passes = {name: repeats if name in CLOSE_CORPUS_RUNNERS else 1 for name in runners}
    seconds, outputs = workloads.time_workload(runners, mixed.texts, passes, gap_s)
    agreement = workloads.agreement(outputs, "transformers pipeline")
    log("   " + ", ".join(f"{n} {len(mixed) / workloads.median(s):.1f} texts/s" for n, s in seconds.items()))
    return {"describe": mixed.describe(), "n_texts": len(mixed), "batch_size": batch_size, "seconds": seconds,
            "agreement": agreement}


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    argv_shown = sys.argv[1:] if argv is None else argv
    script = os.path.relpath(Path(__file__).resolve(), Path.cwd())
    script = str(Path(__file__).resolve()) if script.startswith("..") else script
    command = shlex.join(["python", script, *argv_shown])
    config = artifacts.SMOKE_CONFIG if args.smoke else artifacts.BASE_CONFIG
    names, baseline = args.names, (competitors.BASELINE if competitors.BASELINE in args.names else args.names[0])

    import transformers

    transformers.logging.set_verbosity_error()  # not a load report per model: the encoder rows drop the head
    cache_before = bool(numba_cache_files())
    args.workdir.mkdir(parents=True, exist_ok=True)
    ckpt = artifacts.build_checkpoint(args.workdir, config)
    onnx = artifacts.export_onnx(ckpt)

    comps = competitors.load_all(names, "logits", ckpt, onnx, args.numpy_max_tokens)
    first_shape = min(args.shape_list, key=lambda s: s.tokens)
    ids, mask = make_inputs(first_shape.batch, first_shape.seq, first_shape.padded,
                            np.random.default_rng(artifacts.SEED), config["vocab_size"])
    first_call = {}
    for c in comps:
        first_call[c.name] = timing.timed(c.fn, ids, mask) * 1e3
        log(f"first call {c.name}: {first_call[c.name]:.1f} ms")

    gemm_n = 512 if args.smoke else 2048  # smoke: the code path, not the number
    log(f"numpy sgemm rate ({gemm_n}³) ...")
    gflops = timing.sgemm_gflops(gemm_n, repeats=3 if args.smoke else 7)
    log(f"   {gflops:.0f} GFLOP/s")
    all_shapes = {s.label: s for s in args.shape_list + args.encoder_list + args.profile_list}
    limits = {lab: timing.encoder_flops(config, s.batch, s.seq) / (gflops * 1e9) * 1e3 for lab, s in all_shapes.items()}

    foreign = timing.ForeignLoad()
    logits, failed = measure("logits", args.shape_list, comps, ckpt, args, config["vocab_size"])
    del comps
    encoder = None
    if args.encoder_list:
        enc_names = [n for n in names if n != "minibert-numpy"] or names
        enc_comps = competitors.load_all(enc_names, "encoder", ckpt, onnx, args.numpy_max_tokens)
        encoder, enc_failed = measure("encoder", args.encoder_list, enc_comps, ckpt, args, config["vocab_size"])
        failed += enc_failed
        del enc_comps
    products_result = None
    if args.products_list:
        products_result = products.run(ckpt, args.products_list, args.repeats, args.warmup, args.min_sample_ms / 1e3,
                                       args.gap_ms / 1e3, log)
        failed += products_result["failed"]
    foreign_load = foreign.share()

    pipeline = None
    if not args.no_pipeline:
        log("pipeline (64 sentences) ...")
        pipes = workloads.pipelines(ckpt, batch_size=8)
        outputs = {n: p(SENTENCES) for n, p in pipes.items()}
        agreement = workloads.agreement(outputs, "transformers pipeline")
        runners = {n: (lambda p=p: p(SENTENCES)) for n, p in pipes.items()}
        pipeline = {"n_texts": len(SENTENCES), "batch_size": 8, "agreement": agreement,
                    "timings": timing.interleaved(runners, args.repeats, args.warmup, 0.0, args.gap_ms / 1e3)}
        del pipes, runners

    corpus_result = None
    if args.corpus_size:
        corpus_result = run_corpus(ckpt, onnx, args.corpus_size, args.corpus_repeats, args.gap_ms / 1e3)

    embeddings_result = None
    if args.embeddings_n:
        embeddings_result, emb_failed = embeddings.run(args.workdir, args.embeddings_n, args.repeats,
                                                       args.gap_ms / 1e3)
        failed += emb_failed

    procs = None
    if not args.no_processes:
        log("fresh processes: start, peak RSS ...")
        cases = ["minibert pipeline", "minibert pipeline, SciPy not installed", "transformers pipeline",
                 "onnxruntime + tokenizers"]
        start = processes.start_and_memory(cases, ckpt, onnx["logits"], args.process_repeats)
        log("two minibert processes at once: PSS ...")
        procs = {"start": start, "pss": processes.shared_pss(ckpt, onnx["logits"]),
                 "file_mb": sum(f.stat().st_size for f in ckpt.glob("*.safetensors")) / 2**20}

    profile = {}
    if args.profile_list:
        import minibert

        modules = profiling.import_existing([m.strip() for m in args.profile_modules.split(",") if m.strip()])
        model = minibert.AutoModelForSequenceClassification.from_pretrained(ckpt, backend="numba")
        for shape in args.profile_list:
            log(f"profiling {shape.label} ...")
            ids, mask = make_inputs(shape.batch, shape.seq, shape.padded, np.random.default_rng(artifacts.SEED),
                                    config["vocab_size"])
            calls = 1 if args.smoke else 3 if args.quick else 5
            profile[shape.label] = {
                "modules": [m.__name__ for m in modules], "limit_ms": limits[shape.label],
                "minibert": profiling.profile_calls(model, lambda i=ids, m=mask: model(i, m), modules, calls),
                "torch": profiling.profile_torch(ckpt, ids, mask, calls),
            }

    chart_path = args.output.with_suffix(".png")
    run = {
        "smoke": args.smoke, "quick": args.quick, "repeats": args.repeats, "warmup": args.warmup,
        "min_sample_ms": args.min_sample_ms, "gap_ms": args.gap_ms, "foreign_load": foreign_load,
        "date": datetime.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z"), "command": command,
        "git": machine.git_revision(), "facts": machine.machine_facts(), "versions": machine.versions(),
        "model": artifacts.describe(config), "competitors": names, "baseline": baseline,
        "gemm_gflops": gflops, "gemm_n": gemm_n, "limits": limits, "logits": logits, "encoder": encoder,
        "products": products_result,
        "padded_lengths": logits["lengths"],
        "pipeline": pipeline, "corpus": corpus_result, "embeddings": embeddings_result, "processes": procs,
        "first_call": first_call, "first_shape": first_shape.label,
        "numba_cache_before": "yes" if cache_before else "no (first call compiled)", "profile": profile,
        "chart": chart_path.name, "failed": failed,
    }
    report.chart(run, chart_path)
    text = report.report(run)
    print(text)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(text)
    args.output.with_suffix(".json").write_text(json.dumps(report.summary(run), indent=1) + "\n")
    log(f"wrote {args.output}, {args.output.with_suffix('.json').name}, {chart_path.name}")
    if failed:
        log("CHECK FAILED (see the detail tables):\n  " + "\n  ".join(failed))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
