"""What the numbers were measured on: CPU, thread pools, package versions, git revision."""

from __future__ import annotations

import importlib.metadata
import os
import platform
import subprocess
from pathlib import Path

from .competitors import OPENVINO_CONFIG, ORT_SETTINGS, THREADS

REPO = Path(__file__).resolve().parent.parent
DISTRIBUTIONS = ("minibert", "numpy", "numba", "llvmlite", "torch", "transformers", "tokenizers", "safetensors",
                 "onnx", "onnxruntime", "openvino", "threadpoolctl", "matplotlib")


def versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for dist in DISTRIBUTIONS:
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
    try:
        import torch

        facts["torch threads"] = f"intra-op {torch.get_num_threads()}, inter-op {torch.get_num_interop_threads()}"
    except ImportError:
        pass
    try:
        import numba

        try:
            layer = numba.threading_layer()
        except ValueError:
            layer = "none started (no parallel=True kernel ran)"
        facts["numba"] = f"threading layer {layer}, NUMBA_NUM_THREADS={numba.config.NUMBA_NUM_THREADS}"
    except ImportError:
        pass
    try:
        import threadpoolctl

        pools = threadpoolctl.threadpool_info()
        facts["threadpools (threadpoolctl)"] = "; ".join(
            f"{p.get('internal_api')} {p.get('version', '')} {p.get('num_threads')} threads"
            + (f", {p['architecture']} kernels" if p.get("architecture") else "")
            + f" ({Path(p.get('filepath', '')).name})" for p in pools
        )
    except ImportError:
        facts["threadpools (threadpoolctl)"] = "(threadpoolctl not installed)"
    facts["onnxruntime"] = ORT_SETTINGS
    facts["openvino"] = f"CPU, {OPENVINO_CONFIG} (threads: its own default; {THREADS} cores)"
    # OPENBLAS_CORETYPE and the ISA caps choose which kernels run: a machine may set them (one here set
    # OPENBLAS_CORETYPE=Haswell on an AVX-512 CPU, halving numpy's sgemm rate), so the report shows them.
    env = {k: os.environ[k] for k in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS",
                                      "NUMBA_NUM_THREADS", "NUMBA_THREADING_LAYER", "NUMBA_CACHE_DIR",
                                      "MINIBERT_BACKEND", "OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE",
                                      "MKL_ENABLE_INSTRUCTIONS", "ONEDNN_MAX_CPU_ISA", "ATEN_CPU_CAPABILITY")
           if k in os.environ}
    facts["thread and kernel env vars"] = ", ".join(f"{k}={v}" for k, v in env.items()) or "(none set)"
    try:
        facts["load average at end"] = " ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        pass
    return facts
