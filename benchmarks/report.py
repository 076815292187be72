"""The markdown report, its JSON summary, and the bar chart of the classification shapes.

Every ratio is competitor time / minibert time: above 1 minibert is faster (2.00× = the competitor
takes twice as long), below 1 the competitor is faster.
"""

from __future__ import annotations

import statistics
from pathlib import Path

from .checks import error_model

FLOAT32_PEERS = ("onnxruntime", "openvino")  # the engines a torch-free float32 CPU user picks today


def fmt_ms(x: float) -> str:
    return f"{x:.0f}" if x >= 1000 else f"{x:.1f}" if x >= 10 else f"{x:.2f}"


def fmt_mb(x: float) -> str:
    return f"{x:.0f} MiB"


def md_table(header: list[str], rows: list[list[str]], align: str | None = None) -> str:
    align = align or "l" + "r" * (len(header) - 1)
    sep = ["---:" if a == "r" else "---" for a in align]
    return "\n".join("| " + " | ".join(r) + " |" for r in [header, sep, *rows])


def _ratio_table(section: dict, names: list[str], baseline: str, limits: dict[str, float] | None) -> str:
    """shape | [GEMM limit] | each competitor's median ms (ratio to baseline [, fraction of the limit])."""
    header = ["shape"] + (["GEMM limit ms"] if limits else []) + names
    rows = []
    for label, timings in section["timings"].items():
        base = timings.get(baseline)
        row = [label] + ([fmt_ms(limits[label])] if limits else [])
        for n in names:
            t = timings.get(n)
            if t is None:
                row.append("—")
                continue
            parts = []
            if base is not None and n != baseline:
                parts.append(f"{t.median_ms / base.median_ms:.2f}×")
            if limits:
                parts.append(f"{limits[label] / t.median_ms:.2f} of limit")
            row.append(fmt_ms(t.median_ms) + (f" ({', '.join(parts)})" if parts else ""))
        rows.append(row)
    return md_table(header, rows)


def _detail_table(section: dict, names: list[str], baseline: str) -> str:
    rows = []
    for label, timings in section["timings"].items():
        base = timings.get(baseline)
        for n in names:
            t, c = timings.get(n), section["checks"][label].get(n)
            if t is None or c is None:
                continue
            ratio = f"{t.median_ms / base.median_ms:.2f}" if base else "—"
            rows.append([label, n, fmt_ms(t.median_ms), fmt_ms(t.min_ms), ratio, str(t.inner),
                         f"{c.error:.1e}", f"{c.bound:.1e}", "ok" if c.ok else "FAILED"])
    return md_table(["shape", "competitor", "median ms", "min ms", f"÷ {baseline}", "calls/sample",
                     "max error vs float64", "bound", "check"], rows, "llrrrrrrl")


def _fastest_peer(timings: dict) -> tuple[str, float] | None:
    peers = [(n, timings[n].median_ms) for n in FLOAT32_PEERS if n in timings]
    return min(peers, key=lambda p: p[1]) if peers else None


