"""The model's products alone: whose float32 GEMM is fastest on this CPU.

Most of a DistilBERT forward pass is its linear layers: per block Q, K, V and out_lin (C -> C), lin1 (C -> F) and
lin2 (F -> C); 36 products for base DistilBERT. This section times exactly those products, with the checkpoint's
own weights, as one chain per layer (q, k, v of x; o of q + k + v; f of o; the next x of f) at T tokens:

    minibert      fast.linear, what minibert's forward pass calls (fast_gemm's kernel up to its SMALL_N tokens,
                  numpy's BLAS above), into buffers allocated once
    onnxruntime   the same chain as an ONNX graph of MatMuls (weights as initializers), set up as the competitor
    openvino      that ONNX file compiled with the competitor's settings (f32, LATENCY)

The engines differ only in their GEMM here: ONNX Runtime and OpenVINO pack the weights once at load into their
kernels' layout, numpy's OpenBLAS packs them again in every call. When a peer's classification is faster than
minibert's, this table says whether its products alone already are (then the gap is the GEMM, not the steps
between the products). Each engine's chain is first checked against the same chain in float64, on the float32
error model every other check uses (tests/error_model.py: at most 2x torch's own float32 error on the chain, plus 4
float32 ulps of the largest value).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from . import competitors, timing
from .checks import error_model

NAMES_IN_LAYER = ("attention.q_lin", "attention.k_lin", "attention.v_lin", "attention.out_lin", "ffn.lin1", "ffn.lin2")


def layer_weights(ckpt: Path) -> list[dict[str, np.ndarray]]:
    """Per layer, the six linear weights [n_out, n_in] of the checkpoint, by their short names (q_lin, ..., lin2)."""
    from safetensors.numpy import load_file

    tensors = load_file(str(ckpt / "model.safetensors"))
    layers = []
    for i in range(len({k.split(".")[3] for k in tensors if ".transformer.layer." in k})):
        prefix = f"distilbert.transformer.layer.{i}."
        layers.append({name.split(".")[1]: np.ascontiguousarray(tensors[prefix + name + ".weight"], np.float32)
                       for name in NAMES_IN_LAYER})
    return layers


def chain_flops(layers: list[dict[str, np.ndarray]], tokens: int) -> float:
    return sum(2.0 * w.size * tokens for layer in layers for w in layer.values())


def reference(layers: list[dict[str, np.ndarray]], x: np.ndarray, xp=np):
    """The chain, token-major: x [T, C] -> [T, C]. With numpy and a float64 x: the float64 reference (float64 @
    float32 computes in float64); with torch tensors (xp=torch): torch's float32 chain, whose error sets the bound."""
    h = x
    for w in layers:
        w = {name: xp.asarray(v) for name, v in w.items()}  # (numpy: the arrays themselves)
        s = h @ w["q_lin"].T + h @ w["k_lin"].T + h @ w["v_lin"].T
        h = ((s @ w["out_lin"].T) @ w["lin1"].T) @ w["lin2"].T
    return h


def error_bound(layers: list[dict[str, np.ndarray]], x: np.ndarray) -> tuple[np.ndarray, float]:
    """(the float64 chain, the largest error from it a float32 engine may have: the error model's bound)."""
    import torch

    want = reference(layers, x.astype(np.float64))
    with torch.inference_mode():
        torch32 = reference(layers, torch.from_numpy(x), xp=torch).numpy()
    return want, error_model.fp32_bound(torch32, want)


def minibert_chain(layers: list[dict[str, np.ndarray]], tokens: int):
    """The chain as minibert's forward pass computes its products: feature-major [C, T], fast.linear, buffers
    allocated once."""
    from minibert import fast, fast_gemm

    C, F = layers[0]["lin1"].shape[1], layers[0]["lin1"].shape[0]
    few = tokens <= fast_gemm.SMALL_N
    qkv = np.empty((3, C, tokens), np.float32)
    s, o, f, h = (np.empty((n, tokens), np.float32) for n in (C, C, F, C))

    def run(x: np.ndarray) -> np.ndarray:  # x [T, C] -> [T, C]
        fast._parallel()  # Numba's thread count, as fast.distilbert sets it before a forward pass
        h[:] = x.T
        for w in layers:
            for j, name in enumerate(("q_lin", "k_lin", "v_lin")):
                fast.linear(w[name], h, qkv[j], True, few)
            np.add(qkv[0], qkv[1], out=s)
            np.add(s, qkv[2], out=s)
            fast.linear(w["out_lin"], s, o, True, few)
            fast.linear(w["lin1"], o, f, True, few)
            fast.linear(w["lin2"], f, h, True, few)
        return h.T.copy()

    return run