def report(run: dict) -> str:
    title = "# minibert benchmark"
    if run["smoke"]:
        title += " (SMOKE run of the harness on a tiny model: not a benchmark)"
    elif run["quick"]:
        title += " (QUICK run: not for citing)"
    out = [title, ""]
    if run.get("failed"):
        out += ["**CHECK FAILED** — outputs outside the float32 error model's bound (timed anyway):", ""]
        out += [f"- {f}" for f in run["failed"]] + [""]
    out += [f"- date: {run['date']}", f"- command: `{run['command']}`", f"- minibert revision: {run['git']}",
            f"- checkpoint: random-init DistilBERT ({run['model']}, seed 0), float32",
            f"- method: {run['repeats']} interleaved repeats (order rotated each repeat) after {run['warmup']} "
            f"warm-up call(s); a sample is n back-to-back calls lasting ≥ {run['min_sample_ms']:g} ms, "
            f"reported per call; {run['gap_ms']:g} ms pause before each sample",
            f"- ratios: competitor time ÷ {run['baseline']} time (> 1: {run['baseline']} is faster)",
            "- correctness: every output vs transformers in float64 (eager, `model.double()`); passes when its max "
            f"error ≤ {error_model.FP32_RATIO:g}× torch-float32's error + {error_model.FLOOR_ULPS:g} float32 ulps of "
            "the largest value (tests/error_model.py)",
            f"- numpy float32 GEMM rate ({run['gemm_n']}³ sgemm, best of several): {run['gemm_gflops']:.0f} GFLOP/s; "
            "GEMM limit of a shape = its encoder's product FLOPs ÷ that rate "
            "(FLOPs = L·(8·T·C² + 4·T·C·F + 4·B·S²·C), T = B·S)"]
    out += [f"- {label}: sequence lengths {lens}" for label, lens in run["padded_lengths"].items()]
    out += ["", "## Machine", ""]
    out += [f"- {k}: {v}" for k, v in run["facts"].items()]
    if run["foreign_load"] is not None:
        share = run["foreign_load"]
        out += [f"- CPU used by other processes during the timings: {share:.0%} of all cores"
                + (" — NOISY: the numbers below are not representative" if share > 0.1 else "")]
    out += [f"- versions: {', '.join(f'{k} {v}' for k, v in run['versions'].items())}", ""]

    names, baseline = run["competitors"], run["baseline"]
    logits = run["logits"]
    out += ["## Classification logits: median ms per call", ""]
    if run.get("chart"):
        out += [f"![classification: competitor time ÷ {baseline} time]({run['chart']})", ""]
    out += [_ratio_table(logits, names, baseline, run["limits"]), ""]
    rows = []
    for label, timings in logits["timings"].items():
        peer = _fastest_peer(timings)
        if peer and baseline in timings:
            rows.append([label, peer[0], f"{peer[1] / timings[baseline].median_ms:.2f}×",
                         f"{run['limits'][label] / timings[baseline].median_ms:.2f}"])
    if rows:
        out += [f"Against the fastest float32 peer ({' or '.join(FLOAT32_PEERS)}) and the GEMM limit:", ""]
        out += [md_table(["shape", "fastest peer", f"peer ÷ {baseline}", f"{baseline}: fraction of GEMM limit"],
                         rows, "llrr"), ""]
    out += ["### Classification detail", "", _detail_table(logits, names, baseline), ""]

    if run.get("encoder"):
        enc = run["encoder"]
        out += ["## Encoder alone (last_hidden_state, every token): median ms per call and fraction of the GEMM "
                "limit", ""]
        out += [_ratio_table(enc, enc["competitors"], baseline, run["limits"]), ""]
        out += ["### Encoder detail", "", _detail_table(enc, enc["competitors"], baseline), ""]

    if run.get("products"):
        out += _products_section(run["products"], run["gemm_gflops"])

    if run.get("pipeline"):
        p = run["pipeline"]
        out += [f"## End-to-end pipeline: {p['n_texts']} sentences, batch_size {p['batch_size']}, tokenization "
                "included", ""]
        base = p["timings"][next(iter(p["timings"]))]
        rows = [[n, fmt_ms(t.median_ms), fmt_ms(t.min_ms), f"{t.median_ms / base.median_ms:.2f}"]
                for n, t in p["timings"].items()]
        out += [md_table(["pipeline", "median ms", "min ms", "÷ minibert"], rows), ""]
        out += [_agreement_line(p["agreement"]), ""]

    if run.get("corpus"):
        c = run["corpus"]
        out += [f"## Mixed corpus: {c['describe']}; batch_size {c['batch_size']}, tokenization included", ""]
        first = next(iter(c["seconds"]))
        rows = []
        for n, secs in c["seconds"].items():
            med = _median(secs)
            rows.append([n, f"{c['n_texts'] / med:.1f}", f"{med:.2f}", f"{med / _median(c['seconds'][first]):.2f}",
                         str(len(secs))])
        out += [md_table(["runner", "texts/s", "s per pass (median)", f"time ÷ {first}", "passes"], rows), ""]
        out += ["- every pass, s: " + "; ".join(f"{n} " + ", ".join(f"{x:.1f}" for x in secs)
                                                for n, secs in c["seconds"].items()), ""]
        out += [_agreement_line(c["agreement"]),
                "Length-sorted: texts sorted by token count, cut into batches of batch_size, each padded to its "
                "longest, results put back in input order.", ""]

    if run.get("embeddings"):
        out += _embeddings_section(run["embeddings"])

    if run.get("processes"):
        pr = run["processes"]
        out += ["## Start and memory: one fresh process that loads the checkpoint and classifies one sentence", ""]
        rows = []
        for name, r in pr["start"].items():
            rows.append([name, f"{r['process_median']:.2f}", f"{r['import']:.2f}", f"{r['load']:.2f}",
                         f"{r['first'] * 1e3:.0f}", f"{r['second'] * 1e3:.1f}", fmt_mb(r["rss_import"]),
                         fmt_mb(r["peak_rss"])])
        out += [md_table(["process", "wall s (median)", "import s", "load s", "first call ms", "second call ms",
                          "RSS after import", "peak RSS"], rows), ""]
        mb, hf = pr["start"].get("minibert pipeline"), pr["start"].get("transformers pipeline")
        facts = [f"safetensors file: {fmt_mb(pr['file_mb'])}"]
        if mb:
            facts.append(f"minibert peak RSS − file = {fmt_mb(mb['peak_rss'] - pr['file_mb'])}")
        if mb and hf:
            facts.append(f"start: transformers ÷ minibert = {hf['process_median'] / mb['process_median']:.1f}×")
            bare = pr["start"].get("minibert pipeline, SciPy not installed")
            if bare:
                facts.append(f"without SciPy (minibert's own dependencies): "
                             f"{hf['process_median'] / bare['process_median']:.1f}×")
        out += ["- " + "; ".join(facts), "- every process's wall times: " + "; ".join(
            f"{n} " + ", ".join(f"{s:.2f}" for s in r["process_all"]) for n, r in pr["start"].items())]
        if pr.get("pss"):
            out += ["", f"{len(pr['pss'])} minibert processes alive at once on one checkpoint "
                    "(/proc/PID/smaps_rollup; PSS counts a shared page 1/n to each of its n processes):", ""]
            keys = [k for k in ("Rss", "Pss", "Pss_Anon", "Pss_File", "Shared_Clean", "Private_Dirty")
                    if k in pr["pss"][0]]
            rows = [[f"process {i + 1}"] + [fmt_mb(p[k]) for k in keys] for i, p in enumerate(pr["pss"])]
            rows.append(["sum"] + [fmt_mb(sum(p[k] for p in pr["pss"])) for k in keys])
            out += [md_table(["", *keys], rows)]
        out += [""]

    out += ["## First call in this process (lazy init / Numba cache load or compile; not in the timings above)", ""]
    out += [f"Numba on-disk cache present before this run: {run['numba_cache_before']}. First call on shape "
            f"{run['first_shape']}.", ""]
    out += [md_table(["competitor", "first call ms"], [[n, fmt_ms(ms)] for n, ms in run["first_call"].items()]), ""]

    for label, prof in run.get("profile", {}).items():
        out += [f"## Profile {label}: where minibert-numba's time goes (self time per forward)", ""]
        out += [f"Every public function of {', '.join(prof['modules'])} timed (self time: minus the wrapped functions "
                f"it calls). GEMM limit of this shape: {fmt_ms(prof['limit_ms'])} ms.", ""]
        out += [md_table(["function", "ms", "calls"], [[k, fmt_ms(ms), f"{n:g}"] for k, ms, n in prof["minibert"]]),
                ""]
        out += ["torch-sdpa on the same input (torch.profiler, self CPU time, top ops):", ""]
        out += [md_table(["aten op", "ms", "calls"], [[k, fmt_ms(ms), f"{n:g}"] for k, ms, n in prof["torch"]]), ""]
    return "\n".join(out).rstrip() + "\n"


def _products_section(p: dict, gemm_gflops: float) -> list[str]:
    names = list(p["rows"][0]["timings"])
    out = [f"## The products alone: the model's {p['n_products']} linear layers at T tokens, median ms (GFLOP/s)", "",
           "Checkpoint weights, one chain per layer, each engine's own GEMM (benchmarks/products.py): minibert's "
           "is the forward pass's (fast_gemm's kernel up to 64 tokens, numpy's BLAS above, which packs the weights "
           "in every call); ONNX Runtime and OpenVINO pack them once at load. Fraction = GFLOP/s ÷ numpy's "
           f"{gemm_gflops:.0f} GFLOP/s sgemm rate.", ""]
    rows = []
    for row in p["rows"]:
        t = row["timings"]
        rates = {n: row["gflop"] / t[n].median_ms * 1e3 for n in names}
        cells = [f"{fmt_ms(t[n].median_ms)} ({rates[n]:.0f}, {rates[n] / gemm_gflops:.2f})" for n in names]
        peer = min((t[n].median_ms for n in names if n != "minibert"), default=None)
        ratio = f"{peer / t['minibert'].median_ms:.2f}×" if peer else "–"
        errors = ", ".join(f"{n} {e:.1e}" for n, e in row["errors"].items())
        rows.append([str(row["tokens"]), f"{row['gflop']:.2f}", *cells, ratio, errors, f"{row['bound']:.1e}"])
    out += [md_table(["T", "GFLOP", *names, "fastest peer ÷ minibert", "max error vs float64", "bound"], rows,
                     "rr" + "r" * len(names) + "rlr"), ""]
    return out