def export_chain(layers: list[dict[str, np.ndarray]], path: Path, newer_than: float) -> Path:
    """The chain as an ONNX graph: input x [T, C] (T dynamic), MatMuls against the transposed weights. Kept at
    `path`, rebuilt when older than `newer_than` (the checkpoint's mtime), as artifacts.export_onnx does."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    if path.exists() and path.stat().st_mtime >= newer_than:
        return path
    C = layers[0]["q_lin"].shape[1]
    nodes, inits = [], []

    def matmul(weight: np.ndarray, name: str, inp: str, out: str) -> None:  # out = inp @ weight.T
        inits.append(numpy_helper.from_array(np.ascontiguousarray(weight.T), name))
        nodes.append(helper.make_node("MatMul", [inp, name], [out]))

    h = "x"
    for i, w in enumerate(layers):
        for name in ("q_lin", "k_lin", "v_lin"):
            matmul(w[name], f"l{i}.{name}", h, f"l{i}.{name}.y")
        nodes.append(helper.make_node("Add", [f"l{i}.q_lin.y", f"l{i}.k_lin.y"], [f"l{i}.qk"]))
        nodes.append(helper.make_node("Add", [f"l{i}.qk", f"l{i}.v_lin.y"], [f"l{i}.s"]))
        matmul(w["out_lin"], f"l{i}.out_lin", f"l{i}.s", f"l{i}.o")
        matmul(w["lin1"], f"l{i}.lin1", f"l{i}.o", f"l{i}.f")
        h_next = "y" if i == len(layers) - 1 else f"l{i}.h"
        matmul(w["lin2"], f"l{i}.lin2", f"l{i}.f", h_next)
        h = h_next
    graph = helper.make_graph(
        nodes, "products", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["T", C])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["T", C])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.onnx")
    onnx.save(model, str(tmp))
    tmp.replace(path)
    return path


def peer_chains(path: Path) -> dict:
    """{"onnxruntime": run, "openvino": run}, each x [T, C] -> [T, C], set up as the classification competitors."""
    import openvino as ov

    session = competitors.ort_session(path)
    compiled = ov.Core().compile_model(str(path), "CPU", competitors.OPENVINO_CONFIG)
    request = compiled.create_infer_request()
    output = compiled.output(0)
    return {
        "onnxruntime": lambda x: session.run(["y"], {"x": x})[0],
        "openvino": lambda x: np.array(request.infer({"x": x})[output]),
    }


def run(ckpt: Path, token_counts: list[int], repeats: int, warmup: int, min_sample_s: float, gap_s: float,
        log) -> dict:
    """{"rows": [{tokens, gflop, errors, timings}], "failed": [...]} for every token count."""
    layers = layer_weights(ckpt)
    onnx_file = export_chain(layers, ckpt / "onnx" / "products.onnx", (ckpt / "model.safetensors").stat().st_mtime)
    peers = peer_chains(onnx_file)
    rng = np.random.default_rng(0)
    rows, failed = [], []
    for tokens in token_counts:
        x = rng.standard_normal((tokens, layers[0]["q_lin"].shape[1])).astype(np.float32)
        runners = {"minibert": minibert_chain(layers, tokens), **peers}
        want, bound = error_bound(layers, x)
        errors = {name: error_model.max_abs_error(fn(x), want) for name, fn in runners.items()}
        failed += [f"products T={tokens} {n}: error {e:.2e} > bound {bound:.2e}"
                   for n, e in errors.items() if not e <= bound]
        log(f"timing products T={tokens} ...")
        timings = timing.interleaved({n: (lambda fn=fn, x=x: fn(x)) for n, fn in runners.items()}, repeats, warmup,
                                     min_sample_s, gap_s)
        log("   " + ", ".join(f"{n} {t.median_ms:.2f} ms" for n, t in timings.items()))
        rows.append({"tokens": tokens, "gflop": chain_flops(layers, tokens) / 1e9, "errors": errors,
                     "bound": bound, "timings": timings})
    return {"rows": rows, "failed": failed, "n_products": sum(len(layer) for layer in layers)}