def _median(xs: list[float]) -> float:
    return statistics.median(xs)


def _embeddings_section(e: dict) -> list[str]:
    """engine | sentences/s | time ÷ minibert.encode | agreement with sentence-transformers and float64."""
    base = _median(e["seconds"]["minibert.encode"])
    rows = []
    for name, secs in e["seconds"].items():
        med, a = _median(secs), e["agreement"][name]
        rows.append([name, f"{e['n_texts'] / med:.1f}", f"{med:.2f}", f"{med / base:.2f}", str(len(secs)),
                     f"{a.max_abs_diff:.1e}", f"{1 - a.min_cosine:.1e}", f"{a.error:.1e}", f"{a.bound:.1e}",
                     "ok" if a.ok else "FAILED"])
    header = ["engine", "sentences/s", "s per pass (median)", "time ÷ minibert.encode", "passes",
              "max abs diff vs sentence-transformers", "1 − min cosine vs sentence-transformers",
              "max error vs float64", "bound", "check"]
    return [f"## Sentence embeddings: all-MiniLM-L6-v2, {e['describe']}; normalize, batch_size "
            f"{e['batch_size']}, tokenization included", "",
            md_table(header, rows, "lrrrrrrrrl"), "",
            "Embeddings checked first: the truth is sentence-transformers' model in float64 (`.double()`); an engine "
            f"passes when its max error ≤ {error_model.FP32_RATIO:g}× sentence-transformers-float32's error + "
            f"{error_model.FLOOR_ULPS:g} float32 ulps of the largest value. onnxruntime: the BertModel exported to "
            "ONNX, `tokenizers` (tokenizer.json, padded to the batch's longest, cut at max_seq_length), mean pooling "
            "and L2 normalisation in numpy, fed the batches minibert.encode forms (input order, each padded to its "
            "longest); sentence-transformers sorts the texts by length before batching (less padding). "
            "Time ÷ minibert.encode > 1: minibert is faster.", ""]


def _agreement_line(agreement: dict[str, tuple[float, int]], reference: str = "transformers pipeline") -> str:
    return f"Scores checked first, against the {reference}'s: " + "; ".join(
        f"{n}: max |Δscore| {d:.1e}, {flips} top label(s) differ" for n, (d, flips) in agreement.items()) + "."


def summary(run: dict) -> dict:
    """The numbers as JSON: medians (ms), checks, GEMM rate; what tests and later tooling read."""
    def section(s):
        return {
            "timings_ms": {lab: {n: t.median_ms for n, t in ts.items()} for lab, ts in s["timings"].items()},
            "checks": {lab: {n: {"error": c.error, "bound": c.bound, "ok": c.ok} for n, c in cs.items()}
                       for lab, cs in s["checks"].items()},
        }
    out = {"smoke": run["smoke"], "quick": run["quick"], "competitors": run["competitors"],
           "gemm_gflops": run["gemm_gflops"], "limits_ms": run["limits"], "logits": section(run["logits"])}
    if run.get("encoder"):
        out["encoder"] = section(run["encoder"])
    if run.get("products"):
        out["products"] = {str(r["tokens"]): {"gflop": r["gflop"], "errors": r["errors"], "bound": r["bound"],
                                              "timings_ms": {n: t.median_ms for n, t in r["timings"].items()}}
                           for r in run["products"]["rows"]}
    if run.get("corpus"):
        out["corpus_texts_per_s"] = {n: run["corpus"]["n_texts"] / _median(s)
                                     for n, s in run["corpus"]["seconds"].items()}
        out["corpus_seconds"] = run["corpus"]["seconds"]
        out["corpus_agreement"] = {n: {"max_score_delta": d, "top_label_flips": f}
                                   for n, (d, f) in run["corpus"]["agreement"].items()}
    if run.get("embeddings"):
        e = run["embeddings"]
        out["embeddings_sentences_per_s"] = {n: e["n_texts"] / _median(s) for n, s in e["seconds"].items()}
        out["embeddings_agreement"] = {n: a.as_dict() for n, a in e["agreement"].items()}
    if run.get("processes"):
        pr = run["processes"]
        out["start"] = {n: {k: r[k] for k in ("process_median", "peak_rss", "rss_import")}
                        for n, r in pr["start"].items()}
        out["pss"], out["file_mb"] = pr.get("pss"), pr["file_mb"]
    out["profile"] = {lab: p["minibert"] for lab, p in run.get("profile", {}).items()}
    return out


def chart(run: dict, path: Path) -> Path:
    """Grouped bars: for each shape, every competitor's median time ÷ the baseline's (log scale; 1 = as fast)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    baseline, timings = run["baseline"], run["logits"]["timings"]
    labels = [lab for lab, ts in timings.items() if baseline in ts]
    others = [n for n in run["competitors"] if n != baseline]
    fig, ax = plt.subplots(figsize=(max(6.0, 1.6 * len(labels) + 2), 4.2), dpi=120)
    width = 0.8 / max(1, len(others))
    for j, name in enumerate(others):
        xs, ys = [], []
        for i, lab in enumerate(labels):
            if name in timings[lab]:
                xs.append(i - 0.4 + width * (j + 0.5))
                ys.append(timings[lab][name].median_ms / timings[lab][baseline].median_ms)
        bars = ax.bar(xs, ys, width, label=name)
        ax.bar_label(bars, labels=[f"{y:.2f}" for y in ys], fontsize=6, padding=1)
    ax.axhline(1.0, color="black", linewidth=0.8)
    ax.set_yscale("log")
    ys_all = [timings[lab][n].median_ms / timings[lab][baseline].median_ms
              for lab in labels for n in others if n in timings[lab]]
    if ys_all:
        lo, hi = min(ys_all + [1.0]), max(ys_all + [1.0])
        ax.set_ylim(lo / 1.3, hi * 2.5)  # headroom for the legend
    ratio_fmt = matplotlib.ticker.FuncFormatter(lambda y, _: f"{y:g}×")
    ax.yaxis.set_major_formatter(ratio_fmt)
    ax.yaxis.set_minor_formatter(ratio_fmt)
    ax.tick_params(axis="y", which="minor", labelsize=7)
    ax.set_xticks(range(len(labels)))
    ax.set_xticklabels([f"{lab}\n{baseline}: {fmt_ms(timings[lab][baseline].median_ms)} ms" for lab in labels],
                       fontsize=8)
    ax.set_ylabel(f"time ÷ {baseline}'s (> 1: {baseline} faster)", fontsize=8)
    title = "DistilBERT classification logits, float32, median per call"
    ax.set_title(title + (" (smoke run)" if run["smoke"] else ""), fontsize=10)
    ax.legend(fontsize=7, ncols=min(3, max(1, len(others))), loc="upper right")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return path

